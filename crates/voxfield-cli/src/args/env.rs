//! `voxfield env` flags.

use std::path::PathBuf;

use super::parse::parse_f64;
use clap::Subcommand;

/// The `voxfield env` verbs.
#[derive(Subcommand, Debug)]
pub enum EnvCommand {
    /// Firing-rate maps of many units over one trajectory (diffusion-KDE smoothing,
    /// neurospatial 0.6.0's compute_spatial_rates), with each unit's spatial information.
    RateMaps {
        /// Tracking: (N, 1 + d) .npy or CSV, times (s) in column 0, then 1-3 coordinates.
        positions: PathBuf,
        /// Spike times (s): an .npz with one 1-D array per unit (or one .npy for one unit).
        spikes: PathBuf,
        /// Bin size: one value, or one per axis (comma-separated).
        #[arg(long, value_delimiter = ',', value_parser = parse_f64, required = true)]
        bin_size: Vec<f64>,
        /// Smoothing σ in the positions' units (0.6.0's diffusion bandwidth).
        #[arg(long, default_value_t = 5.0, value_parser = parse_f64)]
        bandwidth: f64,
        /// Rates (n_units, n_bins), Hz; NaN where the smoothed occupancy is ≤ --min-occupancy.
        #[arg(short, long)]
        out: PathBuf,
        /// A panel of the 2-D rate maps, each scaled to its own peak.
        #[arg(long)]
        png: Option<PathBuf>,
        /// Also write the environment (neurospatial's PATH.json + PATH.npz) so bins map to space.
        #[arg(long)]
        env: Option<PathBuf>,
        /// Seconds of smoothed occupancy a bin needs for a rate.
        #[arg(long, default_value_t = 0.0, value_parser = parse_f64)]
        min_occupancy: f64,
        /// Tracking gaps longer than this (s) count neither time nor spikes.
        #[arg(long, default_value_t = 0.5, value_parser = parse_f64)]
        max_gap: f64,
        /// A bin is part of the arena when more than this many samples fall in it.
        #[arg(long, default_value_t = 0)]
        bin_count_threshold: usize,
        /// Print the per-unit table as JSON.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Describe an environment file (neurospatial's PATH.json + PATH.npz).
    Info {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

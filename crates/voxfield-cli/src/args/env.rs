//! `voxfield env` flags.

use std::path::PathBuf;

use super::parse::parse_f64;
use clap::{Args, Subcommand, ValueEnum};

/// Scores `rate-maps --scores` adds.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreName {
    Grid,
    Border,
}

/// The `voxfield env` verbs.
#[derive(Subcommand, Debug)]
pub enum EnvCommand {
    /// Firing-rate maps of many units over one trajectory (diffusion-KDE smoothing,
    /// neurospatial 0.6.0's compute_spatial_rates), with each unit's spatial information.
    RateMaps(Box<RateMapsArgs>),
    /// Describe an environment file (neurospatial's PATH.json + PATH.npz).
    Info {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// `voxfield env rate-maps` flags.
#[derive(Args, Debug)]
pub struct RateMapsArgs {
    /// Tracking: (N, 1 + d) .npy or CSV, times (s) in column 0, then 1-3 coordinates.
    pub positions: PathBuf,
    /// Spike times (s): an .npz with one 1-D array per unit (or one .npy for one unit).
    pub spikes: PathBuf,
    /// Bin size: one value, or one per axis (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = parse_f64, required = true)]
    pub bin_size: Vec<f64>,
    /// Smoothing σ in the positions' units (0.6.0's diffusion bandwidth).
    #[arg(long, default_value_t = 5.0, value_parser = parse_f64)]
    pub bandwidth: f64,
    /// Rates (n_units, n_bins), Hz; NaN where the smoothed occupancy is ≤ --min-occupancy.
    #[arg(short, long)]
    pub out: PathBuf,
    /// A panel of the 2-D rate maps, each scaled to its own peak.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Also write the environment (neurospatial's PATH.json + PATH.npz) so bins map to space.
    #[arg(long)]
    pub env: Option<PathBuf>,
    /// Seconds of smoothed occupancy a bin needs for a rate.
    #[arg(long, default_value_t = 0.0, value_parser = parse_f64)]
    pub min_occupancy: f64,
    /// Tracking gaps longer than this (s) count neither time nor spikes.
    #[arg(long, default_value_t = 0.5, value_parser = parse_f64)]
    pub max_gap: f64,
    /// A bin is part of the arena when more than this many samples fall in it.
    #[arg(long, default_value_t = 0)]
    pub bin_count_threshold: usize,
    /// Also score each map: grid (Sargolini's grid score; a 2-D grid), border (Solstad's,
    /// geodesic) — comma-separated. Information and sparsity are always given.
    #[arg(long, value_delimiter = ',')]
    pub scores: Vec<ScoreName>,
    /// Spike-time shuffles per unit for a p-value of every score (each unit's spikes
    /// shifted circularly by a uniform draw in [--min-shift, session − --min-shift]).
    #[arg(long, default_value_t = 0)]
    pub shuffles: usize,
    /// Shortest shift (s) of a shuffle (default 20; only with --shuffles).
    #[arg(long, value_parser = parse_f64)]
    pub min_shift: Option<f64>,
    /// Seed of the shifts (default 0; the same seed draws the same shifts on every
    /// machine; only with --shuffles).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the per-unit table as JSON.
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub threads: Option<usize>,
}

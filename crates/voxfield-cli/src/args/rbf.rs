//! `voxfield rbf` flags.

use std::path::PathBuf;

use super::common::PictureArgs;
use super::parse::parse_f64;
use clap::Subcommand;

/// The `voxfield rbf` verbs.
#[derive(Subcommand, Debug)]
pub enum RbfCommand {
    /// Fit a subdivided RBF interpolant to scattered samples and write a .vxr model.
    Fit {
        /// Samples: CSV/whitespace table (optional header) or (N, C) .npy with
        /// columns x, y[, z], value (the last column is the value unless --columns/--dim say otherwise).
        points: PathBuf,
        /// Model file to write.
        #[arg(short, long)]
        out: PathBuf,
        /// Columns to use, by header name or 0-based index: the coordinates, then the value column(s).
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// Number of coordinate columns (default: all selected columns but the last).
        #[arg(long)]
        dim: Option<usize>,
        /// wendland-c2, wendland-c4, tps, cubic, gaussian or mq.
        #[arg(long, default_value = "tps")]
        kernel: String,
        /// Polynomial degree: -1 (none), 0 or 1 (default 1).
        #[arg(long, allow_hyphen_values = true)]
        degree: Option<i32>,
        /// Target points per domain (default 200 for dense kernels, 3000 for wendland).
        #[arg(long)]
        points_per_cell: Option<usize>,
        /// Overlap of neighbouring cells as a fraction of the domain size, in (0, 0.5].
        #[arg(long, default_value_t = 0.25, value_parser = parse_f64)]
        overlap: f64,
        /// Smoothing added to the kernel matrix diagonal (0 interpolates).
        #[arg(long, default_value_t = 0.0, value_parser = parse_f64)]
        smoothing: f64,
        /// Shape parameter: ε for gaussian/mq, support radius for wendland (default: from point density).
        #[arg(long, value_parser = parse_f64)]
        shape: Option<f64>,
        /// Blending ramp: smooth (C1), linear, quintic (C2).
        #[arg(long, default_value = "smooth")]
        ramp: String,
        /// Duplicate coordinates: merge (mean value, with a warning) or reject.
        #[arg(long, default_value = "merge")]
        duplicates: String,
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Evaluate a model at points ((N, dim) .npy or CSV) into an .npy.
    Eval {
        model: PathBuf,
        #[arg(long)]
        points: PathBuf,
        /// Values: (N,) for one channel, (N, C) for several.
        #[arg(long)]
        out: PathBuf,
        /// Also write the gradient of channel 0, (N, dim), here.
        #[arg(long)]
        gradient: Option<PathBuf>,
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Evaluate a model on a regular grid, streamed slab by slab: .npy (any dim),
    /// .png (2-D, north up) or .zarr (3-D, Zarr v3).
    Grid {
        model: PathBuf,
        /// Bounds LO0,HI0,LO1,HI1[,LO2,HI2] (default: the samples' bounding box).
        #[arg(long, allow_hyphen_values = true, value_delimiter = ',', value_parser = parse_f64)]
        bounds: Option<Vec<f64>>,
        /// Nodes per axis, e.g. 512,512.
        #[arg(long, value_delimiter = ',')]
        shape: Vec<usize>,
        #[arg(long)]
        out: PathBuf,
        /// Value channel to write.
        #[arg(long, default_value_t = 0)]
        channel: usize,
        #[command(flatten)]
        picture: PictureArgs,
        #[arg(long)]
        threads: Option<usize>,
    },
}

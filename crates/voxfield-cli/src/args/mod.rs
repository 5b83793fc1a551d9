//! Command-line syntax. Vectors are typed as `X,Y,Z`; negative numbers work both as
//! `--u -0.5,0,1` and `--u=-0.5,0,1`.

mod common;
mod env;
mod neural;
mod parse;
mod rbf;
mod render;
mod serve;
mod vectors;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use parse::{parse_dtype, parse_shape};
use voxfield::DType;

pub use common::{
    CodecArg, Colormap, OptionalSourceArgs, PictureArgs, PlaneArgs, RawArgs, SamplingArgs,
    ScaleLevel, SourceArgs,
};
pub use env::{EnvCommand, RateMapsArgs, ScoreName};
pub use neural::{CompressArgs, CompressCommand};
pub use rbf::RbfCommand;
pub use render::RenderArgs;
pub use serve::ServeArgs;
pub use vectors::VectorsCommand;

#[derive(Parser, Debug)]
#[command(name = "voxfield", version, about = "Spatial fields too large for the naive way: volumes, RBF fits, neural models, environments, vector pyramids", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Describe a volume or model: format, shape, dtype, chunks, affine, bytes on disk.
    Info {
        #[command(flatten)]
        source: SourceArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Raw element type (same as --raw-dtype).
        #[arg(long, value_parser = parse_dtype, conflicts_with = "raw_dtype")]
        dtype: Option<DType>,
    },
    /// Sample any field (a volume, a neural model .vxn, an RBF model .vxr) at a list
    /// of points (an (N,3) .npy or a 3-column CSV; (N,2) for a 2-D image).
    Sample {
        #[command(flatten)]
        source: SourceArgs,
        /// (N,D) .npy (float32 or float64) or CSV with D columns, D the number of
        /// spatial axes (3, or 2 for a 2-D image).
        #[arg(long)]
        points: PathBuf,
        /// Output (N,) .npy ((T,N) with --all-index).
        #[arg(long)]
        out: PathBuf,
        /// Sample the same points at every index of this non-spatial axis (time
        /// points, channels) into a (T,N) array.
        #[arg(long)]
        all_index: Option<String>,
        #[command(flatten)]
        sampling: SamplingArgs,
    },
    /// Sample an oblique plane (or a slab) of any field to a PNG picture or an .npy array.
    Slice {
        #[command(flatten)]
        source: SourceArgs,
        #[command(flatten)]
        plane: PlaneArgs,
        /// Output .png (windowed, colour-mapped) or .npy (shape NV,NU).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        sampling: SamplingArgs,
        #[command(flatten)]
        picture: PictureArgs,
    },
    /// Write any volume to a Zarr v3 array, or (DST.ome.zarr, or --levels) to an
    /// OME-Zarr 0.5 multiscale image, chunk by chunk (bounded memory), through a
    /// temporary name renamed into place. The source's affine is kept.
    Convert {
        #[command(flatten)]
        source: SourceArgs,
        /// Destination `.zarr` or `.ome.zarr` directory (must not exist).
        dst: PathBuf,
        /// OME-Zarr levels, level 0 included: a number, or `auto` (until a level
        /// fits in one chunk; the default for .ome.zarr).
        #[arg(long)]
        levels: Option<String>,
        /// How coarser levels are made: mean, mode (labels) or nearest.
        #[arg(long, default_value = "mean")]
        downsample: String,
        /// Chunk shape of the new array.
        #[arg(long, value_parser = parse_shape, default_value = "64,64,64")]
        chunks: [usize; 3],
        #[arg(long, value_enum, default_value_t = CodecArg::Zstd)]
        codec: CodecArg,
        /// Compression level (zstd 1–22, blosc and gzip 0–9).
        #[arg(long, default_value_t = 3, allow_hyphen_values = true)]
        level: i32,
        /// Zarr v3 sharding: N×N×N chunks per shard file (fewer files).
        #[arg(long)]
        shard: Option<usize>,
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Compress a volume into a neural model (.vxn): a multiresolution hash grid and a
    /// small MLP trained on CPU, sampled straight from the network.
    /// `voxfield compress meta-train VOL... -o init.vxn` learns a Reptile
    /// initialisation for --init.
    #[command(args_conflicts_with_subcommands = true)]
    Compress {
        #[command(subcommand)]
        meta: Option<CompressCommand>,
        #[command(flatten)]
        args: CompressArgs,
    },
    /// Compare two volumes or models of the same shape: PSNR (range of A), RMSE,
    /// largest absolute error, SSIM (3-D, 7³ window, scikit-image's defaults).
    Compare {
        /// The reference.
        a: PathBuf,
        /// The volume or model compared with it.
        b: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Decode a neural model (.vxn) to a volume file (.npy, .nii, .nii.gz, .zarr),
    /// slab by slab.
    Decompress {
        model: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
        /// source (the compressed volume's type, rounded and clipped) or f32.
        #[arg(long, default_value = "source")]
        dtype: String,
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Spatial environments (neurospatial 0.6.0's rules): rate maps from tracking
    /// and spikes, environment files.
    Env {
        #[command(subcommand)]
        cmd: EnvCommand,
    },
    /// Multi-resolution vector pyramids (zarr-vectors 0.9.x stores): write, build-pyramid, info, read.
    Vectors {
        #[command(subcommand)]
        cmd: VectorsCommand,
    },
    /// Render any field (volume, neural model, RBF model) on the CPU: direct volume
    /// rendering, maximum/minimum/mean projections, isosurfaces; orbiting cameras
    /// and turntables. `--view axisK --mode mip` equals numpy's max(axis=K).
    Render(Box<RenderArgs>),
    /// Serve fields over HTTP until Ctrl-C: Zarr v3/OME-Zarr and Neuroglancer
    /// precomputed views (coarse levels computed on request), rendered pictures
    /// and a viewer page at /. Loopback only unless --bind (then with a token).
    Serve(Box<ServeArgs>),
    /// Scattered-data RBF interpolation by space subdivision: fit, eval, grid.
    Rbf {
        #[command(subcommand)]
        cmd: RbfCommand,
    },
    /// The main job: every engine on built-in synthetic data, as one gallery PNG of
    /// titled, timed panels: an oblique slice and a DVR of a 3-D Shepp–Logan phantom
    /// (or of PATH), a neural model of it rendered directly, an RBF terrain, a place
    /// cell's rate map, a vector pyramid's levels.
    Demo {
        #[command(flatten)]
        source: OptionalSourceArgs,
        /// Output picture.
        #[arg(long, default_value = "voxfield-demo.png")]
        out: PathBuf,
        /// Edge length of the generated phantom volume.
        #[arg(long, default_value_t = 256)]
        phantom_size: usize,
        /// Pixels per side of each panel.
        #[arg(long, default_value_t = 300)]
        pixels: usize,
        /// Seconds the neural model trains.
        #[arg(long, default_value_t = 4.0)]
        train_seconds: f64,
        #[arg(long)]
        threads: Option<usize>,
        /// Raw element type (same as --raw-dtype).
        #[arg(long, value_parser = parse_dtype, conflicts_with = "raw_dtype")]
        dtype: Option<DType>,
    },
}

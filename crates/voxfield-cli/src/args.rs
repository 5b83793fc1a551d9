//! Command-line syntax. Vectors are typed as `X,Y,Z`; negative numbers work both as
//! `--u -0.5,0,1` and `--u=-0.5,0,1`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use voxfield::ZarrOptions;
use voxfield::{Affine, DType, Endian, IndexRequest};
use voxfield::{Method, Mode, Reduce};
use voxfield_io::RawOptions;

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
    /// Scattered-data RBF interpolation by space subdivision: fit, eval, grid.
    Rbf {
        #[command(subcommand)]
        cmd: RbfCommand,
    },
    /// The main job on a built-in 3-D Shepp–Logan phantom (or on PATH): an oblique
    /// slice written as a PNG, with what was done and how long it took.
    Demo {
        #[command(flatten)]
        source: OptionalSourceArgs,
        /// Output picture.
        #[arg(long, default_value = "voxfield-demo.png")]
        out: PathBuf,
        /// Edge length of the generated phantom volume.
        #[arg(long, default_value_t = 256)]
        phantom_size: usize,
        /// Pixels per side of the slice.
        #[arg(long, default_value_t = 512)]
        pixels: usize,
        #[arg(long)]
        threads: Option<usize>,
        /// Raw element type (same as --raw-dtype).
        #[arg(long, value_parser = parse_dtype, conflicts_with = "raw_dtype")]
        dtype: Option<DType>,
    },
}

/// The `voxfield vectors` verbs.
#[derive(Subcommand, Debug)]
pub enum VectorsCommand {
    /// Write points from an (N, 3 + k) .npy or a LAS 1.0–1.4 file (both streamed), a
    /// CSV or a PLY, or
    /// streamlines from a TrackVis .trk, MRtrix .tck or TRX (.trx zip or directory), as a new zarr-vectors store
    /// (level 0; the k columns after the coordinates, the PLY's other vertex
    /// properties, or the TRK's scalars and properties are attributes).
    Write {
        input: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
        /// points or polylines (the default follows the input: .trk/.tck/.trx are polylines).
        #[arg(long)]
        kind: Option<String>,
        /// zarr-vectors' chunk_shape (physical units per chunk).
        #[arg(long, value_delimiter = ',', value_parser = parse_f64)]
        chunk: Option<Vec<f64>>,
        /// zarr-vectors' bin_shape (a whole number of bins per chunk).
        #[arg(long, value_delimiter = ',', value_parser = parse_f64)]
        bin: Option<Vec<f64>>,
        /// Chunk cells per shard (N or X,Y,Z): Zarr v3 sharding, one file per shard
        /// instead of one per chunk cell (zarr-vectors' shard_shape).
        #[arg(long, value_delimiter = ',')]
        shard: Option<Vec<u64>>,
        /// Names of the attribute columns after the coordinates.
        #[arg(long, value_delimiter = ',')]
        attributes: Option<Vec<String>>,
        /// Coordinates per point (default 3).
        #[arg(long, default_value_t = 3)]
        dims: usize,
    },
    /// Build coarser levels (zarr-vectors' per_object coarsening: shared
    /// metanodes, object ids kept, cross-level links).
    BuildPyramid {
        store: PathBuf,
        /// coarsen:sparsity per level, e.g. 2:1,2:4,2:4 (point clouds are never thinned).
        #[arg(long, value_delimiter = ',', required = true)]
        factors: Vec<String>,
        /// per_object (zarr-vectors 0.9.2: objects keep ids and paths through shared metanodes) or
        /// cross_object_metanode (the metanodes alone, as a point level without object ids).
        #[arg(long, default_value = "per_object")]
        method: String,
        /// random (a fresh draw per level among the surviving objects) or
        /// spatial_coverage (one object per occupied bin first).
        #[arg(long, default_value = "random")]
        thinning: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Carry vertex attributes to coarse levels: mean, sum, min, max, mode, count or first.
        #[arg(long)]
        agg: Option<String>,
        /// Cross-level links: explicit (+N and -N), implicit (+N) or none.
        #[arg(long, default_value = "explicit")]
        links: String,
        /// Deepest level delta linked (-1: all).
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        depth: i64,
    },
    /// Levels, vertex counts, bounds and attributes of a store.
    Info {
        store: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The vertices of one level (all, or inside --bbox) as an (N, D[+k]) .npy or a
    /// PLY, or its polylines (those with a vertex inside --bbox) as a .trk, .tck or .trx.
    Read {
        store: PathBuf,
        #[arg(long, default_value_t = 0)]
        level: u64,
        /// min corner then max corner, inclusive: x0,y0,z0,x1,y1,z1.
        #[arg(long, value_delimiter = ',', value_parser = parse_f64, allow_hyphen_values = true)]
        bbox: Option<Vec<f64>>,
        /// Vertex attributes appended as float64 columns after the coordinates
        /// (for a .precomputed export: the properties shown; all by default).
        #[arg(long, value_delimiter = ',')]
        attributes: Option<Vec<String>>,
        /// .npy, .ply, .trk, .tck, .trx, or NAME.precomputed: a Neuroglancer precomputed
        /// annotation directory (points; polyline segments and graph edges as lines).
        #[arg(short, long)]
        out: PathBuf,
        /// Neuroglancer export: the most annotations a spatial-index cell shows.
        #[arg(long, default_value_t = 5000)]
        limit: usize,
    },
}

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

/// How to open a volume path. Raw layout flags apply to headerless files.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// Volume: .npy, .nii(.gz), .nrrd/.nhdr, sparse .npz, store.zarr[/group/array] (or http(s):// and s3:// URLs of one), file.h5:/dataset, or raw with --shape/--raw-dtype.
    pub path: PathBuf,
    #[command(flatten)]
    pub raw: RawArgs,
}

#[derive(Args, Debug, Clone)]
pub struct OptionalSourceArgs {
    /// Volume file (default: a generated phantom).
    pub path: Option<PathBuf>,
    #[command(flatten)]
    pub raw: RawArgs,
}

#[derive(Args, Debug, Clone)]
pub struct RawArgs {
    /// Raw file shape, e.g. 512,512,300 (axis 0 first).
    #[arg(long, value_parser = parse_shape)]
    pub shape: Option<[usize; 3]>,
    /// Raw element type: bool u8 i8 u16 i16 u32 i32 u64 i64 f32 f64. (`info` and
    /// `demo` also take it as `--dtype`; on `sample`/`slice`, `--dtype` is the output type.)
    #[arg(long, value_parser = parse_dtype)]
    pub raw_dtype: Option<DType>,
    /// Bytes before the first voxel of a raw file.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Raw axis order: C (last axis fastest) or F (first axis fastest).
    #[arg(long, value_enum, ignore_case = true, default_value_t = Order::C)]
    pub order: Order,
    /// Raw byte order: little or big.
    #[arg(long, value_parser = parse_endian, default_value = "little")]
    pub endian: Endian,
    /// Sparse volume given as PATH = (N,3) integer coordinates .npy: its (N,) values
    /// .npy (the volume's shape comes from --shape).
    #[arg(long)]
    pub values: Option<PathBuf>,
    /// OME-Zarr: the multiscale level to read (0 = full resolution), or `auto`
    /// (`slice`: the coarsest level whose voxels are no larger than the pixels;
    /// the default; other verbs read level 0).
    #[arg(long, conflicts_with = "spacing", value_parser = parse_scale_level)]
    pub scale_level: Option<ScaleLevel>,
    /// OME-Zarr: the coarsest level with voxel spacing at most this (world units).
    #[arg(long, value_parser = parse_f64)]
    pub spacing: Option<f64>,
    /// N-D arrays (time series, channels): the index of each non-spatial axis, by
    /// name (`t=3,c=1`) or by position (`3,1`). Length-1 axes default to 0.
    #[arg(long, value_parser = parse_index)]
    pub index: Option<IndexRequest>,
    /// s3:// inputs: the endpoint of an S3-compatible server (else AWS_ENDPOINT_URL or AWS).
    #[arg(long)]
    pub s3_endpoint: Option<String>,
}

/// `--scale-level N` or `--scale-level auto`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ScaleLevel {
    Auto,
    Level(usize),
}

fn parse_scale_level(s: &str) -> Result<ScaleLevel, String> {
    match s {
        "auto" => Ok(ScaleLevel::Auto),
        n => n
            .parse()
            .map(ScaleLevel::Level)
            .map_err(|_| format!("'{n}': give a level number or auto")),
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Order {
    C,
    F,
}

impl RawArgs {
    /// `info` and `demo` have no output type, so there `--dtype` names the raw type.
    pub fn with_dtype_alias(mut self, dtype: Option<DType>) -> Self {
        self.raw_dtype = self.raw_dtype.or(dtype);
        self
    }

    pub fn open_options(&self) -> anyhow::Result<voxfield::OpenOptions> {
        if let Some(values) = &self.values {
            let shape = self
                .shape
                .ok_or_else(|| anyhow::anyhow!("--values needs the volume's --shape"))?;
            anyhow::ensure!(
                self.raw_dtype.is_none(),
                "--values (sparse) and --raw-dtype (raw) exclude each other"
            );
            return Ok(voxfield::OpenOptions {
                sparse_values: Some((values.clone(), shape)),
                index: self.index.clone().unwrap_or_default(),
                ..Default::default()
            });
        }
        let raw = match (self.shape, self.raw_dtype) {
            (Some(shape), Some(dtype)) => Some(RawOptions {
                shape,
                dtype,
                offset: self.offset,
                fortran: self.order == Order::F,
                endian: self.endian,
            }),
            (None, None) => None,
            _ => anyhow::bail!(
                "a raw volume needs both --shape and --raw-dtype (--dtype on info and demo)"
            ),
        };
        let level = match (self.scale_level, self.spacing) {
            (Some(ScaleLevel::Level(l)), _) => ZarrOptions::Level(l),
            (Some(ScaleLevel::Auto), _) => ZarrOptions::FullResolution,
            (None, Some(s)) if s.is_finite() && s > 0.0 => ZarrOptions::Spacing(s),
            (None, Some(s)) => anyhow::bail!("--spacing {s} must be a positive number"),
            (None, None) => ZarrOptions::FullResolution,
        };
        Ok(voxfield::OpenOptions {
            raw,
            level,
            sparse_values: None,
            index: self.index.clone().unwrap_or_default(),
            s3_endpoint: self.s3_endpoint.clone(),
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Interpolation of a volume: nearest, linear (the default), cubic (local
    /// Catmull-Rom), or a B-spline of order 2 to 5 (spline2..spline5, or 2..5) as
    /// scipy's map_coordinates: coefficients are computed brick by brick with a
    /// halo (equal to scipy's global prefilter). Refused for models, which are
    /// evaluated directly.
    #[arg(long, value_parser = parse_method)]
    pub method: Option<Method>,
    /// Edge mode of a volume, as scipy.ndimage.map_coordinates: constant (the
    /// default), grid-constant, nearest, reflect, mirror, wrap. Refused for models.
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<Mode>,
    /// Value outside a volume (and at NaN/inf positions); default nan. Refused for models.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_f64)]
    pub cval: Option<f64>,
    /// Positions are world coordinates: mapped through the file's affine (or --affine).
    #[arg(long)]
    pub world: bool,
    /// Index→world 4×4 matrix, 16 (or 12) comma-separated numbers, row-major; implies --world.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_affine)]
    pub affine: Option<Affine>,
    /// Output dtype: f32, f64, or `source` (the volume's dtype, rounded and saturated).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Byte budget of the decoded-chunk cache for chunked sources, in MiB.
    #[arg(long, default_value_t = 512)]
    pub cache_mb: usize,
}

impl SamplingArgs {
    /// The sampling request as given: unset options are left to the field.
    pub fn options(&self) -> voxfield::FieldOptions {
        voxfield::FieldOptions {
            method: self.method,
            mode: self.mode,
            cval: self.cval,
            world: self.world,
            affine: self.affine,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct PlaneArgs {
    /// Position of output pixel (0,0) (2 numbers for a 2-D image).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_vec)]
    pub origin: Vec3OrLess,
    /// Step between neighbouring columns.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_vec)]
    pub u: Vec3OrLess,
    /// Step between neighbouring rows.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_vec)]
    pub v: Vec3OrLess,
    /// Columns,rows of the output.
    #[arg(long, value_parser = parse_size2)]
    pub size: [usize; 2],
    /// Slab thickness along the plane's unit normal (0: a plain plane).
    #[arg(long, default_value_t = 0.0, value_parser = parse_f64)]
    pub thickness: f64,
    /// Sample spacing across the slab.
    #[arg(long, default_value_t = 1.0, value_parser = parse_f64)]
    pub step: f64,
    /// How the slab is reduced: mean or max (NaN samples skipped).
    #[arg(long, value_enum, default_value_t = ReduceArg::Mean)]
    pub reduce: ReduceArg,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum CodecArg {
    Zstd,
    Blosc,
    Gzip,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReduceArg {
    Mean,
    Max,
}
impl From<ReduceArg> for Reduce {
    fn from(r: ReduceArg) -> Self {
        match r {
            ReduceArg::Mean => Reduce::Mean,
            ReduceArg::Max => Reduce::Max,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct PictureArgs {
    /// Display window LO,HI for PNG output (default: the slice's finite min,max).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_window)]
    pub window: Option<[f64; 2]>,
    #[arg(long, value_enum, default_value_t = Colormap::Gray)]
    pub colormap: Colormap,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Colormap {
    Gray,
    Viridis,
}

pub fn parse_f64(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("'{s}' is not a number"))
}

fn parse_list<const N: usize>(s: &str) -> Result<[f64; N], String> {
    let v: Vec<f64> = s.split(',').map(parse_f64).collect::<Result<_, _>>()?;
    v.try_into()
        .map_err(|v: Vec<f64>| format!("expected {N} comma-separated numbers, got {}", v.len()))
}

/// A position or step of 1 to 3 finite coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Vec3OrLess(pub Vec<f64>);

fn parse_vec(s: &str) -> Result<Vec3OrLess, String> {
    let v: Vec<f64> = s.split(',').map(parse_f64).collect::<Result<_, _>>()?;
    if !(1..=3).contains(&v.len()) {
        return Err(format!(
            "expected 2 or 3 comma-separated numbers, got {}",
            v.len()
        ));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(format!("'{s}' has a non-finite component"));
    }
    Ok(Vec3OrLess(v))
}

fn parse_index(s: &str) -> Result<IndexRequest, String> {
    IndexRequest::parse(s).map_err(|e| e.to_string())
}

fn parse_window(s: &str) -> Result<[f64; 2], String> {
    let w = parse_list::<2>(s)?;
    if !(w[0].is_finite() && w[1].is_finite() && w[0] < w[1]) {
        return Err(format!(
            "window '{s}' must be two finite numbers LO,HI with LO < HI"
        ));
    }
    Ok(w)
}

fn parse_counts<const N: usize>(s: &str) -> Result<[usize; N], String> {
    let v: Vec<usize> = s
        .split(',')
        .map(|t| match t.trim().parse::<i64>() {
            Ok(n) if n > 0 => Ok(n as usize),
            Ok(n) => Err(format!("'{n}' must be positive")),
            Err(_) => Err(format!("'{t}' is not a whole number")),
        })
        .collect::<Result<_, _>>()?;
    v.try_into()
        .map_err(|v: Vec<usize>| format!("expected {N} comma-separated counts, got {}", v.len()))
}

fn parse_loss(s: &str) -> Result<voxfield::neural::Loss, String> {
    s.parse().map_err(|e: voxfield::Error| e.to_string())
}
fn parse_shape(s: &str) -> Result<[usize; 3], String> {
    parse_counts::<3>(s)
}
fn parse_size2(s: &str) -> Result<[usize; 2], String> {
    parse_counts::<2>(s)
}
fn parse_dtype(s: &str) -> Result<DType, String> {
    s.parse().map_err(|e: voxfield::Error| e.to_string())
}
fn parse_endian(s: &str) -> Result<Endian, String> {
    s.parse().map_err(|e: voxfield::Error| e.to_string())
}
fn parse_method(s: &str) -> Result<Method, String> {
    s.parse().map_err(|e: voxfield::Error| e.to_string())
}
fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse().map_err(|e: voxfield::Error| e.to_string())
}
fn parse_affine(s: &str) -> Result<Affine, String> {
    Affine::parse(s).map_err(|e| e.to_string())
}

/// `voxfield compress SRC -o OUT`'s options.
#[derive(Args, Debug)]
pub struct CompressArgs {
    /// Volume (any `voxfield info` opens) or RBF model (.vxr, with --shape).
    /// Required; checked after parsing because `meta-train` takes none (clap's
    /// subcommand_negates_reqs did not lift a positional's requirement here).
    pub path: Option<PathBuf>,
    #[command(flatten)]
    pub raw: RawArgs,
    /// Model file to write (required).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Choose the network so the model file is at most native bytes / R (the
    /// source's shape × dtype size); explicit --log2-table/--levels/--width replace
    /// the sizes it picks, and the bound stays (a network that cannot fit is refused).
    #[arg(long, value_parser = parse_f64)]
    pub ratio: Option<f64>,
    /// Passes over every voxel.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Stop once an epoch reaches this PSNR (dB, estimated from the training loss).
    #[arg(long, value_parser = parse_f64)]
    pub target_psnr: Option<f64>,
    /// Stop after this many seconds.
    #[arg(long, value_parser = parse_f64)]
    pub time_limit: Option<f64>,
    /// log2 of the hash table size per level (default 11; model size grows with it).
    #[arg(long)]
    pub log2_table: Option<u32>,
    /// Encoding levels (default 16).
    #[arg(long)]
    pub levels: Option<usize>,
    /// MLP width, 2 hidden layers (default 64).
    #[arg(long)]
    pub width: Option<usize>,
    /// Hash-table storage: 2–8 quantise every entry in steps that cover the
    /// largest with 2^(bits−1) − 1 codes, zstd-coded; 16 stores f16. With
    /// --ratio: the finest step (down to 8 bits') whose file fits.
    #[arg(long, default_value_t = 6)]
    pub bits: u32,
    /// Epochs of MLP-only training on the quantised tables, after the others.
    #[arg(long, default_value_t = 1)]
    pub finetune_epochs: usize,
    /// Training objective: l2 (mean squared error, what PSNR measures) or l1
    /// (mean absolute error).
    #[arg(long, default_value = "l2", value_parser = parse_loss)]
    pub loss: voxfield::neural::Loss,
    /// Samples per Adam step (default 65536, or fewer on small volumes so an
    /// epoch takes at least 64 steps; never below 256).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Memory for training samples, in MiB (16 bytes per voxel). A volume that
    /// needs more is read in several passes per epoch, each a random share of
    /// every voxel, so batches stay uniform over the volume.
    #[arg(long, default_value_t = 1024)]
    pub memory_mb: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Guarantee the same model bytes for the same seed and options. Training
    /// is reproducible for any thread count (gradients are summed in a fixed
    /// order); this flag refuses what is not: stopping on --time-limit.
    #[arg(long)]
    pub deterministic: bool,
    /// Start from this initialisation (from `voxfield compress meta-train`); its
    /// network shape is used.
    #[arg(long)]
    pub init: Option<PathBuf>,
}

/// `voxfield compress`'s subcommands.
#[derive(Subcommand, Debug)]
pub enum CompressCommand {
    /// Reptile meta-learning of an initialisation for --init over volumes of one
    /// kind (random 32³ bricks of them).
    #[command(name = "meta-train")]
    MetaTrain {
        /// Volumes to learn from (opened as `voxfield info` opens them).
        #[arg(required = true)]
        volumes: Vec<PathBuf>,
        /// Initialisation file to write (.vxn).
        #[arg(short, long)]
        out: PathBuf,
        /// Adam steps on one brick per outer step (K).
        #[arg(long, default_value_t = 16)]
        inner_steps: usize,
        /// Outer steps (M).
        #[arg(long, default_value_t = 200)]
        meta_steps: usize,
        /// Outer step size at the start, decaying linearly to 0.
        #[arg(long, default_value_t = 1.0)]
        meta_lr: f32,
        #[arg(long)]
        log2_table: Option<u32>,
        #[arg(long)]
        levels: Option<usize>,
        #[arg(long)]
        width: Option<usize>,
        /// Samples per inner Adam step.
        #[arg(long, default_value_t = 4096)]
        batch: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        threads: Option<usize>,
    },
}

//! Flags shared by the verbs: how a path is opened, how a field is sampled, planes, pictures.

use std::path::PathBuf;

use super::parse::{
    parse_affine, parse_dtype, parse_endian, parse_f64, parse_index, parse_method, parse_mode,
    parse_shape, parse_size2, parse_vec, parse_window, Vec3OrLess,
};
use clap::{Args, ValueEnum};
use voxfield::ZarrOptions;
use voxfield::{Affine, DType, Endian, IndexRequest};
use voxfield::{Method, Mode, Reduce};
use voxfield_io::RawOptions;

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

pub(crate) fn parse_scale_level(s: &str) -> Result<ScaleLevel, String> {
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
    /// A path opened as it is: no raw layout, level, index or endpoint.
    pub fn plain() -> Self {
        RawArgs {
            shape: None,
            raw_dtype: None,
            offset: 0,
            order: Order::C,
            endian: Endian::Little,
            values: None,
            scale_level: None,
            spacing: None,
            index: None,
            s3_endpoint: None,
        }
    }

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
    /// gray (the default), viridis, magma, inferno, plasma or cividis (matplotlib's
    /// tables), for PNG output.
    #[arg(long, value_parser = parse_colormap)]
    pub colormap: Option<Colormap>,
}

impl PictureArgs {
    /// Refuses `--window`/`--colormap` for an output that is not a PNG picture:
    /// an `.npy` or `.zarr` holds the values themselves.
    pub fn check_for(&self, out: &std::path::Path) -> Result<(), String> {
        let given = [
            ("--window", self.window.is_some()),
            ("--colormap", self.colormap.is_some()),
        ];
        let is_png = out
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        match given.iter().find(|(_, g)| *g) {
            Some((flag, _)) if !is_png => Err(format!(
                "{flag} makes PNG pictures; {} holds the values themselves",
                out.display()
            )),
            _ => Ok(()),
        }
    }

    pub fn colormap(&self) -> Colormap {
        self.colormap.unwrap_or(Colormap::Gray)
    }
}

pub use voxfield::render::Colormap;

fn parse_colormap(s: &str) -> Result<Colormap, String> {
    s.parse().map_err(|e: voxfield::Error| e.to_string())
}

//! What `sample` and `slice` read: the field the facade resolves for a path, or a
//! coarser level of a multiscale image chosen for the output's pixels; output dtypes.

use std::path::Path;

use anyhow::{bail, Result};
use voxfield::ChunkCache;
use voxfield::Plane;
use voxfield::{DType, Field, VolumeSource};

use crate::args::{RawArgs, SamplingArgs};
use crate::points;

/// What `sample` and `slice` read: whatever the path is (a volume, a neural
/// model, an RBF model: the facade decides), or a coarser level of a multiscale
/// image chosen for the output's pixel spacing.
pub(crate) enum Source {
    Opened(voxfield::Source),
    /// A level other than 0; positions in level-0 index space are mapped by
    /// `index_to_level` (the level's index→level-0-index affine), world ones by
    /// the level's own affine (None).
    Level {
        src: Box<dyn VolumeSource>,
        index_to_level: Option<voxfield::Affine>,
    },
}

impl Source {
    pub(crate) fn open(path: &Path, raw: &RawArgs) -> Result<Source> {
        let src = voxfield::Source::open(path, &raw.open_options()?)?;
        if let Some(v) = src.volume() {
            for note in &v.info().notes {
                eprintln!("voxfield: note: {note}");
            }
        }
        Ok(Source::Opened(src))
    }

    /// Prints what the source says after reading (e.g. that every chunk of a
    /// remote store was missing, so every value is the fill value).
    pub(crate) fn warn_after_reading(&self) {
        let warnings = match self {
            Source::Opened(s) => s.volume().map(|v| v.read_warnings()).unwrap_or_default(),
            Source::Level { src, .. } => src.read_warnings(),
        };
        for w in warnings {
            eprintln!("voxfield: warning: {w}");
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Source::Opened(src) => src.kind(),
            Source::Level { .. } => "volume",
        }
    }

    pub(crate) fn is_rbf(&self) -> bool {
        matches!(self, Source::Opened(voxfield::Source::Rbf { .. }))
    }

    /// The field to sample, as the facade resolves it: options that do not
    /// apply to this kind of field are refused there.
    pub(crate) fn field(&self, s: &SamplingArgs) -> Result<Box<dyn Field + '_>> {
        let cache = ChunkCache::new(s.cache_mb.saturating_mul(1 << 20));
        let opts = s.options();
        Ok(match self {
            Source::Opened(src) => src.field(&opts, &cache, 0)?,
            // Positions are level-0 indices (mapped to this level's) or world ones.
            Source::Level {
                src,
                index_to_level,
            } => voxfield::field(
                src.as_ref(),
                &voxfield::FieldOptions {
                    world: true,
                    affine: *index_to_level,
                    ..opts
                },
                &cache,
            )?,
        })
    }

    /// How many coordinates a position takes (3, or 2 and 1 for lower-dimensional
    /// images and models).
    pub(crate) fn dims(&self) -> usize {
        match self {
            Source::Opened(src) => src.dims(),
            Source::Level { src, .. } => src.info().axes.spatial_dims(),
        }
    }

    /// Positions of `dims()` coordinates as 3-D ones: an image's padded view axes
    /// come first; a model reads its leading coordinates.
    pub(crate) fn lift(&self, pts: &[f64]) -> Vec<f64> {
        let d = self.dims();
        if d == 3 {
            return pts.to_vec();
        }
        if !self.is_rbf() {
            return voxfield::lift_points(d, pts);
        }
        pts.chunks_exact(d)
            .flat_map(|p| (0..3).map(move |a| p.get(a).copied().unwrap_or(0.0)))
            .collect()
    }

    /// Points of `dims()` columns, as 3-D positions (a model also takes 3 columns
    /// and reads the leading ones).
    pub(crate) fn load_points(&self, path: &Path) -> Result<Vec<f64>> {
        let t = points::load_table(path)?;
        let d = self.dims();
        if t.rows() > 0 && t.cols != d && !(self.is_rbf() && t.cols == 3) {
            bail!(
                "{}: points must have shape (N, {d}) for this {d}-D source, got {} columns",
                path.display(),
                t.cols
            );
        }
        Ok(if t.cols == 3 {
            t.data
        } else {
            self.lift(&t.data)
        })
    }

    /// A plane or step vector given with `dims()` components, as 3-D.
    pub(crate) fn lift_vec(&self, what: &str, v: &[f64]) -> Result<[f64; 3]> {
        let d = self.dims();
        if self.is_rbf() && v.len() == 3 {
            return Ok([v[0], v[1], v[2]]);
        }
        if v.len() != d {
            bail!(
                "--{what} has {} components; this {}-D source takes {d}",
                v.len(),
                d
            );
        }
        let l = self.lift(v);
        Ok([l[0], l[1], l[2]])
    }

    pub(crate) fn output_dtype(&self, s: &SamplingArgs) -> Result<DType> {
        match self {
            Source::Opened(voxfield::Source::Rbf { .. }) => match s.dtype.as_str() {
                "f32" | "float32" => Ok(DType::F32),
                "f64" | "float64" => Ok(DType::F64),
                o => bail!("--dtype '{o}': an RBF model is written as f32 or f64"),
            },
            Source::Opened(voxfield::Source::Volume(src)) | Source::Level { src, .. } => {
                // A model fills nothing: only a volume's NaN fill needs a float output.
                let fills = src.model_kind().is_none();
                output_dtype(s, src.as_ref(), fills)
            }
        }
    }
}

/// For a multiscale OME-Zarr image and no pinned level: the coarsest level whose
/// voxel spacing is at most the plane's pixel spacing (`--scale-level auto`), said
/// on stderr. Other sources are returned as they are.
pub(crate) fn auto_level(
    source: Source,
    path: &Path,
    raw: &RawArgs,
    plane: &Plane,
    s: &SamplingArgs,
) -> Result<Source> {
    if s.affine.is_some() {
        return Ok(source);
    }
    auto_level_for(source, path, raw, [plane.u, plane.v], s.world)
}

/// [`auto_level`] for pixels stepping by `steps` (level-0 index vectors, or
/// world ones when `world`).
pub(crate) fn auto_level_for(
    source: Source,
    path: &Path,
    raw: &RawArgs,
    steps: [[f64; 3]; 2],
    world: bool,
) -> Result<Source> {
    let Source::Opened(voxfield::Source::Volume(src0)) = &source else {
        return Ok(source);
    };
    let pinned =
        matches!(raw.scale_level, Some(crate::args::ScaleLevel::Level(_))) || raw.spacing.is_some();
    let multiscale = src0
        .info()
        .notes
        .iter()
        .any(|n| n.starts_with("OME-Zarr image with"));
    if pinned || !multiscale {
        return Ok(source);
    }
    let a0 = src0.info().affine.unwrap_or(voxfield::Affine::IDENTITY);
    let world_len = |v: [f64; 3]| {
        let w = if world { v } else { a0.apply_vector(v) };
        w.iter().map(|x| x * x).sum::<f64>().sqrt()
    };
    let want = world_len(steps[0]).min(world_len(steps[1]));
    let mut opts = raw.open_options()?;
    opts.level = voxfield::ZarrOptions::Spacing(want);
    let src = voxfield::open(path, &opts)?;
    let ak = src.info().affine.unwrap_or(voxfield::Affine::IDENTITY);
    if ak == a0 {
        return Ok(source);
    }
    for note in &src.info().notes {
        eprintln!("voxfield: note: {note} (auto: pixel spacing {want:.4} world units)");
    }
    let index_to_level = (!world)
        .then(|| a0.inverse().map(|inv| inv.after(&ak)))
        .transpose()?;
    Ok(Source::Level {
        src,
        index_to_level,
    })
}

/// The element type results are written in; `fills` when points outside take the fill value.
pub(crate) fn output_dtype(s: &SamplingArgs, src: &dyn VolumeSource, fills: bool) -> Result<DType> {
    let dt = match s.dtype.as_str() {
        "f32" | "float32" => DType::F32,
        "f64" | "float64" => DType::F64,
        "source" => src.info().dtype,
        o => bail!("--dtype '{o}': expected f32, f64 or source"),
    };
    if fills && !dt.is_float() && s.options().fill().is_nan() {
        bail!("--cval nan cannot be stored as {dt}: pass a number with --cval (for example --cval 0) or use --dtype f32");
    }
    Ok(dt)
}

macro_rules! with_out {
    ($dt:expr, |$O:ident| $body:expr) => {
        match $dt {
            DType::Bool => {
                type $O = bool;
                $body
            }
            DType::U8 => {
                type $O = u8;
                $body
            }
            DType::I8 => {
                type $O = i8;
                $body
            }
            DType::U16 => {
                type $O = u16;
                $body
            }
            DType::I16 => {
                type $O = i16;
                $body
            }
            DType::U32 => {
                type $O = u32;
                $body
            }
            DType::I32 => {
                type $O = i32;
                $body
            }
            DType::U64 => {
                type $O = u64;
                $body
            }
            DType::I64 => {
                type $O = i64;
                $body
            }
            DType::F32 => {
                type $O = f32;
                $body
            }
            DType::F64 => {
                type $O = f64;
                $body
            }
        }
    };
}
pub(crate) use with_out;

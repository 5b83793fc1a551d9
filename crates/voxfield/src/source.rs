//! The one door: what a path is, and which field samples it with which options.
//!
//! Every front end (the CLI, Python) resolves a path with [`Source::open`] and
//! asks the source for its field with [`FieldOptions`]. An option that does not
//! apply to that kind of field is refused with a message naming the option and
//! the field kind, never ignored, so the same request gives the same answer (or
//! the same refusal) through every entry point.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use voxfield_core::{Affine, ChunkCache, Error, Field, Result, VolumeSource};
use voxfield_rbf::{RbfField, RbfModel};
use voxfield_sample::{ChunkedField, Method, Mode, SampleOptions, SparseField, VolumeField};

use crate::OpenOptions;

/// How a field is sampled. `None` leaves a choice to the field: a volume then
/// interpolates linearly with mode `constant` and a NaN fill value. Models are
/// evaluated directly: giving them `method`, `mode` or `cval` is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FieldOptions {
    pub method: Option<Method>,
    pub mode: Option<Mode>,
    pub cval: Option<f64>,
    /// Positions are world coordinates, mapped through the inverse of `affine`
    /// (or of the source's own affine).
    pub world: bool,
    /// Index→world map replacing the source's own; implies `world`.
    pub affine: Option<Affine>,
}

impl FieldOptions {
    /// Positions are world coordinates (`world`, or an explicit affine).
    pub fn is_world(&self) -> bool {
        self.world || self.affine.is_some()
    }

    /// The interpolation a volume applies (defaults filled in).
    pub fn sample_options(&self) -> SampleOptions {
        SampleOptions {
            method: self.method.unwrap_or_default(),
            mode: self.mode.unwrap_or_default(),
            cval: self.cval.unwrap_or(f64::NAN),
        }
    }

    /// The fill value a volume's field gives outside (NaN unless given).
    pub fn fill(&self) -> f64 {
        self.cval.unwrap_or(f64::NAN)
    }

    /// An error naming the first interpolation option given to a field that is
    /// evaluated directly (`kind`, e.g. "RBF model"), saying why it cannot apply.
    fn refuse_interpolation(&self, what: &Path, kind: &str, why: &str) -> Result<()> {
        let given = [
            ("method", self.method.is_some()),
            ("mode", self.mode.is_some()),
            ("cval", self.cval.is_some()),
        ];
        match given.iter().find(|(_, g)| *g) {
            Some((name, _)) => Err(Error::invalid(format!(
                "{}: the option {name} does not apply to this {kind}: {why} \
                 (method, mode and cval are for volumes)",
                what.display()
            ))),
            None => Ok(()),
        }
    }

    /// The map from world positions to the source's index space, or None when
    /// positions are already indices. World positions need an affine.
    fn index_map(&self, what: &Path, own: Option<Affine>) -> Result<Option<Affine>> {
        if !self.is_world() {
            return Ok(None);
        }
        match self.affine.or(own) {
            Some(a) => Ok(Some(a.inverse()?)),
            None => Err(Error::invalid(format!(
                "{}: world coordinates were asked for, but it has no affine (its positions \
                 are voxel indices): give an affine, or sample in index space",
                what.display()
            ))),
        }
    }

    /// What was applied to a field of `kind`, for run summaries (e.g.
    /// "spline3, mode wrap, world"): only the options the field used.
    pub fn describe(&self, kind: &str) -> String {
        let mut parts = Vec::new();
        if kind == "volume" {
            let o = self.sample_options();
            parts.push(o.method.to_string());
            parts.push(format!("mode {}", o.mode));
            if o.cval.is_nan() {
                parts.push("cval nan".into());
            } else {
                parts.push(format!("cval {}", o.cval));
            }
        } else {
            parts.push("evaluated directly".into());
        }
        if self.affine.is_some() {
            parts.push("world (given affine)".into());
        } else if self.world {
            parts.push("world".into());
        }
        parts.join(", ")
    }
}

/// Whether `path` names an RBF model (`.vxr` by name, or its magic).
pub fn is_rbf_model(path: &Path) -> bool {
    has_extension_or_magic(path, "vxr", voxfield_rbf::file::is_vxr)
}

/// Whether `path` names a neural model (`.vxn` by name, or its magic).
pub fn is_neural_model(path: &Path) -> bool {
    has_extension_or_magic(path, "vxn", |head| {
        head.len() >= 8 && head[..8] == voxfield_neural::model::MAGIC
    })
}

fn has_extension_or_magic(path: &Path, ext: &str, magic: impl Fn(&[u8]) -> bool) -> bool {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
    {
        return true;
    }
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false; // never open a FIFO or device just to look at it
    }
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && magic(&head)
}

/// Whatever a path is: stored voxels (every volume format, local or remote), a
/// neural model (a volume whose field is its network) or an RBF model.
pub enum Source {
    Volume(Box<dyn VolumeSource>),
    Rbf { model: Box<RbfModel>, path: PathBuf },
}

impl Source {
    /// Opens any path or URL: RBF models (`.vxr`), neural models (`.vxn`) and
    /// every volume `crate::open` reads. Options that do not apply to a model
    /// file (raw layout, scale level, index, sparse values) are refused.
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<Source> {
        let path = crate::local_path(path);
        let path = path.as_ref();
        if opts.raw.is_none() && is_rbf_model(path) {
            refuse_open_options(path, "an RBF model", opts)?;
            return Ok(Source::Rbf {
                model: Box::new(RbfModel::load(path)?),
                path: path.to_path_buf(),
            });
        }
        if opts.raw.is_none() && is_neural_model(path) {
            refuse_open_options(path, "a neural model", opts)?;
            return Ok(Source::Volume(crate::open_neural(path)?));
        }
        Ok(Source::Volume(crate::open(path, opts)?))
    }

    /// "volume", "neural model" or "RBF model".
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Volume(src) => src.model_kind().unwrap_or("volume"),
            Source::Rbf { .. } => "RBF model",
        }
    }

    /// The volume, when the source has voxels (stored, or a neural model's decoded ones).
    pub fn volume(&self) -> Option<&dyn VolumeSource> {
        match self {
            Source::Volume(src) => Some(src.as_ref()),
            Source::Rbf { .. } => None,
        }
    }

    /// How many coordinates a position takes (1-3).
    pub fn dims(&self) -> usize {
        match self {
            Source::Volume(src) => src.info().axes.spatial_dims(),
            Source::Rbf { model, .. } => model.info.dim,
        }
    }

    /// The field that samples this source with `opts` (see [`field_of_source`]);
    /// an RBF model is evaluated exactly in its own coordinates.
    pub fn field(
        &self,
        opts: &FieldOptions,
        cache: &Arc<ChunkCache>,
        source_id: u64,
    ) -> Result<Box<dyn Field + '_>> {
        match self {
            Source::Volume(src) => field_of_source(src.as_ref(), opts, cache, source_id),
            Source::Rbf { model, path } => {
                opts.refuse_interpolation(path, "RBF model", RBF_WHY)?;
                if opts.is_world() {
                    let name = if opts.affine.is_some() {
                        "affine"
                    } else {
                        "world"
                    };
                    return Err(Error::invalid(format!(
                        "{}: the option {name} does not apply to this RBF model: it is \
                         evaluated in its own coordinates (those of its samples)",
                        path.display()
                    )));
                }
                Ok(Box::new(RbfField { model, channel: 0 }))
            }
        }
    }
}

const RBF_WHY: &str = "it is evaluated exactly, in its samples' coordinates";
const NEURAL_WHY: &str = "its network is evaluated directly at each position";

fn refuse_open_options(path: &Path, kind: &str, opts: &OpenOptions) -> Result<()> {
    let given = [
        ("index", !opts.index.is_empty()),
        (
            "scale level",
            opts.level != crate::ZarrOptions::FullResolution,
        ),
        ("sparse values", opts.sparse_values.is_some()),
    ];
    match given.iter().find(|(_, g)| *g) {
        Some((name, _)) => Err(Error::format(
            path,
            format!("is {kind}: the option {name} does not apply to it"),
        )),
        None => Ok(()),
    }
}

/// The field that samples `src`: a model's own field (neural models: the network
/// evaluated directly; interpolation options refused), zero-copy for memory-mapped
/// sources, chunk-aware (decoding through `cache`, keeping `source_id` across
/// requests) for chunked ones. World positions map through the inverse of the
/// given affine or the source's own; without either they are refused.
pub fn field_of_source<'a>(
    src: &'a dyn VolumeSource,
    opts: &FieldOptions,
    cache: &Arc<ChunkCache>,
    source_id: u64,
) -> Result<Box<dyn Field + 'a>> {
    let info = src.info();
    let what = info.path.as_path();
    if let Some(kind) = src.model_kind() {
        opts.refuse_interpolation(what, kind, NEURAL_WHY)?;
        let to_index = opts.index_map(what, info.affine)?;
        return src
            .model_field(to_index)
            .ok_or_else(|| Error::format(what, format!("is a {kind} without a field")));
    }
    // Chunked sampling numbers chunks linearly; a grid past usize (a forged
    // shape) would wrap those numbers onto the wrong chunks.
    let grid = voxfield_core::chunk_grid(info);
    if src.contiguous().is_none()
        && grid
            .iter()
            .try_fold(1usize, |a, &g| a.checked_mul(g))
            .is_none_or(|n| n == usize::MAX)
    {
        return Err(Error::format(
            &info.path,
            format!(
                "a chunk grid of {grid:?} chunks is too large to sample (more than 2^64 chunks)"
            ),
        ));
    }
    let to_index = opts.index_map(what, info.affine)?;
    let sample = opts.sample_options();
    if let Method::Spline {
        prefilter: true, ..
    } = sample.method
    {
        return Ok(Box::new(ChunkedField::spline(
            src,
            sample,
            to_index,
            cache.clone(),
        )?));
    }
    if let Some(voxels) = src.sparse() {
        return Ok(Box::new(SparseField::new(
            voxels?,
            info.shape,
            sample,
            info.value_scale,
            to_index,
        )));
    }
    Ok(match src.contiguous() {
        Some(view) => Box::new(VolumeField::new(view, sample, info.value_scale, to_index)),
        None => Box::new(
            ChunkedField::new(src, sample, to_index, cache.clone()).with_source_id(source_id),
        ),
    })
}

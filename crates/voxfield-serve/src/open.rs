//! What a path serves, decided by the facade's one door: stored voxels (every
//! format, local or remote, N-D through an index), a neural model (its values
//! as float32, decoded by its row decoder) or a 3-D RBF model on a grid.

use std::path::Path;
use std::sync::Arc;

use voxfield::rbf::{RbfModel, DEFAULT_GRID_NODES};
use voxfield::{ChunkCache, Error, OpenOptions, Result, Source, VolumeSource};

use crate::field::{Base, ServedField};

/// How to open one field.
#[derive(Clone, Debug, Default)]
pub struct FieldRequest {
    pub open: OpenOptions,
    /// The grid an RBF model is sampled on (over its samples' bounding box;
    /// None: 128 nodes along the box's longest side, as `render` samples it);
    /// refused for other sources, which have their own grid.
    pub shape: Option<[usize; 3]>,
}

/// A field opened and named, ready to serve.
pub struct FieldSource {
    pub name: String,
    pub kind: &'static str,
    path: std::path::PathBuf,
    base: Base,
    stored: Vec<Box<dyn VolumeSource>>,
}

impl FieldSource {
    /// The field with its pyramid in chunks of `chunk` voxels, computed
    /// levels cached in `cache`.
    pub fn serve(self, chunk: usize, cache: Arc<ChunkCache>) -> Result<ServedField> {
        ServedField::new(
            self.name,
            self.kind,
            &self.path,
            self.base,
            self.stored,
            chunk,
            cache,
        )
    }

    /// What the source said when it was opened (e.g. a gzip file decompressed).
    pub fn notes(&self) -> Vec<String> {
        match &self.base {
            Base::Volume(src) => src.info().notes.clone(),
            Base::Rbf { .. } => vec![],
        }
    }
}

/// Opens `path` as the field `name` (see [`FieldRequest`]).
pub fn open_field(name: String, path: &Path, req: &FieldRequest) -> Result<FieldSource> {
    crate::check_name(&name)?;
    let source = Source::open(path, &req.open)?;
    let kind = source.kind();
    let shape_refused = || {
        Error::format(
            path,
            format!("is a {kind} with its own grid: a shape applies to RBF models only"),
        )
    };
    let (base, stored) = match source {
        Source::Rbf { model, .. } => (rbf_base(model, path, req.shape)?, vec![]),
        Source::Volume(_) if req.shape.is_some() => return Err(shape_refused()),
        Source::Volume(src) if src.model_kind().is_some() => {
            drop(src);
            (
                Base::Volume(voxfield::open_model_values(path)?.into()),
                vec![],
            )
        }
        Source::Volume(src) => {
            let stored = voxfield::open_coarser_levels(path, &req.open, src.as_ref())?;
            (Base::Volume(src.into()), stored)
        }
    };
    Ok(FieldSource {
        name,
        kind,
        path: path.to_path_buf(),
        base,
        stored,
    })
}

/// A field from a volume already open (an in-memory array, say): stored
/// voxels, coarse levels computed.
pub fn volume_field(name: String, src: Arc<dyn VolumeSource>) -> Result<FieldSource> {
    crate::check_name(&name)?;
    if let Some(kind) = src.model_kind() {
        return Err(Error::invalid(format!(
            "field '{name}' is a {kind}: serve it by its path, so its values are the network's own"
        )));
    }
    let path = src.info().path.clone();
    Ok(FieldSource {
        name,
        kind: "volume",
        path,
        base: Base::Volume(src),
        stored: vec![],
    })
}

/// Nodes an RBF model's grid may have (sizes downstream then never overflow).
const MAX_GRID_VOXELS: u64 = 1 << 40;

/// An RBF model on the grid `shape` over its samples' bounding box.
fn rbf_base(model: Box<RbfModel>, path: &Path, shape: Option<[usize; 3]>) -> Result<Base> {
    let dim = model.dim();
    let shape = match shape {
        Some(s) => s,
        None => model
            .info
            .box_grid(DEFAULT_GRID_NODES)
            .map(|(s, _)| s)
            .ok_or_else(|| {
                Error::format(
                    path,
                    "its samples span no volume: give the grid (shape X,Y,Z)",
                )
            })?,
    };
    let voxels = shape.iter().try_fold(1u64, |p, &n| p.checked_mul(n as u64));
    if voxels.is_none_or(|v| v > MAX_GRID_VOXELS) {
        return Err(Error::format(
            path,
            format!("shape {shape:?}: a grid of more than 2^40 nodes is refused"),
        ));
    }
    if shape.contains(&0) || shape[dim..].iter().any(|&n| n != 1) {
        return Err(Error::format(
            path,
            format!("shape {shape:?}: this {dim}-D model takes {dim} non-zero sizes (then 1s)"),
        ));
    }
    let (mut lo, mut step) = ([0.0; 3], [0.0; 3]);
    for a in 0..dim {
        lo[a] = model.info.bbox_lo[a];
        let hi = model.info.bbox_hi[a];
        step[a] = if shape[a] > 1 {
            (hi - lo[a]) / (shape[a] - 1) as f64
        } else {
            0.0
        };
    }
    Ok(Base::Rbf {
        model,
        shape,
        lo,
        step,
    })
}

//! Rendering any source: which lattice (or field) a picture is made from.
//!
//! A volume renders from its voxels (read once, chunk by chunk); a neural
//! model from its voxels decoded by the coherent row decoder, or by evaluating
//! its network at every sample (`direct`); an RBF model from its field sampled
//! on a grid over its samples' bounding box. Rendering needs three spatial axes.

pub use voxfield_render::{
    other_axes, AxisView, Background, Bounds, Camera, CameraSpec, Colormap, Frame, Lattice,
    LatticeSource, Mode, Opacity, Output, Picture, Projection, Rendered, Request, Scene, Stats,
    Transfer, CELL, MAX_FRAMES, MAX_PIXELS, MAX_SIDE,
};

use voxfield_core::work::Watch;
use voxfield_core::{Affine, Error, Result, VolumeSource};
use voxfield_rbf::{RbfField, RbfModel};
use voxfield_render::{FieldLattice, VolumeLattice};

use crate::Source;

/// How a source becomes a scene.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SceneOptions {
    /// The camera works in world coordinates (through the source's affine).
    pub world: bool,
    /// Evaluate the field at every sample instead of reading a lattice first.
    pub direct: bool,
    /// Bytes the lattice may hold (None: 4 GiB). Refused with `direct`, which
    /// builds no lattice.
    pub memory_budget: Option<usize>,
    /// Grid points along the longest side of an RBF model's box (None: 128).
    /// Refused for other sources.
    pub rbf_grid: Option<usize>,
}

impl SceneOptions {
    /// Refuses the options a volume (or neural model) cannot take.
    fn check_volume(&self, what: &std::path::Path) -> Result<()> {
        if self.rbf_grid.is_some() {
            return Err(Error::format(
                what,
                "the option rbf grid does not apply to a volume: it samples an RBF model's box",
            ));
        }
        self.budget().map(drop)
    }

    /// The lattice's byte budget; an error when no lattice is built.
    fn budget(&self) -> Result<usize> {
        match (self.direct, self.memory_budget) {
            (true, Some(_)) => Err(Error::invalid(
                "the option memory budget does not apply to direct evaluation: it builds no lattice",
            )),
            (_, b) => Ok(b.unwrap_or(4 << 30)),
        }
    }
}

/// The spacing of the pixels `spec` makes of a volume described by `info`
/// (at its centre, in index units, or world units with `world`): what a
/// multiscale image's level is chosen by.
pub fn pixel_spacing(
    info: &voxfield_core::VolumeInfo,
    spec: &CameraSpec,
    world: bool,
) -> Result<f64> {
    let corners = voxfield_render::Bounds { shape: info.shape }.corners();
    let corners = match (world, info.affine) {
        (true, Some(m)) => corners.map(|p| m.apply(p)),
        _ => corners,
    };
    let exact_shape = (!world).then_some(info.shape);
    Ok(Camera::frame(spec, &corners, exact_shape)?.pixel_spacing(&corners))
}

/// A scene and a sentence saying what it samples (for run summaries).
pub struct Prepared<'a> {
    pub scene: Scene<'a>,
    pub how: String,
}

/// The map from a source's world coordinates to its indices (its affine's
/// inverse); an error naming the source when it has no affine.
pub fn world_to_index(src: &dyn VolumeSource) -> Result<Affine> {
    let info = src.info();
    match info.affine {
        Some(a) => a.inverse(),
        None => Err(Error::format(
            &info.path,
            "world coordinates were asked for, but it has no affine (its positions are voxel indices)",
        )),
    }
}

/// The scene of a volume (or a neural model) whose camera space maps to its
/// index space by `to_index` (None: the camera works in index space).
pub fn volume_scene<'a>(
    src: &'a dyn VolumeSource,
    to_index: Option<Affine>,
    opts: &SceneOptions,
    watch: &Watch,
) -> Result<Prepared<'a>> {
    let info = src.info();
    opts.check_volume(&info.path)?;
    let dims = info.axes.spatial_dims();
    if dims != 3 {
        return Err(Error::format(
            &info.path,
            format!("render needs 3 spatial axes; this source has {dims} (slice a 2-D image with `voxfield slice`)"),
        ));
    }
    let shape = info.shape;
    if opts.direct {
        let (field, how) = match src.model_field(None) {
            Some(f) => (
                f,
                format!(
                    "{} evaluated directly at every sample",
                    src.model_kind().unwrap_or("model")
                ),
            ),
            None => (
                crate::field(
                    src,
                    &crate::FieldOptions::default(),
                    &crate::ChunkCache::new(crate::ChunkCache::DEFAULT_BYTES),
                )?,
                "voxels interpolated (linear) at every sample, through a chunk cache".to_string(),
            ),
        };
        return Ok(Prepared {
            scene: Scene::direct(field, shape, to_index, None)?,
            how,
        });
    }
    let lattice = Lattice::load(&VolumeLattice(src), opts.budget()?, watch)?;
    let mib = Lattice::bytes_for(shape).unwrap_or(0) as f64 / (1 << 20) as f64;
    let how = match src.model_kind() {
        Some(kind) => format!("{kind} decoded to voxels by its row decoder ({mib:.0} MiB lattice)"),
        None => format!("voxels read once, chunk by chunk ({mib:.0} MiB lattice)"),
    };
    Ok(Prepared {
        scene: Scene::new(lattice, to_index),
        how,
    })
}

/// Renders `req` of a volume (or a neural model) whose camera space maps to
/// its index space by `to_index`: an exact axis projection is a reduction of
/// the voxels where they lie when they are in memory (no lattice); anything
/// else goes through [`volume_scene`]. Returns the frames and what was read.
pub fn render_volume(
    src: &dyn VolumeSource,
    to_index: Option<Affine>,
    opts: &SceneOptions,
    req: &Request,
    watch: &Watch,
) -> Result<(Rendered, String)> {
    req.check()?;
    opts.check_volume(&src.info().path)?;
    let three_d = src.info().axes.spatial_dims() == 3;
    if let (None, false, true, Some(view)) = (to_index, opts.direct, three_d, req.exact_axis()) {
        if let Some((frame, range)) = voxfield_render::project_axis(src, view, req.mode, watch)? {
            let transfer = req.transfer_for(range)?;
            let how = format!("voxels reduced where they lie along {view}, no lattice");
            return Ok((
                Rendered {
                    transfer,
                    frames: vec![frame],
                },
                how,
            ));
        }
    }
    let p = volume_scene(src, to_index, opts, watch)?;
    Ok((req.render(&p.scene, watch)?, p.how))
}

/// Renders `req` of any source the facade opens (see [`render_volume`]).
pub fn render(
    source: &Source,
    opts: &SceneOptions,
    req: &Request,
    watch: &Watch,
) -> Result<(Rendered, String)> {
    match source {
        Source::Volume(src) => {
            let to_index = if opts.world {
                Some(world_to_index(src.as_ref())?)
            } else {
                None
            };
            render_volume(src.as_ref(), to_index, opts, req, watch)
        }
        Source::Rbf { model, path } => {
            req.check()?;
            let p = model_scene(model, path, opts, watch)?;
            Ok((req.render(&p.scene, watch)?, p.how))
        }
    }
}

/// An RBF model over its samples' bounding box: camera space is the model's
/// coordinates; the grid has `rbf_grid` points along the box's longest side.
pub fn model_scene<'a>(
    model: &'a RbfModel,
    path: &std::path::Path,
    opts: &SceneOptions,
    watch: &Watch,
) -> Result<Prepared<'a>> {
    let info = &model.info;
    if info.dim != 3 {
        return Err(Error::format(
            path,
            format!("render needs 3 spatial axes; this RBF model is {}-D (slice it with `voxfield slice`)", info.dim),
        ));
    }
    if opts.world {
        return Err(Error::format(
            path,
            "the option world does not apply to an RBF model: it is rendered in its own coordinates",
        ));
    }
    let grid = opts.rbf_grid.unwrap_or(voxfield_rbf::DEFAULT_GRID_NODES);
    if !(2..=4096).contains(&grid) {
        return Err(Error::invalid(format!(
            "RBF grid {}: must be 2 to 4096 points",
            grid
        )));
    }
    let lo = &info.bbox_lo;
    let (shape, h) = info
        .box_grid(grid)
        .ok_or_else(|| Error::format(path, "its samples span no volume: nothing to render"))?;
    let to_field = Affine::from_spacing_origin([h; 3], [lo[0], lo[1], lo[2]]);
    let field = RbfField { model, channel: 0 };
    let how = format!(
        "RBF model sampled on a {}x{}x{} grid over its samples' box",
        shape[0], shape[1], shape[2]
    );
    if opts.direct {
        let scene = Scene::direct(Box::new(field), shape, None, Some(to_field))?;
        return Ok(Prepared {
            scene,
            how: "RBF model evaluated directly at every sample".into(),
        });
    }
    let src = FieldLattice {
        field: &field,
        shape,
        to_field,
    };
    let lattice = Lattice::load(&src, opts.budget()?, watch)?;
    // The grid is isotropic: its index space is the model space scaled, so
    // the camera works there and an axis view is the exact grid.
    Ok(Prepared {
        scene: Scene::new(lattice, None),
        how,
    })
}

//! `voxfield.render`: pictures of a volume, a neural model or an RBF model,
//! through the facade's render request (the same checks and words as the CLI).

use std::path::PathBuf;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use voxfield::render::{self, CameraSpec, Frame, Mode, Output, Rendered, Request, SceneOptions};

use crate::{parse, py_err, rbf::Model, Volume};

/// What a render request leaves the caller: pixel bytes, the array's shape and dtype.
type Pixels<'py> = (Bound<'py, PyBytes>, Vec<usize>, &'static str);

#[pyfunction]
#[pyo3(signature = (target, mode="dvr", iso=None, view="axis0", azimuth=0.0, elevation=0.0, roll=0.0,
    projection="ortho", fov=30.0, zoom=1.0, size=None, world=false, window=None, colormap=None,
    opacity=None, step=1.0, shading=false, background=None, frames=1, direct=false, memory_mb=None,
    rbf_grid=None, as_float=false, to_index=None))]
#[allow(clippy::too_many_arguments)]
pub fn render_field<'py>(
    py: Python<'py>,
    target: &Bound<'py, PyAny>,
    mode: &str,
    iso: Option<f64>,
    view: &str,
    azimuth: f64,
    elevation: f64,
    roll: f64,
    projection: &str,
    fov: f64,
    zoom: f64,
    size: Option<[usize; 2]>,
    world: bool,
    window: Option<[f64; 2]>,
    colormap: Option<String>,
    opacity: Option<String>,
    step: f64,
    shading: bool,
    background: Option<String>,
    frames: usize,
    direct: bool,
    memory_mb: Option<usize>,
    rbf_grid: Option<usize>,
    as_float: bool,
    to_index: Option<Vec<f64>>,
) -> PyResult<Pixels<'py>> {
    let req = Request {
        mode: Mode::parse(mode, iso).map_err(py_err)?,
        camera: camera(
            view,
            [azimuth, elevation, roll],
            projection,
            fov,
            zoom,
            size,
        )?,
        window,
        colormap: colormap.as_deref().map(parse).transpose()?,
        opacity: opacity.as_deref().map(parse).transpose()?,
        step,
        shading,
        frames,
        background: background.as_deref().map(parse).transpose()?,
        output: if as_float {
            Output::Values
        } else {
            Output::Picture
        },
    };
    req.check().map_err(py_err)?;
    let opts = SceneOptions {
        world,
        direct,
        memory_budget: memory_mb.map(|m| m.saturating_mul(1 << 20)),
        rbf_grid,
    };
    let rendered = if let Ok(v) = target.extract::<PyRef<'_, Volume>>() {
        let v: &Volume = &v;
        crate::work::interruptible(py, |w| {
            let to = match &to_index {
                Some(m) => Some(crate::affine_of(m)?),
                None if world => Some(render::world_to_index(v.src.as_ref())?),
                None => None,
            };
            Ok(render::render_volume(v.src.as_ref(), to, &opts, &req, w)?.0)
        })?
    } else if let Ok(m) = target.extract::<PyRef<'_, Model>>() {
        let m: &Model = &m;
        crate::work::interruptible(py, |w| {
            let p = render::model_scene(&m.inner, "RBF model".as_ref(), &opts, w)?;
            req.render(&p.scene, w)
        })?
    } else if let Ok(path) = target.extract::<PathBuf>() {
        crate::work::interruptible(py, |w| {
            let src = voxfield::Source::open(&path, &Default::default())?;
            Ok(render::render(&src, &opts, &req, w)?.0)
        })?
    } else {
        return Err(PyTypeError::new_err(
            "render takes a path, a voxfield.Volume or an RBFInterpolator",
        ));
    };
    Ok(pixels(py, &rendered, &req))
}

/// The camera the keywords describe (angles: azimuth, elevation, roll).
fn camera(
    view: &str,
    [azimuth, elevation, roll]: [f64; 3],
    projection: &str,
    fov: f64,
    zoom: f64,
    size: Option<[usize; 2]>,
) -> PyResult<CameraSpec> {
    Ok(CameraSpec {
        view: parse(view)?,
        azimuth,
        elevation,
        roll,
        projection: parse(projection)?,
        fov,
        zoom,
        size,
    })
}

/// The pixel spacing a render request makes of `vol` (level-0 index units,
/// or world units with `world`): the Python layer picks a multiscale level by it.
#[pyfunction]
#[pyo3(signature = (vol, view="axis0", azimuth=0.0, elevation=0.0, roll=0.0, projection="ortho", fov=30.0,
    zoom=1.0, size=None, world=false))]
#[allow(clippy::too_many_arguments)]
pub fn render_pixel_spacing(
    vol: PyRef<'_, Volume>,
    view: &str,
    azimuth: f64,
    elevation: f64,
    roll: f64,
    projection: &str,
    fov: f64,
    zoom: f64,
    size: Option<[usize; 2]>,
    world: bool,
) -> PyResult<f64> {
    let spec = camera(
        view,
        [azimuth, elevation, roll],
        projection,
        fov,
        zoom,
        size,
    )?;
    render::pixel_spacing(vol.src.info(), &spec, world).map_err(py_err)
}

/// The frames as float32 (what `.npy` holds) or 8-bit pixels (what `.png` holds).
fn pixels<'py>(py: Python<'py>, r: &Rendered, req: &Request) -> Pixels<'py> {
    let f: &Frame = &r.frames[0];
    let mut shape = vec![f.height, f.width];
    let mut bytes = Vec::new();
    let dtype = if req.output == Output::Values {
        if f.channels > 1 {
            shape.push(f.channels);
        }
        for fr in &r.frames {
            bytes.extend(fr.pixels.iter().flat_map(|v| v.to_ne_bytes()));
        }
        "float32"
    } else {
        let pic = req.picture(&r.transfer);
        let mut channels = 1;
        for fr in &r.frames {
            let (ct, px) = pic.pixels(fr);
            channels = ct.samples();
            bytes.extend(px);
        }
        if channels > 1 {
            shape.push(channels);
        }
        "uint8"
    };
    if r.frames.len() > 1 {
        shape.insert(0, r.frames.len());
    }
    (PyBytes::new(py, &bytes), shape, dtype)
}

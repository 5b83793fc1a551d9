//! Scattered-data RBF models for `voxfield.RBFInterpolator`: fit, evaluate,
//! grids, gradients, the `.vxr` file. Buffers come from the Python layer as
//! addresses of C-contiguous float64 arrays it keeps alive for the call.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use voxfield::rbf::{Duplicates, FitOptions, Ramp, RbfModel};

use crate::py_err;

/// A fitted subdivided RBF interpolant.
#[pyclass(frozen, module = "voxfield._voxfield")]
pub struct Model {
    inner: RbfModel,
}

/// # Safety
/// `addr` must be a live, aligned buffer of at least `len` f64 values.
pub(crate) unsafe fn f64s<'a>(addr: usize, len: usize) -> &'a [f64] {
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(addr as *const f64, len) }
}

/// # Safety
/// As [`f64s`], and nothing else may use the buffer during the call.
pub(crate) unsafe fn f64s_mut<'a>(addr: usize, len: usize) -> &'a mut [f64] {
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts_mut(addr as *mut f64, len) }
}

/// Fits (n, dim) points and (n, channels) values with the GIL released.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn fit_rbf(
    py: Python<'_>,
    points_addr: usize,
    n: usize,
    dim: usize,
    values_addr: usize,
    channels: usize,
    kernel: &str,
    degree: Option<i32>,
    smoothing: f64,
    shape: Option<f64>,
    points_per_cell: Option<usize>,
    overlap: f64,
    ramp: &str,
    duplicates: &str,
) -> PyResult<Model> {
    let opts = FitOptions {
        kernel: kernel.parse().map_err(py_err)?,
        degree,
        smoothing,
        shape,
        points_per_cell,
        overlap,
        ramp: Ramp::parse(ramp).ok_or_else(|| {
            PyValueError::new_err(format!(
                "ramp must be 'smooth', 'linear' or 'quintic', not {ramp:?}"
            ))
        })?,
        duplicates: match duplicates {
            "merge" => Duplicates::Merge,
            "reject" => Duplicates::Reject,
            d => {
                return Err(PyValueError::new_err(format!(
                    "duplicates must be 'merge' or 'reject', not {d:?}"
                )))
            }
        },
        ..Default::default()
    };
    // SAFETY: the Python layer passed C-contiguous float64 arrays of these sizes.
    let (pts, vals) = unsafe { (f64s(points_addr, n * dim), f64s(values_addr, n * channels)) };
    let inner = py
        .detach(|| voxfield::rbf::fit(pts, dim, vals, channels, &opts, &|_, _| {}))
        .map_err(py_err)?;
    Ok(Model { inner })
}

/// Reads a `.vxr` model.
#[pyfunction]
pub fn load_model(py: Python<'_>, path: PathBuf) -> PyResult<Model> {
    let inner = py.detach(|| RbfModel::load(&path)).map_err(py_err)?;
    Ok(Model { inner })
}

#[pymethods]
impl Model {
    /// The model's description as JSON (dim, channels, kernel, cells, bounds, ...).
    fn info_json(&self) -> String {
        serde_json::to_string(&self.inner.info).expect("plain data")
    }

    /// Writes the model atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&path)).map_err(py_err)
    }

    /// Evaluates (n, dim) points into an (n, channels) buffer.
    fn eval_into(
        &self,
        py: Python<'_>,
        points_addr: usize,
        n: usize,
        out_addr: usize,
    ) -> PyResult<()> {
        let (dim, c) = (self.inner.dim(), self.inner.channels());
        // SAFETY: the Python layer passed C-contiguous float64 arrays of these sizes.
        let (pts, out) = unsafe { (f64s(points_addr, n * dim), f64s_mut(out_addr, n * c)) };
        py.detach(|| self.inner.eval_points(pts, out, &|_, _| {}))
            .map_err(py_err)
    }

    /// Gradients of one channel at (n, dim) points into an (n, dim) buffer.
    fn gradient_into(
        &self,
        py: Python<'_>,
        points_addr: usize,
        n: usize,
        channel: usize,
        out_addr: usize,
    ) -> PyResult<()> {
        let dim = self.inner.dim();
        // SAFETY: as in eval_into.
        let (pts, out) = unsafe { (f64s(points_addr, n * dim), f64s_mut(out_addr, n * dim)) };
        py.detach(|| self.inner.eval_gradients(pts, channel, out))
            .map_err(py_err)
    }

    /// A regular grid (nodes from lo to hi per axis, C order) into a buffer of
    /// prod(shape) × channels values.
    fn grid_into(
        &self,
        py: Python<'_>,
        lo: Vec<f64>,
        hi: Vec<f64>,
        shape: Vec<usize>,
        out_addr: usize,
    ) -> PyResult<()> {
        let c = self.inner.channels();
        let total = shape.iter().product::<usize>() * c;
        let row = shape.iter().skip(1).product::<usize>() * c;
        // SAFETY: the Python layer allocated prod(shape) × channels float64 values.
        let out = unsafe { f64s_mut(out_addr, total) };
        py.detach(|| {
            self.inner.eval_grid(&lo, &hi, &shape, &mut |r0, vals| {
                out[r0 * row..r0 * row + vals.len()].copy_from_slice(vals);
                Ok(())
            })
        })
        .map_err(py_err)
    }
}

//! Scattered-data RBF models for `voxfield.RBFInterpolator`: fit, evaluate,
//! grids, gradients, the `.vxr` file. Buffers come from the Python layer as
//! addresses of C-contiguous float64 arrays it keeps alive for the call.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use voxfield::rbf::{
    blend::DomainGrid, file, parts, Census, Duplicates, FitOptions, Plan, RbfModel, Spread,
};

use crate::{parse, py_err};

/// A fitted subdivided RBF interpolant.
#[pyclass(frozen, module = "voxfield._voxfield")]
pub struct Model {
    pub(crate) inner: RbfModel,
}

/// # Safety
/// `addr` must be a live, aligned buffer of at least `len` f64 values.
pub(crate) unsafe fn f64s<'a>(addr: usize, len: usize) -> &'a [f64] {
    if len == 0 {
        return &[]; // an empty array's address need not be valid for a slice
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(addr as *const f64, len) }
}

/// # Safety
/// As [`f64s`], and nothing else may use the buffer during the call.
pub(crate) unsafe fn f64s_mut<'a>(addr: usize, len: usize) -> &'a mut [f64] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts_mut(addr as *mut f64, len) }
}

/// Fit options as the Python layer passes them: (kernel, degree, smoothing,
/// shape, points_per_cell, overlap, ramp, duplicates).
type OptArgs = (
    String,
    Option<i32>,
    f64,
    Option<f64>,
    Option<usize>,
    f64,
    String,
    String,
);

fn fit_options(args: &OptArgs) -> PyResult<FitOptions> {
    let (kernel, degree, smoothing, shape, points_per_cell, overlap, ramp, duplicates) = args;
    Ok(FitOptions {
        kernel: parse(kernel)?,
        degree: *degree,
        smoothing: *smoothing,
        shape: *shape,
        points_per_cell: *points_per_cell,
        overlap: *overlap,
        ramp: parse(ramp)?,
        duplicates: parse(duplicates)?,
        ..Default::default()
    })
}

/// Fits (n, dim) points and (n, channels) values, interruptible with Ctrl-C.
#[pyfunction]
pub fn fit_rbf(
    py: Python<'_>,
    points_addr: usize,
    n: usize,
    dim: usize,
    values_addr: usize,
    channels: usize,
    opts: OptArgs,
) -> PyResult<Model> {
    let opts = fit_options(&opts)?;
    // SAFETY: the Python layer passed C-contiguous float64 arrays of these sizes.
    let (pts, vals) = unsafe { (f64s(points_addr, n * dim), f64s(values_addr, n * channels)) };
    let inner = crate::work::interruptible(py, |watch| {
        voxfield::rbf::fit(pts, dim, vals, channels, &opts, watch)
    })?;
    Ok(Model { inner })
}

/// Checks fit options for `dim`-D points with `channels` values (before a Dask
/// fit starts any task).
#[pyfunction]
pub fn rbf_check_options(dim: usize, channels: usize, opts: OptArgs) -> PyResult<()> {
    fit_options(&opts)?.check(dim, channels).map_err(py_err)?;
    Ok(())
}

fn grid_of(json: &str) -> PyResult<DomainGrid> {
    serde_json::from_str(json).map_err(|e| PyValueError::new_err(format!("bad grid: {e}")))
}

macro_rules! to_json {
    ($v:expr) => {
        serde_json::to_string($v).expect("plain data")
    };
}

/// The tile grid (JSON) of about `target` tiles over the box [lo, hi].
#[pyfunction]
pub fn rbf_tile_grid(lo: Vec<f64>, hi: Vec<f64>, target: usize) -> PyResult<String> {
    Ok(to_json!(
        &parts::tile_grid(&lo, &hi, target).map_err(py_err)?
    ))
}

/// Writes the tile of each of n points into an int64 buffer.
#[pyfunction]
pub fn rbf_route(
    py: Python<'_>,
    grid: &str,
    points_addr: usize,
    n: usize,
    out_addr: usize,
) -> PyResult<()> {
    let tiles = grid_of(grid)?;
    // SAFETY: the Python layer passed an (n, dim) float64 array and an n-int64 buffer.
    let (pts, out) = unsafe {
        (
            f64s(points_addr, n * tiles.dim),
            std::slice::from_raw_parts_mut(out_addr as *mut i64, n),
        )
    };
    py.detach(|| {
        for (o, t) in out.iter_mut().zip(parts::route(&tiles, pts)) {
            *o = t as i64;
        }
    });
    Ok(())
}

/// Prepares a tile (rows sorted by key): merges duplicates into the first m rows
/// of the output buffers and returns (m, census JSON, spread JSON).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn rbf_prepare_tile(
    py: Python<'_>,
    points_addr: usize,
    n: usize,
    dim: usize,
    values_addr: usize,
    channels: usize,
    keys_addr: usize,
    duplicates: &str,
    lo: Vec<f64>,
    hi: Vec<f64>,
    out: (usize, usize, usize),
) -> PyResult<(usize, String, String)> {
    let policy: Duplicates = parse(duplicates)?;
    // SAFETY: the Python layer passed C-contiguous arrays of these sizes (keys
    // int64 >= 0, read as u64) and output buffers of the same sizes.
    let (pts, vals, keys) = unsafe {
        (
            f64s(points_addr, n * dim),
            f64s(values_addr, n * channels),
            std::slice::from_raw_parts(keys_addr as *const u64, n),
        )
    };
    let tile = py
        .detach(|| parts::prepare_tile(pts, dim, vals, channels, keys, policy, &lo, &hi))
        .map_err(py_err)?;
    let m = tile.keys.len();
    // SAFETY: as above; m <= n.
    unsafe {
        f64s_mut(out.0, m * dim).copy_from_slice(&tile.points);
        f64s_mut(out.1, m * channels).copy_from_slice(&tile.values);
        std::slice::from_raw_parts_mut(out.2 as *mut u64, m).copy_from_slice(&tile.keys);
    }
    Ok((m, to_json!(&tile.census), to_json!(&tile.spread)))
}

fn census_of(json: &str) -> PyResult<Census> {
    serde_json::from_str(json).map_err(|e| PyValueError::new_err(format!("bad census: {e}")))
}

/// Merges the tiles' censuses and spreads and checks them as a local fit does:
/// (census JSON, domain grid JSON).
#[pyfunction]
pub fn rbf_plan_tiles(
    censuses: Vec<String>,
    spreads: Vec<String>,
    opts: OptArgs,
) -> PyResult<(String, String)> {
    let censuses = censuses
        .iter()
        .map(|c| census_of(c))
        .collect::<PyResult<Vec<_>>>()?;
    let spreads = spreads
        .iter()
        .map(|s| serde_json::from_str(s))
        .collect::<Result<Vec<Spread>, _>>()
        .map_err(|e| PyValueError::new_err(format!("bad spread: {e}")))?;
    let (census, plan) =
        parts::plan_tiles(&censuses, &spreads, &fit_options(&opts)?).map_err(py_err)?;
    Ok((to_json!(&census), to_json!(&plan.grid)))
}

fn plan_of(census: &str, opts: &OptArgs) -> PyResult<(Census, Plan)> {
    let census = census_of(census)?;
    let plan = Plan::new(&census, &fit_options(opts)?).map_err(py_err)?;
    Ok((census, plan))
}

/// The box of tile `tile` widened by `halo` domain sizes, and the tiles meeting
/// it: (lo, hi, tiles).
#[pyfunction]
pub fn rbf_halo(
    census: &str,
    opts: OptArgs,
    grid: &str,
    tile: usize,
    halo: f64,
) -> PyResult<(Vec<f64>, Vec<f64>, Vec<usize>)> {
    let (_, plan) = plan_of(census, &opts)?;
    let tiles = grid_of(grid)?;
    if tile >= tiles.len() {
        return Err(PyValueError::new_err(format!("no tile {tile}")));
    }
    let (lo, hi) = plan.halo(&tiles, tile, halo);
    let meet = parts::tiles_meeting(&tiles, &lo, &hi);
    Ok((lo[..plan.dim].to_vec(), hi[..plan.dim].to_vec(), meet))
}

/// Solves a tile's domains (its own, or `domains`) from n rows sorted by key
/// that hold every point inside the box [lo, hi]: (the cells as bytes, the
/// domains it could not see).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn rbf_solve_tile<'py>(
    py: Python<'py>,
    census: &str,
    opts: OptArgs,
    grid: &str,
    tile: usize,
    domains: Option<Vec<usize>>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    points_addr: usize,
    n: usize,
    values_addr: usize,
) -> PyResult<(Bound<'py, PyBytes>, Vec<usize>)> {
    let (_, plan) = plan_of(census, &opts)?;
    let tiles = grid_of(grid)?;
    let (dim, c) = (plan.dim, plan.channels);
    if tile >= tiles.len() || lo.len() != dim || hi.len() != dim {
        return Err(PyValueError::new_err(format!(
            "tile {tile} of {}, box of {} and {} coordinates",
            tiles.len(),
            lo.len(),
            hi.len()
        )));
    }
    let mut seen = ([0.0; 3], [0.0; 3]);
    seen.0[..dim].copy_from_slice(&lo);
    seen.1[..dim].copy_from_slice(&hi);
    // SAFETY: the Python layer passed C-contiguous float64 arrays of these sizes.
    let (pts, vals) = unsafe { (f64s(points_addr, n * dim), f64s(values_addr, n * c)) };
    let (bytes, unseen) = py
        .detach(|| {
            let domains = domains.unwrap_or_else(|| plan.owned_by(&tiles, tile));
            let solved = plan.solve(pts, vals, &domains, Some(seen), &voxfield::Watch::none())?;
            Ok::<_, voxfield::Error>((file::encode_cells(&solved.cells, dim), solved.unseen))
        })
        .map_err(py_err)?;
    Ok((PyBytes::new(py, &bytes), unseen))
}

/// The model of every tile's cells.
#[pyfunction]
pub fn rbf_assemble(
    py: Python<'_>,
    census: &str,
    opts: OptArgs,
    cells: Vec<Bound<'_, PyBytes>>,
) -> PyResult<Model> {
    let (census, plan) = plan_of(census, &opts)?;
    let blobs: Vec<&[u8]> = cells.iter().map(|b| b.as_bytes()).collect();
    let inner = py
        .detach(|| {
            let mut all = Vec::new();
            for b in blobs {
                all.extend(file::decode_cells(b, plan.dim, plan.channels, plan.kernel)?);
            }
            parts::assemble_tiles(&plan, &census, all)
        })
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

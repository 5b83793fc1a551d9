//! Spatial environments for `voxfield.env.Environment`: construction from
//! samples, point→bin queries, graph paths, smoothing, occupancy. Buffers come
//! from the Python layer as addresses of C-contiguous float64 arrays it keeps
//! alive for the call; work runs with the GIL released.

use pyo3::prelude::*;
use voxfield::env::{
    BinField, Environment, FieldOptions, Grid, Hex, Kde, Mode, OccupancyOptions, Operator, Reach,
    Reading, Shaping, TieBreak, Track,
};

use crate::py_err;
use crate::rbf::{f64s, f64s_mut};
use voxfield::env::Prior;

/// # Safety
/// `addr` must point to `len` initialised i64s, alive and unaliased for `'a`.
unsafe fn i64s<'a>(addr: usize, len: usize) -> &'a [i64] {
    if len == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(addr as *const i64, len) }
}

/// # Safety
/// As [`i64s`], writable.
unsafe fn i64s_mut<'a>(addr: usize, len: usize) -> &'a mut [i64] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts_mut(addr as *mut i64, len) }
}

/// Spike counts (n_time × n_neurons int64, native bytes) and bin centres of
/// per-neuron spike trains on a regular grid (neurospatial's `bin_spikes_in_time`).
#[pyfunction]
#[pyo3(signature = (trains, dt, t_start=None, t_stop=None))]
pub fn bin_spikes_in_time<'py>(
    py: Python<'py>,
    trains: Vec<Vec<f64>>,
    dt: f64,
    t_start: Option<f64>,
    t_stop: Option<f64>,
) -> PyResult<(Bound<'py, pyo3::types::PyBytes>, Vec<f64>)> {
    let refs: Vec<&[f64]> = trains.iter().map(|t| t.as_slice()).collect();
    let (counts, centres) = py
        .detach(|| voxfield::env::bin_spikes_in_time(&refs, dt, t_start, t_stop))
        .map_err(py_err)?;
    let bytes: Vec<u8> = counts.iter().flat_map(|c| c.to_ne_bytes()).collect();
    Ok((pyo3::types::PyBytes::new(py, &bytes), centres))
}

/// An environment (immutable; many threads may query it at once).
#[pyclass(frozen, module = "voxfield._voxfield")]
pub struct Env {
    inner: Environment,
}

impl Env {
    /// Bin indices a Python call passed, each checked against the bins.
    fn bins(&self, bins: &[i64]) -> PyResult<Vec<usize>> {
        bins.iter()
            .map(|&b| self.inner.check_bin(b))
            .collect::<voxfield::Result<Vec<_>>>()
            .map_err(py_err)
    }

    /// The times (n) and positions (n × dims) a Python call passed.
    ///
    /// # Safety
    /// Both addresses must be live C-contiguous float64 arrays of those sizes.
    unsafe fn trajectory<'a>(
        &self,
        times_addr: usize,
        n: usize,
        pos_addr: usize,
    ) -> (&'a [f64], &'a [f64]) {
        let d = self.inner.n_dims();
        // SAFETY: guaranteed by the caller.
        unsafe { (f64s(times_addr, n), f64s(pos_addr, n * d)) }
    }
}

#[pymethods]
impl Env {
    /// Bins (n, dims) positions on a regular grid (neurospatial 0.6.0's rules).
    #[staticmethod]
    /// `shaping`: close_gaps, fill_holes, dilate, add_boundary_bins.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (addr, n, dims, bin_size, threshold, axes, shaping))]
    fn from_samples(
        py: Python<'_>,
        addr: usize,
        n: usize,
        dims: usize,
        bin_size: Vec<f64>,
        threshold: Option<usize>,
        axes: usize,
        shaping: (bool, bool, bool, bool),
    ) -> PyResult<Env> {
        let (close_gaps, fill_holes, dilate, boundary_bins) = shaping;
        let shaping = Shaping {
            close_gaps,
            fill_holes,
            dilate,
            boundary_bins,
        };
        // SAFETY: the Python layer passed a C-contiguous float64 array of n × dims.
        let pts = unsafe { f64s(addr, n * dims) };
        let inner = py
            .detach(|| {
                Environment::with_neighbour_axes(
                    Grid::from_samples(pts, dims, &bin_size, threshold, shaping)?,
                    axes,
                )
            })
            .map_err(py_err)?;
        Ok(Env { inner })
    }

    /// Bins (n, 2) positions on a hexagonal lattice (neurospatial 0.6.0's rules).
    #[staticmethod]
    #[pyo3(signature = (addr, n, width, threshold))]
    fn from_hex(
        py: Python<'_>,
        addr: usize,
        n: usize,
        width: f64,
        threshold: Option<usize>,
    ) -> PyResult<Env> {
        // SAFETY: the Python layer passed a C-contiguous float64 array of n × 2.
        let pts = unsafe { f64s(addr, n * 2) };
        let inner = py
            .detach(|| Environment::hexagonal(Hex::from_samples(pts, width, threshold, None)?))
            .map_err(py_err)?;
        Ok(Env { inner })
    }

    /// A linearised track from neurospatial 0.6.0's Graph layout parameters (JSON).
    #[staticmethod]
    fn from_track(py: Python<'_>, parameters: &str) -> PyResult<Env> {
        let params: serde_json::Value = serde_json::from_str(parameters)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        let inner = py
            .detach(|| Environment::track(Track::from_parameters(&params)?))
            .map_err(py_err)?;
        Ok(Env { inner })
    }

    /// Samples a bin map read as a field at n (n, 3) points into `out_addr`.
    fn field_sample(
        &self,
        py: Python<'_>,
        values: Vec<f64>,
        linear: bool,
        addr: usize,
        n: usize,
        out_addr: usize,
    ) -> PyResult<()> {
        // SAFETY: C-contiguous float64 (n, 3) points and (n,) output, owned by the caller.
        let (pts, out) = unsafe { (f64s(addr, n * 3), f64s_mut(out_addr, n)) };
        py.detach(|| {
            let f = BinField::new(&self.inner, values, reading(linear))?;
            voxfield::evaluate(&f, &voxfield::PointList::new(pts)?, out)
        })
        .map_err(py_err)
    }

    /// Samples a bin map over a plane into an (nv, nu) float64 buffer.
    #[allow(clippy::too_many_arguments)]
    fn field_plane(
        &self,
        py: Python<'_>,
        values: Vec<f64>,
        linear: bool,
        origin: [f64; 3],
        u: [f64; 3],
        v: [f64; 3],
        nu: usize,
        nv: usize,
        out_addr: usize,
    ) -> PyResult<()> {
        // SAFETY: a C-contiguous float64 (nv, nu) output owned by the caller.
        let out = unsafe { f64s_mut(out_addr, nu * nv) };
        py.detach(|| {
            let f = BinField::new(&self.inner, values, reading(linear))?;
            let plane = voxfield::Plane::new(origin, u, v, nu, nv)?;
            voxfield::evaluate_plane(&f, &plane, &[0.0], voxfield::Reduce::Mean, out)
        })
        .map_err(py_err)
    }

    fn subset(&self, py: Python<'_>, keep: Vec<bool>) -> PyResult<Env> {
        let inner = py.detach(|| self.inner.subset(&keep)).map_err(py_err)?;
        Ok(Env { inner })
    }

    fn rebin(&self, py: Python<'_>, factors: Vec<usize>) -> PyResult<Env> {
        let inner = py.detach(|| self.inner.rebin(&factors)).map_err(py_err)?;
        Ok(Env { inner })
    }

    fn to_linear(&self, py: Python<'_>, points: Vec<f64>) -> PyResult<Vec<f64>> {
        py.detach(|| self.inner.to_linear(&points)).map_err(py_err)
    }

    fn linear_to_nd(&self, py: Python<'_>, linear: Vec<f64>) -> PyResult<Vec<f64>> {
        py.detach(|| self.inner.linear_to_nd(&linear))
            .map_err(py_err)
    }

    /// Linear bin edges of a track (empty otherwise).
    #[getter]
    fn linear_edges(&self) -> Vec<f64> {
        self.inner
            .linear_track("linear edges")
            .map(|t| t.edges.clone())
            .unwrap_or_default()
    }

    /// An environment over explicit edges and an active mask (C order).
    #[staticmethod]
    fn from_mask(edges: Vec<Vec<f64>>, active: Vec<bool>, axes: usize) -> PyResult<Env> {
        let mut grid = Grid::with_edges(edges, true).map_err(py_err)?;
        if active.len() != grid.active.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "active_mask has {} cells, the edges make {:?}",
                active.len(),
                grid.shape
            )));
        }
        grid.active = active;
        Ok(Env {
            inner: Environment::with_neighbour_axes(grid, axes).map_err(py_err)?,
        })
    }

    /// Reads a neurospatial 0.6.0 environment pair (PATH.json + PATH.npz).
    #[staticmethod]
    fn from_file(py: Python<'_>, path: std::path::PathBuf) -> PyResult<(Env, String)> {
        let (inner, regions) = py
            .detach(|| Environment::from_file_with_regions(&path))
            .map_err(py_err)?;
        Ok((Env { inner }, regions.to_string()))
    }

    /// Writes the neurospatial 0.6.0 pair (PATH.json + PATH.npz) with the
    /// region records `regions` (a JSON list).
    fn to_file(&self, py: Python<'_>, path: std::path::PathBuf, regions: &str) -> PyResult<()> {
        let regions: serde_json::Value = serde_json::from_str(regions)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("regions: {e}")))?;
        py.detach(|| self.inner.to_file_with_regions(&path, regions))
            .map_err(py_err)
    }

    #[getter]
    fn neighbour_axes(&self) -> usize {
        self.inner.neighbour_axes
    }

    #[getter]
    fn n_bins(&self) -> usize {
        self.inner.n_bins()
    }
    #[getter]
    fn n_dims(&self) -> usize {
        self.inner.n_dims()
    }
    #[getter]
    fn centers(&self) -> Vec<f64> {
        self.inner.centers.clone()
    }
    /// Grid edges per axis (none for a hexagonal lattice).
    #[getter]
    fn edges(&self) -> Vec<Vec<f64>> {
        self.inner
            .grid("grid edges")
            .map(|g| g.edges.clone())
            .unwrap_or_default()
    }
    #[getter]
    fn shape(&self) -> Vec<usize> {
        self.inner.layout.shape()
    }
    #[getter]
    fn active(&self) -> Vec<bool> {
        self.inner.layout.active().to_vec()
    }
    #[getter]
    fn layout_kind(&self) -> &'static str {
        self.inner.layout.kind()
    }
    fn bin_sizes(&self) -> Vec<f64> {
        self.inner.bin_sizes()
    }
    /// The graph as CSR (offsets, neighbours, lengths).
    fn csr(&self) -> (Vec<usize>, Vec<u32>, Vec<f64>) {
        let g = &self.inner.graph;
        (g.offsets.clone(), g.nbrs.clone(), g.dist.clone())
    }

    /// Bins of n positions into `out_addr` (n int64).
    fn bin_at(&self, py: Python<'_>, addr: usize, n: usize, out_addr: usize) -> PyResult<()> {
        let d = self.inner.n_dims();
        // SAFETY: C-contiguous float64 (n, d) in, int64 (n,) out, owned by the caller.
        let (pts, out) = unsafe {
            (
                f64s(addr, n * d),
                std::slice::from_raw_parts_mut(out_addr as *mut i64, n),
            )
        };
        let bins = py.detach(|| self.inner.bins_at(pts)).map_err(py_err)?;
        out.copy_from_slice(&bins);
        Ok(())
    }

    /// Nearest bins (int64) and distances of n points into the two outputs.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (addr, n, lowest_index, max_distance, factor, bins_addr, dist_addr))]
    fn map_points_to_bins(
        &self,
        py: Python<'_>,
        addr: usize,
        n: usize,
        lowest_index: bool,
        max_distance: Option<f64>,
        factor: Option<f64>,
        bins_addr: usize,
        dist_addr: usize,
    ) -> PyResult<()> {
        let d = self.inner.n_dims();
        // SAFETY: C-contiguous float64 (n, d) in; int64 (n,) and float64 (n,) out.
        let (pts, bins_out, dist_out) = unsafe {
            (
                f64s(addr, n * d),
                std::slice::from_raw_parts_mut(bins_addr as *mut i64, n),
                f64s_mut(dist_addr, n),
            )
        };
        let tie = if lowest_index {
            TieBreak::LowestIndex
        } else {
            TieBreak::ClosestCenter
        };
        let reach = match (max_distance, factor) {
            (Some(x), _) => Reach::Distance(x),
            (None, Some(f)) => Reach::Spacings(f),
            (None, None) => Reach::default(),
        };
        let (bins, dist) = py
            .detach(|| self.inner.map_points_to_bins(pts, tie, reach))
            .map_err(py_err)?;
        bins_out.copy_from_slice(&bins);
        dist_out.copy_from_slice(&dist);
        Ok(())
    }

    /// Linear interpolation of a bin field at n points into `out_addr`.
    fn interpolate_linear(
        &self,
        py: Python<'_>,
        field_addr: usize,
        addr: usize,
        n: usize,
        out_addr: usize,
    ) -> PyResult<()> {
        let d = self.inner.n_dims();
        // SAFETY: C-contiguous float64 field (n_bins), points (n, d) and output (n).
        let (f, pts, out) = unsafe {
            (
                f64s(field_addr, self.inner.n_bins()),
                f64s(addr, n * d),
                f64s_mut(out_addr, n),
            )
        };
        let v = py
            .detach(|| self.inner.interpolate_linear(f, pts))
            .map_err(py_err)?;
        out.copy_from_slice(&v);
        Ok(())
    }

    fn typical_spacing(&self, py: Python<'_>) -> f64 {
        py.detach(|| self.inner.typical_spacing())
    }

    fn neighbors(&self, b: i64) -> PyResult<Vec<u32>> {
        let b = self.inner.check_bin(b).map_err(py_err)?;
        Ok(self.inner.graph.neighbors(b).to_vec())
    }

    fn path_between(&self, py: Python<'_>, a: i64, b: i64) -> PyResult<Vec<usize>> {
        let (a, b) = (
            self.inner.check_bin(a).map_err(py_err)?,
            self.inner.check_bin(b).map_err(py_err)?,
        );
        Ok(py.detach(|| self.inner.path_between(a, b)))
    }

    fn distance_bins(&self, py: Python<'_>, a: i64, b: i64) -> PyResult<f64> {
        let (a, b) = (
            self.inner.check_bin(a).map_err(py_err)?,
            self.inner.check_bin(b).map_err(py_err)?,
        );
        Ok(py.detach(|| self.inner.distance_between(a, b)))
    }

    /// Index into `bins` of 0.6.0's geodesic rate-map centroid (the medoid).
    fn geodesic_medoid(
        &self,
        py: Python<'_>,
        bins: Vec<i64>,
        weights: Vec<f64>,
    ) -> PyResult<usize> {
        let b = self.bins(&bins)?;
        py.detach(|| self.inner.geodesic_medoid(&b, &weights))
            .map_err(py_err)
    }

    /// Geodesic distance between each pair (`from[k]`, `to[k]`) of bins.
    fn pair_distances(&self, py: Python<'_>, from: Vec<i64>, to: Vec<i64>) -> PyResult<Vec<f64>> {
        let (a, b) = (self.bins(&from)?, self.bins(&to)?);
        py.detach(|| self.inner.pair_distances(&a, &b))
            .map_err(py_err)
    }

    /// Bins on the edge of the active region, in increasing order.
    fn boundary_bins(&self) -> Vec<usize> {
        self.inner.boundary_bins()
    }

    /// Autocorrelograms of `units` rate maps (units × bins at `rates_addr`)
    /// into `out_addr` (units × h × w); returns (h, w) and, per unit, "" or
    /// why its autocorrelogram is undefined (that block is then NaN).
    fn autocorrelations(
        &self,
        py: Python<'_>,
        rates_addr: usize,
        units: usize,
        out_addr: usize,
        out_len: usize,
    ) -> PyResult<((usize, usize), Vec<&'static str>)> {
        let ac = voxfield::env::Autocorrelation::new(&self.inner).map_err(py_err)?;
        let (h, w) = ac.shape();
        let bins = self.inner.n_bins();
        let too_many =
            || pyo3::exceptions::PyValueError::new_err("autocorrelation: too many values");
        let n = units.checked_mul(bins).ok_or_else(too_many)?;
        let m = units.checked_mul(h * w).ok_or_else(too_many)?;
        if m != out_len {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "autocorrelation: an output of {out_len} values for {units} maps of {h} x {w}"
            )));
        }
        // SAFETY: the Python layer passes live C-contiguous float64 arrays of
        // these lengths and keeps them alive (the output unshared) for the call.
        let (rates, out) = unsafe { (f64s(rates_addr, n), f64s_mut(out_addr, m)) };
        let why = py.detach(|| ac.compute_many(rates, out)).map_err(py_err)?;
        let why = why.iter().map(|e| e.map_or("", |e| e.message())).collect();
        Ok(((h, w), why))
    }

    /// Border scores of `units` rate maps (units × bins at `rates_addr`).
    fn border_scores(
        &self,
        py: Python<'_>,
        rates_addr: usize,
        units: usize,
        threshold: f64,
        min_area: f64,
        metric: &str,
    ) -> PyResult<Vec<f64>> {
        let metric: voxfield::env::Metric = metric.parse().map_err(py_err)?;
        let bins = self.inner.n_bins();
        let n = units.checked_mul(bins).ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err("border scores: too many values")
        })?;
        // SAFETY: a live C-contiguous float64 array of n values, kept alive for the call.
        let rates = unsafe { f64s(rates_addr, n) };
        Ok(py.detach(|| {
            let score = voxfield::env::BorderScore::new(&self.inner, metric);
            rates
                .chunks(bins.max(1))
                .map(|r| score.score(r, threshold, min_area))
                .collect()
        }))
    }

    /// Geodesic distance from the nearest of `targets` to every bin.
    fn distance_to(&self, py: Python<'_>, targets: Vec<i64>) -> PyResult<Vec<f64>> {
        let t = self.bins(&targets)?;
        Ok(py.detach(|| self.inner.graph.distances_from(&t)))
    }

    /// Smooths k fields (n_bins × k, bin-major) in place at `out_addr`.
    #[allow(clippy::too_many_arguments)]
    fn smooth(
        &self,
        py: Python<'_>,
        addr: usize,
        k: usize,
        bandwidth: f64,
        mode: &str,
        operator: &str,
        out_addr: usize,
    ) -> PyResult<()> {
        let n = self.inner.n_bins();
        let mode: Mode = mode.parse().map_err(py_err)?;
        let op: Operator = operator.parse().map_err(py_err)?;
        // SAFETY: C-contiguous float64 arrays of n × k, owned by the caller.
        let (f, out) = unsafe { (f64s(addr, n * k), f64s_mut(out_addr, n * k)) };
        let y = py
            .detach(|| self.inner.smooth(f, k, bandwidth, mode, op))
            .map_err(py_err)?;
        out.copy_from_slice(&y);
        Ok(())
    }

    /// The dense kernel (n × n float64) into `out_addr`; kept for later
    /// `smooth` calls when `cache`.
    #[allow(clippy::too_many_arguments)]
    fn compute_kernel(
        &self,
        py: Python<'_>,
        bandwidth: f64,
        mode: &str,
        operator: &str,
        max_bins: usize,
        cache: bool,
        out_addr: usize,
    ) -> PyResult<()> {
        let n = self.inner.n_bins();
        let mode: Mode = mode.parse().map_err(py_err)?;
        let op: Operator = operator.parse().map_err(py_err)?;
        let k = py
            .detach(|| {
                self.inner
                    .compute_kernel(bandwidth, mode, op, max_bins, cache)
            })
            .map_err(py_err)?;
        // SAFETY: the caller allocated a C-contiguous float64 (n, n) array at out_addr.
        let out = unsafe { f64s_mut(out_addr, n * n) };
        out.copy_from_slice(&k);
        Ok(())
    }

    /// How many dense kernels the environment keeps.
    fn cached_kernels(&self) -> usize {
        self.inner.cached_kernels()
    }

    /// Occupancy into `out_addr` (n_bins float64).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (times_addr, n, pos_addr, speed, min_speed, max_gap, return_seconds, linear, out_addr))]
    fn occupancy(
        &self,
        py: Python<'_>,
        times_addr: usize,
        n: usize,
        pos_addr: usize,
        speed: Option<Vec<f64>>,
        min_speed: Option<f64>,
        max_gap: Option<f64>,
        return_seconds: bool,
        linear: bool,
        out_addr: usize,
    ) -> PyResult<()> {
        // SAFETY: the caller passed C-contiguous float64 arrays of n and n × dims,
        // and an n_bins float64 output, alive for the call.
        let ((t, p), out) = unsafe {
            (
                self.trajectory(times_addr, n, pos_addr),
                f64s_mut(out_addr, self.inner.n_bins()),
            )
        };
        let o = OccupancyOptions {
            max_gap,
            speed,
            min_speed,
            return_seconds,
            linear,
        };
        let occ = py
            .detach(|| self.inner.occupancy(t, p, &o))
            .map_err(py_err)?;
        out.copy_from_slice(&occ);
        Ok(())
    }

    /// The bin sequence into `out_addr` (n int32); returns its length.
    #[allow(clippy::too_many_arguments)]
    fn bin_sequence(
        &self,
        py: Python<'_>,
        times_addr: usize,
        n: usize,
        pos_addr: usize,
        dedup: bool,
        keep_outside: bool,
        out_addr: usize,
    ) -> PyResult<usize> {
        // SAFETY: as in `occupancy`, with an int32 (n,) output.
        let ((t, p), out) = unsafe {
            (
                self.trajectory(times_addr, n, pos_addr),
                std::slice::from_raw_parts_mut(out_addr as *mut i32, n),
            )
        };
        let seq = py
            .detach(|| self.inner.bin_sequence(t, p, dedup, keep_outside))
            .map_err(py_err)?;
        for (o, b) in out.iter_mut().zip(&seq) {
            *o = *b as i32;
        }
        Ok(seq.len())
    }

    /// Spike counts (units × bins) and occupancy from spike trains and a trajectory.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (spikes, times_addr, n, pos_addr, speed, min_speed, max_gap))]
    fn spike_counts(
        &self,
        py: Python<'_>,
        spikes: Vec<Vec<f64>>,
        times_addr: usize,
        n: usize,
        pos_addr: usize,
        speed: Option<Vec<f64>>,
        min_speed: Option<f64>,
        max_gap: Option<f64>,
    ) -> PyResult<(Vec<f64>, Vec<f64>)> {
        // SAFETY: as in `occupancy`.
        let (t, p) = unsafe { self.trajectory(times_addr, n, pos_addr) };
        let o = rate_occupancy(speed, min_speed, max_gap);
        let refs: Vec<&[f64]> = spikes.iter().map(Vec::as_slice).collect();
        py.detach(|| self.inner.spike_counts(&refs, t, p, &o))
            .map_err(py_err)
    }

    /// Scores of every unit's rate map and of its maps with the spike train
    /// shifted by `shifts` (units × shuffles at `shifts_addr`): observed
    /// (scores × units) into `observed_addr`, null (scores × units × shuffles)
    /// into `null_addr`; returns the scores' names in that order. Ctrl-C stops it.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (spikes, times_addr, n, pos_addr, speed, min_speed, max_gap, gaussian, bandwidth,
                        min_occupancy, shifts_addr, shuffles, information, sparsity, grid, border,
                        observed_addr, null_addr, out_len))]
    fn shuffle_scores(
        &self,
        py: Python<'_>,
        spikes: Vec<Vec<f64>>,
        times_addr: usize,
        n: usize,
        pos_addr: usize,
        speed: Option<Vec<f64>>,
        min_speed: Option<f64>,
        max_gap: Option<f64>,
        gaussian: bool,
        bandwidth: f64,
        min_occupancy: f64,
        shifts_addr: usize,
        shuffles: usize,
        information: Option<f64>,
        sparsity: bool,
        grid: Option<(f64, f64)>,
        border: Option<(f64, f64, String)>,
        observed_addr: usize,
        null_addr: usize,
        out_len: (usize, usize),
    ) -> PyResult<Vec<&'static str>> {
        use voxfield::env::{RateMaps, ScoreSet};
        let border = match border {
            Some((t, a, m)) => Some((t, a, m.parse().map_err(py_err)?)),
            None => None,
        };
        let set = ScoreSet {
            information,
            sparsity,
            grid,
            border,
        };
        let k = set.names().len();
        let units = spikes.len();
        let maps = units
            .checked_mul(shuffles)
            .filter(|&m| m <= voxfield::env::MAX_SHUFFLED_MAPS)
            .ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "{units} units x {shuffles} shuffles is over {} shuffled maps per call",
                    voxfield::env::MAX_SHUFFLED_MAPS
                ))
            })?;
        if out_len != (k * units, k * maps) {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "shuffle scores: output buffers of the wrong size",
            ));
        }
        // SAFETY: as in `occupancy`; the Python layer passes live C-contiguous
        // float64 arrays of these lengths and keeps them alive (the outputs
        // unshared) for the call.
        let (t, p) = unsafe { self.trajectory(times_addr, n, pos_addr) };
        let (shifts, observed, null) = unsafe {
            (
                f64s(shifts_addr, maps),
                f64s_mut(observed_addr, k * units),
                f64s_mut(null_addr, k * maps),
            )
        };
        let o = rate_occupancy(speed, min_speed, max_gap);
        let rate_maps = RateMaps {
            occupancy: &o,
            kernel: if gaussian {
                Kde::Gaussian
            } else {
                Kde::Diffusion
            },
            bandwidth,
            min_occupancy,
        };
        let refs: Vec<&[f64]> = spikes.iter().map(Vec::as_slice).collect();
        let env = &self.inner;
        let done = crate::work::interruptible(py, |watch| {
            env.shuffle_scores(&refs, t, p, &rate_maps, shifts, &set, watch)
        })?;
        observed.copy_from_slice(&done.observed);
        null.copy_from_slice(&done.null);
        Ok(done.names)
    }

    /// `diffusion_kde` or `gaussian_kde` rates (units × bins) from counts and occupancy.
    fn kde_rates(
        &self,
        py: Python<'_>,
        gaussian: bool,
        counts: Vec<f64>,
        occupancy: Vec<f64>,
        bandwidth: f64,
        min_occupancy: f64,
    ) -> PyResult<Vec<f64>> {
        let kernel = kde(gaussian);
        py.detach(|| {
            self.inner
                .kde_rates(kernel, &counts, &occupancy, bandwidth, min_occupancy)
        })
        .map_err(py_err)
    }

    /// Empirical transitions of a bin sequence as CSR (offsets, columns, values).
    fn transitions(
        &self,
        py: Python<'_>,
        bins: Vec<i64>,
        lag: usize,
        allow_teleports: bool,
        normalize: bool,
    ) -> PyResult<(Vec<usize>, Vec<u32>, Vec<f64>)> {
        let c = py
            .detach(|| {
                self.inner
                    .transitions(&bins, lag, allow_teleports, normalize)
            })
            .map_err(py_err)?;
        Ok((c.offsets, c.cols, c.values))
    }

    fn random_walk(&self, normalize: bool) -> (Vec<usize>, Vec<u32>, Vec<f64>) {
        let c = self.inner.random_walk(normalize);
        (c.offsets, c.cols, c.values)
    }

    /// Place fields of a rate map (each its sorted bins).
    fn place_fields(
        &self,
        py: Python<'_>,
        rate: Vec<f64>,
        threshold: f64,
        min_size: usize,
        max_mean_rate: f64,
        subfields: bool,
    ) -> PyResult<Vec<Vec<usize>>> {
        let o = FieldOptions {
            threshold,
            min_size,
            max_mean_rate,
            subfields,
        };
        py.detach(|| self.inner.place_fields(&rate, &o))
            .map_err(py_err)
    }

    /// Bayesian decoding into caller buffers: posterior (n_time × n_bins; none
    /// when its address is 0: the summary), MAP bins (int64), posterior means
    /// (n_time × n_dims), entropies (bits), peak probabilities. `prior` is
    /// "uniform", "stationary" (n_bins at `prior_addr`) or "time" (n_time ×
    /// n_bins). Returns how many encoding entries were not finite.
    #[allow(clippy::too_many_arguments)]
    fn decode_position(
        &self,
        py: Python<'_>,
        counts_addr: usize,
        n_time: usize,
        n_neurons: usize,
        rates_addr: usize,
        dt: f64,
        prior: &str,
        prior_addr: usize,
        validate: bool,
        outs: (usize, usize, usize, usize, usize),
    ) -> PyResult<usize> {
        let (nb, d) = (self.inner.n_bins(), self.inner.n_dims());
        // SAFETY: the Python layer passes C-contiguous arrays of these shapes and
        // dtypes (int64 counts and MAP bins, float64 otherwise), alive for the call.
        let (counts, rates, map, mean, ent, peak) = unsafe {
            (
                i64s(counts_addr, n_time * n_neurons),
                f64s(rates_addr, n_neurons * nb),
                i64s_mut(outs.1, n_time),
                f64s_mut(outs.2, n_time * d),
                f64s_mut(outs.3, n_time),
                f64s_mut(outs.4, n_time),
            )
        };
        // SAFETY: as above; 0 asks for no posterior.
        let post = (outs.0 != 0).then(|| unsafe { f64s_mut(outs.0, n_time * nb) });
        // SAFETY: as above, for the prior's shape.
        let prior = match prior {
            "uniform" => Prior::Uniform,
            "stationary" => Prior::Stationary(unsafe { f64s(prior_addr, nb) }),
            "time" => Prior::PerTime(unsafe { f64s(prior_addr, n_time * nb) }),
            o => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "prior kind {o}"
                )))
            }
        };
        let r = py
            .detach(|| {
                self.inner
                    .decode_position_into(counts, n_neurons, rates, dt, prior, validate, post)
            })
            .map_err(py_err)?;
        for (o, m) in map.iter_mut().zip(&r.map) {
            *o = *m as i64;
        }
        mean.copy_from_slice(&r.mean);
        ent.copy_from_slice(&r.entropy);
        peak.copy_from_slice(&r.peak);
        Ok(r.nonfinite)
    }

    fn clear_cache(&self, kernels: bool, operators: bool) {
        self.inner.clear_cache(kernels, operators);
    }
}

fn reading(linear: bool) -> Reading {
    if linear {
        Reading::Linear
    } else {
        Reading::Nearest
    }
}

/// neurospatial's directional rates of many units: (centres, occupancy,
/// counts units × bins, rates units × bins).
#[pyfunction]
#[pyo3(signature = (trains, times, headings, bin_size, bandwidth=None))]
#[allow(clippy::type_complexity)]
pub fn directional_rates(
    py: Python<'_>,
    trains: Vec<Vec<f64>>,
    times: Vec<f64>,
    headings: Vec<f64>,
    bin_size: f64,
    bandwidth: Option<f64>,
) -> PyResult<(Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>)> {
    let refs: Vec<&[f64]> = trains.iter().map(Vec::as_slice).collect();
    let r = py
        .detach(|| {
            voxfield::env::directional::directional_rates(
                &times, &headings, &refs, bin_size, bandwidth,
            )
        })
        .map_err(py_err)?;
    Ok((r.centers, r.occupancy, r.counts, r.rates))
}

/// Occupancy options of a rate map (0.6.0's `compute_spatial_rates`: seconds,
/// intervals to their start sample).
fn rate_occupancy(
    speed: Option<Vec<f64>>,
    min_speed: Option<f64>,
    max_gap: Option<f64>,
) -> OccupancyOptions {
    OccupancyOptions {
        max_gap,
        speed,
        min_speed,
        return_seconds: true,
        linear: false,
    }
}

/// `gaussian_kde` or `diffusion_kde`.
fn kde(gaussian: bool) -> Kde {
    if gaussian {
        Kde::Gaussian
    } else {
        Kde::Diffusion
    }
}

/// Grid scores of `count` h × w autocorrelograms at `ac_addr`.
#[pyfunction]
pub fn grid_scores(
    py: Python<'_>,
    ac_addr: usize,
    count: usize,
    h: usize,
    w: usize,
    inner: f64,
    outer: f64,
) -> PyResult<Vec<f64>> {
    let score = voxfield::env::GridScore::new(h, w, inner, outer).map_err(py_err)?;
    let n = count
        .checked_mul(h)
        .and_then(|v| v.checked_mul(w))
        .ok_or_else(|| pyo3::exceptions::PyValueError::new_err("grid scores: too many values"))?;
    // SAFETY: a live C-contiguous float64 array of n values, kept alive for the call.
    let ac = unsafe { f64s(ac_addr, n) };
    Ok(py.detach(|| score.scores(ac, h * w)))
}

/// Skaggs information (bits per spike in `base`) and sparsity of every row of a
/// C-contiguous (units, bins) float64 rate array against (bins,) occupancy, into
/// two (units,) buffers: voxfield-env's formulas (neurospatial 0.6.0's).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn rate_scores(
    py: Python<'_>,
    rates_addr: usize,
    units: usize,
    bins: usize,
    occupancy_addr: usize,
    base: f64,
    info_addr: usize,
    sparsity_addr: usize,
) -> PyResult<()> {
    let n = units
        .checked_mul(bins)
        .ok_or_else(|| pyo3::exceptions::PyValueError::new_err("rates: too many values"))?;
    // SAFETY: the Python layer passes live C-contiguous float64 arrays of these
    // lengths and keeps them alive (and the outputs unshared) for the call.
    let (rates, occupancy, info, sparsity) = unsafe {
        (
            f64s(rates_addr, n),
            f64s(occupancy_addr, bins),
            f64s_mut(info_addr, units),
            f64s_mut(sparsity_addr, units),
        )
    };
    py.detach(|| voxfield::env::rate_scores(rates, occupancy, base, info, sparsity))
        .map_err(py_err)
}

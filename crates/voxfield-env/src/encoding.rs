//! Spatial rate maps for many units sharing one trajectory, with
//! neurospatial 0.6.0's semantics: spikes inside the trajectory's time span,
//! gated by the validity of the interval they fall in (the same intervals
//! occupancy keeps), placed by linear interpolation of the positions and
//! binned; `diffusion_kde` rates are `K·spikes / K·occupancy` with 0.6.0's
//! density kernel K (NaN where the smoothed occupancy is ≤ `min_occupancy`),
//! computed as one exponential action over all units and the occupancy.

use rayon::prelude::*;
use voxfield_core::{Error, Result};

use crate::trajectory::OccupancyOptions;
use crate::{Environment, Mode, Operator};

impl Environment {
    /// Which trajectory intervals count (0.6.0's `interval_valid_mask`):
    /// interval k = [t_k, t_k+1) when sample k is inside, dt ≤ max_gap, and
    /// speed[k] ≥ min_speed.
    pub fn valid_intervals(&self, times: &[f64], bins: &[i64], o: &OccupancyOptions) -> Vec<bool> {
        (0..times.len().saturating_sub(1))
            .map(|k| {
                let dt = times[k + 1] - times[k];
                bins[k] >= 0
                    && o.max_gap.is_none_or(|g| dt <= g)
                    && match (&o.speed, o.min_speed) {
                        (Some(s), Some(m)) => !s[k].is_nan() && s[k] >= m,
                        _ => true,
                    }
            })
            .collect()
    }

    /// Spike counts per bin for each unit (units × bins, row-major) and the
    /// shared occupancy, from spike times and the trajectory.
    pub fn spike_counts(
        &self,
        spikes: &[&[f64]],
        times: &[f64],
        positions: &[f64],
        o: &OccupancyOptions,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let binner = SpikeBinner::new(self, times, positions, o)?;
        check_spike_times(spikes)?;
        let n = self.n_bins();
        let counts: Vec<Vec<f64>> = spikes
            .par_iter()
            .map(|s| {
                let mut c = vec![0.0; n];
                binner.count(s.iter().copied(), &mut c);
                c
            })
            .collect();
        Ok((counts.concat(), binner.occupancy))
    }
}

/// Spike times must be finite seconds, not negative (0.6.0's checks).
pub(crate) fn check_spike_times(spikes: &[&[f64]]) -> Result<()> {
    for (u, s) in spikes.iter().enumerate() {
        if let Some(t) = s.iter().find(|t| !t.is_finite()) {
            return Err(Error::invalid(format!(
                "spike times must be finite: unit {u} has {t}"
            )));
        }
        if let Some(t) = s.iter().find(|&&t| t < 0.0) {
            return Err(Error::invalid(format!(
                "spike times must be non-negative (seconds): unit {u} has {t}"
            )));
        }
    }
    Ok(())
}

/// One trajectory made ready to place spikes: its occupancy, bins and valid
/// intervals, shared by every unit and every shuffle of it.
pub struct SpikeBinner<'a> {
    env: &'a Environment,
    times: &'a [f64],
    positions: &'a [f64],
    valid: Vec<bool>,
    /// Whether intervals gate spikes (a gap limit or a speed threshold).
    gate: bool,
    pub occupancy: Vec<f64>,
}

impl<'a> SpikeBinner<'a> {
    pub fn new(
        env: &'a Environment,
        times: &'a [f64],
        positions: &'a [f64],
        o: &OccupancyOptions,
    ) -> Result<Self> {
        let occupancy = env.occupancy(times, positions, o)?;
        let bins = env.bins_at(positions)?;
        Ok(Self {
            env,
            times,
            positions,
            valid: env.valid_intervals(times, &bins, o),
            gate: o.max_gap.is_some() || (o.speed.is_some() && o.min_speed.is_some()),
            occupancy,
        })
    }

    /// The trajectory's first and last time (None without samples).
    pub fn span(&self) -> Option<(f64, f64)> {
        Some((*self.times.first()?, *self.times.last()?))
    }

    /// Adds one unit's spikes to `counts` (one per bin): spikes inside the
    /// trajectory's span and in a valid interval, placed by linear
    /// interpolation of the positions.
    pub fn count(&self, spikes: impl Iterator<Item = f64>, counts: &mut [f64]) {
        let times = self.times;
        let Some((t0, t1)) = self.span() else {
            return;
        };
        let d = self.env.n_dims();
        let mut p = vec![0.0; d];
        // Spikes come mostly in time order: each search starts where the last ended.
        let mut hint = 0;
        for t in spikes {
            if !(t >= t0 && t <= t1) {
                continue;
            }
            // Samples at or before t (searchsorted right); the interval is the one
            // starting at the last of them, clamped to the intervals there are.
            let i = samples_up_to(times, t, hint);
            hint = i;
            let k = i.saturating_sub(1).min(times.len().saturating_sub(2));
            if self.gate && times.len() >= 2 && !self.valid[k] {
                continue;
            }
            interp(times, self.positions, d, t, i, &mut p);
            let b = self.env.bin_at(&p);
            if b >= 0 {
                counts[b as usize] += 1.0;
            }
        }
    }
}

/// How many of the sorted `times` are ≤ t (`partition_point(x <= t)`), found
/// by galloping forward from `hint` when every time before it is ≤ t, else by
/// bisection.
pub(crate) fn samples_up_to(times: &[f64], t: f64, hint: usize) -> usize {
    let n = times.len();
    if hint > n || (hint > 0 && times[hint - 1] > t) {
        return times.partition_point(|&x| x <= t);
    }
    // Every time before `lo` is ≤ t.
    let (mut lo, mut step) = (hint, 1);
    while lo < n {
        let probe = (lo + step - 1).min(n - 1);
        if times[probe] <= t {
            lo = probe + 1;
            step *= 2;
        } else {
            return lo + times[lo..probe].partition_point(|&x| x <= t);
        }
    }
    n
}

/// Work space for KDE rate maps: units are smoothed in groups whose
/// full-grid copies stay under this many bytes.
const KDE_BYTES: usize = 256 << 20;

/// The smoothing of a KDE rate map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kde {
    /// 0.6.0's `diffusion_kde`: the density-mode diffusion kernel.
    Diffusion,
    /// 0.6.0's `gaussian_kde`: dense Euclidean Gaussian weights.
    Gaussian,
}

/// A smoothed occupancy, ready to turn spike counts into KDE rate maps.
pub struct KdeRates<'a> {
    env: &'a Environment,
    kernel: Kde,
    bandwidth: f64,
    occupancy: Vec<f64>,
    threshold: f64,
}

impl<'a> KdeRates<'a> {
    pub fn new(
        env: &'a Environment,
        kernel: Kde,
        occupancy: &[f64],
        bandwidth: f64,
        min_occupancy: f64,
    ) -> Result<Self> {
        if occupancy.len() != env.n_bins() {
            return Err(Error::invalid("counts or occupancy do not match the bins"));
        }
        if !(bandwidth.is_finite() && bandwidth > 0.0) {
            return Err(Error::invalid(format!(
                "bandwidth {bandwidth} must be a positive number"
            )));
        }
        let mut maker = Self {
            env,
            kernel,
            bandwidth,
            occupancy: vec![],
            threshold: min_occupancy.max(0.0),
        };
        maker.occupancy = maker.smooth(occupancy.to_vec(), 1)?;
        Ok(maker)
    }

    fn smooth(&self, f: Vec<f64>, k: usize) -> Result<Vec<f64>> {
        match self.kernel {
            Kde::Diffusion => {
                self.env
                    .smooth(&f, k, self.bandwidth, Mode::Density, Operator::Legacy060)
            }
            Kde::Gaussian => self.env.gaussian_smooth(f, k, self.bandwidth),
        }
    }

    /// Units to smooth at once so their full-grid copies stay under [`KDE_BYTES`].
    pub fn group(&self, units: usize) -> usize {
        let cells = self.env.layout.active().len().max(1);
        (KDE_BYTES / (cells * 8)).clamp(1, units.max(1))
    }

    /// Rates of k units (`counts`, k × bins row-major) into `rates` (the same
    /// shape): smoothed counts over the smoothed occupancy, NaN where that is
    /// ≤ `min_occupancy`.
    pub fn rates(&self, counts: &[f64], rates: &mut [f64]) -> Result<()> {
        let n = self.env.n_bins();
        let k = counts.len() / n.max(1);
        // Bin-major fields of this group (bins in parallel both ways).
        let mut f = vec![0.0; n * k];
        f.par_chunks_mut(k.max(1)).enumerate().for_each(|(b, row)| {
            for (u, v) in row.iter_mut().enumerate() {
                *v = counts[u * n + b];
            }
        });
        let s = self.smooth(f, k)?;
        rates
            .par_chunks_mut(n.max(1))
            .enumerate()
            .for_each(|(u, row)| {
                for (b, r) in row.iter_mut().enumerate() {
                    let occ = self.occupancy[b];
                    *r = if occ > self.threshold {
                        s[b * k + u] / occ
                    } else {
                        f64::NAN
                    };
                }
            });
        Ok(())
    }
}

impl Environment {
    /// Firing rates (units × bins) as 0.6.0's `diffusion_kde` or
    /// `gaussian_kde`: the smoothed spike counts over the smoothed occupancy,
    /// NaN where that is ≤ `min_occupancy`. `diffusion_kde` uses 0.6.0's
    /// density kernel (an exponential action over the graph); `gaussian_kde`
    /// its dense Euclidean weights w_ij = exp(−|c_i − c_j|² / 2σ²) between
    /// every pair of bins (no graph: it ignores walls), which on a grid factor
    /// by axis, so each field is one 1-D pass per axis over the full grid
    /// (inactive cells hold 0) instead of an n² matrix. Units are smoothed in
    /// groups whose work space stays bounded.
    pub fn kde_rates(
        &self,
        kernel: Kde,
        counts: &[f64],
        occupancy: &[f64],
        bandwidth: f64,
        min_occupancy: f64,
    ) -> Result<Vec<f64>> {
        let n = self.n_bins();
        if !counts.len().is_multiple_of(n.max(1)) {
            return Err(Error::invalid("counts or occupancy do not match the bins"));
        }
        let maker = KdeRates::new(self, kernel, occupancy, bandwidth, min_occupancy)?;
        let units = counts.len() / n.max(1);
        let group = maker.group(units);
        let mut rates = vec![0.0; units * n];
        for first in (0..units).step_by(group) {
            let k = group.min(units - first);
            maker.rates(
                &counts[first * n..(first + k) * n],
                &mut rates[first * n..(first + k) * n],
            )?;
        }
        Ok(rates)
    }

    /// k bin-major fields smoothed with the dense Gaussian weights (no normalisation).
    fn gaussian_smooth(&self, f: Vec<f64>, k: usize, sigma: f64) -> Result<Vec<f64>> {
        match &self.layout {
            crate::Layout::Grid(grid) => self.gaussian_separable(grid, f, k, sigma),
            crate::Layout::Hex(_) | crate::Layout::Track(_) => {
                Ok(self.gaussian_pairwise(&f, k, sigma))
            }
        }
    }

    /// Σ_j w_ij f_j directly over every pair of bins within the reach where
    /// exp(−d²/2σ²) underflows (bins in parallel): O(bins²), for layouts whose
    /// weights do not factor by axis.
    fn gaussian_pairwise(&self, f: &[f64], k: usize, sigma: f64) -> Vec<f64> {
        let n = self.n_bins();
        let reach2 = 2.0 * 745.2 * sigma * sigma;
        let mut out = vec![0.0; n * k];
        out.par_chunks_mut(k).enumerate().for_each(|(i, o)| {
            let c = self.center(i);
            for j in 0..n {
                let q = self.center(j);
                let d2: f64 = c.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum();
                if d2 > reach2 {
                    continue;
                }
                let w = (-d2 / (2.0 * sigma * sigma)).exp();
                for (o, &v) in o.iter_mut().zip(&f[j * k..(j + 1) * k]) {
                    *o += w * v;
                }
            }
        });
        out
    }

    /// The Gaussian on a grid, one 1-D pass per axis over the full grid: a
    /// matrix product with the axis's dense weights where they fit
    /// ([`DENSE_AXIS`]), else the windowed sum.
    fn gaussian_separable(
        &self,
        grid: &crate::Grid,
        f: Vec<f64>,
        k: usize,
        sigma: f64,
    ) -> Result<Vec<f64>> {
        let cells = grid.active.len();
        // Every cell active: the bins are the cells in order, no copy needed.
        let whole = self.n_bins() == cells;
        let mut full = if whole {
            f
        } else {
            let mut full = vec![0.0; cells * k];
            for (b, &c) in self.bin_to_flat.iter().enumerate() {
                full[c * k..(c + 1) * k].copy_from_slice(&f[b * k..(b + 1) * k]);
            }
            full
        };
        let shape = &grid.shape;
        let mut next = vec![
            0.0;
            if shape.iter().any(|&m| m <= DENSE_AXIS) {
                cells * k
            } else {
                0
            }
        ];
        for a in 0..shape.len() {
            let centres: Vec<f64> = grid.edges[a]
                .windows(2)
                .map(|w| (w[0] + w[1]) / 2.0)
                .collect();
            let m = centres.len();
            let windows = gaussian_windows(&centres, sigma)?;
            // Lines along axis a: `inner` cells apart, `outer` blocks of m·inner.
            let inner: usize = shape[a + 1..].iter().product();
            if m <= DENSE_AXIS {
                dense_pass(&windows.dense(m), m, inner * k, &full, &mut next);
                std::mem::swap(&mut full, &mut next);
            } else {
                windowed_pass(&windows, m, inner, k, &mut full);
            }
        }
        if whole {
            return Ok(full);
        }
        let mut out = vec![0.0; self.n_bins() * k];
        for (b, &c) in self.bin_to_flat.iter().enumerate() {
            out[b * k..(b + 1) * k].copy_from_slice(&full[c * k..(c + 1) * k]);
        }
        Ok(out)
    }
}

/// Axes up to this many centres take their Gaussian pass as a product with
/// the dense m × m weights (≤ 32 MiB); longer ones sum their windows.
const DENSE_AXIS: usize = 2048;

/// Columns one thread multiplies at a time in a dense pass.
const PASS_COLUMNS: usize = 1024;

/// `dst` = W · `src` for every block of m rows × `columns` (row-major,
/// blocks one after another), column panels in parallel.
fn dense_pass(w: &[f64], m: usize, columns: usize, src: &[f64], dst: &mut [f64]) {
    let blocks = src.len() / (m * columns).max(1);
    let panels = columns.div_ceil(PASS_COLUMNS);
    /// The output's address, shared by threads writing disjoint panels.
    struct Out(*mut f64);
    // SAFETY: every (block, panel) pair below writes a disjoint set of elements.
    unsafe impl Sync for Out {}
    let out = Out(dst.as_mut_ptr());
    let out = &out;
    (0..blocks * panels).into_par_iter().for_each(|job| {
        let (b, p) = (job / panels, job % panels);
        let c0 = p * PASS_COLUMNS;
        let n = PASS_COLUMNS.min(columns - c0);
        let offset = b * m * columns + c0;
        // SAFETY: the panel [offset, offset + (m−1)·columns + n) lies inside
        // both buffers (same length, blocks·m·columns); panels of different
        // jobs share no element, so the writes are disjoint.
        unsafe {
            matrixmultiply::dgemm(
                m,
                m,
                n,
                1.0,
                w.as_ptr(),
                m as isize,
                1,
                src.as_ptr().add(offset),
                columns as isize,
                1,
                0.0,
                out.0.add(offset),
                columns as isize,
                1,
            );
        }
    });
}

/// The windowed Gaussian sum along one axis, in place.
fn windowed_pass(windows: &Windows, m: usize, inner: usize, k: usize, full: &mut [f64]) {
    let Windows { starts, weights } = windows;
    let block = m * inner * k;
    full.par_chunks_mut(block).for_each(|blk| {
        let mut line = vec![0.0; m * k];
        for i in 0..inner {
            for l in 0..m {
                line[l * k..(l + 1) * k]
                    .copy_from_slice(&blk[(l * inner + i) * k..(l * inner + i + 1) * k]);
            }
            for l in 0..m {
                let out = &mut blk[(l * inner + i) * k..(l * inner + i + 1) * k];
                out.iter_mut().for_each(|v| *v = 0.0);
                let (q0, ws) = (starts[l].0, &weights[starts[l].1..starts[l + 1].1]);
                for (q, &w) in (q0..).zip(ws) {
                    for (o, &v) in out.iter_mut().zip(&line[q * k..(q + 1) * k]) {
                        *o += w * v;
                    }
                }
            }
        }
    });
}

/// Weights a 1-D Gaussian pass keeps (2^27: 1 GiB).
const MAX_WINDOW_WEIGHTS: usize = 1 << 27;

/// A 1-D Gaussian pass in compressed rows: for each centre l, its window
/// holds every centre whose weight exp(−d² / 2σ²) does not underflow to 0
/// (d ≤ σ·√1490.4).
struct Windows {
    /// Per centre (and one past the end): (first centre of the window, offset into `weights`).
    starts: Vec<(usize, usize)>,
    weights: Vec<f64>,
}

fn gaussian_windows(centres: &[f64], sigma: f64) -> Result<Windows> {
    let reach = sigma * (2.0f64 * 745.2).sqrt();
    let mut starts = Vec::with_capacity(centres.len() + 1);
    let mut weights = vec![];
    for &c in centres {
        let lo = centres.partition_point(|&x| x < c - reach);
        let hi = centres.partition_point(|&x| x <= c + reach);
        starts.push((lo, weights.len()));
        if weights.len() + (hi - lo) > MAX_WINDOW_WEIGHTS {
            return Err(Error::invalid(format!(
                "gaussian_kde with bandwidth {sigma} over {} bins along an axis needs more than {MAX_WINDOW_WEIGHTS} weights; use a smaller bandwidth or diffusion_kde",
                centres.len()
            )));
        }
        weights.extend(centres[lo..hi].iter().map(|&x| {
            let d = c - x;
            (-(d * d) / (2.0 * sigma * sigma)).exp()
        }));
    }
    starts.push((centres.len(), weights.len()));
    Ok(Windows { starts, weights })
}

impl Windows {
    /// The weights as a dense m × m matrix (0 outside each window).
    fn dense(&self, m: usize) -> Vec<f64> {
        let mut w = vec![0.0; m * m];
        for l in 0..m {
            let (q0, (a, b)) = (self.starts[l].0, (self.starts[l].1, self.starts[l + 1].1));
            w[l * m + q0..l * m + q0 + (b - a)].copy_from_slice(&self.weights[a..b]);
        }
        w
    }
}

/// Position at time `t` by linear interpolation of the samples (`np.interp`
/// per axis: clamped to the ends); `i` is how many times are ≤ t.
fn interp(times: &[f64], positions: &[f64], d: usize, t: f64, i: usize, out: &mut [f64]) {
    let n = times.len();
    if i == 0 || n == 1 {
        out.copy_from_slice(&positions[..d]);
    } else if i == n {
        out.copy_from_slice(&positions[(n - 1) * d..n * d]);
    } else {
        let (ta, tb) = (times[i - 1], times[i]);
        for a in 0..d {
            let (pa, pb) = (positions[(i - 1) * d + a], positions[i * d + a]);
            // np.interp's formula: slope·(x − xa) + fa.
            out[a] = if tb == ta {
                pa
            } else {
                (pb - pa) / (tb - ta) * (t - ta) + pa
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::samples_up_to;

    #[test]
    fn galloping_equals_bisection_from_any_hint() {
        let times: Vec<f64> = (0..50).map(|i| (i / 2) as f64 * 0.5).collect();
        for hint in 0..=52 {
            for k in -3..60 {
                let t = k as f64 * 0.25;
                let want = times.partition_point(|&x| x <= t);
                assert_eq!(samples_up_to(&times, t, hint), want, "t {t} hint {hint}");
            }
        }
        assert_eq!(samples_up_to(&[], 1.0, 0), 0);
    }
}

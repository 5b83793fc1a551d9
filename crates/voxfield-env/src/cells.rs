//! Grid-cell and border-cell scores with neurospatial 0.6.0's formulas:
//! the circular FFT autocorrelogram of a 2-D grid's rate map, Sargolini's
//! grid score (Pearson correlations of the autocorrelogram with itself
//! rotated by scipy's `ndimage.rotate`: linear, `constant` 0, inside an
//! annulus), and Solstad's border score over the layout's boundary bins.
//!
//! Each score is a value built once per environment (FFT plans; the annulus
//! and every rotation's taps; boundary distances) and then applied to many
//! maps with only a caller-held scratch, which is what shuffles need.

use std::sync::Arc;

use rayon::prelude::*;

use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use voxfield_core::{Error, Result};

use crate::{Environment, Layout};

/// The circular autocorrelogram of a rate map on a 2-D grid (0.6.0's
/// `spatial_autocorrelation`): unvisited (non-finite) and inactive cells are
/// 0 before the mean of the finite ones is taken off every cell; `ifft2(|fft2(x)|²)` with zero lag
/// shifted to (h/2, w/2), divided by the finite cells' variance times their count.
pub struct Autocorrelation {
    h: usize,
    w: usize,
    /// Active bin → cell of the h × w grid.
    cells: Vec<usize>,
    /// Real transforms along rows (w → w/2 + 1 coefficients), complex ones
    /// along the half-spectrum's columns: the power spectrum of a real map is
    /// even, so half of it is all there is.
    rows: Arc<dyn RealToComplex<f64>>,
    rows_inv: Arc<dyn ComplexToReal<f64>>,
    cols: Arc<dyn Fft<f64>>,
    cols_inv: Arc<dyn Fft<f64>>,
}

/// Work space of one autocorrelation at a time (one per thread).
pub struct Scratch {
    grid: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    transposed: Vec<Complex<f64>>,
    fft: Vec<Complex<f64>>,
}

/// Why a map has no autocorrelogram (0.6.0 raises these; shuffles score NaN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undefined {
    AllNan,
    Constant,
}

impl Undefined {
    pub fn message(self) -> &'static str {
        match self {
            Undefined::AllNan => "All firing rates are NaN",
            Undefined::Constant => {
                "All valid firing rates are constant. Autocorrelation undefined."
            }
        }
    }
}

impl Autocorrelation {
    /// Plans for `env`, whose cells must form a 2-D array (a 2-D grid, or a
    /// hexagonal lattice's rows × columns, as 0.6.0 takes it) at least half
    /// active (0.6.0's test for its FFT method).
    pub fn new(env: &Environment) -> Result<Self> {
        let shape = env.layout.shape();
        if matches!(env.layout, Layout::Track(_)) || shape.len() != 2 {
            return Err(Error::invalid(format!(
                "spatial_autocorrelation needs a regular 2-D grid environment, not a {}-D {} layout",
                env.n_dims(),
                env.layout.kind()
            )));
        }
        let cells = env.layout.active();
        let active = cells.iter().filter(|&&a| a).count();
        if 2 * active < cells.len() {
            return Err(Error::invalid(format!(
                "spatial_autocorrelation needs a regular 2-D grid with at least half its cells active ({active} of {})",
                cells.len()
            )));
        }
        let (h, w) = (shape[0], shape[1]);
        let mut real = RealFftPlanner::new();
        let mut planner = FftPlanner::new();
        Ok(Self {
            h,
            w,
            cells: env.bin_to_flat.clone(),
            rows: real.plan_fft_forward(w),
            rows_inv: real.plan_fft_inverse(w),
            cols: planner.plan_fft_forward(h),
            cols_inv: planner.plan_fft_inverse(h),
        })
    }

    /// (height, width) of the autocorrelogram.
    pub fn shape(&self) -> (usize, usize) {
        (self.h, self.w)
    }

    pub fn scratch(&self) -> Scratch {
        let longest = [
            self.rows.get_scratch_len(),
            self.rows_inv.get_scratch_len(),
            self.cols.get_inplace_scratch_len(),
            self.cols_inv.get_inplace_scratch_len(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let zero = Complex::new(0.0, 0.0);
        let half = self.h * (self.w / 2 + 1);
        Scratch {
            grid: vec![0.0; self.h * self.w],
            spectrum: vec![zero; half],
            transposed: vec![zero; half],
            fft: vec![zero; longest],
        }
    }

    /// The autocorrelogram of `rate` (one value per bin) into `out` (h × w,
    /// row-major), or why it is undefined.
    pub fn compute(
        &self,
        rate: &[f64],
        s: &mut Scratch,
        out: &mut [f64],
    ) -> std::result::Result<(), Undefined> {
        let (h, w) = (self.h, self.w);
        debug_assert!(rate.len() == self.cells.len() && out.len() == h * w);
        let mut first = None;
        let mut constant = true;
        let (mut sum, mut n) = (0.0, 0usize);
        for &r in rate.iter().filter(|r| r.is_finite()) {
            let f = *first.get_or_insert(r);
            constant &= r == f;
            sum += r;
            n += 1;
        }
        if n == 0 {
            return Err(if rate.iter().all(|r| r.is_nan()) {
                Undefined::AllNan
            } else {
                Undefined::Constant
            });
        }
        if constant {
            return Err(Undefined::Constant);
        }
        let mean = sum / n as f64;
        let var = rate
            .iter()
            .filter(|r| r.is_finite())
            .map(|&r| (r - mean) * (r - mean))
            .sum::<f64>()
            / n as f64;
        if var == 0.0 {
            return Err(Undefined::Constant);
        }
        // 0.6.0 zeroes unvisited and inactive cells, then takes the mean off
        // every cell: they hold −mean.
        s.grid.fill(0.0 - mean);
        for (&cell, &r) in self.cells.iter().zip(rate) {
            if r.is_finite() {
                s.grid[cell] = r - mean;
            }
        }
        // Real transforms of the rows, complex ones of the half-spectrum's
        // columns (as rows of its transpose); the power spectrum goes back the
        // same way. The plans' lengths match these slices, so they cannot fail.
        let half = w / 2 + 1;
        for (row, spec) in s.grid.chunks_mut(w).zip(s.spectrum.chunks_mut(half)) {
            let _ = self.rows.process_with_scratch(row, spec, &mut s.fft);
        }
        transpose(&s.spectrum, &mut s.transposed, h, half);
        self.cols
            .process_with_scratch(&mut s.transposed, &mut s.fft);
        for c in s.transposed.iter_mut() {
            *c = Complex::new(c.norm_sqr(), 0.0);
        }
        self.cols_inv
            .process_with_scratch(&mut s.transposed, &mut s.fft);
        transpose(&s.transposed, &mut s.spectrum, half, h);
        for (spec, row) in s.spectrum.chunks_mut(half).zip(s.grid.chunks_mut(w)) {
            // The exact result is real at 0 (and w/2): drop the rounding there.
            spec[0].im = 0.0;
            if w % 2 == 0 {
                spec[half - 1].im = 0.0;
            }
            let _ = self.rows_inv.process_with_scratch(spec, row, &mut s.fft);
        }
        // numpy's ifft2 divides by h·w; fftshift moves lag 0 to (h/2, w/2).
        let factor = 1.0 / ((h * w) as f64 * var * n as f64);
        for i in 0..h {
            let oi = (i + h / 2) % h;
            for j in 0..w {
                let oj = (j + w / 2) % w;
                out[oi * w + oj] = s.grid[i * w + j] * factor;
            }
        }
        Ok(())
    }
}

impl Autocorrelation {
    /// The autocorrelograms of many maps (`rates`: maps × bins) into `out`
    /// (maps × h × w), in parallel; per map, why it is undefined (its block
    /// is then NaN).
    pub fn compute_many(&self, rates: &[f64], out: &mut [f64]) -> Result<Vec<Option<Undefined>>> {
        let (bins, cells) = (self.cells.len().max(1), (self.h * self.w).max(1));
        if !rates.len().is_multiple_of(bins) || out.len() / cells != rates.len() / bins {
            return Err(Error::invalid(format!(
                "autocorrelation: {} rates and {} outputs for {bins} bins and {cells} cells",
                rates.len(),
                out.len()
            )));
        }
        Ok(rates
            .par_chunks(bins)
            .zip(out.par_chunks_mut(cells))
            .map_init(
                || self.scratch(),
                |s, (r, o)| {
                    let e = self.compute(r, s, o).err();
                    if e.is_some() {
                        o.fill(f64::NAN);
                    }
                    e
                },
            )
            .collect())
    }
}

/// `src` (rows × cols) into `dst` (cols × rows).
fn transpose(src: &[Complex<f64>], dst: &mut [Complex<f64>], rows: usize, cols: usize) {
    for i in 0..rows {
        for j in 0..cols {
            dst[j * rows + i] = src[i * cols + j];
        }
    }
}

/// scipy's `cosdg`/`sindg` at 30°, 60°, 90°, 120°, 150° (cephes reduces the
/// angle in degrees, so these differ from `cos(to_radians)` in the last bit).
const COS_30: f64 = f64::from_bits(0x3FEB_B67A_E858_4CAB);
const HALF: f64 = f64::from_bits(0x3FDF_FFFF_FFFF_FFFF);
const ROTATIONS: [(f64, f64); 5] = [
    (COS_30, HALF),
    (HALF, COS_30),
    (-0.0, 1.0),
    (-HALF, COS_30),
    (-COS_30, HALF),
];

/// One annulus pixel of a rotated autocorrelogram: four cells and weights, or
/// the constant 0 (the rotated point left the picture).
type Tap = Option<([u32; 4], [f64; 4])>;

/// Sargolini's grid score (0.6.0's `grid_score`) for h × w autocorrelograms.
pub struct GridScore {
    annulus: Vec<u32>,
    /// Per angle (30°, 60°, 90°, 120°, 150°): a tap per annulus pixel.
    taps: Vec<Vec<Tap>>,
}

impl GridScore {
    /// The annulus between `inner` and `outer` (fractions of the smaller
    /// half-side, from the centre (h/2, w/2)) and scipy's taps of each rotation.
    pub fn new(h: usize, w: usize, inner: f64, outer: f64) -> Result<Self> {
        if !(inner > 0.0 && inner < 1.0) {
            return Err(Error::invalid(format!(
                "inner_radius_fraction must be in (0, 1), got {inner}"
            )));
        }
        if !(outer > inner && outer <= 1.0) {
            return Err(Error::invalid(format!(
                "outer_radius_fraction must be in (inner_radius_fraction, 1], got {outer} with inner={inner}"
            )));
        }
        if h.checked_mul(w).is_none_or(|n| n > u32::MAX as usize) {
            return Err(Error::invalid(format!(
                "an autocorrelogram of {h} x {w} is too large"
            )));
        }
        let (cy, cx) = (h as f64 / 2.0, w as f64 / 2.0);
        let semi = h.min(w) as f64 / 2.0;
        let (r0, r1) = (inner * semi, outer * semi);
        let mut annulus = vec![];
        for y in 0..h {
            for x in 0..w {
                let (dy, dx) = (y as f64 - cy, x as f64 - cx);
                let d = (dy * dy + dx * dx).sqrt();
                if d >= r0 && d <= r1 {
                    annulus.push((y * w + x) as u32);
                }
            }
        }
        // ndimage.rotate(reshape=False): input = M·output + (c_in − M·c_out),
        // M = [[c, s], [−s, c]], centres ((h−1)/2, (w−1)/2).
        let (ch, cw) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
        let taps = ROTATIONS
            .iter()
            .map(|&(c, s)| {
                let shift = [ch - (c * ch + s * cw), cw - (-s * ch + c * cw)];
                annulus
                    .iter()
                    .map(|&p| {
                        let (i, j) = ((p as usize / w) as f64, (p as usize % w) as f64);
                        let y = i * c + j * s + shift[0];
                        let x = i * -s + j * c + shift[1];
                        linear_taps(y, x, h, w)
                    })
                    .collect()
            })
            .collect();
        Ok(Self { annulus, taps })
    }

    /// The score of one autocorrelogram: min(r60, r120) − max(r30, r90, r150),
    /// NaN when a value is not finite, the annulus has under 10 pixels, or a
    /// side of a correlation is constant.
    pub fn score(&self, ac: &[f64], rotated: &mut Vec<f64>) -> f64 {
        if self.annulus.len() < 10 || ac.iter().any(|v| !v.is_finite()) {
            return f64::NAN;
        }
        let orig: Vec<f64> = self.annulus.iter().map(|&p| ac[p as usize]).collect();
        let mut r = [0.0; 5];
        for (k, taps) in self.taps.iter().enumerate() {
            rotated.clear();
            rotated.extend(taps.iter().map(|t| match t {
                None => 0.0,
                Some((cells, w)) => {
                    // scipy's tap order (0,0), (0,1), (1,0), (1,1); the weight
                    // products are made once (scipy's v·w_y·w_x rounds apart
                    // in the last bit).
                    let mut t = 0.0;
                    for q in 0..4 {
                        t += ac[cells[q] as usize] * w[q];
                    }
                    t
                }
            }));
            r[k] = pearson(&orig, rotated);
            if r[k].is_nan() {
                return f64::NAN;
            }
        }
        r[1].min(r[3]) - r[0].max(r[2]).max(r[4])
    }
}

impl GridScore {
    /// The scores of many autocorrelograms (`acs`: count × h × w), in parallel.
    pub fn scores(&self, acs: &[f64], cells: usize) -> Vec<f64> {
        acs.par_chunks(cells.max(1))
            .map_init(Vec::new, |buf, a| self.score(a, buf))
            .collect()
    }
}

/// scipy's order-1 `constant`-mode taps at (y, x): None outside
/// [0, h−1] × [0, w−1]; at the last row or column the second tap is mirrored
/// (its weight is 0). Weights are scipy's: 1 − t and 1 − (1 − t).
fn linear_taps(y: f64, x: f64, h: usize, w: usize) -> Tap {
    let axis = |c: f64, n: usize| -> Option<([usize; 2], [f64; 2])> {
        if !(c >= 0.0 && c <= (n - 1) as f64) {
            return None;
        }
        let start = c.floor();
        let t = c - start;
        let w0 = 1.0 - t;
        let s = start as usize;
        let next = if s + 1 < n {
            s + 1
        } else {
            s.saturating_sub(1)
        };
        Some(([s, next], [w0, 1.0 - w0]))
    };
    let ((ys, wy), (xs, wx)) = (axis(y, h)?, axis(x, w)?);
    let mut cells = [0u32; 4];
    let mut weights = [0.0; 4];
    for a in 0..2 {
        for b in 0..2 {
            cells[a * 2 + b] = (ys[a] * w + xs[b]) as u32;
            weights[a * 2 + b] = wy[a] * wx[b];
        }
    }
    Some((cells, weights))
}

/// scipy's `pearsonr` statistic (NaN when either side is constant).
fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    if x.iter().all(|&v| v == x[0]) || y.iter().all(|&v| v == y[0]) {
        return f64::NAN;
    }
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (a, b) = (a - mx, b - my);
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
}

/// How the border score measures a field bin's distance to the wall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Geodesic,
    Euclidean,
}

impl std::str::FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "geodesic" => Ok(Metric::Geodesic),
            "euclidean" => Ok(Metric::Euclidean),
            o => Err(Error::invalid(format!(
                "metric must be 'geodesic' or 'euclidean', got '{o}'"
            ))),
        }
    }
}

/// Solstad's border score (0.6.0's `border_score`) for one environment.
pub struct BorderScore {
    boundary: Vec<usize>,
    /// Per bin: its distance to the nearest boundary bin (∞ when unreachable).
    distance: Vec<f64>,
    areas: Vec<f64>,
    /// Length of the diagonal of the centres' bounding box.
    extent: f64,
}

impl BorderScore {
    pub fn new(env: &Environment, metric: Metric) -> Self {
        let boundary = env.boundary_bins();
        let n = env.n_bins();
        let distance = match metric {
            Metric::Geodesic if !boundary.is_empty() => env.graph.distances_from(&boundary),
            Metric::Geodesic => vec![f64::INFINITY; n],
            Metric::Euclidean => (0..n)
                .map(|b| {
                    let c = env.center(b);
                    boundary
                        .iter()
                        .map(|&q| {
                            let d: f64 = c
                                .iter()
                                .zip(env.center(q))
                                .map(|(a, b)| (a - b) * (a - b))
                                .sum();
                            d.sqrt()
                        })
                        .fold(f64::INFINITY, f64::min)
                })
                .collect(),
        };
        let d = env.n_dims();
        let extent = (0..d)
            .map(|a| {
                let (lo, hi) = (0..n).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), b| {
                    let v = env.centers[b * d + a];
                    (lo.min(v), hi.max(v))
                });
                (hi - lo) * (hi - lo)
            })
            .sum::<f64>()
            .sqrt();
        Self {
            boundary,
            distance,
            areas: env.bin_sizes(),
            extent,
        }
    }

    /// The score of one map, NaN where 0.6.0 returns NaN (no rate, no field,
    /// a field under `min_area`, no boundary, a degenerate extent).
    pub fn score(&self, rate: &[f64], threshold: f64, min_area: f64) -> f64 {
        if rate.iter().all(|r| r.is_nan()) || rate.iter().all(|&r| r == 0.0) {
            return f64::NAN;
        }
        let peak = rate
            .iter()
            .filter(|r| !r.is_nan())
            .fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        if peak == 0.0 || peak.is_nan() {
            return f64::NAN;
        }
        let cut = threshold * peak;
        let in_field = |b: usize| rate[b] >= cut;
        let (mut area, mut count) = (0.0, 0usize);
        let (mut sum, mut reached) = (0.0, 0usize);
        for (b, &a) in self.areas.iter().enumerate() {
            if in_field(b) {
                area += a;
                count += 1;
                if self.distance[b].is_finite() {
                    sum += self.distance[b];
                    reached += 1;
                }
            }
        }
        if count == 0 || area < min_area || self.boundary.is_empty() || reached == 0 {
            return f64::NAN;
        }
        let covered = self.boundary.iter().filter(|&&b| in_field(b)).count();
        let coverage = covered as f64 / self.boundary.len() as f64;
        if self.extent == 0.0 {
            return f64::NAN;
        }
        let near = sum / reached as f64 / self.extent;
        let den = coverage + near;
        if den == 0.0 {
            return f64::NAN;
        }
        ((coverage - near) / den).clamp(-1.0, 1.0)
    }
}

impl Environment {
    /// Bins on the edge of the active region (0.6.0's `boundary_bins`, in
    /// increasing order): on a 2-3-D grid or a hexagonal lattice, active cells
    /// with an axis neighbour (±1 along one axis of the cell array) outside the
    /// array or inactive; on a 1-D grid or a track, bins with fewer than 2
    /// graph neighbours (fewer than the most any bin has, when that is below 2).
    pub fn boundary_bins(&self) -> Vec<usize> {
        let shape = self.layout.shape();
        let gridded = match &self.layout {
            Layout::Grid(g) => g.shape.len() > 1,
            Layout::Hex(_) => true,
            Layout::Track(_) => false,
        };
        if gridded {
            let active = self.layout.active();
            let mut strides = vec![1usize; shape.len()];
            for a in (0..shape.len().saturating_sub(1)).rev() {
                strides[a] = strides[a + 1] * shape[a + 1];
            }
            return (0..self.n_bins())
                .filter(|&b| {
                    let f = self.bin_to_flat[b];
                    (0..shape.len()).any(|a| {
                        let i = (f / strides[a]) % shape[a];
                        i == 0
                            || i + 1 == shape[a]
                            || !active[f - strides[a]]
                            || !active[f + strides[a]]
                    })
                })
                .collect();
        }
        let degrees: Vec<usize> = (0..self.n_bins())
            .map(|b| self.graph.neighbors(b).len())
            .collect();
        let max = degrees.iter().copied().max().unwrap_or(0);
        let below = if max >= 2 { 2 } else { max };
        (0..self.n_bins()).filter(|&b| degrees[b] < below).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_taps_follow_scipy_at_the_edges() {
        // 90° on a square: exact integer coordinates, all inside.
        let g = GridScore::new(8, 8, 0.2, 1.0).unwrap();
        assert!(g.taps[2].iter().all(|t| t.is_some()));
        // A point past the last row is the constant 0.
        assert!(linear_taps(7.000001, 3.0, 8, 8).is_none());
        let (cells, w) = linear_taps(7.0, 3.5, 8, 8).unwrap();
        assert_eq!(w[2] + w[3], 0.0);
        assert_eq!(cells[0], 7 * 8 + 3);
    }

    #[test]
    fn pearson_of_a_line_is_one_and_constant_is_nan() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let y = [3.0, 5.0, 7.0, 9.0];
        assert!((pearson(&x, &y) - 1.0).abs() < 1e-15);
        assert!(pearson(&x, &[1.0; 4]).is_nan());
    }
}

//! Head-direction tuning with neurospatial 0.6.0's rules
//! (`compute_directional_rate`): headings (radians) wrapped to [0, 2π) and
//! cut into `round(2π / bin_size)` bins from `linspace(0, 2π, n + 1)`; each
//! interval's duration goes to its start sample's bin, each spike to the bin
//! of the sample at or before it; with a bandwidth, counts and occupancy are
//! smoothed by scipy's `gaussian_filter1d` in `wrap` mode before the division.

use voxfield_core::{Error, Result};

use crate::encoding::samples_up_to;
use crate::shuffle::np_mod;

/// Taps a side a heading Gaussian may have (2^20: 16 MiB of weights).
const MAX_KERNEL_RADIUS: usize = 1 << 20;

/// Heading bins and the trajectory's wrapped headings.
pub struct Headings<'a> {
    times: &'a [f64],
    /// Headings in [0, 2π) (NaN stays NaN).
    wrapped: Vec<f64>,
    edges: Vec<f64>,
    pub centers: Vec<f64>,
}

/// Rates of many units over one heading trajectory.
pub struct DirectionalRates {
    pub centers: Vec<f64>,
    pub occupancy: Vec<f64>,
    /// Per unit, per bin (row-major).
    pub counts: Vec<f64>,
    pub rates: Vec<f64>,
}

impl<'a> Headings<'a> {
    /// Checks the trajectory (equal lengths, at least 3 samples, strictly
    /// increasing finite times) and the bin size, as 0.6.0.
    pub fn new(times: &'a [f64], headings: &[f64], bin_size: f64) -> Result<Self> {
        if headings.len() != times.len() {
            return Err(Error::invalid(format!(
                "headings and times must have the same length. Got headings: {}, times: {}.",
                headings.len(),
                times.len()
            )));
        }
        if times.len() < 3 {
            return Err(Error::invalid(format!(
                "Need at least 3 samples to compute occupancy. Got {} samples.",
                times.len()
            )));
        }
        if let Some(t) = times.iter().find(|t| !t.is_finite()) {
            return Err(Error::invalid(format!("times must be finite, got {t}")));
        }
        let bad = times.windows(2).filter(|w| w[1] <= w[0]).count();
        if bad > 0 {
            return Err(Error::invalid(format!(
                "times must be strictly monotonically increasing (no duplicates). Found {bad} non-increasing time steps."
            )));
        }
        if !(bin_size > 0.0 && bin_size.is_finite()) {
            return Err(Error::invalid(format!(
                "bin_size must be positive, got {bin_size}"
            )));
        }
        let tau = 2.0 * std::f64::consts::PI;
        let n = (tau / bin_size).round();
        if !(1.0..=1e6).contains(&n) {
            return Err(Error::invalid(format!(
                "bin_size {bin_size} makes {n} heading bins (1 to 10^6 allowed)"
            )));
        }
        let n = n as usize;
        // numpy's linspace: i·step below the end, the end itself last.
        let step = tau / n as f64;
        let mut edges: Vec<f64> = (0..n).map(|i| i as f64 * step).collect();
        edges.push(tau);
        let centers = edges.windows(2).map(|e| (e[0] + e[1]) / 2.0).collect();
        Ok(Self {
            times,
            wrapped: headings.iter().map(|&h| np_mod(h, tau)).collect(),
            edges,
            centers,
        })
    }

    pub fn n_bins(&self) -> usize {
        self.centers.len()
    }

    /// `np.digitize(h, edges) − 1`, the last edge folded to bin 0; None for NaN.
    fn bin(&self, h: f64) -> Option<usize> {
        if !h.is_finite() {
            return None;
        }
        let b = self.edges.partition_point(|&e| e <= h).saturating_sub(1);
        Some(if b >= self.n_bins() { 0 } else { b })
    }

    /// Seconds per heading bin: each interval to its start sample's bin.
    pub fn occupancy(&self) -> Vec<f64> {
        let mut occ = vec![0.0; self.n_bins()];
        for (k, w) in self.times.windows(2).enumerate() {
            if let Some(b) = self.bin(self.wrapped[k]) {
                occ[b] += w[1] - w[0];
            }
        }
        occ
    }

    /// Spikes per heading bin: spikes within the trajectory's span, each at
    /// the heading of the sample at or before it.
    pub fn counts(&self, spikes: &[f64]) -> Vec<f64> {
        let mut c = vec![0.0; self.n_bins()];
        let (t0, t1) = (self.times[0], self.times[self.times.len() - 1]);
        let mut hint = 0;
        for &t in spikes.iter().filter(|&&t| t >= t0 && t <= t1) {
            hint = samples_up_to(self.times, t, hint);
            let i = hint.saturating_sub(1);
            if let Some(b) = self.bin(self.wrapped[i.min(self.wrapped.len() - 1)]) {
                c[b] += 1.0;
            }
        }
        c
    }
}

/// scipy's `gaussian_filter1d(x, sigma, mode="wrap")` (truncate 4): weights
/// exp(−j²/2σ²) for |j| ≤ ⌊4σ + 0.5⌋, normalised, summed as scipy's symmetric
/// correlation (centre first, then each pair).
fn gaussian_wrap(x: &[f64], sigma: f64) -> Vec<f64> {
    let n = x.len();
    let radius = (4.0 * sigma + 0.5) as usize;
    let w: Vec<f64> = (0..=radius)
        .map(|j| (-0.5 / (sigma * sigma) * (j * j) as f64).exp())
        .collect();
    let total = w[0] + 2.0 * w[1..].iter().sum::<f64>();
    let w: Vec<f64> = w.iter().map(|v| v / total).collect();
    (0..n)
        .map(|i| {
            let mut t = x[i] * w[0];
            for (j, &wj) in w.iter().enumerate().skip(1) {
                t += (x[(i + j) % n] + x[(i + n - j % n) % n]) * wj;
            }
            t
        })
        .collect()
}

/// 0.6.0's directional rate maps of every unit: counts (smoothed with
/// `bandwidth` radians when given) over occupancy (likewise), NaN where the
/// occupancy is 0.
pub fn directional_rates(
    times: &[f64],
    headings: &[f64],
    spikes: &[&[f64]],
    bin_size: f64,
    bandwidth: Option<f64>,
) -> Result<DirectionalRates> {
    let h = Headings::new(times, headings, bin_size)?;
    for (u, s) in spikes.iter().enumerate() {
        if let Some(t) = s.iter().find(|t| !t.is_finite()) {
            return Err(Error::invalid(format!(
                "spike times must be finite: unit {u} has {t}"
            )));
        }
    }
    if let Some(b) = bandwidth.filter(|b| !(*b > 0.0 && b.is_finite())) {
        return Err(Error::invalid(format!(
            "bandwidth must be a positive angle, got {b}"
        )));
    }
    let n = h.n_bins();
    let sigma = bandwidth.map(|b| b / (2.0 * std::f64::consts::PI / n as f64));
    // scipy's kernel has 2·⌊4σ + 0.5⌋ + 1 taps: refuse one no memory would hold.
    if let Some(s) = sigma.filter(|s| 4.0 * s + 0.5 > MAX_KERNEL_RADIUS as f64) {
        return Err(Error::invalid(format!(
            "bandwidth {} rad is {s:.3e} heading bins: its Gaussian would need more than {MAX_KERNEL_RADIUS} taps a side",
            bandwidth.unwrap_or(f64::NAN)
        )));
    }
    let occupancy = h.occupancy();
    let occ = sigma.map_or_else(|| occupancy.clone(), |s| gaussian_wrap(&occupancy, s));
    let mut counts = Vec::with_capacity(spikes.len() * n);
    let mut rates = Vec::with_capacity(spikes.len() * n);
    for s in spikes {
        let c = h.counts(s);
        let cs = sigma.map_or_else(|| c.clone(), |s| gaussian_wrap(&c, s));
        rates.extend(
            cs.iter()
                .zip(&occ)
                .map(|(&c, &o)| if o == 0.0 { f64::NAN } else { c / o }),
        );
        counts.extend(c);
    }
    Ok(DirectionalRates {
        centers: h.centers,
        occupancy,
        counts,
        rates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_gaussian_keeps_the_total() {
        let x: Vec<f64> = (0..60).map(|i| if i == 3 { 6.0 } else { 0.0 }).collect();
        let y = gaussian_wrap(&x, 20.0); // wider than the circle: wraps several times
        assert!((y.iter().sum::<f64>() - 6.0).abs() < 1e-12);
        assert!(y[3] > y[33]);
    }
}

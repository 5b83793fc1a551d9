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
        let occupancy = self.occupancy(times, positions, o)?;
        let n = self.n_bins();
        if times.is_empty() {
            return Ok((vec![0.0; spikes.len() * n], occupancy));
        }
        let bins = self.bins_at(positions)?;
        let valid = self.valid_intervals(times, &bins, o);
        let gate = o.max_gap.is_some() || (o.speed.is_some() && o.min_speed.is_some());
        let (t0, t1) = (times[0], times[times.len() - 1]);
        let d = self.n_dims();
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
        let counts: Vec<Vec<f64>> = spikes
            .par_iter()
            .map(|s| {
                let mut c = vec![0.0; n];
                let mut p = vec![0.0; d];
                for &t in s.iter() {
                    if !(t >= t0 && t <= t1) {
                        continue;
                    }
                    // The sample at or before t (searchsorted right − 1), clamped
                    // to an interval.
                    let k = times.partition_point(|&x| x <= t).saturating_sub(1);
                    let k = k.min(times.len().saturating_sub(2));
                    if gate && times.len() >= 2 && !valid[k] {
                        continue;
                    }
                    interp(times, positions, d, t, &mut p);
                    let b = self.bin_at(&p);
                    if b >= 0 {
                        c[b as usize] += 1.0;
                    }
                }
                c
            })
            .collect();
        Ok((counts.concat(), occupancy))
    }

    /// `diffusion_kde` firing rates (units × bins): 0.6.0's density kernel
    /// applied to every unit's counts and to the occupancy in one action,
    /// their ratio where the smoothed occupancy exceeds `min_occupancy`, else NaN.
    pub fn diffusion_rates(
        &self,
        counts: &[f64],
        occupancy: &[f64],
        bandwidth: f64,
        min_occupancy: f64,
    ) -> Result<Vec<f64>> {
        let n = self.n_bins();
        if occupancy.len() != n || !counts.len().is_multiple_of(n) {
            return Err(Error::invalid("counts or occupancy do not match the bins"));
        }
        let units = counts.len() / n;
        // Fields bin-major: units, then the occupancy.
        let k = units + 1;
        let mut f = vec![0.0; n * k];
        for b in 0..n {
            for u in 0..units {
                f[b * k + u] = counts[u * n + b];
            }
            f[b * k + units] = occupancy[b];
        }
        let s = self.smooth(&f, k, bandwidth, Mode::Density, Operator::Legacy060)?;
        let threshold = min_occupancy.max(0.0);
        let mut rates = vec![0.0; units * n];
        for b in 0..n {
            let occ = s[b * k + units];
            for u in 0..units {
                rates[u * n + b] = if occ > threshold {
                    s[b * k + u] / occ
                } else {
                    f64::NAN
                };
            }
        }
        Ok(rates)
    }
}

/// Position at time `t` by linear interpolation of the samples (`np.interp`
/// per axis: clamped to the ends).
fn interp(times: &[f64], positions: &[f64], d: usize, t: f64, out: &mut [f64]) {
    let n = times.len();
    let i = times.partition_point(|&x| x <= t);
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

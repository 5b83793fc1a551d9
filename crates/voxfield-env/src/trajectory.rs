//! Trajectories on an environment, with neurospatial 0.6.0's semantics:
//! occupancy (time in each bin, allocated to the bin of each interval's start
//! sample) and the sequence of bins visited.

use rayon::prelude::*;
use voxfield_core::{Error, Result};

use crate::Environment;

/// What `occupancy` keeps and how it counts.
#[derive(Clone, Debug)]
pub struct OccupancyOptions {
    /// Intervals longer than this (seconds) are dropped (0.6.0: 0.5); None keeps all.
    pub max_gap: Option<f64>,
    /// Per-sample speeds; intervals whose start speed is below `min_speed` are dropped.
    pub speed: Option<Vec<f64>>,
    pub min_speed: Option<f64>,
    /// Seconds per bin (true) or interval counts (false).
    pub return_seconds: bool,
}

impl Default for OccupancyOptions {
    fn default() -> Self {
        OccupancyOptions {
            max_gap: Some(0.5),
            speed: None,
            min_speed: None,
            return_seconds: true,
        }
    }
}

impl Environment {
    /// The bin of each row of `positions` (n_dims per row), −1 outside; rows in parallel.
    pub fn bins_at(&self, positions: &[f64]) -> Result<Vec<i64>> {
        let d = self.n_dims();
        if !positions.len().is_multiple_of(d) {
            return Err(Error::invalid(format!(
                "positions of {} values are not rows of {d} coordinates",
                positions.len()
            )));
        }
        Ok(positions
            .par_chunks_exact(d)
            .with_min_len(4096)
            .map(|p| self.bin_at(p))
            .collect())
    }

    /// Checks times against positions: as many, finite, non-decreasing.
    fn check_trajectory(&self, times: &[f64], positions: &[f64]) -> Result<()> {
        let d = self.n_dims();
        if positions.len() != times.len() * d {
            return Err(Error::invalid(format!(
                "{} times for {} positions of {d} coordinates",
                times.len(),
                positions.len() / d.max(1)
            )));
        }
        if let Some(i) = times.iter().position(|t| !t.is_finite()) {
            return Err(Error::invalid(format!(
                "time {} at sample {i} is not finite",
                times[i]
            )));
        }
        if let Some(i) = times.windows(2).position(|w| w[1] < w[0]) {
            return Err(Error::invalid(format!(
                "times must not decrease: sample {} at {} follows {}",
                i + 1,
                times[i + 1],
                times[i]
            )));
        }
        Ok(())
    }

    /// Time (or interval count) in each bin: interval i = [t_i, t_{i+1}) goes
    /// to the bin of sample i when that is inside, the interval is at most
    /// `max_gap` long and the speed at sample i is at least `min_speed`. The
    /// last sample contributes nothing.
    pub fn occupancy(
        &self,
        times: &[f64],
        positions: &[f64],
        o: &OccupancyOptions,
    ) -> Result<Vec<f64>> {
        self.check_trajectory(times, positions)?;
        if o.min_speed.is_some() && o.speed.is_none() {
            return Err(Error::invalid(
                "min_speed needs speed (one value per sample)",
            ));
        }
        if let Some(s) = &o.speed {
            if s.len() != times.len() {
                return Err(Error::invalid(format!(
                    "{} speeds for {} samples",
                    s.len(),
                    times.len()
                )));
            }
        }
        let bins = self.bins_at(positions)?;
        let mut occ = vec![0.0; self.n_bins()];
        for i in 0..times.len().saturating_sub(1) {
            let dt = times[i + 1] - times[i];
            if bins[i] < 0 || o.max_gap.is_some_and(|g| dt > g) {
                continue;
            }
            if let (Some(s), Some(m)) = (&o.speed, o.min_speed) {
                if s[i].is_nan() || s[i] < m {
                    continue;
                }
            }
            occ[bins[i] as usize] += if o.return_seconds { dt } else { 1.0 };
        }
        Ok(occ)
    }

    /// The bins a trajectory visits, in order: −1 for samples outside (or
    /// dropped with `keep_outside = false`), consecutive repeats collapsed with
    /// `dedup`.
    pub fn bin_sequence(
        &self,
        times: &[f64],
        positions: &[f64],
        dedup: bool,
        keep_outside: bool,
    ) -> Result<Vec<i64>> {
        self.check_trajectory(times, positions)?;
        let mut seq = self.bins_at(positions)?;
        if !keep_outside {
            seq.retain(|&b| b >= 0);
        }
        if dedup {
            seq.dedup();
        }
        Ok(seq)
    }
}

//! Trajectories on an environment, with neurospatial 0.6.0's semantics:
//! occupancy (time in each bin, allocated to the bin of each interval's start
//! sample) and the sequence of bins visited.

use rayon::prelude::*;
use voxfield_core::{Error, Result};

use crate::Environment;

/// A sparse matrix in compressed rows (columns sorted within each row).
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    pub offsets: Vec<usize>,
    pub cols: Vec<u32>,
    pub values: Vec<f64>,
}

impl Csr {
    /// Scales each non-empty row to sum to 1.
    fn normalize_rows(&mut self) {
        for r in 0..self.offsets.len() - 1 {
            let row = &mut self.values[self.offsets[r]..self.offsets[r + 1]];
            let s: f64 = row.iter().sum();
            if s > 0.0 {
                let inv = 1.0 / s;
                row.iter_mut().for_each(|v| *v *= inv);
            }
        }
    }
}

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
    /// Split each interval along its straight segment (`linear`) instead of
    /// giving it all to the start sample's bin.
    pub linear: bool,
}

impl Default for OccupancyOptions {
    fn default() -> Self {
        OccupancyOptions {
            max_gap: Some(0.5),
            speed: None,
            min_speed: None,
            return_seconds: true,
            linear: false,
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
        if let Some(g) = o.max_gap.filter(|g| g.is_nan() || *g < 0.0) {
            return Err(Error::invalid(format!(
                "max_gap {g} must be at least 0 seconds (a negative gap drops every interval)"
            )));
        }
        if let Some(m) = o.min_speed.filter(|m| m.is_nan()) {
            return Err(Error::invalid(format!("min_speed {m} must be a number")));
        }
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
        let valid = self.valid_intervals(times, &bins, o);
        let mut occ = vec![0.0; self.n_bins()];
        let d = self.n_dims();
        let mut pieces = vec![];
        let grid = if o.linear {
            Some(self.grid("time_allocation='linear'")?)
        } else {
            None
        };
        for (i, _) in valid.iter().enumerate().filter(|(_, v)| **v) {
            let dt = times[i + 1] - times[i];
            let weight = if o.return_seconds { dt } else { 1.0 };
            let Some(grid) = grid.filter(|_| bins[i] != bins[i + 1]) else {
                occ[bins[i] as usize] += weight;
                continue;
            };
            let (a, b) = (
                &positions[i * d..(i + 1) * d],
                &positions[(i + 1) * d..(i + 2) * d],
            );
            grid.segment_cells(a, b, dt, &mut pieces);
            let total: f64 = pieces.iter().map(|p| p.1).sum();
            for &(f, t) in &pieces {
                let bin = self.flat_to_bin[f];
                if bin < 0 {
                    continue;
                }
                occ[bin as usize] += if o.return_seconds {
                    t
                } else if total > 0.0 {
                    t / total * weight
                } else {
                    0.0
                };
            }
        }
        Ok(occ)
    }

    /// The empirical transition matrix of a bin sequence as CSR (row offsets,
    /// columns, values): counts of `bins[k] → bins[k + lag]`, only between
    /// neighbours or a bin and itself unless `allow_teleports`, each row
    /// normalised to sum to 1 with `normalize` (0.6.0's `transitions`).
    pub fn transitions(
        &self,
        bins: &[i64],
        lag: usize,
        allow_teleports: bool,
        normalize: bool,
    ) -> Result<Csr> {
        let n = self.n_bins();
        if lag < 1 {
            return Err(Error::invalid(format!("lag must be positive (got {lag})")));
        }
        if let Some(i) = bins.iter().position(|&b| b < 0 || b as usize >= n) {
            return Err(Error::invalid(format!(
                "bin {} at position {i} is out of range [0, {n}) (−1, outside, is not allowed in transitions)",
                bins[i]
            )));
        }
        let mut pairs: Vec<u64> = if bins.len() <= lag {
            vec![]
        } else {
            bins.iter()
                .zip(&bins[lag..])
                .map(|(&s, &t)| (s as usize, t as usize))
                .filter(|&(s, t)| {
                    allow_teleports || s == t || self.graph.neighbors(s).contains(&(t as u32))
                })
                .map(|(s, t)| (s as u64) << 32 | t as u64)
                .collect()
        };
        pairs.sort_unstable();
        let mut csr = Csr {
            offsets: vec![0; n + 1],
            cols: vec![],
            values: vec![],
        };
        for run in pairs.chunk_by(|a, b| a == b) {
            let (s, t) = ((run[0] >> 32) as usize, (run[0] & 0xffff_ffff) as u32);
            csr.offsets[s + 1] += 1;
            csr.cols.push(t);
            csr.values.push(run.len() as f64);
        }
        for r in 0..n {
            csr.offsets[r + 1] += csr.offsets[r];
        }
        if normalize {
            csr.normalize_rows();
        }
        Ok(csr)
    }

    /// The random-walk transition matrix: uniform over each bin's neighbours
    /// (adjacency, rows normalised with `normalize`).
    pub fn random_walk(&self, normalize: bool) -> Csr {
        let g = &self.graph;
        let mut csr = Csr {
            offsets: g.offsets.clone(),
            cols: g.nbrs.clone(),
            values: vec![1.0; g.nbrs.len()],
        };
        if normalize {
            csr.normalize_rows();
        }
        csr
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

//! Rate-map scores with neurospatial 0.6.0's formulas: Skaggs spatial
//! information (bits per spike), sparsity, and place-field detection (the
//! connected bins above a fraction of the peak, split into subfields at 0.5
//! and 0.7 of the peak).

use std::collections::VecDeque;

use rayon::prelude::*;

use voxfield_core::{Error, Result};

use crate::Environment;

/// Occupancy probabilities (NaN as 0), or None when there is no time.
fn probabilities(occupancy: &[f64]) -> Option<Vec<f64>> {
    let o: Vec<f64> = occupancy
        .iter()
        .map(|&v| if v.is_nan() { 0.0 } else { v })
        .collect();
    let total: f64 = o.iter().sum();
    (total > 0.0).then(|| o.iter().map(|v| v / total).collect())
}

/// Skaggs information per spike, in bits (`base` 2): Σ p·(r/r̄)·log(r/r̄) over
/// bins with p > 0 and r > 0; NaN rates count as 0; 0 when the mean rate or
/// the occupancy is 0; never negative.
pub fn spatial_information(rate: &[f64], occupancy: &[f64], base: f64) -> f64 {
    probabilities(occupancy).map_or(0.0, |p| information_of(rate, &p, base))
}

/// Sparsity (Σ p·r)² / Σ p·r², in [0, 1] (0 when degenerate).
pub fn sparsity(rate: &[f64], occupancy: &[f64]) -> f64 {
    probabilities(occupancy).map_or(0.0, |p| sparsity_of(rate, &p))
}

/// Occupancy probabilities (None without time), made once for many maps.
pub struct Probabilities(Option<Vec<f64>>);

impl Probabilities {
    pub fn new(occupancy: &[f64]) -> Self {
        Self(probabilities(occupancy))
    }

    /// [`spatial_information`] of `rate` over these probabilities.
    pub fn information(&self, rate: &[f64], base: f64) -> f64 {
        self.0
            .as_ref()
            .map_or(0.0, |p| information_of(rate, p, base))
    }

    /// [`sparsity`] of `rate` over these probabilities.
    pub fn sparsity(&self, rate: &[f64]) -> f64 {
        self.0.as_ref().map_or(0.0, |p| sparsity_of(rate, p))
    }
}

fn information_of(rate: &[f64], p: &[f64], base: f64) -> f64 {
    let r = |v: f64| if v.is_nan() { 0.0 } else { v };
    let mean: f64 = p.iter().zip(rate).map(|(p, &v)| p * r(v)).sum();
    if mean <= 0.0 {
        return 0.0;
    }
    let ln_base = base.ln();
    let s: f64 = p
        .iter()
        .zip(rate)
        .filter(|(p, &v)| **p > 0.0 && r(v) > 0.0)
        .map(|(p, &v)| {
            let q = r(v) / mean;
            p * q * (q.ln() / ln_base)
        })
        .sum();
    s.max(0.0)
}

fn sparsity_of(rate: &[f64], p: &[f64]) -> f64 {
    let r = |v: f64| if v.is_nan() { 0.0 } else { v };
    let num: f64 = p.iter().zip(rate).map(|(p, &v)| p * r(v)).sum();
    let den: f64 = p.iter().zip(rate).map(|(p, &v)| p * r(v) * r(v)).sum();
    if den > 0.0 {
        (num * num / den).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Skaggs information (in `base`) and sparsity of every unit: `rates` holds one
/// row of `occupancy.len()` bins per unit (row-major); `info` and `sparsity`
/// get one value per unit. Every output is written, also with zero bins
/// (then 0, as for no occupancy).
pub fn rate_scores(
    rates: &[f64],
    occupancy: &[f64],
    base: f64,
    info: &mut [f64],
    sparse: &mut [f64],
) -> Result<()> {
    let bins = occupancy.len();
    let units = info.len();
    if sparse.len() != units || Some(rates.len()) != units.checked_mul(bins) {
        return Err(Error::invalid(format!(
            "rate scores: {} rates for {units} units of {bins} bins",
            rates.len()
        )));
    }
    for u in 0..units {
        let row = &rates[u * bins..(u + 1) * bins];
        info[u] = spatial_information(row, occupancy, base);
        sparse[u] = sparsity(row, occupancy);
    }
    Ok(())
}

/// How place fields are found (0.6.0's `detect_place_fields` options).
#[derive(Clone, Debug)]
pub struct FieldOptions {
    /// A field is the connected bins at or above this fraction of its peak.
    pub threshold: f64,
    /// Fields of fewer bins are dropped.
    pub min_size: usize,
    /// A unit whose mean rate exceeds this is taken for an interneuron: no fields.
    pub max_mean_rate: f64,
    /// Split large fields at 0.5 and 0.7 of the peak.
    pub subfields: bool,
}

impl Default for FieldOptions {
    fn default() -> Self {
        FieldOptions {
            threshold: 0.2,
            min_size: 9,
            max_mean_rate: 10.0,
            subfields: true,
        }
    }
}

impl Environment {
    /// The place fields of a rate map (one value per bin; NaN ignored), each
    /// its sorted bins, strongest first; empty when the mean rate exceeds
    /// `max_mean_rate`.
    pub fn place_fields(&self, rate: &[f64], o: &FieldOptions) -> Result<Vec<Vec<usize>>> {
        let n = self.n_bins();
        if rate.len() != n {
            return Err(Error::invalid(format!(
                "the rate map has {} values for {n} bins",
                rate.len()
            )));
        }
        if !(o.threshold > 0.0 && o.threshold < 1.0) {
            return Err(Error::invalid(format!(
                "threshold must be in (0, 1), got {}",
                o.threshold
            )));
        }
        let finite: Vec<f64> = rate.iter().copied().filter(|v| !v.is_nan()).collect();
        let mean = finite.iter().sum::<f64>() / finite.len() as f64;
        if mean > o.max_mean_rate {
            return Ok(vec![]);
        }
        let mut map = rate.to_vec();
        let mut fields = vec![];
        // nanargmax: the first maximum, ignoring NaN.
        let argmax = |map: &[f64]| {
            (0..n)
                .filter(|&b| !map[b].is_nan())
                .fold(None, |best: Option<usize>, b| match best {
                    Some(a) if map[a] >= map[b] => Some(a),
                    _ => Some(b),
                })
        };
        while let Some(peak) = argmax(&map) {
            let peak_rate = map[peak];
            if !(peak_rate > 0.0 && peak_rate.is_finite()) {
                break;
            }
            let level = peak_rate * o.threshold;
            let above: Vec<bool> = map.iter().map(|&v| v >= level).collect();
            let field = self.component(peak, &above);
            if field.len() < o.min_size {
                field.iter().for_each(|&b| map[b] = 0.0);
                continue;
            }
            let split = if o.subfields && field.len() > o.min_size * 2 {
                self.subfields(rate, &field, peak_rate, o.min_size)
            } else {
                vec![]
            };
            field.iter().for_each(|&b| map[b] = 0.0);
            if split.len() > 1 {
                fields.extend(split);
            } else {
                fields.push(field);
            }
            let rest = map
                .iter()
                .copied()
                .filter(|v| !v.is_nan())
                .fold(f64::NEG_INFINITY, f64::max);
            if rest < level {
                break;
            }
        }
        Ok(fields)
    }

    /// The connected bins of `mask` reached from `seed` (sorted).
    fn component(&self, seed: usize, mask: &[bool]) -> Vec<usize> {
        let mut seen = vec![false; self.n_bins()];
        let mut out = vec![seed];
        seen[seed] = true;
        let mut queue = VecDeque::from([seed]);
        while let Some(b) = queue.pop_front() {
            for &nb in self.graph.neighbors(b) {
                let nb = nb as usize;
                if mask[nb] && !seen[nb] {
                    seen[nb] = true;
                    out.push(nb);
                    queue.push_back(nb);
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// A field split at 0.5, else 0.7, of its peak into components of at
    /// least `min_size` bins, when that makes more than one.
    fn subfields(
        &self,
        rate: &[f64],
        field: &[usize],
        peak: f64,
        min_size: usize,
    ) -> Vec<Vec<usize>> {
        for fraction in [0.5, 0.7] {
            let level = peak * fraction;
            let mut mask = vec![false; self.n_bins()];
            for &b in field {
                mask[b] = rate[b] >= level;
            }
            let mut left: Vec<usize> = field.iter().copied().filter(|&b| mask[b]).collect();
            let mut parts = vec![];
            while let Some(&seed) = left.first() {
                let part = self.component(seed, &mask);
                left.retain(|b| part.binary_search(b).is_err());
                if part.len() >= min_size {
                    parts.push(part);
                }
            }
            if parts.len() > 1 {
                return parts;
            }
        }
        vec![]
    }
}

/// Field bins whose distances one medoid pass holds at once (per source, one
/// distance per field bin).
const MEDOID_SOURCES: usize = 256;

impl Environment {
    /// 0.6.0's geodesic `rate_map_centroid`: the index into `bins` of the bin
    /// whose rate-weighted geodesic distance from the other field bins,
    /// Σ_i w_i·d(i, j) summed over i in order, is least (the first such; no
    /// path is ∞). One Dijkstra per field bin (0.6.0 runs one shortest path per
    /// pair), [`MEDOID_SOURCES`] at a time in parallel.
    pub fn geodesic_medoid(&self, bins: &[usize], weights: &[f64]) -> Result<usize> {
        let m = bins.len();
        if m == 0 || weights.len() != m {
            return Err(Error::invalid(format!(
                "a geodesic centroid needs one weight per field bin ({m} bins, {} weights)",
                weights.len()
            )));
        }
        if let Some(b) = bins.iter().find(|&&b| b >= self.n_bins()) {
            return Err(Error::invalid(format!(
                "field bin {b} is outside the environment's {} bins",
                self.n_bins()
            )));
        }
        let mut cost = vec![0.0; m];
        for first in (0..m).step_by(MEDOID_SOURCES) {
            let last = (first + MEDOID_SOURCES).min(m);
            let rows: Vec<Vec<f64>> = (first..last)
                .into_par_iter()
                .map(|i| {
                    let d = self.graph.distances_from(&[bins[i]]);
                    bins.iter().map(|&b| d[b]).collect()
                })
                .collect();
            for (i, row) in (first..last).zip(&rows) {
                for (j, c) in cost.iter_mut().enumerate() {
                    if i != j {
                        *c += weights[i] * row[j];
                    }
                }
            }
        }
        let (mut best, mut least) = (0, f64::INFINITY);
        for (j, &c) in cost.iter().enumerate() {
            if c < least {
                (best, least) = (j, c);
            }
        }
        Ok(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_scores_write_every_unit_and_refuse_mismatched_lengths() {
        // Zero bins: every unit still gets a value (0), never what the buffer held.
        let (mut info, mut sparse) = (vec![f64::NAN; 3], vec![f64::NAN; 3]);
        rate_scores(&[], &[], 2.0, &mut info, &mut sparse).unwrap();
        assert_eq!((info, sparse), (vec![0.0; 3], vec![0.0; 3]));
        // Rows agree with the one-unit formulas.
        let occ = [1.0, 3.0, 0.0, 2.0];
        let rates = [0.0, 4.0, 1.0, 2.0, 5.0, 5.0, 5.0, 5.0];
        let (mut info, mut sparse) = (vec![0.0; 2], vec![0.0; 2]);
        rate_scores(&rates, &occ, 2.0, &mut info, &mut sparse).unwrap();
        for u in 0..2 {
            let row = &rates[4 * u..4 * u + 4];
            assert_eq!(info[u], spatial_information(row, &occ, 2.0));
            assert_eq!(sparse[u], sparsity(row, &occ));
        }
        assert_eq!(info[1], 0.0); // a uniform rate carries no information
        let e = rate_scores(&rates[..7], &occ, 2.0, &mut info, &mut sparse).unwrap_err();
        assert!(
            e.to_string().contains("7 rates for 2 units of 4 bins"),
            "{e}"
        );
    }
}

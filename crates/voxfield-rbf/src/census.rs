//! What a fit must know about the whole point set before it can plan cells: the
//! count of distinct points, their bounding box and value range, and whether
//! they span their dimension. Each piece is mergeable, so a point set split into
//! parts (a Dask fit) gives the same census as the whole.

use faer::{Mat, Side};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use voxfield_core::{Error, Result};

use crate::options::Duplicates;

/// Counts, bounds and value range of a (deduplicated) point set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Census {
    pub dim: usize,
    pub channels: usize,
    /// Points given, duplicates included.
    pub input_points: usize,
    /// Distinct points.
    pub points: usize,
    pub merged_duplicates: usize,
    pub bbox_lo: Vec<f64>,
    pub bbox_hi: Vec<f64>,
    pub value_min: Vec<f64>,
    pub value_max: Vec<f64>,
}

impl Census {
    /// The census of distinct `points` (n × dim) with `values` (n × channels),
    /// `input_points` of them before `merged` duplicates were merged.
    pub fn of(
        points: &[f64],
        dim: usize,
        values: &[f64],
        channels: usize,
        input_points: usize,
        merged: usize,
    ) -> Census {
        let mut c = Census {
            dim,
            channels,
            input_points,
            points: points.len() / dim,
            merged_duplicates: merged,
            bbox_lo: vec![f64::INFINITY; dim],
            bbox_hi: vec![f64::NEG_INFINITY; dim],
            value_min: vec![f64::INFINITY; channels],
            value_max: vec![f64::NEG_INFINITY; channels],
        };
        for p in points.chunks_exact(dim) {
            for a in 0..dim {
                c.bbox_lo[a] = c.bbox_lo[a].min(p[a]);
                c.bbox_hi[a] = c.bbox_hi[a].max(p[a]);
            }
        }
        for v in values.chunks_exact(channels) {
            for k in 0..channels {
                c.value_min[k] = c.value_min[k].min(v[k]);
                c.value_max[k] = c.value_max[k].max(v[k]);
            }
        }
        c
    }

    /// The census of the union of two disjoint point sets.
    pub fn merge(&mut self, other: &Census) -> Result<()> {
        if (self.dim, self.channels) != (other.dim, other.channels) {
            return Err(Error::invalid(format!(
                "parts disagree: {}-D with {} channel(s) and {}-D with {}",
                self.dim, self.channels, other.dim, other.channels
            )));
        }
        self.input_points += other.input_points;
        self.points += other.points;
        self.merged_duplicates += other.merged_duplicates;
        let min =
            |a: &mut Vec<f64>, b: &[f64]| a.iter_mut().zip(b).for_each(|(x, y)| *x = x.min(*y));
        let max =
            |a: &mut Vec<f64>, b: &[f64]| a.iter_mut().zip(b).for_each(|(x, y)| *x = x.max(*y));
        min(&mut self.bbox_lo, &other.bbox_lo);
        max(&mut self.bbox_hi, &other.bbox_hi);
        min(&mut self.value_min, &other.value_min);
        max(&mut self.value_max, &other.value_max);
        Ok(())
    }

    pub(crate) fn lo(&self) -> [f64; 3] {
        let mut lo = [0.0; 3];
        lo[..self.dim].copy_from_slice(&self.bbox_lo);
        lo
    }

    pub(crate) fn hi(&self) -> [f64; 3] {
        let mut hi = [0.0; 3];
        hi[..self.dim].copy_from_slice(&self.bbox_hi);
        hi
    }
}

/// Mean and co-moment matrix of points in the unit coordinates of a bounding
/// box (centre 0, half-range 1 per axis), so that coordinates of 1e200 or 1e-300
/// neither overflow nor vanish. Parts merge exactly as one pass would (Chan et al.).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub n: usize,
    pub mean: [f64; 3],
    pub comoment: [[f64; 3]; 3],
}

impl Spread {
    /// The spread of `points` (n × dim) within the box [lo, hi] of the whole set.
    pub fn of(points: &[f64], dim: usize, lo: &[f64], hi: &[f64]) -> Spread {
        let mid: Vec<f64> = (0..dim).map(|a| lo[a] / 2.0 + hi[a] / 2.0).collect();
        let half: Vec<f64> = (0..dim).map(|a| hi[a] / 2.0 - lo[a] / 2.0).collect();
        let unit = |p: &[f64], a: usize| {
            if half[a] > 0.0 {
                (p[a] - mid[a]) / half[a]
            } else {
                0.0
            }
        };
        let n = points.len() / dim;
        let mut s = Spread {
            n,
            ..Default::default()
        };
        if n == 0 {
            return s;
        }
        for p in points.chunks_exact(dim) {
            for a in 0..dim {
                s.mean[a] += unit(p, a) / n as f64;
            }
        }
        for p in points.chunks_exact(dim) {
            for a in 0..dim {
                for b in 0..dim {
                    s.comoment[a][b] += (unit(p, a) - s.mean[a]) * (unit(p, b) - s.mean[b]);
                }
            }
        }
        s
    }

    /// The spread of the union of two disjoint point sets.
    pub fn merge(&mut self, o: &Spread) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = o.clone();
            return;
        }
        let (na, nb) = (self.n as f64, o.n as f64);
        let n = na + nb;
        let d: Vec<f64> = (0..3).map(|a| o.mean[a] - self.mean[a]).collect();
        for a in 0..3 {
            for b in 0..3 {
                self.comoment[a][b] += o.comoment[a][b] + d[a] * d[b] * na * nb / n;
            }
        }
        for a in 0..3 {
            self.mean[a] += d[a] * nb / n;
        }
        self.n += o.n;
    }

    /// Refuses point sets that do not span their dimension (collinear in 2-D,
    /// coplanar in 3-D): no grid of domains or polynomial fits them.
    pub fn check(&self, dim: usize) -> Result<()> {
        let mut cov = Mat::<f64>::zeros(dim, dim);
        for a in 0..dim {
            for b in 0..dim {
                cov[(a, b)] = self.comoment[a][b];
            }
        }
        let eig = cov
            .self_adjoint_eigenvalues(Side::Lower)
            .map_err(|_| Error::invalid("could not analyse the point spread"))?;
        let max = eig.iter().cloned().fold(0.0, f64::max);
        let rank = eig
            .iter()
            .filter(|&&e| e > 1e-12 * max && max > 0.0)
            .count();
        if rank < dim {
            let what = match (dim, rank) {
                (_, 0) => "all points coincide".to_string(),
                (2, 1) | (3, 1) => "all points are collinear".to_string(),
                (3, 2) => "all points are coplanar".to_string(),
                _ => format!("the points span only {rank} of {dim} dimensions"),
            };
            return Err(Error::invalid(format!(
                "{what}: a {dim}-D interpolant needs points that span {dim} dimensions"
            )));
        }
        Ok(())
    }
}

/// Refuses non-finite entries of `data` (rows of `width`), naming the row.
pub(crate) fn check_finite(data: &[f64], width: usize, what: &str) -> Result<()> {
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::invalid(format!(
            "point {} has a non-finite {what} ({})",
            i / width,
            data[i]
        ))),
    }
}

/// Distinct points with the mean value of their duplicates, in first-occurrence
/// order.
pub struct Deduped {
    pub points: Vec<f64>,
    pub values: Vec<f64>,
    /// Row of the input each kept point first occurs at.
    pub kept: Vec<usize>,
    pub merged: usize,
}

/// Merges (or rejects) points with identical coordinates; keeps first-occurrence
/// order and sums duplicates' values in input order. `name(i)` is how errors
/// call input row `i` (its index in the whole set when this is a part of it).
pub fn dedupe(
    points: &[f64],
    dim: usize,
    values: &[f64],
    channels: usize,
    policy: Duplicates,
    name: &(dyn Fn(usize) -> u64 + Sync),
) -> Result<Deduped> {
    let n = points.len() / dim;
    let p = |i: usize| &points[i * dim..(i + 1) * dim];
    let mut idx: Vec<u32> = (0..n as u32).collect();
    idx.par_sort_unstable_by(|&a, &b| {
        let (pa, pb) = (p(a as usize), p(b as usize));
        pa.iter()
            .zip(pb)
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    // first[i] = the first occurrence of point i's coordinates.
    let mut first: Vec<u32> = (0..n as u32).collect();
    let mut merged = 0;
    for w in idx.windows(2) {
        let (a, b) = (w[0] as usize, w[1] as usize);
        if p(a) == p(b) {
            if policy == Duplicates::Reject {
                return Err(Error::invalid(format!(
                    "points {} and {} have the same coordinates {:?} (duplicates are rejected)",
                    name(a.min(b)),
                    name(a.max(b)),
                    p(a)
                )));
            }
            first[b] = first[a];
            merged += 1;
        }
    }
    if merged == 0 {
        return Ok(Deduped {
            points: points.to_vec(),
            values: values.to_vec(),
            kept: (0..n).collect(),
            merged: 0,
        });
    }
    let mut sum = vec![0.0; n * channels];
    let mut count = vec![0u32; n];
    for i in 0..n {
        let f = first[i] as usize;
        count[f] += 1;
        for k in 0..channels {
            sum[f * channels + k] += values[i * channels + k];
        }
    }
    let mut out = Deduped {
        points: Vec::new(),
        values: Vec::new(),
        kept: Vec::new(),
        merged,
    };
    for i in 0..n {
        if count[i] > 0 {
            out.points.extend_from_slice(p(i));
            out.values.extend(
                sum[i * channels..(i + 1) * channels]
                    .iter()
                    .map(|s| s / count[i] as f64),
            );
            out.kept.push(i);
        }
    }
    Ok(out)
}

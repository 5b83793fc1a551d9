//! Nearest-bin queries (neurospatial 0.6.0's `map_points_to_bins`) and linear
//! interpolation of a bin field (its `interpolate(mode='linear')`).
//!
//! Nearest centres come from a uniform bucket grid over the bin centres (about
//! one centre per bucket) searched in rings of buckets outward from the
//! point's bucket, stopping once no unvisited bucket can hold a nearer centre:
//! exact, O(1) per point inside the arena, and independent of the layout.
//! 0.6.0's rules on top: among centres within 1e-10 of the nearest the lowest
//! index wins (`lowest_index`), and a point farther than 10 × the typical bin
//! spacing (the median nearest-neighbour distance of up to 100 evenly spaced
//! bins) from every centre maps to −1 unless a threshold is given.

use rayon::prelude::*;
use voxfield_core::{Error, Result};

use crate::grid::linspace;
use crate::Environment;

/// Distances within this of the nearest count as ties (0.6.0's 1e-10).
const TIE: f64 = 1e-10;

/// How ties between equidistant centres resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TieBreak {
    /// The lowest bin index among centres within 1e-10 of the nearest (0.6.0's default).
    LowestIndex,
    /// The nearest centre found (the lowest index among exactly equal distances).
    ClosestCenter,
}

/// How far a point may be from its nearest centre and still map to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reach {
    /// At most this many typical bin spacings (0.6.0's default: 10).
    Spacings(f64),
    /// At most this distance, in the environment's units.
    Distance(f64),
}

impl Default for Reach {
    fn default() -> Self {
        Reach::Spacings(10.0)
    }
}

/// What nearest-bin queries need, built once per environment.
#[derive(Debug)]
pub struct NearestIndex {
    pub buckets: Buckets,
    /// The typical bin spacing (0.6.0's reach unit).
    pub spacing: f64,
}

/// A uniform bucket grid over bin centres.
#[derive(Debug)]
pub struct Buckets {
    dims: usize,
    lo: [f64; 3],
    width: [f64; 3],
    n: [usize; 3],
    /// Bucket start offsets into `order` (CSR over C-order bucket ids).
    start: Vec<u32>,
    order: Vec<u32>,
}

impl Buckets {
    /// Buckets over `centers` (`dims` per centre, at least one centre), sized so
    /// that there are about as many buckets as centres.
    pub fn new(centers: &[f64], dims: usize) -> Buckets {
        let m = centers.len() / dims;
        let mut lo = [0.0; 3];
        let mut ext = [0.0; 3];
        for a in 0..dims {
            let (mn, mx) = centers
                .iter()
                .skip(a)
                .step_by(dims)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                    (l.min(v), h.max(v))
                });
            lo[a] = mn;
            ext[a] = mx - mn;
        }
        // A cube side giving ~one centre per bucket over the spread axes.
        let spread: Vec<f64> = ext[..dims].iter().copied().filter(|&e| e > 0.0).collect();
        let side = if spread.is_empty() {
            1.0
        } else {
            (spread.iter().product::<f64>() / m as f64).powf(1.0 / spread.len() as f64)
        };
        let mut width = [1.0; 3];
        let mut n = [1usize; 3];
        for a in 0..dims {
            if ext[a] > 0.0 {
                n[a] = ((ext[a] / side) as usize + 1).min(m.max(1));
                width[a] = ext[a] / n[a] as f64 * (1.0 + 1e-12);
            }
        }
        let mut b = Buckets {
            dims,
            lo,
            width,
            n,
            start: vec![],
            order: vec![],
        };
        let ids: Vec<usize> = centers
            .chunks_exact(dims)
            .map(|c| b.id(&b.cell_of(c)))
            .collect();
        let (start, order) = voxfield_core::group::group_by_key(&ids, n[..dims].iter().product());
        b.start = start;
        b.order = order;
        b
    }

    /// The bucket of `p`, clamped into the grid.
    fn cell_of(&self, p: &[f64]) -> [usize; 3] {
        let mut c = [0usize; 3];
        for a in 0..self.dims {
            let k = ((p[a] - self.lo[a]) / self.width[a]).floor();
            c[a] = k.clamp(0.0, (self.n[a] - 1) as f64) as usize;
        }
        c
    }

    fn id(&self, c: &[usize; 3]) -> usize {
        (0..self.dims).fold(0, |id, a| id * self.n[a] + c[a])
    }

    /// A lower bound on the distance from `p` to any centre in a bucket at
    /// Chebyshev ring `r` or beyond around `c`; None when there is none.
    fn ring_bound(&self, p: &[f64], c: &[usize; 3], r: usize) -> Option<f64> {
        // Squared gap from p to the bucket grid's box on each axis.
        let mut gap2 = [0.0; 3];
        for a in 0..self.dims {
            let (l, h) = (self.lo[a], self.lo[a] + self.n[a] as f64 * self.width[a]);
            let g = (l - p[a]).max(p[a] - h).max(0.0);
            gap2[a] = g * g;
        }
        let rest: f64 = gap2[..self.dims].iter().sum();
        let mut best: Option<f64> = None;
        for a in 0..self.dims {
            let others = rest - gap2[a];
            let mut consider = |d: f64| {
                let v = (d.max(0.0) * d.max(0.0) + others).sqrt();
                best = Some(best.map_or(v, |b: f64| b.min(v)));
            };
            if c[a] >= r {
                // Buckets at index ≤ c − r end at lo + (c − r + 1)·w.
                consider(p[a] - (self.lo[a] + (c[a] - r + 1) as f64 * self.width[a]));
            }
            if c[a] + r < self.n[a] {
                consider(self.lo[a] + (c[a] + r) as f64 * self.width[a] - p[a]);
            }
        }
        best
    }

    /// The nearest centre to `p` within `limit` (index, distance): with `tie`,
    /// the lowest index among centres within `tie` of the nearest. `skip`
    /// excludes one centre (a centre's own index, for spacing estimates).
    pub fn nearest(
        &self,
        centers: &[f64],
        p: &[f64],
        tie: f64,
        limit: f64,
        skip: Option<usize>,
    ) -> Option<(usize, f64)> {
        let d = self.dims;
        let c = self.cell_of(p);
        // Squared distances while searching (one root at the end). Candidates
        // within `tie` of the best so far, (squared distance, index): a few, so
        // they live on the stack unless an unusual tie overflows them.
        let within = |best2: f64| {
            let b = best2.sqrt() + tie;
            (b * b).max(best2)
        };
        let mut stack = [(0.0f64, 0usize); 16];
        let mut spill: Vec<(f64, usize)> = vec![];
        let mut n = 0usize;
        let mut best2 = f64::INFINITY;
        let mut reach2 = f64::INFINITY;
        let mut r = 0usize;
        loop {
            if r > 0 {
                match self.ring_bound(p, &c, r) {
                    Some(lb) if lb <= best2.sqrt().min(limit) + tie => {}
                    _ => break,
                }
            }
            self.visit_ring(&c, r, |id| {
                for &j in &self.order[self.start[id] as usize..self.start[id + 1] as usize] {
                    let j = j as usize;
                    if Some(j) == skip {
                        continue;
                    }
                    let q = &centers[j * d..(j + 1) * d];
                    let e2: f64 = p.iter().zip(q).map(|(x, y)| (x - y) * (x - y)).sum();
                    if e2 > reach2 {
                        continue;
                    }
                    if e2 < best2 {
                        best2 = e2;
                        reach2 = within(best2);
                        let keep = |&(x, _): &(f64, usize)| x <= reach2;
                        spill.retain(keep);
                        let mut k = 0;
                        for i in 0..n {
                            if keep(&stack[i]) {
                                stack[k] = stack[i];
                                k += 1;
                            }
                        }
                        n = k;
                    }
                    if n < stack.len() {
                        stack[n] = (e2, j);
                        n += 1;
                    } else {
                        spill.push((e2, j));
                    }
                }
            });
            r += 1;
        }
        let best = best2.sqrt();
        if best > limit {
            return None;
        }
        stack[..n]
            .iter()
            .chain(&spill)
            .filter(|&&(e2, _)| e2 == best2 || e2.sqrt() - best < tie)
            .map(|&(_, j)| j)
            .min()
            .map(|j| (j, best))
    }

    /// Calls `f(bucket id)` for every bucket at Chebyshev distance exactly `r` from `c`.
    fn visit_ring(&self, c: &[usize; 3], r: usize, mut f: impl FnMut(usize)) {
        let d = self.dims;
        let mut lo = [0usize; 3];
        let mut hi = [0usize; 3];
        for a in 0..d {
            lo[a] = c[a].saturating_sub(r);
            hi[a] = (c[a] + r).min(self.n[a] - 1);
        }
        let mut idx = lo;
        loop {
            let on_ring = (0..d).any(|a| idx[a].abs_diff(c[a]) == r);
            if on_ring {
                f(self.id(&idx));
            }
            if !voxfield_core::odometer::step_inclusive(&mut idx[..d], &lo[..d], &hi[..d]) {
                return;
            }
        }
    }
}

impl Environment {
    /// The typical bin spacing (0.6.0): the median distance from up to 100
    /// evenly spaced bins to their nearest other bin; ∞ with one bin. Worked
    /// out once, with the bucket grid.
    pub fn typical_spacing(&self) -> f64 {
        self.nearest_index().spacing
    }

    /// `typical_spacing` from a bucket grid over this environment's centres.
    pub(crate) fn spacing_with(&self, buckets: &Buckets) -> f64 {
        let n = self.n_bins();
        if n <= 1 {
            return f64::INFINITY;
        }
        let s = n.min(100);
        let picks = linspace(0.0, (n - 1) as f64, s - 1);
        let mut d: Vec<f64> = picks
            .iter()
            .map(|&x| {
                let b = x as usize;
                buckets
                    .nearest(&self.centers, self.center(b), 0.0, f64::INFINITY, Some(b))
                    .map_or(f64::INFINITY, |(_, d)| d)
            })
            .collect();
        d.sort_by(f64::total_cmp);
        if s % 2 == 1 {
            d[s / 2]
        } else {
            (d[s / 2 - 1] + d[s / 2]) / 2.0
        }
    }

    /// The nearest bin of each row of `points` and its distance (−1 and ∞
    /// beyond `reach`), with 0.6.0's tie rule; rows in parallel. NaN or
    /// infinite coordinates are refused.
    pub fn map_points_to_bins(
        &self,
        points: &[f64],
        tie: TieBreak,
        reach: Reach,
    ) -> Result<(Vec<i64>, Vec<f64>)> {
        let d = self.n_dims();
        if !points.len().is_multiple_of(d) {
            return Err(Error::invalid(format!(
                "points of {} values are not rows of {d} coordinates",
                points.len()
            )));
        }
        if let Some(i) = points.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "point {} has a non-finite coordinate ({})",
                i / d,
                points[i]
            )));
        }
        let limit = match reach {
            Reach::Distance(x) if x >= 0.0 => x,
            Reach::Spacings(f) if f > 0.0 => f * self.typical_spacing(),
            _ => {
                return Err(Error::invalid(format!(
                    "{reach:?}: the maximum distance must be ≥ 0 and the factor > 0"
                )))
            }
        };
        let tie = match tie {
            TieBreak::LowestIndex => TIE,
            TieBreak::ClosestCenter => 0.0,
        };
        let buckets = self.buckets();
        let grid = self.grid("").ok();
        Ok(points
            .par_chunks_exact(d)
            .with_min_len(1024)
            .map(|p| {
                let own = grid.and_then(|g| self.own_centre(g, p, tie));
                match own.or_else(|| buckets.nearest(&self.centers, p, tie, limit, None)) {
                    Some((j, dist)) if dist <= limit => (j as i64, dist),
                    _ => (-1, f64::INFINITY),
                }
            })
            .unzip())
    }

    /// On a grid, the centre of the active cell holding `p` when no other
    /// centre can be as near (within `tie`): every other centre lies across
    /// one of the cell's faces, so it is at least as far as that face's gap
    /// (the distance to the face plus half the next cell) combined with the
    /// nearest centre coordinate along the other axes. None sends the point
    /// to the bucket search (inactive cells, points near a face).
    fn own_centre(&self, g: &crate::Grid, p: &[f64], tie: f64) -> Option<(usize, f64)> {
        let f = g.flat_at(p)?;
        let b = usize::try_from(self.flat_to_bin[f]).ok()?;
        let c = self.center(b);
        let d = p.len();
        let idx = g.unflat(f);
        let d2: f64 = p.iter().zip(c).map(|(x, y)| (x - y) * (x - y)).sum();
        // Per axis: the squared offset to the nearest centre coordinate along it.
        let mut near2 = [0.0f64; 3];
        for a in 0..d {
            let e = &g.edges[a];
            let k = idx[a];
            let mut m = (p[a] - c[a]).abs();
            if k > 0 {
                m = m.min((p[a] - (e[k - 1] + e[k]) / 2.0).abs());
            }
            if k + 2 < e.len() {
                m = m.min((p[a] - (e[k + 1] + e[k + 2]) / 2.0).abs());
            }
            near2[a] = m * m;
        }
        let rest: f64 = near2[..d].iter().sum();
        let mut lb2 = f64::INFINITY;
        for a in 0..d {
            let e = &g.edges[a];
            let k = idx[a];
            let others = rest - near2[a];
            if k > 0 {
                let gap = (p[a] - e[k]) + (e[k] - e[k - 1]) / 2.0;
                lb2 = lb2.min(gap * gap + others);
            }
            if k + 2 < e.len() {
                let gap = (e[k + 1] - p[a]) + (e[k + 2] - e[k + 1]) / 2.0;
                lb2 = lb2.min(gap * gap + others);
            }
        }
        let dist = d2.sqrt();
        // A margin of a few ulps keeps rounding in the bound from deciding a tie.
        let reach = dist + tie + 4.0 * f64::EPSILON * (1.0 + dist);
        (lb2 > reach * reach).then_some((b, dist))
    }

    /// `field` (one value per bin) interpolated linearly between bin centres
    /// at each row of `points`, as `scipy`'s `RegularGridInterpolator` over
    /// the grid's centres with inactive cells NaN: NaN outside the hull of the
    /// centres and wherever a corner of the point's cell is inactive (even one
    /// with zero weight). Needs at least two centres per axis.
    pub fn interpolate_linear(&self, field: &[f64], points: &[f64]) -> Result<Vec<f64>> {
        let d = self.n_dims();
        if field.len() != self.n_bins() {
            return Err(Error::invalid(format!(
                "the field has {} values for {} bins",
                field.len(),
                self.n_bins()
            )));
        }
        if !points.len().is_multiple_of(d) {
            return Err(Error::invalid("points are not whole rows"));
        }
        let grid = self.grid("linear interpolation")?;
        let centres: Vec<Vec<f64>> = grid
            .edges
            .iter()
            .map(|e| e.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect())
            .collect();
        if let Some(a) = centres.iter().position(|c| c.len() < 2) {
            return Err(Error::invalid(format!(
                "linear interpolation needs at least 2 bins along each axis; axis {a} has 1"
            )));
        }
        Ok(points
            .par_chunks_exact(d)
            .with_min_len(1024)
            .map(|p| self.multilinear(grid, field, &centres, p))
            .collect())
    }

    fn multilinear(
        &self,
        grid: &crate::Grid,
        field: &[f64],
        centres: &[Vec<f64>],
        p: &[f64],
    ) -> f64 {
        let d = p.len();
        let mut base = [0usize; 3];
        let mut frac = [0.0; 3];
        for a in 0..d {
            let g = &centres[a];
            let x = p[a];
            if !(x >= g[0] && x <= g[g.len() - 1]) {
                return f64::NAN;
            }
            let i = (g.partition_point(|&v| v <= x).max(1) - 1).min(g.len() - 2);
            base[a] = i;
            frac[a] = (x - g[i]) / (g[i + 1] - g[i]);
        }
        let mut sum = 0.0;
        for corner in 0..(1usize << d) {
            let mut f = 0;
            let mut w = 1.0;
            for a in 0..d {
                let up = (corner >> (d - 1 - a)) & 1;
                f = f * grid.shape[a] + base[a] + up;
                w *= if up == 1 { frac[a] } else { 1.0 - frac[a] };
            }
            let b = self.flat_to_bin[f];
            if b < 0 {
                return f64::NAN;
            }
            sum += w * field[b as usize];
        }
        sum
    }
}

//! Regular N-D grids (1-3-D) with neurospatial 0.6.0's rules: from samples, each
//! axis spans `[min − h/2, max + h/2]` in `ceil(span / h)` equal bins (so the
//! actual width is ≤ the requested `h`), edges as `np.linspace`; a cell is
//! active when more than `threshold` samples fall in it (`np.histogramdd`
//! counting, the top edge in the last bin); bins are the active cells in C order.

use voxfield_core::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// Bin edges per axis (`shape[d] + 1` each).
    pub edges: Vec<Vec<f64>>,
    pub shape: Vec<usize>,
    /// Active cells, C order (the last axis fastest).
    pub active: Vec<bool>,
    /// Per axis: cells per unit length (for the O(1) cell guess).
    per_unit: Vec<f64>,
}

/// Axes a grid may have.
pub const MAX_DIMS: usize = 3;
/// Cells a grid may have: each costs a bool and an i64 (and an active bin its
/// centre and up to 26 edges), so 2^26 cells stay under ~1 GiB before edges.
pub const MAX_CELLS: usize = 1 << 26;

/// 0.6.0's optional shaping of a grid from samples. The morphology (2-D and
/// up; scipy's `generate_binary_structure(n, 2)`: neighbours differing in at
/// most two axes, so 8 in 2-D and 18 in 3-D; cells outside the grid count as
/// inactive) runs in this order: closing, hole filling, dilation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shaping {
    /// Closing (dilation then erosion; erosion also clears the grid's outer cells).
    pub close_gaps: bool,
    /// Inactive cells not connected to the grid's border become active.
    pub fill_holes: bool,
    /// Cells next to an active cell become active.
    pub dilate: bool,
    /// One more cell on each side of every axis (as wide as the first), kept
    /// inactive when bins are inferred.
    pub boundary_bins: bool,
}

/// `n + 1` edges from `lo` to `hi` as `np.linspace` computes them
/// (`i·step + lo`, the last one exactly `hi`).
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let step = (hi - lo) / n as f64;
    let mut e: Vec<f64> = (0..=n).map(|i| i as f64 * step + lo).collect();
    e[n] = hi;
    e
}

impl Grid {
    /// A grid over `points` (`dims` coordinates per row): rows with a NaN are
    /// dropped (as 0.6.0), infinite coordinates refused. `threshold`: a cell is
    /// active with more than this many samples; `None` makes every cell active
    /// (`infer_active_bins=False`).
    pub fn from_samples(
        points: &[f64],
        dims: usize,
        bin_size: &[f64],
        threshold: Option<usize>,
        shaping: Shaping,
    ) -> Result<Grid> {
        if !(1..=MAX_DIMS).contains(&dims) {
            return Err(Error::invalid(format!(
                "positions have {dims} coordinates; environments are 1-D to {MAX_DIMS}-D"
            )));
        }
        if !points.len().is_multiple_of(dims) {
            return Err(Error::invalid("positions are not whole rows"));
        }
        let h = match bin_size.len() {
            1 => vec![bin_size[0]; dims],
            n if n == dims => bin_size.to_vec(),
            n => {
                return Err(Error::invalid(format!(
                    "bin_size has {n} values for {dims}-D positions (give 1 or {dims})"
                )))
            }
        };
        if let Some(b) = h.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(Error::invalid(format!(
                "bin_size {b} must be a positive number"
            )));
        }
        if let Some(i) = points.iter().position(|v| v.is_infinite()) {
            return Err(Error::invalid(format!(
                "position {} (row {}) is infinite",
                points[i],
                i / dims
            )));
        }
        let rows: Vec<&[f64]> = points
            .chunks_exact(dims)
            .filter(|r| !r.iter().any(|v| v.is_nan()))
            .collect();
        if rows.is_empty() {
            return Err(Error::invalid(
                "no samples: positions are empty or every row has a NaN",
            ));
        }
        let mut edges = vec![];
        for d in 0..dims {
            let lo = rows.iter().map(|r| r[d]).fold(f64::INFINITY, f64::min) - h[d] / 2.0;
            let hi = rows.iter().map(|r| r[d]).fold(f64::NEG_INFINITY, f64::max) + h[d] / 2.0;
            let n = ((hi - lo) / h[d]).ceil().max(1.0);
            if n > MAX_CELLS as f64 {
                return Err(Error::invalid(format!(
                    "axis {d} would have {n} bins: bin_size {} is too small for the span",
                    h[d]
                )));
            }
            let mut e = linspace(lo, hi, n as usize);
            if shaping.boundary_bins {
                let step = e[1] - e[0];
                e.insert(0, e[0] - step);
                e.push(e[e.len() - 1] + step);
            }
            edges.push(e);
        }
        let mut grid = Grid::with_edges(edges, true)?;
        if let Some(t) = threshold {
            let mut counts = vec![0usize; grid.active.len()];
            for r in &rows {
                counts[grid.flat_counting(r)] += 1;
            }
            for (a, c) in grid.active.iter_mut().zip(counts) {
                *a = c > t;
            }
            if dims > 1 {
                if shaping.close_gaps {
                    grid.active = grid.erode(&grid.dilate(&grid.active));
                }
                if shaping.fill_holes {
                    grid.active = grid.fill_holes(&grid.active);
                }
                if shaping.dilate {
                    grid.active = grid.dilate(&grid.active);
                }
            }
            if shaping.boundary_bins {
                for f in 0..grid.active.len() {
                    if grid.on_border(f) {
                        grid.active[f] = false;
                    }
                }
            }
        }
        Ok(grid)
    }

    /// Whether a flat cell is on the grid's outer layer.
    fn on_border(&self, f: usize) -> bool {
        self.unflat(f)
            .iter()
            .zip(&self.shape)
            .any(|(&i, &n)| i == 0 || i + 1 == n)
    }

    /// Calls `visit(g)` for each cell g ≠ f of f's morphology neighbourhood (at
    /// most two axes differ by one) inside the grid; returns whether the
    /// neighbourhood reaches outside the grid.
    fn neighbourhood(&self, f: usize, mut visit: impl FnMut(usize)) -> bool {
        let idx = self.unflat(f);
        let d = self.n_dims();
        let mut outside = false;
        'offs: for c in 0..3usize.pow(d as u32) {
            let offset = |a: usize| (c / 3usize.pow(a as u32) % 3) as i64 - 1;
            let moved = (0..d).filter(|&a| offset(a) != 0).count();
            if moved > 2 {
                continue;
            }
            let mut g = 0usize;
            for (a, &i) in idx.iter().enumerate() {
                let o = offset(a);
                let v = i as i64 + o;
                if v < 0 || v >= self.shape[a] as i64 {
                    outside = true;
                    continue 'offs;
                }
                g = g * self.shape[a] + v as usize;
            }
            if moved > 0 {
                visit(g);
            }
        }
        outside
    }

    /// Binary dilation (`scipy.ndimage`, border 0).
    fn dilate(&self, m: &[bool]) -> Vec<bool> {
        (0..m.len())
            .map(|f| {
                let mut any = m[f];
                self.neighbourhood(f, |g| any |= m[g]);
                any
            })
            .collect()
    }

    /// Binary erosion; outside counts as inactive.
    fn erode(&self, m: &[bool]) -> Vec<bool> {
        (0..m.len())
            .map(|f| {
                let mut all = m[f];
                let outside = self.neighbourhood(f, |g| all &= m[g]);
                all && !outside
            })
            .collect()
    }

    /// `scipy.ndimage.binary_fill_holes`: inactive cells that inactive paths do
    /// not join to the border become active.
    fn fill_holes(&self, m: &[bool]) -> Vec<bool> {
        let mut reached = vec![false; m.len()];
        let mut queue: std::collections::VecDeque<usize> = (0..m.len())
            .filter(|&f| !m[f] && self.on_border(f))
            .collect();
        queue.iter().for_each(|&f| reached[f] = true);
        while let Some(f) = queue.pop_front() {
            self.neighbourhood(f, |g| {
                if !m[g] && !reached[g] {
                    reached[g] = true;
                    queue.push_back(g);
                }
            });
        }
        reached.iter().map(|r| !r).collect()
    }

    /// A grid with these edges (each strictly increasing), all cells `active`.
    pub fn with_edges(edges: Vec<Vec<f64>>, active: bool) -> Result<Grid> {
        if !(1..=MAX_DIMS).contains(&edges.len()) {
            return Err(Error::invalid(format!(
                "{} axes: environments are 1-D to {MAX_DIMS}-D",
                edges.len()
            )));
        }
        for (d, e) in edges.iter().enumerate() {
            if e.len() < 2
                || e.windows(2)
                    .any(|w| !w[0].is_finite() || w[1].is_nan() || w[1] <= w[0])
                || !e[e.len() - 1].is_finite()
            {
                return Err(Error::invalid(format!(
                    "grid edges of axis {d} must be at least 2 finite, strictly increasing values"
                )));
            }
        }
        let shape: Vec<usize> = edges.iter().map(|e| e.len() - 1).collect();
        let cells = shape
            .iter()
            .try_fold(1usize, |a, &n| a.checked_mul(n))
            .filter(|&c| c <= MAX_CELLS)
            .ok_or_else(|| Error::invalid(format!("a grid of {shape:?} cells is too large")))?;
        let per_unit = edges
            .iter()
            .map(|e| (e.len() - 1) as f64 / (e[e.len() - 1] - e[0]))
            .collect();
        Ok(Grid {
            edges,
            shape,
            active: vec![active; cells],
            per_unit,
        })
    }

    pub fn n_dims(&self) -> usize {
        self.shape.len()
    }

    /// Flat C-order index of per-axis indices.
    pub fn flat(&self, idx: &[usize]) -> usize {
        idx.iter().zip(&self.shape).fold(0, |f, (&i, &n)| f * n + i)
    }

    /// Per-axis indices of a flat index.
    pub fn unflat(&self, mut f: usize) -> Vec<usize> {
        let mut idx = vec![0; self.n_dims()];
        for d in (0..self.n_dims()).rev() {
            idx[d] = f % self.shape[d];
            f /= self.shape[d];
        }
        idx
    }

    /// The cell of `x` on axis `d` as `np.digitize(x, edges) − 1`: half-open
    /// `[e_k, e_k+1)`, None below the first edge, at or past the last, or NaN.
    /// O(1): a guess from the mean width, corrected against the exact edges.
    pub fn axis_cell(&self, d: usize, x: f64) -> Option<usize> {
        let e = &self.edges[d];
        let n = e.len() - 1;
        if !(x >= e[0] && x < e[n]) {
            return None;
        }
        let mut k = (((x - e[0]) * self.per_unit[d]) as usize).min(n - 1);
        while k > 0 && x < e[k] {
            k -= 1;
        }
        while k + 1 < n && x >= e[k + 1] {
            k += 1;
        }
        Some(k)
    }

    /// The flat cell containing `p` (any cell, active or not), or None.
    pub fn flat_at(&self, p: &[f64]) -> Option<usize> {
        let mut f = 0;
        for (d, &x) in p.iter().enumerate().take(self.n_dims()) {
            f = f * self.shape[d] + self.axis_cell(d, x)?;
        }
        Some(f)
    }

    /// The cell `np.histogramdd` counts `p` in (inside the edges): as
    /// `axis_cell`, but a value on the last edge counts in the last cell.
    fn flat_counting(&self, p: &[f64]) -> usize {
        let mut f = 0;
        for (d, &x) in p.iter().enumerate() {
            let k = self.axis_cell(d, x).unwrap_or(self.shape[d] - 1);
            f = f * self.shape[d] + k;
        }
        f
    }

    /// Centre of a flat cell (edge midpoints).
    pub fn center_of_flat(&self, f: usize) -> Vec<f64> {
        self.unflat(f)
            .iter()
            .enumerate()
            .map(|(d, &i)| (self.edges[d][i] + self.edges[d][i + 1]) / 2.0)
            .collect()
    }

    /// Area (length, volume) of a flat cell: the product of its widths.
    pub fn size_of_flat(&self, f: usize) -> f64 {
        self.unflat(f)
            .iter()
            .enumerate()
            .map(|(d, &i)| self.edges[d][i + 1] - self.edges[d][i])
            .product()
    }

    /// The cells the straight segment `a → b` crosses, each with its share of
    /// `time` by length, into `out` (flat index, time); cells outside the grid
    /// get nothing. 0.6.0's `time_allocation='linear'`: the segment is cut at
    /// every edge it crosses strictly inside, each piece goes to the cell of its
    /// midpoint; direction components under 1e-12 cross no edges.
    pub fn segment_cells(&self, a: &[f64], b: &[f64], time: f64, out: &mut Vec<(usize, f64)>) {
        const EPS: f64 = 1e-12;
        out.clear();
        let d = self.n_dims();
        let dir: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
        let length = dir.iter().map(|v| v * v).sum::<f64>().sqrt();
        if length < EPS {
            if let Some(f) = self.flat_at(a) {
                out.push((f, time));
            }
            return;
        }
        let dir: Vec<f64> = dir.iter().map(|v| v / length).collect();
        let mut cuts = vec![0.0];
        for ax in 0..d {
            if dir[ax].abs() < EPS {
                continue;
            }
            let e = &self.edges[ax];
            // Edges between the two ends (one spare each side for rounding).
            let (lo, hi) = (a[ax].min(b[ax]), a[ax].max(b[ax]));
            let first = e.partition_point(|&v| v < lo).saturating_sub(1);
            let last = (e.partition_point(|&v| v <= hi) + 1).min(e.len());
            for &edge in &e[first..last] {
                let t = (edge - a[ax]) / dir[ax];
                if 0.0 < t && t < length {
                    cuts.push(t);
                }
            }
        }
        cuts.sort_by(f64::total_cmp);
        cuts.push(length);
        let mut mid = vec![0.0; d];
        for w in cuts.windows(2) {
            let t = (w[0] + w[1]) / 2.0;
            for ax in 0..d {
                mid[ax] = a[ax] + t * dir[ax];
            }
            if let Some(f) = self.flat_at(&mid) {
                out.push((f, time * ((w[1] - w[0]) / length)));
            }
        }
    }
}

//! Hexagonal 2-D lattices with neurospatial 0.6.0's rules (`from_samples(...,
//! layout='Hexagonal')`): pointy-top hexagons `width` across the flats, rows
//! `√3/2 · width` apart with odd rows shifted half a width right, the first
//! centre at the samples' minimum corner, `ceil(span / step) + 1` columns and
//! rows; a point belongs to the hexagon found by cube rounding (ties to even,
//! as `np.round`); a cell is active with at least `max(threshold, 1)` samples
//! (0.6.0 keeps counts ≥ the threshold among cells that have samples).

use voxfield_core::{Error, Result};

use crate::grid::MAX_CELLS;

const SQRT3: f64 = 1.732_050_807_568_877_2;

#[derive(Clone, Debug, PartialEq)]
pub struct Hex {
    /// Flat-to-flat width (the `bin_size`).
    pub width: f64,
    /// Centre-to-vertex radius, width / √3.
    pub radius: f64,
    /// The centre of cell (row 0, column 0): the samples' minimum x and y.
    pub origin: [f64; 2],
    pub rows: usize,
    pub cols: usize,
    /// Active cells, row-major (`row · cols + col`).
    pub active: Vec<bool>,
}

impl Hex {
    /// A lattice over 2-D `points` (rows with a NaN dropped, infinities
    /// refused) spanning their bounding box, or `range` ((x0, x1), (y0, y1),
    /// 0.6.0's `dimension_ranges`) when given; `threshold` None makes every
    /// cell active.
    pub fn from_samples(
        points: &[f64],
        width: f64,
        threshold: Option<usize>,
        range: Option<[[f64; 2]; 2]>,
    ) -> Result<Hex> {
        if !(width.is_finite() && width > 0.0) {
            return Err(Error::invalid(format!(
                "bin_size (hexagon width) {width} must be a positive number"
            )));
        }
        if !points.len().is_multiple_of(2) {
            return Err(Error::invalid(
                "a hexagonal layout needs 2-D positions (rows of 2 coordinates)",
            ));
        }
        if let Some(i) = points.iter().position(|v| v.is_infinite()) {
            return Err(Error::invalid(format!(
                "position {} (row {}) is infinite",
                points[i],
                i / 2
            )));
        }
        let rows: Vec<&[f64]> = points
            .chunks_exact(2)
            .filter(|r| !r[0].is_nan() && !r[1].is_nan())
            .collect();
        let range = match range {
            Some(r) => {
                if r.iter().flatten().any(|v| !v.is_finite()) {
                    return Err(Error::invalid("dimension_ranges must be finite"));
                }
                [
                    [r[0][0].min(r[0][1]), r[0][0].max(r[0][1])],
                    [r[1][0].min(r[1][1]), r[1][0].max(r[1][1])],
                ]
            }
            None if rows.is_empty() => {
                return Err(Error::invalid(
                    "no samples: positions are empty or every row has a NaN",
                ))
            }
            None => {
                let lo = |a: usize| rows.iter().map(|r| r[a]).fold(f64::INFINITY, f64::min);
                let hi = |a: usize| rows.iter().map(|r| r[a]).fold(f64::NEG_INFINITY, f64::max);
                [[lo(0), hi(0)], [lo(1), hi(1)]]
            }
        };
        let step = SQRT3 / 2.0 * width;
        let count = |span: f64, s: f64| ((span / s).ceil() + 1.0).max(1.0);
        let (ncols, nrows) = (
            count(range[0][1] - range[0][0], width),
            count(range[1][1] - range[1][0], step),
        );
        if ncols * nrows > MAX_CELLS as f64 {
            return Err(Error::invalid(format!(
                "a hexagonal lattice of {nrows} × {ncols} cells is too large (at most {MAX_CELLS}): bin_size {width} is too small"
            )));
        }
        let mut hex = Hex {
            width,
            radius: width / SQRT3,
            origin: [range[0][0], range[1][0]],
            rows: nrows as usize,
            cols: ncols as usize,
            active: vec![threshold.is_none(); nrows as usize * ncols as usize],
        };
        if let Some(t) = threshold {
            let mut counts = vec![0usize; hex.active.len()];
            for r in &rows {
                if let Some(f) = hex.flat_at(r) {
                    counts[f] += 1;
                }
            }
            for (a, c) in hex.active.iter_mut().zip(counts) {
                *a = c >= t.max(1);
            }
        }
        Ok(hex)
    }

    /// 0.6.0's `dimension_ranges` that rebuild this lattice's rows and columns
    /// (spans half a step short of the last centre, so `ceil` cannot round up).
    pub fn range(&self) -> [[f64; 2]; 2] {
        let span = |n: usize, s: f64| if n <= 1 { 0.0 } else { (n as f64 - 1.5) * s };
        [
            [self.origin[0], self.origin[0] + span(self.cols, self.width)],
            [
                self.origin[1],
                self.origin[1] + span(self.rows, SQRT3 / 2.0 * self.width),
            ],
        ]
    }

    /// The cell containing `p` (cube rounding of its axial coordinates), or
    /// None outside the lattice or for NaN.
    pub fn flat_at(&self, p: &[f64]) -> Option<usize> {
        let (x, y) = (p[0] - self.origin[0], p[1] - self.origin[1]);
        if x.is_nan() || y.is_nan() {
            return None;
        }
        let q = (SQRT3 / 3.0 * x - 1.0 / 3.0 * y) / self.radius;
        let r = (2.0 / 3.0 * y) / self.radius;
        let s = -q - r;
        let (qr, rr, sr) = (
            q.round_ties_even(),
            r.round_ties_even(),
            s.round_ties_even(),
        );
        let (dq, dr, ds) = ((qr - q).abs(), (rr - r).abs(), (sr - s).abs());
        let (mut qa, mut ra) = (qr, rr);
        if dq > dr && dq > ds {
            qa = -rr - sr;
        } else if dr > ds {
            ra = -qr - sr;
        }
        if !(qa.abs() < 1e15 && ra.abs() < 1e15) {
            return None;
        }
        let (qa, ra) = (qa as i64, ra as i64);
        let col = qa + (ra - (ra & 1)) / 2;
        let row = ra;
        if col < 0 || row < 0 || col >= self.cols as i64 || row >= self.rows as i64 {
            return None;
        }
        Some(row as usize * self.cols + col as usize)
    }

    /// The centre of a cell.
    pub fn center_of_flat(&self, f: usize) -> [f64; 2] {
        let (row, col) = (f / self.cols, f % self.cols);
        let shift = if row % 2 == 1 { 0.5 } else { 0.0 };
        [
            (col as f64 + shift) * self.width + self.origin[0],
            row as f64 * (SQRT3 / 2.0 * self.width) + self.origin[1],
        ]
    }

    /// The (up to six) cells next to `f`.
    pub fn neighbours(&self, f: usize) -> impl Iterator<Item = usize> + '_ {
        let (row, col) = ((f / self.cols) as i64, (f % self.cols) as i64);
        let deltas: [(i64, i64); 6] = if row % 2 == 1 {
            [(1, 0), (-1, 0), (0, 1), (1, 1), (0, -1), (1, -1)]
        } else {
            [(1, 0), (-1, 0), (-1, 1), (0, 1), (-1, -1), (0, -1)]
        };
        deltas.into_iter().filter_map(move |(dc, dr)| {
            let (r, c) = (row + dr, col + dc);
            (r >= 0 && c >= 0 && r < self.rows as i64 && c < self.cols as i64)
                .then(|| r as usize * self.cols + c as usize)
        })
    }

    /// The area of one hexagon, 3√3/2 · radius².
    pub fn area(&self) -> f64 {
        3.0 * SQRT3 / 2.0 * (self.radius * self.radius)
    }
}

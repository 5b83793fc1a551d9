//! Evaluation: s(x) = Σ_C w_C(x) s_C(x) / Σ_C w_C(x) over the (at most 2^d in the
//! regular case) cells whose weight is non-zero at x, summed in cell order so the
//! result does not depend on the thread count.

use rayon::prelude::*;
use voxfield_core::{Error, Field, Result};

use crate::model::RbfModel;

/// Points per parallel task.
const TASK: usize = 1024;
/// Points evaluated per pass (bounds the sort and scratch memory).
const PASS: usize = 1 << 20;

impl RbfModel {
    pub fn dim(&self) -> usize {
        self.info.dim
    }

    pub fn channels(&self) -> usize {
        self.info.channels
    }

    /// The cells whose box meets the domain holding `x`.
    #[inline]
    fn candidates(&self, x: &[f64]) -> &[u32] {
        let g = self.info.grid.id(self.info.grid.coords_of(x));
        &self.cover[self.cover_start[g] as usize..self.cover_start[g + 1] as usize]
    }

    /// All channels at one point into `out` (NaN for non-finite positions or
    /// positions no cell reaches).
    #[inline]
    pub fn eval_one(&self, x: &[f64], out: &mut [f64]) {
        let dim = self.info.dim;
        out.fill(0.0);
        if !x[..dim].iter().all(|v| v.is_finite()) {
            out.fill(f64::NAN);
            return;
        }
        let mut wsum = 0.0;
        for &k in self.candidates(x) {
            let cell = &self.cells[k as usize];
            let w = cell.bounds.weight(dim, self.info.ramp, x);
            if w > 0.0 {
                cell.eval_into(dim, x, w, out);
                wsum += w;
            }
        }
        if wsum > 0.0 {
            if wsum != 1.0 {
                out.iter_mut().for_each(|o| *o /= wsum);
            }
        } else {
            out.fill(f64::NAN);
        }
    }

    /// Σ of the blending weights at `x` (exactly 1 up to rounding wherever no cell
    /// was grown; the evaluation divides by it in any case).
    pub fn weight_sum(&self, x: &[f64]) -> f64 {
        self.candidates(x)
            .iter()
            .map(|&k| {
                self.cells[k as usize]
                    .bounds
                    .weight(self.info.dim, self.info.ramp, x)
            })
            .sum()
    }

    /// The value of one channel and its gradient at `x`.
    pub fn eval_grad_one(&self, x: &[f64], channel: usize) -> (f64, [f64; 3]) {
        let dim = self.info.dim;
        if !x[..dim].iter().all(|v| v.is_finite()) {
            return (f64::NAN, [f64::NAN; 3]);
        }
        let (mut num, mut wsum) = (0.0, 0.0);
        let (mut gnum, mut gw) = ([0.0; 3], [0.0; 3]);
        for &k in self.candidates(x) {
            let cell = &self.cells[k as usize];
            let (w, dw) = cell.bounds.weight_grad(dim, self.info.ramp, x);
            if w > 0.0 || dw[..dim].iter().any(|&d| d != 0.0) {
                let (s, ds) = cell.eval_grad(dim, x, channel);
                num += w * s;
                wsum += w;
                for a in 0..dim {
                    gnum[a] += dw[a] * s + w * ds[a];
                    gw[a] += dw[a];
                }
            }
        }
        if wsum <= 0.0 {
            return (f64::NAN, [f64::NAN; 3]);
        }
        let s = num / wsum;
        let mut g = [0.0; 3];
        for a in 0..dim {
            g[a] = (gnum[a] - s * gw[a]) / wsum;
        }
        (s, g)
    }

    /// Evaluates every channel at `points` (n × dim) into `out` (n × channels),
    /// in parallel, visiting points grouped by domain for locality.
    /// `progress(done, total)` is called between passes of 2^20 points.
    pub fn eval_points(
        &self,
        points: &[f64],
        out: &mut [f64],
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<()> {
        let (dim, c) = (self.info.dim, self.info.channels);
        if !points.len().is_multiple_of(dim) || out.len() != points.len() / dim * c {
            return Err(Error::invalid(format!(
                "{} coordinates and {} outputs do not match {dim}-D points with {c} channel(s)",
                points.len(),
                out.len()
            )));
        }
        let n = points.len() / dim;
        let mut done = 0;
        for (p, o) in points.chunks(PASS * dim).zip(out.chunks_mut(PASS * c)) {
            let m = p.len() / dim;
            let grid = &self.info.grid;
            let mut keyed: Vec<(u32, u32)> = p
                .par_chunks_exact(dim)
                .enumerate()
                .map(|(i, x)| (grid.id(grid.coords_of(x)) as u32, i as u32))
                .collect();
            keyed.par_sort_unstable();
            let mut sorted = vec![0.0; m * c];
            sorted
                .par_chunks_mut(TASK * c)
                .zip(keyed.par_chunks(TASK))
                .for_each(|(s, keys)| {
                    for (o, &(_, i)) in s.chunks_exact_mut(c).zip(keys) {
                        let i = i as usize;
                        self.eval_one(&p[i * dim..(i + 1) * dim], o);
                    }
                });
            for (s, &(_, i)) in sorted.chunks_exact(c).zip(&keyed) {
                let i = i as usize;
                o[i * c..(i + 1) * c].copy_from_slice(s);
            }
            done += m;
            progress(done, n);
        }
        Ok(())
    }

    /// Evaluates channel `channel`'s gradient at `points` into `out` (n × dim).
    pub fn eval_gradients(&self, points: &[f64], channel: usize, out: &mut [f64]) -> Result<()> {
        let dim = self.info.dim;
        if channel >= self.info.channels {
            return Err(Error::invalid(format!(
                "channel {channel} does not exist (the model has {})",
                self.info.channels
            )));
        }
        if !points.len().is_multiple_of(dim) || out.len() != points.len() {
            return Err(Error::invalid("gradient output must be n × dim"));
        }
        out.par_chunks_mut(TASK * dim)
            .zip(points.par_chunks(TASK * dim))
            .for_each(|(o, p)| {
                for (o, x) in o.chunks_exact_mut(dim).zip(p.chunks_exact(dim)) {
                    let (_, g) = self.eval_grad_one(x, channel);
                    o.copy_from_slice(&g[..dim]);
                }
            });
        Ok(())
    }

    /// Evaluates a regular grid, `shape[a]` nodes from `lo[a]` to `hi[a]` on each
    /// axis (C order, axis 0 slowest), handing slabs of whole axis-0 rows to
    /// `sink` as (first row, values: rows × (Π other axes) × channels).
    /// Memory stays at one slab of about 2^20 nodes.
    pub fn eval_grid(
        &self,
        lo: &[f64],
        hi: &[f64],
        shape: &[usize],
        sink: &mut dyn FnMut(usize, &[f64]) -> Result<()>,
    ) -> Result<()> {
        let (dim, c) = (self.info.dim, self.info.channels);
        if lo.len() != dim || hi.len() != dim || shape.len() != dim {
            return Err(Error::invalid(format!(
                "a grid of this {dim}-D model needs {dim} bounds and {dim} sizes"
            )));
        }
        if shape.contains(&0) {
            return Err(Error::invalid(format!(
                "grid shape {shape:?} has an empty axis"
            )));
        }
        if !lo.iter().chain(hi).all(|v| v.is_finite()) {
            return Err(Error::invalid("grid bounds must be finite"));
        }
        let node = |a: usize, i: usize| {
            if shape[a] == 1 {
                lo[a]
            } else {
                lo[a] + (hi[a] - lo[a]) * (i as f64 / (shape[a] - 1) as f64)
            }
        };
        let row: usize = shape[1..].iter().product();
        let rows_per_slab = (PASS / row).max(1);
        let mut buf = Vec::new();
        let mut r0 = 0;
        while r0 < shape[0] {
            let rows = rows_per_slab.min(shape[0] - r0);
            buf.clear();
            buf.resize(rows * row * c, 0.0);
            buf.par_chunks_mut(TASK * c).enumerate().for_each(|(t, o)| {
                let mut x = [0.0; 3];
                for (j, o) in o.chunks_exact_mut(c).enumerate() {
                    let mut flat = t * TASK + j;
                    for a in (1..dim).rev() {
                        x[a] = node(a, flat % shape[a]);
                        flat /= shape[a];
                    }
                    x[0] = node(0, r0 + flat);
                    self.eval_one(&x[..dim], o);
                }
            });
            sink(r0, &buf)?;
            r0 += rows;
        }
        Ok(())
    }
}

/// A fitted model as a voxfield field over (x, y, z): 2-D models read (x, y),
/// 1-D models x. One channel.
pub struct RbfField<'a> {
    pub model: &'a RbfModel,
    pub channel: usize,
}

impl Field for RbfField<'_> {
    fn sample_block(&self, points: &[[f64; 3]], out: &mut [f64]) -> Result<()> {
        let mut vals = vec![0.0; self.model.info.channels];
        for (p, o) in points.iter().zip(out) {
            self.model.eval_one(p, &mut vals);
            *o = vals[self.channel];
        }
        Ok(())
    }
}

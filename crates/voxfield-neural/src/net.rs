//! Hash encoding + MLP as one network over a flat parameter vector: prediction,
//! the L2 loss and its gradient over a batch (in parallel tasks of a fixed
//! partition, their gradient buffers summed in order, so any thread count gives
//! the same bits), and a training step.

use rayon::prelude::*;

use crate::{Adam, HashGrid, HashGridConfig, Mlp, Rng};

#[derive(Clone, Debug)]
pub struct Net {
    pub grid: HashGrid,
    pub mlp: Mlp,
    /// Tables first (`grid.n_params`), then MLP weights.
    pub params: Vec<f32>,
}

/// Samples per parallel task of a batch, at least.
const TASK: usize = 1024;
/// Parallel tasks per batch, at most: each holds a whole gradient buffer, so this
/// bounds training memory at (MAX_TASKS + 4) × the parameters (with Adam's two
/// moments and the summed gradient), whatever the batch size. Fixed, not the
/// thread count, so results do not depend on it.
const MAX_TASKS: usize = 8;

/// The most parameters a network may have (1 GiB of f32; training holds about
/// 12 copies).
pub const MAX_PARAMS: usize = 1 << 28;

/// Parameters of a network of this shape, or why it is refused: the limits of
/// the `.vxn` reader, the trainer and `--ratio` alike, checked before allocating.
pub fn checked_params(cfg: &HashGridConfig, width: usize, hidden: usize) -> Result<usize, String> {
    if !(1..=32).contains(&cfg.levels)
        || !(1..=8).contains(&cfg.features)
        || !(1..=24).contains(&cfg.log2_table)
        || !(1..=1024).contains(&width)
        || !(1..=16).contains(&hidden)
        || cfg.base < 1
        || !(cfg.per_level_scale >= 1.0 && cfg.per_level_scale < 16.0)
    {
        return Err(format!(
            "network out of range: levels {} (1–32), features {} (1–8), log2 table {} (1–24), width {width} (1–1024), \
             hidden layers {hidden} (1–16), base {} (≥ 1), per-level scale {} (1–16)",
            cfg.levels, cfg.features, cfg.log2_table, cfg.base, cfg.per_level_scale
        ));
    }
    let grid = HashGrid::new(*cfg);
    let n = grid.n_params + Mlp::new(grid.n_out(), width, hidden).n_params;
    if n > MAX_PARAMS {
        return Err(format!(
            "network of {n} parameters is over the limit of {MAX_PARAMS}"
        ));
    }
    Ok(n)
}

impl Net {
    pub fn new(cfg: HashGridConfig, width: usize, hidden: usize, seed: u64) -> Self {
        let grid = HashGrid::new(cfg);
        let mlp = Mlp::new(grid.n_out(), width, hidden);
        let mut params = vec![0.0; grid.n_params + mlp.n_params];
        let mut rng = Rng(seed);
        let (t, w) = params.split_at_mut(grid.n_params);
        grid.init(&mut rng, t);
        mlp.init(&mut rng, w);
        Net { grid, mlp, params }
    }

    pub fn n_params(&self) -> usize {
        self.params.len()
    }

    /// The network's value at `x` ∈ [0,1]³.
    pub fn predict(&self, x: &[f32; 3]) -> f32 {
        thread_local! {
            /// Per-thread encoding and activation buffers, reused across calls.
            static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<Vec<f32>>)> = Default::default();
        }
        SCRATCH.with_borrow_mut(|(enc, acts)| {
            enc.resize(self.grid.n_out(), 0.0);
            let (t, w) = self.params.split_at(self.grid.n_params);
            self.grid.forward(t, x, enc);
            self.mlp.forward(w, enc, acts)
        })
    }

    /// Mean squared error over the batch and its gradient (written to `grad`).
    pub fn loss_grad(&self, xs: &[[f32; 3]], ys: &[f32], grad: &mut [f32]) -> f64 {
        let n = xs.len().max(1) as f32;
        let (t, w) = self.params.split_at(self.grid.n_params);
        let task = TASK.max(xs.len().div_ceil(MAX_TASKS));
        let parts: Vec<(f64, Vec<f32>)> = xs
            .par_chunks(task)
            .zip(ys.par_chunks(task))
            .map(|(xc, yc)| {
                let mut g = vec![0.0f32; self.params.len()];
                let (gt, gw) = g.split_at_mut(self.grid.n_params);
                let mut enc = vec![0.0; self.grid.n_out()];
                let mut d_enc = vec![0.0; self.grid.n_out()];
                let mut acts = vec![];
                let mut loss = 0.0f64;
                for (x, &y) in xc.iter().zip(yc) {
                    self.grid.forward(t, x, &mut enc);
                    let p = self.mlp.forward(w, &enc, &mut acts);
                    let e = p - y;
                    loss += (e as f64) * (e as f64);
                    self.mlp.backward(w, &acts, 2.0 * e / n, gw, &mut d_enc);
                    self.grid.backward(x, &d_enc, gt);
                }
                (loss, g)
            })
            .collect();
        grad.fill(0.0);
        let mut loss = 0.0;
        for (l, g) in parts {
            loss += l;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        loss / n as f64
    }

    /// One Adam step on a batch; returns the batch's MSE before the step.
    pub fn train_step(
        &mut self,
        adam: &mut Adam,
        xs: &[[f32; 3]],
        ys: &[f32],
        grad: &mut Vec<f32>,
    ) -> f64 {
        grad.resize(self.params.len(), 0.0);
        let loss = self.loss_grad(xs, ys, grad);
        adam.step(&mut self.params, grad);
        loss
    }
}

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

/// The training objective: mean squared error (tiny-cuda-nn's default for
/// volumes, what PSNR measures) or mean absolute error (less pulled by outliers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Loss {
    #[default]
    L2,
    L1,
}

impl std::str::FromStr for Loss {
    type Err = voxfield_core::Error;
    /// `l2` (or `mse`), `l1` (or `mae`), any case.
    fn from_str(s: &str) -> voxfield_core::Result<Loss> {
        match s.to_ascii_lowercase().as_str() {
            "l2" | "mse" => Ok(Loss::L2),
            "l1" | "mae" => Ok(Loss::L1),
            _ => Err(voxfield_core::Error::invalid(format!(
                "unknown loss '{s}' (expected l2 (mean squared error, also mse) or l1 \
                 (mean absolute error, also mae))"
            ))),
        }
    }
}

/// Samples that go through the MLP together (its layers as GEMMs; a block's
/// activations stay in cache).
const BLOCK: usize = 128;

/// Per-task buffers of a block: corners, activations, output deltas,
/// dL/d(encoding).
#[derive(Default)]
struct Scratch {
    at: Vec<u32>,
    w: Vec<f32>,
    acts: Vec<Vec<f32>>,
    delta: Vec<f32>,
    d_enc: Vec<f32>,
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
    if !(1..=crate::encoding::MAX_LEVELS).contains(&cfg.levels)
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

    /// Encodes a block of positions into `s.acts[0]` (rows of L·F features),
    /// keeping their corners in `s.at`/`s.w` for the backward pass.
    fn encode(&self, tables: &[f32], xs: &[[f32; 3]], s: &mut Scratch) {
        let m = self.grid.n_out();
        let c = 8 * self.grid.cfg.levels;
        s.acts.resize(self.mlp.sizes.len(), vec![]);
        s.acts[0].resize(xs.len() * m, 0.0);
        s.at.resize(xs.len() * c, 0);
        s.w.resize(xs.len() * c, 0.0);
        for (((x, e), at), w) in xs
            .iter()
            .zip(s.acts[0].chunks_exact_mut(m))
            .zip(s.at.chunks_exact_mut(c))
            .zip(s.w.chunks_exact_mut(c))
        {
            self.grid.all_corners(x, at, w);
            self.grid.gather(tables, at, w, e);
        }
    }

    /// The network's values at many positions in [0,1]³ (one thread; callers
    /// split large batches across threads).
    pub fn predict_many(&self, xs: &[[f32; 3]], out: &mut [f32]) {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Scratch> = Default::default();
        }
        let (t, w) = self.params.split_at(self.grid.n_params);
        SCRATCH.with_borrow_mut(|s| {
            for (xb, ob) in xs.chunks(BLOCK).zip(out.chunks_mut(BLOCK)) {
                self.encode(t, xb, s);
                self.mlp.forward_batch(w, xb.len(), &mut s.acts);
                ob.copy_from_slice(&s.acts.last().expect("output layer")[..xb.len()]);
            }
        });
    }

    /// The network's values along a row of positions (x, y, z) for z in `zs`
    /// (one thread): the row-coherent encoding of the whole row, then the
    /// inference kernel on groups of [`infer::LANES`] positions.
    pub fn predict_row(&self, x: f32, y: f32, zs: &[f32], out: &mut [f32]) {
        use crate::infer::{self, LANES};
        thread_local! {
            /// The padded positions, their encoding and the kernel's two
            /// activation blocks.
            static SCRATCH: std::cell::RefCell<[Vec<f32>; 4]> = Default::default();
        }
        if zs.is_empty() {
            return;
        }
        let (t, w) = self.params.split_at(self.grid.n_params);
        let m = self.grid.n_out();
        // Whole groups: the last position repeats into the padding.
        let n = zs.len().next_multiple_of(LANES);
        SCRATCH.with_borrow_mut(|[padded, enc, a, b]| {
            padded.clear();
            padded.extend_from_slice(zs);
            padded.resize(n, zs[zs.len() - 1]);
            enc.clear();
            enc.resize(m * n, 0.0);
            self.grid.encode_row(t, x, y, padded, enc);
            for (g, o) in out.chunks_mut(LANES).enumerate() {
                let input = infer::Input {
                    data: &enc[g * LANES..],
                    stride: n,
                };
                let v = infer::forward(&self.mlp, w, input, a, b);
                o.copy_from_slice(&v[..o.len()]);
            }
        });
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

    /// The batch's loss (mean squared or mean absolute error) with its gradient
    /// written to `grad`, and the mean squared error (for PSNR estimates).
    pub fn loss_grad(
        &self,
        xs: &[[f32; 3]],
        ys: &[f32],
        grad: &mut [f32],
        kind: Loss,
    ) -> (f64, f64) {
        let n = xs.len().max(1) as f32;
        grad.fill(0.0);
        let (loss, sq) = self.backprop(
            xs,
            |start, out, delta| {
                let (mut loss, mut sq) = (0.0f64, 0.0f64);
                for (&p, &y) in out.iter().zip(&ys[start..]) {
                    let e = p - y;
                    sq += (e as f64) * (e as f64);
                    delta.push(match kind {
                        Loss::L2 => 2.0 * e / n,
                        Loss::L1 => e.signum() * (e != 0.0) as u8 as f32 / n,
                    });
                    if kind == Loss::L1 {
                        loss += e.abs() as f64;
                    }
                }
                (loss, sq)
            },
            grad,
        );
        let mse = sq / n as f64;
        match kind {
            Loss::L2 => (mse, mse),
            Loss::L1 => (loss / n as f64, mse),
        }
    }

    /// Runs `xs` forward and back in blocks, in parallel tasks of a fixed
    /// partition: `delta(start, outputs, deltas)` pushes dL/d(output) for the
    /// block of outputs beginning at sample `start` and returns its (loss,
    /// squared error) parts. The parameter gradient is added to `grad`, task
    /// by task in order (the same bits on any thread count); returns the sums.
    fn backprop(
        &self,
        xs: &[[f32; 3]],
        delta: impl Fn(usize, &[f32], &mut Vec<f32>) -> (f64, f64) + Sync,
        grad: &mut [f32],
    ) -> (f64, f64) {
        let (t, w) = self.params.split_at(self.grid.n_params);
        let task = TASK.max(xs.len().div_ceil(MAX_TASKS));
        let parts: Vec<(f64, f64, Vec<f32>)> = xs
            .par_chunks(task)
            .enumerate()
            .map(|(ti, xc)| {
                let mut g = vec![0.0f32; self.params.len()];
                let (gt, gw) = g.split_at_mut(self.grid.n_params);
                let (mut loss, mut sq) = (0.0f64, 0.0f64);
                let mut s = Scratch::default();
                for (bi, xb) in xc.chunks(BLOCK).enumerate() {
                    let b = xb.len();
                    self.encode(t, xb, &mut s);
                    self.mlp.forward_batch(w, b, &mut s.acts);
                    let out = s.acts.last().expect("output layer");
                    s.delta.clear();
                    let (l, q) = delta(ti * task + bi * BLOCK, &out[..b], &mut s.delta);
                    loss += l;
                    sq += q;
                    self.mlp
                        .backward_batch(w, b, &s.acts, &mut s.delta, gw, &mut s.d_enc);
                    let (m, c) = (self.grid.n_out(), 8 * self.grid.cfg.levels);
                    for ((d, at), wt) in s
                        .d_enc
                        .chunks_exact(m)
                        .zip(s.at.chunks_exact(c))
                        .zip(s.w.chunks_exact(c))
                    {
                        self.grid.scatter(at, wt, d, gt);
                    }
                }
                (loss, sq, g)
            })
            .collect();
        let (mut loss, mut sq) = (0.0, 0.0);
        for (l, q, g) in parts {
            loss += l;
            sq += q;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        (loss, sq)
    }

    /// Adds the gradient loss's parameter gradient to `grad`: `weight` × the
    /// mean over samples and axes of the squared difference between the
    /// network's gradient and `targets`, both as `numpy.gradient` takes them
    /// on the voxel grid (central differences between the neighbouring voxel
    /// centres, one-sided at the faces; axes of one voxel left out). Taken on
    /// the first samples of the batch (an eighth, at least 256): it costs
    /// six network evaluations per sample. Returns the gradient MSE.
    pub fn add_gradient_loss(&self, xs: &[[f32; 3]], g: &GradientLoss, grad: &mut [f32]) -> f64 {
        let n = xs
            .len()
            .div_ceil(8)
            .max(256)
            .min(xs.len())
            .min(g.targets.len());
        let inv = g
            .shape
            .map(|k| if k > 1 { 1.0 / (k - 1) as f32 } else { 0.0 });
        let (mut pts, mut pairs) = (Vec::with_capacity(6 * n), Vec::with_capacity(3 * n));
        for (x, t) in xs[..n].iter().zip(&g.targets[..n]) {
            for a in 0..3 {
                let len = g.shape[a];
                if len < 2 {
                    continue;
                }
                let i = (x[a] * (len - 1) as f32).round() as usize;
                let (hi, lo) = ((i + 1).min(len - 1), i.saturating_sub(1));
                let (mut p, mut q) = (*x, *x);
                p[a] = hi as f32 * inv[a];
                q[a] = lo as f32 * inv[a];
                pts.extend([p, q]);
                pairs.push((t[a], (hi - lo) as f32));
            }
        }
        if pairs.is_empty() {
            return 0.0;
        }
        let mut out = vec![0f32; pts.len()];
        pts.par_chunks(TASK)
            .zip(out.par_chunks_mut(TASK))
            .for_each(|(p, o)| self.predict_many(p, o));
        let m = pairs.len() as f32;
        let mut deltas = vec![0f32; pts.len()];
        let mut sq = 0f64;
        for (k, &(t, d)) in pairs.iter().enumerate() {
            let e = (out[2 * k] - out[2 * k + 1]) / d - t;
            sq += (e as f64) * (e as f64);
            let c = g.weight * 2.0 * e / (m * d);
            deltas[2 * k] = c;
            deltas[2 * k + 1] = -c;
        }
        self.backprop(
            &pts,
            |start, out, delta| {
                delta.extend_from_slice(&deltas[start..start + out.len()]);
                (0.0, 0.0)
            },
            grad,
        );
        sq / m as f64
    }

    /// One Adam step on a batch; returns the batch's MSE before the step.
    /// With `tables` false only the MLP moves (Adam leaves entries with a zero
    /// gradient alone).
    pub fn train_step(
        &mut self,
        adam: &mut Adam,
        batch: (&[[f32; 3]], &[f32]),
        grad: &mut Vec<f32>,
        kind: Loss,
        tables: bool,
    ) -> f64 {
        let o = StepOptions {
            tables,
            ..Default::default()
        };
        self.step(adam, batch, grad, kind, &o).0
    }

    /// One Adam step of tables and MLP at the tables quantised by `q` (see
    /// [`StepOptions::quant`]); returns the quantised network's batch MSE.
    pub fn train_step_quantised(
        &mut self,
        adam: &mut Adam,
        batch: (&[[f32; 3]], &[f32]),
        grad: &mut Vec<f32>,
        kind: Loss,
        q: &crate::Quant,
    ) -> f64 {
        let o = StepOptions {
            tables: true,
            quant: Some(q),
            ..Default::default()
        };
        self.step(adam, batch, grad, kind, &o).0
    }

    /// One Adam step on a batch as `o` says; returns the batch's MSE before
    /// the step and, with a gradient loss, the gradient MSE (else 0).
    pub fn step(
        &mut self,
        adam: &mut Adam,
        (xs, ys): (&[[f32; 3]], &[f32]),
        grad: &mut Vec<f32>,
        kind: Loss,
        o: &StepOptions,
    ) -> (f64, f64) {
        let n = self.grid.n_params;
        let exact = o.quant.map(|q| {
            let t = self.params[..n].to_vec();
            q.apply_to(&mut self.params[..n]);
            t
        });
        grad.resize(self.params.len(), 0.0);
        let (_, mse) = self.loss_grad(xs, ys, grad, kind);
        let gmse = match &o.gradients {
            Some(g) => self.add_gradient_loss(xs, g, grad),
            None => 0.0,
        };
        if let Some(t) = exact {
            self.params[..n].copy_from_slice(&t);
        }
        if let Some(slopes) = o.rate {
            self.add_rate_gradient(slopes, grad);
        }
        if !o.tables {
            grad[..n].fill(0.0);
        }
        adam.step(&mut self.params, grad);
        (mse, gmse)
    }
}

impl Net {
    /// The rate term's slope per level, in loss units per table-entry unit:
    /// the codes of a level are taken as Laplace-distributed with the scale
    /// of their mean magnitude b (in steps), so an entry v costs |v| / (b Δ
    /// ln 2) bits plus a constant; a bit is priced at λ = 1.5 D_q / N, with
    /// D_q the distortion quantisation adds (MSE) and N the table entries —
    /// about what halving or doubling the step trades (D_q ×¼ or ×4 for one
    /// bit per entry) — times `weight`.
    pub fn rate_slopes(&self, q: &crate::Quant, distortion: f64, weight: f32) -> Vec<f32> {
        let n = self.grid.n_params as f64;
        let lambda = 1.5 * distortion.max(0.0) / n * weight as f64;
        self.grid
            .levels
            .iter()
            .map(|l| {
                let t = &self.params[self.grid.table(l)];
                let b = t.iter().map(|v| (v / q.step).abs() as f64).sum::<f64>()
                    / t.len().max(1) as f64;
                (lambda / (b.max(0.5) * q.step as f64 * std::f64::consts::LN_2)) as f32
            })
            .collect()
    }

    /// Adds the rate term's gradient: each level's slope × sign(v) for its
    /// table entries (0 at v = 0, where |v| has no slope).
    pub fn add_rate_gradient(&self, slopes: &[f32], grad: &mut [f32]) {
        for (l, &s) in self.grid.levels.iter().zip(slopes) {
            let r = self.grid.table(l);
            for (g, &v) in grad[r.clone()].iter_mut().zip(&self.params[r]) {
                *g += if v > 0.0 {
                    s
                } else if v < 0.0 {
                    -s
                } else {
                    0.0
                };
            }
        }
    }
}

/// What one training step moves, and at what.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepOptions<'a> {
    /// The tables move too (false: only the MLP).
    pub tables: bool,
    /// Loss and gradient are taken with the tables quantised by this, and
    /// applied to the unquantised tables: the straight-through estimator
    /// (rounding's derivative taken as 1), so the network learns to work with
    /// what the file will hold while small updates still accumulate.
    pub quant: Option<&'a crate::Quant>,
    /// A gradient loss added (see [`Net::add_gradient_loss`]).
    pub gradients: Option<GradientLoss<'a>>,
    /// The rate term's per-level slopes (see [`Net::rate_slopes`]).
    pub rate: Option<&'a [f32]>,
}

/// A gradient loss over a batch: the target gradient of each sample
/// (normalised values per voxel), the volume's shape and the weight.
#[derive(Clone, Copy, Debug)]
pub struct GradientLoss<'a> {
    pub targets: &'a [[f32; 3]],
    pub shape: [usize; 3],
    pub weight: f32,
}

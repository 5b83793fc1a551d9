//! Training a network on a volume from any voxfield source, with memory bounded
//! by the model plus a sample budget. Each epoch visits every voxel once, and
//! every batch is a uniform draw from the whole volume: a volume whose samples
//! fit the budget is read once and reshuffled per epoch; a larger one is split
//! into passes by a hash of each voxel's index (fresh per epoch), each pass
//! reading all bricks through the source's own chunk reads and keeping its share.
//! (Windows of whole bricks made batches local, and the network forgot the rest:
//! 15.8 dB after one MNI epoch against 28.9 dB with uniform batches.)

use std::time::Instant;

use serde_json::json;
use voxfield_core::work::Watch;
use voxfield_core::{Error, Result, VolumeSource};

use crate::model::NeuralModel;
use crate::net::{GradientLoss, StepOptions};
use crate::samples::{value_range, Samples};
use crate::{Adam, HashGridConfig, Net, Rng};

/// The rate term's weight unless one is given: on the MNI T1 (5 epochs)
/// CR 120 33.94 → 34.04 dB (1: 34.02, 16: 33.98), CR 250 31.46 → 31.68 dB.
pub const DEFAULT_RATE_WEIGHT: f32 = 4.0;

/// Adam steps per epoch, at least, with the automatic batch (down to 256).
const MIN_STEPS: u64 = 64;
/// Epochs a training may ask for, at most (a typo's 10^18 would never end).
pub const MAX_EPOCHS: usize = 1 << 20;
/// Header bytes kept free for the fine-tune's additions to the training record.
const RECORD_SLACK: u64 = 160;

/// How to train (defaults: 16 levels × 2 features, tables of 2^11, N_min 16, a
/// 64-wide MLP with 2 hidden layers, 5 epochs, batches of 2^16, Adam lr 1e-2
/// decayed ×0.33 at 50 % and 80 % of the epochs).
#[derive(Clone, Debug)]
pub struct CompressOptions {
    pub levels: usize,
    pub features: usize,
    pub log2_table: u32,
    pub base: u32,
    pub width: usize,
    pub hidden: usize,
    pub epochs: usize,
    /// Samples per Adam step; None: 2^16, or fewer on small volumes so an
    /// epoch takes at least 64 steps (never below 256).
    pub batch: Option<usize>,
    pub lr: f32,
    pub seed: u64,
    /// Stop once an epoch's PSNR estimate reaches this (dB).
    pub target_psnr: Option<f64>,
    /// Stop after this many seconds (between batches).
    pub time_limit: Option<f64>,
    /// Stop after this many Adam steps (for learning curves).
    pub steps: Option<u64>,
    /// Bytes of training samples held at once (16 per voxel); a volume that
    /// needs more is read in several passes per epoch.
    pub budget: usize,
    /// Start from this network (a Reptile initialisation) instead of a random
    /// one; its encoding and MLP shape then replace the ones above.
    pub init: Option<Net>,
    /// The training objective (L2 by default).
    pub loss: crate::net::Loss,
    /// Weight of the gradient loss (0: none): W × the mean squared error of
    /// the network's central-difference gradients against the volume's.
    pub grad_loss: f32,
    /// Weight of the rate term in quantisation-aware epochs (0: none; see
    /// [`Net::rate_slopes`]); None: [`DEFAULT_RATE_WEIGHT`] on quantised
    /// tables. Given with f16 tables (`bits` 16), where nothing is
    /// quantised, it is refused.
    pub rate_weight: Option<f32>,
    /// Epochs of MLP-only training after the tables are quantised (default 1).
    pub finetune: usize,
    /// Table quantisation: the step covers the largest entry with
    /// 2^(bits−1) − 1 codes (2–8; zstd-coded), or 16 for f16 storage.
    pub bits: u32,
    /// The most bytes the model file may take (set by a ratio): after
    /// training, the finest quantisation step whose file fits is kept.
    pub max_bytes: Option<u64>,
}

impl Default for CompressOptions {
    fn default() -> Self {
        CompressOptions {
            levels: 16,
            features: 2,
            log2_table: 11,
            base: 16,
            width: 64,
            hidden: 2,
            epochs: 5,
            batch: None,
            lr: 1e-2,
            seed: 1,
            target_psnr: None,
            time_limit: None,
            steps: None,
            budget: 1 << 30,
            init: None,
            bits: 6,
            max_bytes: None,
            loss: Default::default(),
            finetune: 1,
            grad_loss: 0.0,
            rate_weight: None,
        }
    }
}

impl CompressOptions {
    /// Refuses a network this crate will not build on a volume of `shape`
    /// (see [`crate::net::checked_params`]), before anything is allocated.
    pub fn check(&self, shape: [usize; 3]) -> Result<usize> {
        if self.hidden == 0 || self.width == 0 {
            return Err(Error::invalid("width and hidden layers must be positive"));
        }

        if !((2..=8).contains(&self.bits) || self.bits == 16) {
            return Err(Error::invalid(format!(
                "{} bits per table entry: give 2 to 8 (quantised) or 16 (f16)",
                self.bits
            )));
        }
        crate::net::checked_params(&config(self, shape), self.width, self.hidden)
            .map_err(Error::invalid)
    }
}

/// The bytes a volume takes natively (shape × dtype size): what ratios are
/// measured against.
pub fn native_bytes(info: &voxfield_core::VolumeInfo) -> u64 {
    info.shape.iter().map(|&n| n as u64).product::<u64>() * info.dtype.size() as u64
}

/// Samples per Adam step when none is given: 2^16, or fewer on small volumes
/// so an epoch takes at least 64 steps (a 48³ grid in batches of 2^16 took 2
/// steps an epoch: 23 dB after 20 epochs, against 40.5 dB in batches of
/// 2048); never below 256.
pub(crate) fn default_batch(voxels: u64) -> usize {
    (voxels / MIN_STEPS).clamp(256, 1 << 16) as usize
}

/// Samples per Adam step: positive, and at most 2^24 (a batch is copied).
pub(crate) fn check_batch(batch: usize) -> Result<()> {
    if !(1..=1 << 24).contains(&batch) {
        return Err(Error::invalid(format!(
            "batch {batch}: give 1 to {} samples per step",
            1 << 24
        )));
    }
    Ok(())
}

/// The phase a training reports after each batch: the epoch (from 1) and the
/// PSNR estimated from the loss of the last ~10 batches.
fn phase(epoch: usize, psnr: f64) -> String {
    format!("epoch {} · PSNR ≈ {psnr:.1} dB", epoch + 1)
}

/// Trains a network on `src` (its 3-D view). `watch` hears of each batch (the
/// samples of the epoch done) and can stop the training between batches.
pub fn compress(
    src: &dyn VolumeSource,
    opts: &CompressOptions,
    watch: &Watch,
) -> Result<NeuralModel> {
    let t0 = Instant::now();
    let info = src.info();
    let shape = info.shape;
    if !(1..=MAX_EPOCHS).contains(&opts.epochs) || opts.finetune > MAX_EPOCHS {
        return Err(Error::invalid(format!(
            "epochs {} and fine-tune epochs {}: give 1 to {MAX_EPOCHS} (and 0 to {MAX_EPOCHS})",
            opts.epochs, opts.finetune
        )));
    }
    if let Some(t) = opts.time_limit.filter(|t| !(t.is_finite() && *t > 0.0)) {
        return Err(Error::invalid(format!(
            "time limit {t} s: give a positive number of seconds"
        )));
    }
    let rate_weight = opts.rate_weight.unwrap_or(DEFAULT_RATE_WEIGHT);
    if !(rate_weight.is_finite() && rate_weight >= 0.0) {
        return Err(Error::invalid(format!(
            "rate weight {rate_weight}: give a finite number ≥ 0"
        )));
    }
    if opts.rate_weight.is_some() && opts.bits == 16 {
        return Err(Error::invalid(
            "a rate weight applies to quantised tables (bits 2–8); with bits 16 the tables are stored as f16",
        ));
    }
    if opts.rate_weight.is_some() && opts.epochs < 2 {
        return Err(Error::invalid(
            "a rate weight applies to the quantisation-aware epochs, the second half of 2 or more: give --epochs 2 or more",
        ));
    }
    if !(opts.grad_loss.is_finite() && opts.grad_loss >= 0.0) {
        return Err(Error::invalid(format!(
            "gradient loss weight {}: give a finite number ≥ 0",
            opts.grad_loss
        )));
    }
    if let Some(t) = opts.target_psnr.filter(|t| !t.is_finite()) {
        return Err(Error::invalid(format!(
            "target PSNR {t} dB must be a number"
        )));
    }
    if opts.init.is_none() {
        opts.check(shape)?;
    }
    if let Some(b) = opts.batch {
        check_batch(b)?;
    }
    let (lo, hi) = value_range(src, watch)?;
    let scale = if hi > lo { 1.0 / (hi - lo) } else { 0.0 };
    let mut net = match &opts.init {
        Some(init) => init.clone(),
        None => Net::new(config(opts, shape), opts.width, opts.hidden, opts.seed),
    };
    let mut adam = Adam::new(net.n_params(), net.grid.n_params, opts.lr);
    let mut rng = Rng(opts.seed ^ 0x5eed);
    let total: u64 = shape.iter().map(|&n| n as u64).product();
    let batch = opts.batch.unwrap_or_else(|| default_batch(total));
    if opts.steps == Some(0) {
        return Err(Error::invalid("steps 0: give at least one Adam step"));
    }
    let mut steps_run = 0u64;
    let gradients = opts.grad_loss > 0.0;
    let mut samples = Samples::new(src, opts.budget, batch, (lo, scale), gradients)?;
    let mut gradient_mse = Estimate::default();
    let mut grad = vec![];
    let (mut epochs_run, mut psnr, mut estimate) = (0, 0.0, Estimate::default());
    let mut stopped = "epochs";
    // Quantisation-aware training in the second half: the step the file will
    // use is fitted to the tables at the start of each of those epochs.
    let qat_from = if opts.bits != 16 && opts.epochs >= 2 {
        opts.epochs / 2
    } else {
        opts.epochs
    };
    let draft = |net: &Net| NeuralModel {
        net: net.clone(),
        shape,
        dtype: info.dtype.name().to_string(),
        lo,
        hi,
        affine: info.affine,
        record: json!({}),
        width: net.mlp.sizes[1],
        hidden: net.mlp.sizes.len() - 2,
        quant: None,
    };
    for epoch in 0..opts.epochs {
        // lr ×0.33 at 50 % and 80 % of the epochs.
        let f = epoch as f64 / opts.epochs as f64;
        adam.lr = opts.lr
            * if f >= 0.8 {
                0.33 * 0.33
            } else if f >= 0.5 {
                0.33
            } else {
                1.0
            };
        let quant = (epoch >= qat_from)
            .then(|| fit_quant(&draft(&net), opts.bits, bound(opts)))
            .transpose()?;
        let mut done = 0u64;
        let mut slopes: Option<Vec<f32>> = None;
        let whole = samples.epoch(&mut rng, watch, |bx, by, bg| {
            if let (Some(q), None, true) = (&quant, &slopes, rate_weight > 0.0) {
                // The distortion quantisation adds, on this epoch's first batch.
                let mut held = net.clone();
                q.apply(&mut held);
                let mut scratch = vec![0.0; net.n_params()];
                let exact = net.loss_grad(bx, by, &mut scratch, opts.loss).1;
                let quantised = held.loss_grad(bx, by, &mut scratch, opts.loss).1;
                slopes = Some(net.rate_slopes(q, quantised - exact, rate_weight));
            }
            let o = StepOptions {
                tables: true,
                quant: quant.as_ref(),
                gradients: bg.map(|targets| GradientLoss {
                    targets,
                    shape,
                    weight: opts.grad_loss,
                }),
                rate: slopes.as_deref(),
            };
            let (mse, gmse) = net.step(&mut adam, (bx, by), &mut grad, opts.loss, &o);
            psnr = estimate.add(mse);
            if gradients {
                gradient_mse.add(gmse);
            }
            done += bx.len() as u64;
            steps_run += 1;
            watch.report(&phase(epoch, psnr), done, total);
            !opts
                .time_limit
                .is_some_and(|s| t0.elapsed().as_secs_f64() > s)
                && opts.steps.is_none_or(|n| steps_run < n)
        })?;
        epochs_run = epoch + 1;
        if opts.steps.is_some_and(|n| steps_run >= n) {
            stopped = "steps";
            break;
        }
        if !whole {
            stopped = "time limit";
            break;
        }
        if opts.target_psnr.is_some_and(|t| psnr >= t) {
            stopped = "target PSNR";
            break;
        }
    }
    let record = json!({
        "epochs": epochs_run, "seconds": t0.elapsed().as_secs_f64(), "psnr_estimate_db": psnr,
        "stopped_by": stopped, "steps": steps_run, "samples_per_epoch": total, "seed": opts.seed, "lr": opts.lr, "batch": batch,
        "loss": format!("{:?}", opts.loss),
        "initialisation": if opts.init.is_some() { "given (Reptile)" } else { "random" },
        "grad_loss": opts.grad_loss, "rate_weight": rate_weight,
        "quantisation_aware_epochs": opts.epochs.saturating_sub(qat_from).min(epochs_run.saturating_sub(qat_from)),
    });
    let (width, hidden) = (net.mlp.sizes[1], net.mlp.sizes.len() - 2);
    let model = NeuralModel {
        net,
        shape,
        dtype: info.dtype.name().to_string(),
        lo,
        hi,
        affine: info.affine,
        record,
        width,
        hidden,
        quant: None,
    };
    let finetune = opts.bits != 16 && opts.finetune > 0 && stopped != "time limit";
    let mut model = stored(model, opts.bits, bound(opts))?;
    if finetune {
        // Quantisation-aware finish: the MLP adapts to the quantised tables
        // at the final learning rate.
        let mut adam = Adam::new(
            model.net.n_params(),
            model.net.grid.n_params,
            opts.lr * 0.33 * 0.33,
        );
        let mut estimate = Estimate::default();
        let mut psnr = 0.0;
        for e in 0..opts.finetune {
            let mut done = 0u64;
            samples.epoch(&mut rng, watch, |bx, by, bg| {
                let o = StepOptions {
                    tables: false,
                    quant: None,
                    gradients: bg.map(|targets| GradientLoss {
                        targets,
                        shape,
                        weight: opts.grad_loss,
                    }),
                    rate: None,
                };
                let (mse, gmse) = model
                    .net
                    .step(&mut adam, (bx, by), &mut grad, opts.loss, &o);
                psnr = estimate.add(mse);
                if gradients {
                    gradient_mse.add(gmse);
                }
                done += bx.len() as u64;
                watch.report(&phase(epochs_run + e, psnr), done, total);
                true
            })?;
        }
        let n = model.net.grid.n_params;
        for p in &mut model.net.params[n..] {
            *p = crate::model::f16_value(crate::model::f16_bits(*p));
        }
        model.record["finetune_epochs"] = opts.finetune.into();
        model.record["finetune_psnr_estimate_db"] = psnr.into();
        if gradients {
            model.record["gradient_mse_estimate"] = gradient_mse.mse().into();
        }
        model.record["seconds"] = t0.elapsed().as_secs_f64().into();
    }
    Ok(model)
}

/// The volume's PSNR estimated from batch losses: each batch is a uniform
/// draw, so its loss before the step estimates the MSE; smoothed over ~10.
#[derive(Default)]
struct Estimate(Option<f64>);

impl Estimate {
    /// Adds a batch's MSE; returns the PSNR estimate (dB).
    fn add(&mut self, mse: f64) -> f64 {
        let m = self.0.map_or(mse, |r| 0.9 * r + 0.1 * mse);
        self.0 = Some(m);
        -10.0 * m.max(1e-30).log10()
    }

    /// The smoothed MSE (0 before any batch).
    fn mse(&self) -> f64 {
        self.0.unwrap_or(0.0)
    }
}

/// The most bytes the file may take before the training record is final
/// (the fine-tune adds to the header's record after the size is settled).
fn bound(opts: &CompressOptions) -> Option<u64> {
    opts.max_bytes.map(|m| m.saturating_sub(RECORD_SLACK))
}

/// `model` as its file will hold it, so the model returned equals the model
/// loaded: weights rounded to f16, tables quantised by [`fit_quant`] (or f16
/// when `bits` is 16).
fn stored(mut model: NeuralModel, bits: u32, max_bytes: Option<u64>) -> Result<NeuralModel> {
    let from = if bits == 16 {
        0
    } else {
        model.net.grid.n_params
    };
    for p in &mut model.net.params[from..] {
        *p = crate::model::f16_value(crate::model::f16_bits(*p));
    }
    if bits == 16 {
        return Ok(model);
    }
    let q = fit_quant(&model, bits, max_bytes)?;
    q.apply(&mut model.net);
    model.quant = Some(q);
    Ok(model)
}

/// The quantisation of `model`'s tables: the step of `bits`, or under
/// `max_bytes` the finest step (down to 8 bits' step) whose file fits.
fn fit_quant(model: &NeuralModel, bits: u32, max_bytes: Option<u64>) -> Result<crate::Quant> {
    let Some(max) = max_bytes else {
        return Ok(crate::Quant::for_bits(&model.net, bits));
    };
    let fits = |q: &crate::Quant| {
        let mut m = model.clone();
        q.apply(&mut m.net);
        m.quant = Some(q.clone());
        m.to_bytes().is_ok_and(|f| f.len() as u64 <= max)
    };
    // With a size bound, as fine as the codes allow when it fits.
    let fine = crate::Quant::for_bits(&model.net, 8);
    if fits(&fine) {
        return Ok(fine);
    }
    // The finest step whose file fits: bisect log(step) between the 8-bit
    // step and 256× coarser (every entry rounds to a few codes).
    let (mut lo, mut hi) = (fine.step.ln(), (fine.step * 256.0).ln());
    let mut best = crate::Quant::new(hi.exp());
    for _ in 0..16 {
        let mid = (lo + hi) / 2.0;
        let q = crate::Quant::new(mid.exp());
        if fits(&q) {
            (hi, best) = (mid, q);
        } else {
            lo = mid;
        }
    }
    Ok(best)
}

/// The encoding `opts` asks for on a volume of `shape` (the finest level at the
/// largest axis).
pub(crate) fn config(opts: &CompressOptions, shape: [usize; 3]) -> HashGridConfig {
    let finest = (*shape.iter().max().expect("3 axes") as u32).max(opts.base);
    HashGridConfig::with_finest(
        opts.levels,
        opts.features,
        opts.log2_table,
        opts.base,
        finest,
    )
}

/// Bytes a model file takes for `opts` on a volume whose largest axis is `finest`:
/// f16 MLP weights, the tables (f16, or quantised codes after zstd, estimated at
/// bits − 0.5 per entry: 0.65–0.97 below on MNI), the header and checksum.
pub fn model_bytes(opts: &CompressOptions, finest: u32) -> u64 {
    let cfg = HashGridConfig::with_finest(
        opts.levels,
        opts.features,
        opts.log2_table,
        opts.base,
        finest.max(opts.base),
    );
    let grid = crate::HashGrid::new(cfg);
    let mlp = crate::Mlp::new(grid.n_out(), opts.width, opts.hidden);
    let tables = if opts.bits == 16 {
        16.0 * grid.n_params as f64
    } else {
        (opts.bits as f64 - 0.5).max(0.5) * grid.n_params as f64
    };
    (tables / 8.0).ceil() as u64 + 2 * mlp.n_params as u64 + 700 + 40 * opts.levels as u64
}

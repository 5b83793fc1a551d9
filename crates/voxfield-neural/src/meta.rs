//! Reptile (Nichol et al. 2018) meta-learning of an initialisation: from the
//! current weights φ, train a copy on one volume for K Adam steps to θ, then
//! move φ ← φ + ε (θ − φ), ε decaying linearly to zero. A network that starts
//! from φ fits a new volume of the same kind in fewer steps.
//!
//! The inner loop is exactly what `compress --init` then runs: a fresh Adam
//! at the same learning rate, batches of the same size drawn uniformly from
//! the whole volume, the same loss. (The first version trained on random 32³
//! bricks in batches of 4096 and was worse than a random start on the MNI T1:
//! the initialisation was tuned for another procedure, on another image.)
//! Each volume is held as a uniform sample of its voxels (all of them when
//! they fit the memory budget's share).

use std::time::Instant;

use serde_json::json;
use voxfield_core::work::Watch;
use voxfield_core::{Error, Result, VolumeSource};

use crate::model::NeuralModel;
use crate::samples::{brick_samples, bricks, in_pass, passes, value_range, Sampled, SAMPLE_BYTES};
use crate::train::{check_batch, config, default_batch, CompressOptions};
use crate::{Adam, Net, Rng};

/// How to meta-train: the network and inner Adam from `net` (its levels,
/// table size, width, batch (None: what compress takes for the volume), lr,
/// loss, seed and sample memory), plus Reptile's loop sizes.
#[derive(Clone, Debug)]
pub struct MetaOptions {
    pub net: CompressOptions,
    /// Adam steps on one volume per outer step (K).
    pub inner_steps: usize,
    /// Outer steps (M).
    pub meta_steps: usize,
    /// Outer step size ε at the start (decays linearly to 0).
    pub meta_lr: f32,
}

impl Default for MetaOptions {
    fn default() -> Self {
        MetaOptions {
            net: CompressOptions::default(),
            inner_steps: 16,
            meta_steps: 200,
            meta_lr: 1.0,
        }
    }
}

/// The phase meta-training reports to its [`Watch`].
pub const OUTER_STEPS: &str = "meta-training (outer steps)";

/// Learns an initialisation over `sources` (each outer step trains on a random
/// volume, coordinates in its [0,1]³ and values normalised by its range).
/// The result is a model of the first volume's shape
/// whose network is the initialisation; `watch` hears of each outer step
/// (phase [`OUTER_STEPS`]) and can stop the training between them.
pub fn meta_train(
    sources: &[&dyn VolumeSource],
    opts: &MetaOptions,
    watch: &Watch,
) -> Result<NeuralModel> {
    let t0 = Instant::now();
    let Some(first) = sources.first() else {
        return Err(Error::invalid("meta-training needs at least one volume"));
    };
    let o = &opts.net;
    const MAX_STEPS: usize = 1 << 24;
    if !(1..=MAX_STEPS).contains(&opts.inner_steps) || !(1..=MAX_STEPS).contains(&opts.meta_steps) {
        return Err(Error::invalid(format!(
            "inner steps {} and meta steps {} must be 1 to {MAX_STEPS}",
            opts.inner_steps, opts.meta_steps
        )));
    }
    if let Some(b) = o.batch {
        check_batch(b)?;
    }
    if !(opts.meta_lr.is_finite() && opts.meta_lr > 0.0 && opts.meta_lr <= 1.0) {
        return Err(Error::invalid(format!(
            "meta learning rate {} must lie in (0, 1]",
            opts.meta_lr
        )));
    }
    let ranges = sources
        .iter()
        .map(|s| value_range(*s, watch))
        .collect::<Result<Vec<_>>>()?;
    let largest = sources
        .iter()
        .flat_map(|s| s.info().shape)
        .max()
        .expect("3 axes");
    o.check([largest, 1, 1])?;
    let mut rng = Rng(o.seed ^ 0x4e97);
    // Each volume's samples: a uniform share of its voxels within the budget.
    let share = o.budget / sources.len();
    let mut sets = Vec::with_capacity(sources.len());
    for (src, &(lo, hi)) in sources.iter().zip(&ranges) {
        let scale = if hi > lo { 1.0 / (hi - lo) } else { 0.0 };
        sets.push(sample_set(*src, (lo, scale), share, rng.next_u64(), watch)?);
    }
    let mut net = Net::new(config(o, [largest, 1, 1]), o.width, o.hidden, o.seed);
    let (mut grad, mut bx, mut by) = (vec![], vec![], vec![]);
    // Compress's own batch for each volume, unless one is given.
    let batch_for = |voxels: u64| o.batch.unwrap_or_else(|| default_batch(voxels));
    for m in 0..opts.meta_steps {
        watch.check()?;
        let v = (rng.next_u64() % sources.len() as u64) as usize;
        let (xs, ys, voxels) = &sets[v];
        let batch = batch_for(*voxels);
        let mut inner = net.clone();
        let mut adam = Adam::new(inner.n_params(), inner.grid.n_params, o.lr);
        for _ in 0..opts.inner_steps {
            bx.clear();
            by.clear();
            for _ in 0..batch {
                let i = (rng.next_u64() % xs.len() as u64) as usize;
                bx.push(xs[i]);
                by.push(ys[i]);
            }
            inner.train_step(&mut adam, (&bx, &by), &mut grad, o.loss, true);
        }
        let eps = opts.meta_lr * (1.0 - m as f32 / opts.meta_steps as f32);
        for (p, q) in net.params.iter_mut().zip(&inner.params) {
            *p += eps * (q - *p);
        }
        watch.report(OUTER_STEPS, m as u64 + 1, opts.meta_steps as u64);
    }
    let batch = sets.iter().map(|s| batch_for(s.2)).max().unwrap_or(0);
    let info = first.info();
    let (lo, hi) = ranges[0];
    let record = json!({
        "kind": "Reptile initialisation", "volumes": sources.len(), "meta_steps": opts.meta_steps,
        "inner_steps": opts.inner_steps, "meta_lr": opts.meta_lr, "batch": batch, "lr": o.lr,
        "seed": o.seed, "seconds": t0.elapsed().as_secs_f64(), "epochs": 0,
    });
    Ok(NeuralModel {
        net,
        shape: info.shape,
        dtype: info.dtype.name().to_string(),
        lo,
        hi,
        affine: info.affine,
        record,
        width: o.width,
        hidden: o.hidden,
        quant: None,
    })
}

/// A uniform sample of `src`'s voxels in at most `budget` bytes of samples
/// (every voxel when they fit), read brick by brick: positions, normalised
/// values, and the volume's voxel count.
fn sample_set(
    src: &dyn VolumeSource,
    norm: (f64, f64),
    budget: usize,
    key: u64,
    watch: &Watch,
) -> Result<(Vec<[f32; 3]>, Vec<f32>, u64)> {
    let total: u64 = src.info().shape.iter().map(|&n| n as u64).product();
    let parts = passes(total, budget, SAMPLE_BYTES);
    let keep = |v: u64| in_pass(v, key, (0, parts));
    let (mut buf, mut out) = (vec![], Sampled::new(false));
    for b in bricks(src.info().shape).iter() {
        watch.check()?;
        brick_samples(src, b, norm, &keep, &mut buf, &mut out)?;
    }
    let Sampled { xs, ys, .. } = out;
    if xs.is_empty() {
        return Err(Error::invalid(format!(
            "{}: no voxels to meta-train on",
            src.info().path.display()
        )));
    }
    Ok((xs, ys, total))
}

//! Reptile (Nichol et al. 2018) meta-learning of an initialisation: from the
//! current weights φ, train a copy on one brick of one volume for K Adam steps to
//! θ, then move φ ← φ + ε (θ − φ), ε decaying linearly to zero. A network that
//! starts from φ fits a new volume of the same kind in fewer steps.

use std::time::Instant;

use serde_json::json;
use voxfield_core::work::Watch;
use voxfield_core::{Error, Result, VolumeSource};

use crate::model::NeuralModel;
use crate::samples::{brick_samples, bricks, value_range};
use crate::train::{check_batch, config, CompressOptions};
use crate::{Adam, Net, Rng};

/// How to meta-train: the network and inner Adam from `net` (its levels,
/// table size, width, batch, lr and seed), plus Reptile's loop sizes.
#[derive(Clone, Debug)]
pub struct MetaOptions {
    pub net: CompressOptions,
    /// Adam steps on one brick per outer step (K).
    pub inner_steps: usize,
    /// Outer steps (M).
    pub meta_steps: usize,
    /// Outer step size ε at the start (decays linearly to 0).
    pub meta_lr: f32,
}

impl Default for MetaOptions {
    fn default() -> Self {
        MetaOptions {
            net: CompressOptions {
                batch: Some(4096),
                ..Default::default()
            },
            inner_steps: 16,
            meta_steps: 200,
            meta_lr: 1.0,
        }
    }
}

/// The phase meta-training reports to its [`Watch`].
pub const OUTER_STEPS: &str = "meta-training (outer steps)";

/// Learns an initialisation over `sources` (each outer step takes a random 32³
/// brick of a random volume, coordinates in that volume's [0,1]³ and values
/// normalised by its range). The result is a model of the first volume's shape
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
    let batch = o.batch.unwrap_or(4096);
    check_batch(batch)?;
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
    let mut net = Net::new(config(o, [largest, 1, 1]), o.width, o.hidden, o.seed);
    let mut rng = Rng(o.seed ^ 0x4e97);
    let (mut buf, mut xs, mut ys, mut grad) = (vec![], vec![], vec![], vec![]);
    let (mut bx, mut by) = (vec![], vec![]);
    for m in 0..opts.meta_steps {
        watch.check()?;
        let v = (rng.next_u64() % sources.len() as u64) as usize;
        let (lo, hi) = ranges[v];
        let scale = if hi > lo { 1.0 / (hi - lo) } else { 0.0 };
        let all = bricks(sources[v].info().shape);
        // A brick with (nearly) one value teaches nothing but to output a
        // constant, which can silence ReLU units for good: draw again (up to 8
        // times) when the brick's values span less than 5 % of the range.
        for _ in 0..8 {
            let b = all.get((rng.next_u64() % all.len() as u64) as usize);
            xs.clear();
            ys.clear();
            brick_samples(
                sources[v],
                b,
                (lo, scale),
                &|_| true,
                &mut buf,
                &mut xs,
                &mut ys,
            )?;
            let (mn, mx) = ys
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &y| {
                    (a.min(y), b.max(y))
                });
            if mx - mn >= 0.05 {
                break;
            }
        }
        let mut inner = net.clone();
        let mut adam = Adam::new(inner.n_params(), inner.grid.n_params, o.lr);
        for _ in 0..opts.inner_steps {
            bx.clear();
            by.clear();
            for _ in 0..batch.min(xs.len()) {
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

//! The engine core against hand-computed hashes, finite differences and an
//! analytic field it must learn.

use voxfield_neural::{encoding::Level, Adam, HashGrid, HashGridConfig, Loss, Net, Rng};

#[test]
fn level_geometry_and_hash_indices_follow_tiny_cuda_nn() {
    let cfg = HashGridConfig::with_finest(16, 2, 12, 16, 256);
    let g = HashGrid::new(cfg);
    // Level 0: scale N_min − 1 = 15, 16 vertices per axis, 4096 entries: dense.
    assert_eq!(
        (g.levels[0].scale, g.levels[0].res, g.levels[0].dense),
        (15.0, 16, true)
    );
    assert_eq!(g.levels[0].size, 4096);
    // Finer levels hash into 2^12 entries.
    assert!(!g.levels[15].dense && g.levels[15].size == 4096);
    assert_eq!(g.levels[15].res, 256);
    // By hand: 3·1 ⊕ 5·2654435761 ⊕ 7·805459861 (mod 2^32) = 1191511397; mod 4096 = 1381.
    let lv = Level {
        scale: 100.0,
        res: 101,
        size: 4096,
        dense: false,
        offset: 0,
    };
    assert_eq!(HashGrid::index(&lv, [3, 5, 7]), 1381);
    let dense = Level {
        dense: true,
        res: 16,
        size: 4096,
        ..lv
    };
    assert_eq!(HashGrid::index(&dense, [3, 5, 7]), 3 + 5 * 16 + 7 * 256);
}

#[test]
fn gradients_match_finite_differences() {
    let cfg = HashGridConfig::with_finest(4, 2, 8, 4, 20);
    let mut net = Net::new(cfg, 8, 2, 7);
    // Larger table values than the ±1e-4 start, so every path carries gradient.
    let mut rng = Rng(3);
    for p in &mut net.params[..net.grid.n_params] {
        *p = rng.uniform(-0.5, 0.5);
    }
    let xs: Vec<[f32; 3]> = (0..40)
        .map(|_| [rng.unit() as f32, rng.unit() as f32, rng.unit() as f32])
        .collect();
    let ys: Vec<f32> = xs.iter().map(|x| x[0] * x[1] + x[2]).collect();
    for kind in [Loss::L2, Loss::L1] {
        let mut grad = vec![0.0; net.n_params()];
        net.loss_grad(&xs, &ys, &mut grad, kind);
        let mut checked = 0;
        for i in (0..net.n_params()).step_by(7) {
            if grad[i].abs() < 1e-4 {
                continue;
            }
            let h = 1e-2f32;
            let orig = net.params[i];
            let mut scratch = vec![0.0; net.n_params()];
            net.params[i] = orig + h;
            let up = net.loss_grad(&xs, &ys, &mut scratch, kind).0;
            net.params[i] = orig - h;
            let down = net.loss_grad(&xs, &ys, &mut scratch, kind).0;
            net.params[i] = orig;
            let fd = ((up - down) / (2.0 * h as f64)) as f32;
            assert!(
                (fd - grad[i]).abs() <= 2e-2 * grad[i].abs().max(1e-3) + 1e-4,
                "{kind:?} param {i}: analytic {} vs finite difference {fd}",
                grad[i]
            );
            checked += 1;
        }
        assert!(checked > 20, "only {checked} parameters had gradient");
    }
}

#[test]
fn a_smooth_field_is_learned() {
    // 24³ samples of a smooth field in [0, 1]; 300 full-batch Adam steps.
    let f = |x: [f32; 3]| {
        0.5 + 0.25
            * (std::f32::consts::TAU * x[0]).sin()
            * (std::f32::consts::TAU * x[1]).cos()
            * x[2]
            + 0.2 * (x[2] - 0.5)
    };
    let n = 24;
    let xs: Vec<[f32; 3]> = (0..n * n * n)
        .map(|i| {
            let (a, b, c) = (i / (n * n), (i / n) % n, i % n);
            [a, b, c].map(|v| v as f32 / (n - 1) as f32)
        })
        .collect();
    let ys: Vec<f32> = xs.iter().map(|&x| f(x)).collect();
    let cfg = HashGridConfig::with_finest(8, 2, 12, 4, 24);
    let mut net = Net::new(cfg, 32, 2, 11);
    let mut adam = Adam::new(net.n_params(), net.grid.n_params, 1e-2);
    let mut grad = vec![];
    let mut mse = 1.0;
    for _ in 0..300 {
        mse = net.train_step(&mut adam, (&xs, &ys), &mut grad, Loss::L2, true);
    }
    let psnr = 10.0 * (0.95f64.powi(2) / mse).log10(); // range of the field ≈ 0.95
    assert!(psnr > 35.0, "PSNR {psnr:.1} dB after 300 steps");
}

#[test]
fn the_same_seed_and_threads_give_the_same_bits() {
    let cfg = HashGridConfig::with_finest(6, 2, 10, 4, 32);
    let xs: Vec<[f32; 3]> = (0..3000)
        .map(|i| {
            [
                (i % 17) as f32 / 16.0,
                (i % 13) as f32 / 12.0,
                (i % 7) as f32 / 6.0,
            ]
        })
        .collect();
    let ys: Vec<f32> = xs.iter().map(|x| x[0] - x[1] * x[2]).collect();
    let run = || {
        let mut net = Net::new(cfg, 16, 2, 5);
        let mut adam = Adam::new(net.n_params(), net.grid.n_params, 1e-2);
        let mut grad = vec![];
        for _ in 0..5 {
            net.train_step(&mut adam, (&xs, &ys), &mut grad, Loss::L2, true);
        }
        net.params
    };
    assert_eq!(run(), run());
}

#[test]
fn model_files_round_trip_bit_exactly() {
    use voxfield_neural::NeuralModel;
    let cfg = HashGridConfig::with_finest(4, 2, 8, 4, 16);
    let mut net = Net::new(cfg, 16, 2, 9);
    net.params
        .iter_mut()
        .for_each(|p| *p = voxfield_neural::model::f16_value(voxfield_neural::model::f16_bits(*p)));
    let model = NeuralModel {
        net,
        shape: [5, 6, 7],
        dtype: "uint8".into(),
        lo: 2.0,
        hi: 9.5,
        affine: None,
        record: serde_json::json!({"epochs": 1}),
        width: 16,
        hidden: 2,
        quant: None,
    };
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.vxn");
    model.save(&a).unwrap();
    let back = NeuralModel::load(&a).unwrap();
    assert_eq!(back.net.params, model.net.params);
    assert_eq!(
        (back.shape, back.lo, back.hi),
        (model.shape, model.lo, model.hi)
    );
    let b = d.path().join("b.vxn");
    back.save(&b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(back.value(&[1.0, 2.0, 3.0]), model.value(&[1.0, 2.0, 3.0]));
    assert!(back.value(&[-0.5, 2.0, 3.0]).is_nan() && back.value(&[f64::NAN, 0.0, 0.0]).is_nan());

    // Quantised tables: every entry on its level's grid of 2^bits values, the
    // file a fraction of the f16 one, and the round trip still bit-exact.
    for bits in [2, 4, 8] {
        let mut q = model.clone();
        let quant = voxfield_neural::Quant::for_bits(&q.net, bits);
        quant.apply(&mut q.net);
        q.quant = Some(quant.clone());
        // Every entry is the nearest multiple of the step, within ±(2^(bits−1) − 1) steps.
        let top = ((1 << (bits - 1)) - 1) as f32;
        let n = q.net.grid.n_params;
        for (v, o) in q.net.params[..n].iter().zip(&model.net.params[..n]) {
            let k = v / quant.step;
            assert!(
                (k - k.round()).abs() < 1e-3 && k.round().abs() <= top,
                "{v} = {k} steps"
            );
            assert!((v - o).abs() <= quant.step / 2.0 * 1.0001, "{v} {o}");
        }
        assert_eq!(q.net.params[n..], model.net.params[n..]);
        let c = d.path().join(format!("q{bits}.vxn"));
        q.save(&c).unwrap();
        let back = NeuralModel::load(&c).unwrap();
        assert_eq!(back.net.params, q.net.params);
        assert_eq!(back.quant, q.quant);
        let e = d.path().join(format!("q{bits}b.vxn"));
        back.save(&e).unwrap();
        assert_eq!(std::fs::read(&c).unwrap(), std::fs::read(&e).unwrap());
        // (At 8 bits this tiny model's 256-value codebooks outweigh its tables.)
        if bits < 8 {
            assert!(std::fs::metadata(&c).unwrap().len() < std::fs::metadata(&a).unwrap().len());
        }
    }
}

#[test]
fn quantisation_aware_steps_take_the_gradient_at_the_quantised_tables() {
    use voxfield_neural::Quant;
    let cfg = HashGridConfig::with_finest(4, 2, 8, 4, 20);
    let mut net = Net::new(cfg, 8, 2, 11);
    let mut rng = Rng(5);
    for p in &mut net.params[..net.grid.n_params] {
        *p = rng.uniform(-0.5, 0.5);
    }
    let xs: Vec<[f32; 3]> = (0..64)
        .map(|_| [rng.unit() as f32, rng.unit() as f32, rng.unit() as f32])
        .collect();
    let ys: Vec<f32> = xs.iter().map(|x| (x[0] - x[1]) * x[2]).collect();
    let q = Quant::new(0.05);
    // The network the file would hold, and its loss gradient, checked by
    // finite differences of that network's loss.
    let mut held = net.clone();
    q.apply(&mut held);
    let mut g_held = vec![0.0; net.n_params()];
    held.loss_grad(&xs, &ys, &mut g_held, Loss::L2);
    let mut checked = 0;
    for i in (0..held.grid.n_params).step_by(5) {
        if g_held[i].abs() < 1e-4 {
            continue;
        }
        let h = 1e-2f32;
        let orig = held.params[i];
        let mut scratch = vec![0.0; held.n_params()];
        let mid = held.loss_grad(&xs, &ys, &mut scratch, Loss::L2).0;
        held.params[i] = orig + h;
        let up = held.loss_grad(&xs, &ys, &mut scratch, Loss::L2).0;
        held.params[i] = orig - h;
        let down = held.loss_grad(&xs, &ys, &mut scratch, Loss::L2).0;
        held.params[i] = orig;
        // A ReLU switching inside ±h bends the loss: the one-sided slopes
        // disagree there, and the central difference means nothing.
        let (right, left) = ((up - mid) / h as f64, (mid - down) / h as f64);
        if (right - left).abs() > 0.05 * right.abs().max(left.abs()) {
            continue;
        }
        let fd = ((up - down) / (2.0 * h as f64)) as f32;
        assert!(
            (fd - g_held[i]).abs() <= 2e-2 * g_held[i].abs().max(1e-3) + 1e-4,
            "param {i}: {} vs finite difference {fd}",
            g_held[i]
        );
        checked += 1;
    }
    assert!(checked > 10, "only {checked} table entries had gradient");
    // Straight through: that gradient moves the unquantised tables (Adam on
    // them with it, exactly), which stay off the quantisation grid.
    let mut expect = net.params.clone();
    Adam::new(net.n_params(), net.grid.n_params, 1e-3).step(&mut expect, &g_held);
    let mut adam = Adam::new(net.n_params(), net.grid.n_params, 1e-3);
    let mut grad = vec![];
    let mse = net.train_step_quantised(&mut adam, (&xs, &ys), &mut grad, Loss::L2, &q);
    assert_eq!(net.params, expect);
    assert_eq!(grad, g_held);
    let off_grid = net.params[..net.grid.n_params]
        .iter()
        .filter(|&&v| ((v / 0.05).round() * 0.05 - v).abs() > 1e-6)
        .count();
    assert!(off_grid > net.grid.n_params / 2);
    // The MSE reported is the quantised network's.
    let pred: Vec<f32> = {
        let mut o = vec![0.0; xs.len()];
        held.predict_many(&xs, &mut o);
        o
    };
    let want: f64 = pred
        .iter()
        .zip(&ys)
        .map(|(p, y)| ((p - y) as f64).powi(2))
        .sum::<f64>()
        / xs.len() as f64;
    assert!(
        (mse - want).abs() <= 1e-6 * want.max(1e-9),
        "{mse} vs {want}"
    );
}

#[test]
fn the_gradient_loss_gradient_matches_finite_differences() {
    use voxfield_neural::net::GradientLoss;
    let cfg = HashGridConfig::with_finest(4, 2, 8, 4, 20);
    let mut net = Net::new(cfg, 8, 2, 13);
    let mut rng = Rng(8);
    for p in &mut net.params[..net.grid.n_params] {
        *p = rng.uniform(-0.5, 0.5);
    }
    // Voxel centres of a 9×1×6 grid (an axis of one voxel is left out), with
    // targets of any value.
    let shape = [9, 1, 6];
    let xs: Vec<[f32; 3]> = (0..30)
        .map(|_| {
            let (i, k) = (rng.below(9), rng.below(6));
            [i as f32 / 8.0, 0.0, k as f32 / 5.0]
        })
        .collect();
    let targets: Vec<[f32; 3]> = (0..30)
        .map(|_| [rng.uniform(-0.2, 0.2), 5.0, rng.uniform(-0.2, 0.2)])
        .collect();
    let g = GradientLoss {
        targets: &targets,
        shape,
        weight: 3.0,
    };
    let loss = |net: &Net| {
        let mut scratch = vec![0.0; net.n_params()];
        g.weight as f64 * net.add_gradient_loss(&xs, &g, &mut scratch)
    };
    let mut grad = vec![0.0; net.n_params()];
    net.add_gradient_loss(&xs, &g, &mut grad);
    let mut checked = 0;
    for i in (0..net.n_params()).step_by(3) {
        if grad[i].abs() < 1e-4 {
            continue;
        }
        let h = 1e-3f32;
        let orig = net.params[i];
        let mid = loss(&net);
        net.params[i] = orig + h;
        let up = loss(&net);
        net.params[i] = orig - h;
        let down = loss(&net);
        net.params[i] = orig;
        let (right, left) = ((up - mid) / h as f64, (mid - down) / h as f64);
        if (right - left).abs() > 0.05 * right.abs().max(left.abs()) {
            continue; // a ReLU switches inside ±h
        }
        let fd = ((up - down) / (2.0 * h as f64)) as f32;
        assert!(
            (fd - grad[i]).abs() <= 3e-2 * grad[i].abs().max(1e-3) + 1e-4,
            "param {i}: {} vs finite difference {fd}",
            grad[i]
        );
        checked += 1;
    }
    assert!(checked > 20, "only {checked} parameters had gradient");
    // The value it reports: the network's numpy.gradient against the targets.
    let mut o = vec![0.0; 2];
    let x = xs[0];
    let i = (x[0] * 8.0).round() as usize;
    let (hi, lo) = ((i + 1).min(8), i.saturating_sub(1));
    net.predict_many(
        &[[hi as f32 / 8.0, 0.0, x[2]], [lo as f32 / 8.0, 0.0, x[2]]],
        &mut o,
    );
    let one = GradientLoss {
        targets: &targets[..1],
        ..g
    };
    let k = (x[2] * 5.0).round() as usize;
    let (hk, lk) = ((k + 1).min(5), k.saturating_sub(1));
    let mut o2 = vec![0.0; 2];
    net.predict_many(
        &[[x[0], 0.0, hk as f32 / 5.0], [x[0], 0.0, lk as f32 / 5.0]],
        &mut o2,
    );
    let e0 = (o[0] - o[1]) / (hi - lo) as f32 - targets[0][0];
    let e2 = (o2[0] - o2[1]) / (hk - lk) as f32 - targets[0][2];
    let want = ((e0 * e0 + e2 * e2) / 2.0) as f64;
    let got = net.add_gradient_loss(&xs[..1], &one, &mut vec![0.0; net.n_params()]);
    assert!(
        (got - want).abs() <= 1e-5 * want.max(1e-6),
        "{got} vs {want}"
    );
}

#[test]
fn the_row_decoder_equals_the_point_path_on_random_networks() {
    // Dense and hashed levels, every specialised feature count and one that
    // is not, tables of a power of two and not (levels sized by their grid).
    for (features, log2_table, seed) in [(2, 12, 1), (1, 9, 2), (3, 14, 3), (8, 6, 4), (4, 16, 5)] {
        let cfg = HashGridConfig::with_finest(10, features, log2_table, 5, 150);
        let mut net = Net::new(cfg, 16, 2, seed);
        let mut rng = Rng(seed + 100);
        for p in &mut net.params[..net.grid.n_params] {
            *p = rng.uniform(-1.0, 1.0);
        }
        for _ in 0..20 {
            let (x, y) = (rng.unit() as f32, rng.unit() as f32);
            let zs: Vec<f32> = (0..97).map(|k| k as f32 / 96.0).collect();
            // The encoding alone, then through the MLP.
            let m = net.grid.n_out();
            let mut row = vec![0f32; zs.len() * m];
            let t = &net.params[..net.grid.n_params];
            net.grid.encode_row(t, x, y, &zs, &mut row);
            let mut one = vec![0f32; m];
            // Feature-major: row f holds feature f of every position.
            for (k, &z) in zs.iter().enumerate() {
                net.grid.forward(t, &[x, y, z], &mut one);
                for (f, b) in one.iter().enumerate() {
                    let a = row[f * zs.len() + k];
                    assert!(
                        (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                        "F {features}: {a} vs {b}"
                    );
                }
            }
            // Positions out of order, spanning far more vertex lines than they are.
            let odd = [1.0f32, 0.0, 0.37, 0.37, 0.99];
            let mut enc = vec![0f32; odd.len() * m];
            net.grid.encode_row(t, x, y, &odd, &mut enc);
            for (k, &z) in odd.iter().enumerate() {
                net.grid.forward(t, &[x, y, z], &mut one);
                for (f, b) in one.iter().enumerate() {
                    let a = enc[f * odd.len() + k];
                    assert!(
                        (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                        "F {features}: {a} vs {b}"
                    );
                }
            }
            let mut got = vec![0f32; zs.len()];
            net.predict_row(x, y, &zs, &mut got);
            let xs: Vec<[f32; 3]> = zs.iter().map(|&z| [x, y, z]).collect();
            let mut want = vec![0f32; zs.len()];
            net.predict_many(&xs, &mut want);
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "F {features}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn the_rate_term_gradient_matches_finite_differences_of_its_bits() {
    use voxfield_neural::Quant;
    let cfg = HashGridConfig::with_finest(4, 2, 8, 4, 20);
    let mut net = Net::new(cfg, 8, 2, 21);
    let mut rng = Rng(22);
    for p in &mut net.params[..net.grid.n_params] {
        *p = rng.uniform(-0.3, 0.3);
    }
    net.params[3] = 0.0;
    let q = Quant::new(0.02);
    let slopes = net.rate_slopes(&q, 1e-3, 2.0);
    assert_eq!(slopes.len(), 4);
    // The term: Σ over levels of slope × |v|, i.e. slope·(bits of v)
    // without the constant; its gradient by finite differences.
    let rate = |net: &Net| -> f64 {
        net.grid
            .levels
            .iter()
            .zip(&slopes)
            .map(|(l, &s)| {
                let t = &net.params[net.grid.table(l)];
                s as f64 * t.iter().map(|v| v.abs() as f64).sum::<f64>()
            })
            .sum()
    };
    let mut grad = vec![0.0; net.n_params()];
    net.add_rate_gradient(&slopes, &mut grad);
    for i in (0..net.grid.n_params).step_by(11) {
        let (h, orig) = (1e-4f32, net.params[i]);
        if orig.abs() <= h {
            continue;
        }
        net.params[i] = orig + h;
        let up = rate(&net);
        net.params[i] = orig - h;
        let down = rate(&net);
        net.params[i] = orig;
        let fd = ((up - down) / (2.0 * h as f64)) as f32;
        assert!(
            (fd - grad[i]).abs() <= 1e-3 * grad[i].abs(),
            "entry {i}: {} vs {fd}",
            grad[i]
        );
    }
    // No slope at zero, none on the MLP; a level's slope falls as its
    // entries spread (bits grow with |v| / scale) and grows with the price.
    assert_eq!(grad[3], 0.0);
    assert!(grad[net.grid.n_params..].iter().all(|&g| g == 0.0));
    let doubled = net.rate_slopes(&q, 2e-3, 2.0);
    assert!(doubled
        .iter()
        .zip(&slopes)
        .all(|(a, b)| (a / b - 2.0).abs() < 1e-5));
    assert!(net.rate_slopes(&q, -1.0, 2.0).iter().all(|&s| s == 0.0));
}

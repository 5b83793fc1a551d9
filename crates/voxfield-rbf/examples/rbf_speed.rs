//! Quick speed check on Franke's function: `cargo run --release -p voxfield-rbf --example rbf_speed -- N PPC KERNEL`.
use std::time::Instant;
use voxfield_rbf::{fit, FitOptions};

fn franke(x: f64, y: f64) -> f64 {
    0.75 * (-((9.0 * x - 2.0).powi(2) + (9.0 * y - 2.0).powi(2)) / 4.0).exp()
        + 0.75 * (-(9.0 * x + 1.0).powi(2) / 49.0 - (9.0 * y + 1.0) / 10.0).exp()
        + 0.5 * (-((9.0 * x - 7.0).powi(2) + (9.0 * y - 3.0).powi(2)) / 4.0).exp()
        - 0.2 * (-(9.0 * x - 4.0).powi(2) - (9.0 * y - 7.0).powi(2)).exp()
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let n: usize = a.get(1).map_or(131_044, |s| s.parse().unwrap());
    let ppc: usize = a.get(2).map_or(300, |s| s.parse().unwrap());
    let kernel = a.get(3).map_or("tps", |s| s.as_str()).parse().unwrap();
    let overlap: f64 = a.get(4).map_or(0.25, |s| s.parse().unwrap());
    let mut s = 1u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let pts: Vec<f64> = (0..2 * n).map(|_| next()).collect();
    let vals: Vec<f64> = pts.chunks(2).map(|p| franke(p[0], p[1])).collect();
    let o = FitOptions {
        kernel,
        points_per_cell: Some(ppc),
        overlap,
        ..Default::default()
    };
    let t = Instant::now();
    let m = fit(&pts, 2, &vals, 1, &o, &voxfield_core::work::Watch::none()).unwrap();
    println!(
        "fit {:.3} s, {} cells, mean {} pts/cell",
        t.elapsed().as_secs_f64(),
        m.info.cells,
        m.info.cell_points / m.info.cells
    );
    let q: Vec<f64> = (0..2_000_000).map(|_| 0.01 + 0.98 * next()).collect();
    let mut out = vec![0.0; 1_000_000];
    let t = Instant::now();
    m.eval_points(&q, &mut out, &|_, _| {}).unwrap();
    let te = t.elapsed().as_secs_f64();
    let rmse = (q
        .chunks(2)
        .zip(&out)
        .map(|(p, v)| (franke(p[0], p[1]) - v).powi(2))
        .sum::<f64>()
        / 1e6)
        .sqrt();
    let maxe = q
        .chunks(2)
        .zip(&out)
        .map(|(p, v)| (franke(p[0], p[1]) - v).abs())
        .fold(0.0, f64::max);
    println!("1e6 eval {te:.3} s, rmse {rmse:.3e}, max {maxe:.3e}");
    let t = Instant::now();
    m.eval_grid(&[0.0, 0.0], &[1.0, 1.0], &[512, 512], &mut |_, _| Ok(()))
        .unwrap();
    println!("512^2 grid {:.3} s", t.elapsed().as_secs_f64());
}

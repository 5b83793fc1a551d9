//! The memory bound of a fit (its own process): private memory grows by the model
//! (each cell keeps its centres and coefficients: Σ cell points × (dim + channels)
//! f64) plus the deduplicated copy of the input and the matrices of the cells in
//! flight (one m×m system per thread), never by all cells' systems at once.

use voxfield_core::memory::PeakRss;
use voxfield_rbf::{fit, FitOptions};

#[test]
fn fitting_keeps_only_the_cells_in_flight() {
    let n = 400_000;
    let mut s = 3u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let pts: Vec<f64> = (0..2 * n).map(|_| next()).collect();
    let vals: Vec<f64> = pts.chunks(2).map(|p| (5.0 * p[0]).sin() * p[1]).collect();
    let q: Vec<f64> = (0..2_000_000).map(|_| next()).collect();
    let mut out = vec![0.0; 1_000_000];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| ()); // start the workers before the baseline

    let monitor = PeakRss::start();
    let base = monitor.base_kib();
    let model = pool
        .install(|| {
            fit(
                &pts,
                2,
                &vals,
                1,
                &FitOptions::default(),
                &voxfield_core::work::Watch::none(),
            )
        })
        .unwrap();
    pool.install(|| model.eval_points(&q, &mut out, &|_, _| {}))
        .unwrap();
    let grew_mib = (monitor.stop() - base) as f64 / 1024.0;

    let mib = |bytes: usize| bytes as f64 / (1 << 20) as f64;
    let model_mib = mib(model.info.cell_points * 3 * 8);
    let input_mib = mib(n * 3 * 8);
    let m = model.info.largest_cell;
    let in_flight_mib = mib(2 * 2 * m * m * 8); // A and its factor, per thread
    let bound = model_mib + 2.0 * input_mib + in_flight_mib + 48.0;
    eprintln!(
        "grew {grew_mib:.1} MiB: model {model_mib:.1}, input {input_mib:.1}, in flight {in_flight_mib:.1} \
         ({} cells; all systems at once would be {:.0} MiB)",
        model.info.cells,
        mib(model.info.cells * m * m * 8)
    );
    assert!(
        grew_mib <= bound,
        "private memory grew {grew_mib:.1} MiB > {bound:.1} MiB"
    );
    assert!(out.iter().all(|v| v.is_finite()));
}

//! Timing harness driven by `bench/bench_sampling.py`: opens a volume, runs one
//! workload `--repeats` times after a warm-up, and prints JSON with the median
//! time and the peak anonymous memory (RssAnon) seen while it ran.
//!
//! cargo run --release -p voxfield-sample --example bench_sample -- \
//!     VOLUME.npy (--points P.npy | --plane ox,oy,oz,ux,uy,uz,vx,vy,vz,nu,nv) [--repeats 5] [--threads N]

use std::path::PathBuf;

use std::time::Instant;

use voxfield_core::memory::PeakRss;

use voxfield_core::Field;
use voxfield_io::{npy, open, OpenOptions};
use voxfield_sample::{
    evaluate, evaluate_plane, Plane, PointList, Reduce, SampleOptions, VolumeField,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .map(|i| args[i + 1].clone())
    };
    let volume = PathBuf::from(&args[1]);
    let repeats: usize = get("--repeats").map_or(5, |v| v.parse().unwrap());
    if let Some(t) = get("--threads") {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t.parse().unwrap())
            .build_global()
            .unwrap();
    }
    let t_open = Instant::now();
    let src = open(&volume, &OpenOptions::default()).expect("open volume");
    let open_s = t_open.elapsed().as_secs_f64();
    let field = VolumeField::new(
        src.contiguous().unwrap(),
        SampleOptions::default(),
        None,
        None,
    );
    let f: &dyn Field = &field;

    let points = get("--points").map(|p| npy::read_array(&PathBuf::from(p)).expect("points").data);
    let plane = get("--plane").map(|s| {
        let v: Vec<f64> = s.split(',').map(|t| t.parse().unwrap()).collect();
        Plane::new(
            [v[0], v[1], v[2]],
            [v[3], v[4], v[5]],
            [v[6], v[7], v[8]],
            v[9] as usize,
            v[10] as usize,
        )
        .unwrap()
    });
    let n = points.as_ref().map_or_else(
        || plane.as_ref().unwrap().nu * plane.as_ref().unwrap().nv,
        |p| p.len() / 3,
    );
    let mut out = vec![0f32; n];
    let monitor = PeakRss::start();
    let base_kib = monitor.base_kib();

    let mut run = || match (&points, &plane) {
        (Some(p), _) => evaluate(f, &PointList::new(p).unwrap(), &mut out).unwrap(),
        (_, Some(pl)) => evaluate_plane(f, pl, &[0.0], Reduce::Mean, &mut out).unwrap(),
        _ => panic!("give --points or --plane"),
    };
    run(); // warm-up
           // Small requests are timed in batches so the clock's resolution does not matter.
    let inner = if n < 100_000 { (100_000 / n).max(1) } else { 1 };
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..inner {
                run();
            }
            t.elapsed().as_secs_f64() / inner as f64
        })
        .collect();
    let peak = monitor.stop();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let nan = out.iter().filter(|v| v.is_nan()).count();
    let checksum: f64 = out.iter().filter(|v| !v.is_nan()).map(|&v| v as f64).sum();
    println!(
        "{{\"median_s\": {}, \"times_s\": {:?}, \"open_s\": {open_s}, \"n\": {n}, \"threads\": {}, \
         \"rss_anon_base_kib\": {base_kib}, \"rss_anon_peak_kib\": {}, \"output_bytes\": {}, \"nan\": {nan}, \"checksum\": {checksum}}}",
        times[times.len() / 2],
        times,
        rayon::current_num_threads(),
        peak,
        n * 4
    );
}

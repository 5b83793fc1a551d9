//! End-to-end timing harness for `bench/bench_chunked.py`: for each repeat it opens
//! the source afresh (cold chunk cache, warm page cache), builds the field and
//! samples; prints JSON with the median and the peak private memory (RssAnon).
//!
//! cargo run --release -p voxfield --features hdf5 --example bench_field -- \
//!     SOURCE (--points P.npy | --plane ox,oy,oz,ux,uy,uz,vx,vy,vz,nu,nv) [--repeats 3] [--cache-mb 512]

use std::path::PathBuf;

use std::time::Instant;

use voxfield_core::memory::PeakRss;

use voxfield::{
    evaluate, evaluate_plane, field, open, ChunkCache, FieldOptions, OpenOptions, Plane, PointList,
    Reduce,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .map(|i| args[i + 1].clone())
    };
    let source = PathBuf::from(&args[1]);
    let repeats: usize = get("--repeats").map_or(3, |v| v.parse().unwrap());
    let cache_mb: usize = get("--cache-mb").map_or(512, |v| v.parse().unwrap());
    let points = get("--points").map(|p| {
        voxfield_io::npy::read_array(&PathBuf::from(p))
            .expect("points")
            .data
    });
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
    let n = points
        .as_ref()
        .map_or_else(|| plane.map_or(0, |p| p.nu * p.nv), |p| p.len() / 3);
    let mut out = vec![0f32; n];
    let monitor = PeakRss::start();
    let base = monitor.base_kib();
    let mut times = vec![];
    let mut warm = vec![];
    for _ in 0..repeats {
        let t = Instant::now();
        let src = open(&source, &OpenOptions::default()).expect("open");
        let cache = ChunkCache::new(cache_mb << 20);
        let f = field(src.as_ref(), &FieldOptions::default(), &cache).expect("field");
        let run = |out: &mut [f32]| match (&points, &plane) {
            (Some(p), _) => evaluate(f.as_ref(), &PointList::new(p).unwrap(), out).unwrap(),
            (_, Some(pl)) => evaluate_plane(f.as_ref(), pl, &[0.0], Reduce::Mean, out).unwrap(),
            _ => panic!("give --points or --plane"),
        };
        run(&mut out);
        times.push(t.elapsed().as_secs_f64());
        // The same request again on the open source: indexes built, chunk cache warm.
        let t = Instant::now();
        run(&mut out);
        warm.push(t.elapsed().as_secs_f64());
    }
    warm.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let peak = monitor.stop();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let nan = out.iter().filter(|v| v.is_nan()).count();
    let checksum: f64 = out.iter().filter(|v| !v.is_nan()).map(|&v| v as f64).sum();
    println!(
        "{{\"median_s\": {}, \"warm_median_s\": {}, \"times_s\": {:?}, \"n\": {n}, \"threads\": {}, \"rss_anon_base_kib\": {base}, \
         \"rss_anon_peak_kib\": {}, \"nan\": {nan}, \"checksum\": {checksum}}}",
        sorted[sorted.len() / 2],
        warm[warm.len() / 2],
        times,
        rayon::current_num_threads(),
        peak
    );
}

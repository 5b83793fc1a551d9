//! The memory bound, in its own test binary (its own process): sampling a million
//! points allocates the output and bounded scratch, never a copy of the volume.
//! Measured as RssAnon (private memory); the file's page cache does not count.

use std::io::Write;

use voxfield_core::memory::PeakRss;
use voxfield_core::VolumeSource;
use voxfield_io::npy;
use voxfield_sample::{evaluate, Method, Mode, PointList, SampleOptions, VolumeField};

#[test]
fn a_million_points_cost_the_output_plus_bounded_scratch() {
    // A 512 MiB float32 volume (a hole in a sparse file): a copy or a cast of it
    // would show up as hundreds of MiB of private memory.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.npy");
    let shape = [512usize, 512, 512];
    let header = npy::header_bytes("<f4", &shape);
    let f = std::fs::File::create(&path).unwrap();
    (&f).write_all(&header).unwrap();
    f.set_len(header.len() as u64 + 4 * 512 * 512 * 512)
        .unwrap();
    drop(f);
    let vol = npy::open(&path, &Default::default()).unwrap();

    let n = 1_000_000usize;
    let mut state = 12345u64;
    let pts: Vec<f64> = (0..3 * n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 511.0
        })
        .collect();
    let list = PointList::new(&pts).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| ()); // start the workers before the baseline

    let monitor = PeakRss::start();
    let base = monitor.base_kib();
    for method in [Method::Linear, Method::Cubic] {
        let opts = SampleOptions {
            method,
            mode: Mode::Reflect,
            cval: 0.0,
        };
        let field = VolumeField::new(vol.contiguous().unwrap(), opts, None, None);
        let mut out = vec![1.0f32; n];
        pool.install(|| evaluate(&field, &list, &mut out)).unwrap();
        assert!(out.iter().all(|v| *v == 0.0));
    }
    let grew_mib = (monitor.stop() - base) as f64 / 1024.0;
    let output_mib = (n * 4) as f64 / (1 << 20) as f64;
    assert!(
        grew_mib <= 64.0 + output_mib,
        "private memory grew by {grew_mib:.1} MiB"
    );
}

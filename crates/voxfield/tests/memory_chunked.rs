//! The memory bound for chunked volumes (its own process): sampling 1e6 points from
//! a Zarr volume four times the cache budget keeps private memory within the budget
//! plus a fixed overhead (the batch's index arrays and the output).

use voxfield::{
    evaluate, field, open, write_zarr, ChunkCache, FieldOptions, OpenOptions, PointList, Watch,
    ZarrCodec, ZarrWriteOptions,
};
use voxfield_core::memory::PeakRss;

mod common;
use common::Ramp;

#[test]
fn sampling_a_volume_bigger_than_the_cache_stays_within_budget() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ramp.zarr");
    let shape = [512, 512, 256];
    let ramp = Ramp::new(shape, [64, 64, 64], [1.0, 3.0, 7.0]);
    let opts = ZarrWriteOptions {
        chunks: [64, 64, 64],
        codec: ZarrCodec::Zstd,
        level: 1,
        shard: None,
    };
    write_zarr(&ramp, &store, &opts, &Watch::none()).unwrap();
    let src = open(&store, &OpenOptions::default()).unwrap();

    let n = 1_000_000;
    let mut s = 1u64;
    let pts: Vec<f64> = (0..3 * n)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 * (shape[i % 3] - 1) as f64
        })
        .collect();
    let list = PointList::new(&pts).unwrap();
    let budget_mib = 64.0;
    let cache = ChunkCache::new((budget_mib as usize) << 20);
    let f = field(src.as_ref(), &FieldOptions::default(), &cache).unwrap();
    let mut out = vec![0f32; n];

    let monitor = PeakRss::start();
    let base = monitor.base_kib();
    evaluate(f.as_ref(), &list, &mut out).unwrap();
    let peak = monitor.stop();
    // Spot-check values: the ramp is linear, so trilinear sampling is exact.
    for i in (0..n).step_by(99_991) {
        let want = pts[3 * i] + 3.0 * pts[3 * i + 1] + 7.0 * pts[3 * i + 2];
        assert!(
            (out[i] as f64 - want).abs() < 1e-2 * want.max(1.0),
            "{} vs {want}",
            out[i]
        );
    }
    let grew = (peak - base) as f64 / 1024.0;
    let volume_mib = 512.0 * 512.0 * 256.0 * 4.0 / 1048576.0;
    let overhead = 96.0; // batch of 2^19 positions (index arrays, values) and the output
    eprintln!(
        "private memory grew {grew:.1} MiB (budget {budget_mib} MiB, volume {volume_mib} MiB)"
    );
    assert!(
        grew <= budget_mib + overhead,
        "private memory grew {grew:.1} MiB (budget {budget_mib}, volume {volume_mib})"
    );
    assert!(cache.stats().bytes <= (budget_mib as usize) << 20);
}

//! The memory bound of `convert` to an OME-Zarr pyramid (its own process): a 1 GiB
//! volume, generated chunk by chunk and never held whole, written as 4 levels with
//! private memory under 160 MiB (a few chunks and their 8x reduction boxes per
//! worker; level 0 chunks are 64³ f32 = 1 MiB).

use voxfield::{
    open, write_ome_zarr, Downsample, OpenOptions, PyramidOptions, Watch, ZarrCodec,
    ZarrWriteOptions,
};
use voxfield_core::memory::PeakRss;

mod common;
use common::Ramp;

#[test]
fn a_pyramid_of_a_volume_bigger_than_memory_budget_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("ramp.ome.zarr");
    let shape = [512, 512, 1024];
    let ramp = Ramp::new(shape, [64, 64, 64], [1.0, 2.0, 4.0]);
    let opts = ZarrWriteOptions {
        chunks: [64, 64, 64],
        codec: ZarrCodec::Zstd,
        level: 1,
        shard: None,
    };
    let pyramid = PyramidOptions {
        levels: Some(4),
        downsample: Downsample::Mean,
    };
    let monitor = PeakRss::start();
    let base = monitor.base_kib();
    let shapes = write_ome_zarr(&ramp, &dst, &opts, &pyramid, &Watch::none()).unwrap();
    let peak = monitor.stop();
    assert_eq!(shapes.len(), 4);
    assert_eq!(shapes[3], vec![64, 64, 128]);
    let grown_mib = (peak.saturating_sub(base)) as f64 / 1024.0;
    assert!(
        grown_mib < 160.0,
        "private memory grew by {grown_mib:.0} MiB for a 1 GiB volume"
    );
    // The ramp is linear: a 2x2x2 mean of level 0 is the ramp at the block centre.
    let l1 = open(&dst.join("1"), &OpenOptions::default()).unwrap();
    let mut v = [0.0; 1];
    l1.read_box([10, 20, 30], [1, 1, 1], &mut v).unwrap();
    assert_eq!(v[0], 20.5 + 2.0 * 40.5 + 4.0 * 60.5);
}

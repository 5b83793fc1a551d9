//! `write_zarr`: round trip through zarrs, and an interrupted conversion leaves no
//! store (and no temporary directory) behind.

use std::path::Path;

use voxfield::{
    open, write_zarr, OpenOptions, VolumeInfo, VolumeSource, Watch, ZarrCodec, ZarrWriteOptions,
};
use voxfield_core::{DType, Endian};

fn fx(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(p)
}

#[test]
fn round_trips_every_codec_and_odd_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let src = open(&fx("golden/vol_5x7x3_int64.npy"), &OpenOptions::default()).unwrap();
    let mut want = vec![0.0; 105];
    src.read_box([0; 3], [5, 7, 3], &mut want).unwrap();
    for (codec, level) in [
        (ZarrCodec::Zstd, 5),
        (ZarrCodec::Blosc, 4),
        (ZarrCodec::Gzip, 6),
    ] {
        let dst = dir.path().join(format!("{codec:?}.zarr"));
        let opts = ZarrWriteOptions {
            chunks: [2, 4, 2],
            codec,
            level,
            shard: None,
        };
        write_zarr(src.as_ref(), &dst, &opts, &Watch::none()).unwrap();
        let back = open(&dst, &OpenOptions::default()).unwrap();
        assert_eq!(back.info().chunk_shape, [2, 4, 2]);
        assert_eq!(back.info().dtype, DType::I64);
        let mut got = vec![0.0; 105];
        back.read_box([0; 3], [5, 7, 3], &mut got).unwrap();
        assert_eq!(got, want, "{codec:?}");
    }
    // Chunked sources convert too (HDF5 needs its feature; Zarr → Zarr here).
    let z = open(&fx("chunked/v3_sharded.zarr"), &OpenOptions::default()).unwrap();
    let dst = dir.path().join("resharded.zarr");
    let opts = ZarrWriteOptions {
        chunks: [5, 5, 5],
        codec: ZarrCodec::Zstd,
        level: 1,
        shard: None,
    };
    write_zarr(z.as_ref(), &dst, &opts, &Watch::none()).unwrap();
    let (a, b) = (z.info().shape, open(&dst, &OpenOptions::default()).unwrap());
    let mut x = vec![0.0; a.iter().product()];
    let mut y = x.clone();
    z.read_box([0; 3], a, &mut x).unwrap();
    b.read_box([0; 3], a, &mut y).unwrap();
    assert_eq!(x, y);
}

/// A source whose chunk (2, 0, 0) cannot be read.
struct FailsMidway(VolumeInfo);
impl VolumeSource for FailsMidway {
    fn info(&self) -> &VolumeInfo {
        &self.0
    }
    fn read_chunk(&self, idx: [usize; 3], out: &mut [u8]) -> voxfield::Result<()> {
        if idx == [2, 0, 0] {
            return Err(voxfield::Error::format(
                "midway",
                "chunk [2, 0, 0] is corrupt",
            ));
        }
        out.fill(1);
        Ok(())
    }
}

#[test]
fn a_failed_or_cancelled_conversion_leaves_nothing_at_the_destination() {
    let dir = tempfile::tempdir().unwrap();
    let info = VolumeInfo {
        format: "test",
        path: "midway".into(),
        shape: [40, 8, 8],
        dtype: DType::U16,
        endian: Endian::NATIVE,
        chunk_shape: [8, 8, 8],
        affine: None,
        bytes_on_disk: 0,
        value_scale: None,
        notes: vec![],
        axes: voxfield_core::Axes::plain([40, 8, 8]),
    };
    let src = FailsMidway(info);
    let dst = dir.path().join("out.zarr");
    let opts = ZarrWriteOptions {
        chunks: [8, 8, 8],
        codec: ZarrCodec::Zstd,
        level: 3,
        shard: None,
    };
    let e = write_zarr(&src, &dst, &opts, &Watch::none()).unwrap_err();
    assert!(e.to_string().contains("[2, 0, 0]"), "{e}");
    assert!(!dst.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temporary store left behind"
    );
    // Cancelled before the first chunk.
    let e = write_zarr(
        &src,
        &dst,
        &opts,
        &Watch {
            progress: &|_, _, _| {},
            stop: &|| true,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("interrupted"), "{e}");
    assert!(!dst.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A shard index entry claiming 2^40 bytes for one chunk (sealed with a valid
/// crc32c) is an error naming the store, not a 1 TiB allocation.
#[test]
fn a_forged_shard_index_entry_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let src = open(&fx("golden/vol_5x7x3_int64.npy"), &OpenOptions::default()).unwrap();
    let dst = dir.path().join("s.zarr");
    let opts = ZarrWriteOptions {
        chunks: [2, 4, 2],
        codec: ZarrCodec::Zstd,
        level: 3,
        shard: Some(2),
    };
    write_zarr(src.as_ref(), &dst, &opts, &Watch::none()).unwrap();
    let shard = dst.join("c/0/0/0");
    let mut b = std::fs::read(&shard).unwrap();
    // The index: 2×2×2 inner chunks of (offset, nbytes) u64s, then a crc32c.
    let index = b.len() - (8 * 16 + 4);
    b[index + 8..index + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let crc = crc32c::crc32c(&b[index..b.len() - 4]);
    let n = b.len();
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&shard, &b).unwrap();
    let z = open(&dst, &OpenOptions::default()).unwrap();
    let mut out = vec![0.0; 5 * 7 * 3];
    let e = z
        .read_box([0; 3], [5, 7, 3], &mut out)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("s.zarr") && e.contains("runs past the end"),
        "{e}"
    );
}

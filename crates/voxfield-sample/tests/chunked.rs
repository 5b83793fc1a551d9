//! The chunked engine must give exactly what the memory-mapped engine gives on the
//! same voxels, for every method and mode, with points straddling chunk borders,
//! on the volume's edges, outside, and NaN — whatever the cache budget.

use std::sync::Arc;

use voxfield_core::{
    ChunkCache, ContiguousView, DType, Endian, Field, Result, VolumeInfo, VolumeSource,
};
use voxfield_sample::{
    evaluate, evaluate_plane, ChunkedField, Method, Mode, Plane, PointList, Positions, Reduce,
    SampleOptions, VolumeField,
};

/// An in-memory volume served chunk by chunk (no contiguous view), counting decodes.
struct Chunked {
    info: VolumeInfo,
    bytes: Vec<u8>,
    decodes: std::sync::atomic::AtomicUsize,
}

impl Chunked {
    fn view(&self) -> ContiguousView<'_> {
        ContiguousView::dense(
            &self.bytes,
            self.info.shape,
            self.info.dtype,
            self.info.endian,
            false,
        )
        .unwrap()
    }
}

impl VolumeSource for Chunked {
    fn info(&self) -> &VolumeInfo {
        &self.info
    }
    fn read_chunk(&self, idx: [usize; 3], out: &mut [u8]) -> Result<()> {
        self.decodes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cs = self.info.chunk_shape;
        let size = self.info.dtype.size();
        let view = self.view();
        let mut n = 0;
        for i in 0..cs[0] {
            for j in 0..cs[1] {
                for k in 0..cs[2] {
                    let g = [idx[0] * cs[0] + i, idx[1] * cs[1] + j, idx[2] * cs[2] + k];
                    if (0..3).all(|a| g[a] < self.info.shape[a]) {
                        view.copy_native(g, &mut out[n..n + size]);
                    } else {
                        out[n..n + size].fill(0xEE); // garbage past the edge must never be read
                    }
                    n += size;
                }
            }
        }
        Ok(())
    }
}

fn volume(shape: [usize; 3], chunk: [usize; 3], dtype: DType, endian: Endian) -> Chunked {
    let n: usize = shape.iter().product();
    let mut bytes = Vec::new();
    let mut s = 99u64;
    for _ in 0..n {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v = ((s >> 33) % 2000) as i32 - 1000;
        match (dtype, endian) {
            (DType::I16, Endian::Big) => bytes.extend_from_slice(&(v as i16).to_be_bytes()),
            (DType::F32, _) => bytes.extend_from_slice(&(v as f32 * 0.37).to_le_bytes()),
            (DType::U8, _) => bytes.push((v & 0xff) as u8),
            _ => unreachable!(),
        }
    }
    let info = VolumeInfo {
        format: "test",
        path: "mem".into(),
        shape,
        dtype,
        endian,
        chunk_shape: chunk,
        affine: None,
        bytes_on_disk: 0,
        value_scale: None,
        notes: vec![],
        axes: voxfield_core::Axes::plain(shape),
    };
    Chunked {
        info,
        bytes,
        decodes: 0.into(),
    }
}

fn points(shape: [usize; 3], n: usize) -> Vec<f64> {
    let mut s = 7u64;
    let mut out = Vec::with_capacity(3 * n + 30);
    for i in 0..n {
        for a in 0..3 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            let x = u * (shape[a] as f64 + 3.0) - 1.5;
            // Every 5th coordinate on an integer (chunk borders, grid nodes, edges).
            out.push(if i % 5 == a { x.round() } else { x });
        }
    }
    out.extend_from_slice(&[f64::NAN, 1.0, 1.0, 1.0, f64::INFINITY, 1.0, -1e30, 2.0, 2.0]);
    out.extend((0..3).map(|a| (shape[a] - 1) as f64));
    out
}

fn check(vol: &Chunked, budget: usize) {
    let pts = points(vol.info.shape, 3000);
    let list = PointList::new(&pts).unwrap();
    for method in [Method::Nearest, Method::Linear, Method::Cubic] {
        for mode in [
            Mode::Constant,
            Mode::GridConstant,
            Mode::Nearest,
            Mode::Reflect,
            Mode::Mirror,
            Mode::Wrap,
        ] {
            let opts = SampleOptions {
                method,
                mode,
                cval: -3.25,
            };
            let reference = VolumeField::new(vol.view(), opts, None, None);
            let mut want = vec![0.0f64; list.len()];
            evaluate(&reference, &list, &mut want).unwrap();
            let chunked = ChunkedField::new(vol, opts, None, ChunkCache::new(budget));
            let mut got = vec![0.0f64; list.len()];
            evaluate(&chunked, &list, &mut got).unwrap();
            for i in 0..got.len() {
                assert!(
                    got[i] == want[i] || (got[i] - want[i]).abs() < 1e-9 * (1.0 + want[i].abs()),
                    "{method} {mode} budget {budget} point {:?}: chunked {} vs mapped {}",
                    &pts[3 * i..3 * i + 3],
                    got[i],
                    want[i]
                );
            }
        }
    }
}

#[test]
fn chunked_equals_mapped_for_every_method_and_mode() {
    // Chunk shapes that do not divide the volume, incl. chunks of length 1 and 2.
    check(
        &volume([13, 9, 7], [4, 3, 2], DType::F32, Endian::Little),
        1 << 20,
    );
    check(
        &volume([5, 6, 9], [1, 2, 4], DType::I16, Endian::Big),
        1 << 20,
    );
    check(
        &volume([17, 3, 11], [8, 8, 8], DType::U8, Endian::Little),
        1 << 20,
    );
}

#[test]
fn a_tiny_cache_budget_changes_nothing_but_decode_counts() {
    let vol = volume([13, 9, 7], [4, 3, 2], DType::F32, Endian::Little);
    check(&vol, 0);
    check(&vol, 100); // smaller than one chunk: nothing is cached
}

#[test]
fn each_chunk_is_decoded_once_per_request_with_room_in_the_cache() {
    let vol = volume([40, 40, 40], [8, 8, 8], DType::F32, Endian::Little);
    let pts = points(vol.info.shape, 20_000);
    let f = ChunkedField::new(
        &vol,
        SampleOptions::default(),
        None,
        ChunkCache::new(1 << 26),
    );
    let mut out = vec![0f32; pts.len() / 3];
    evaluate(&f, &PointList::new(&pts).unwrap(), &mut out).unwrap();
    let decodes = vol.decodes.load(std::sync::atomic::Ordering::Relaxed);
    assert!(decodes <= 125, "{decodes} decodes for 125 chunks");
}

#[test]
fn planes_and_slabs_on_chunked_volumes_equal_mapped_ones() {
    let vol = volume([30, 20, 25], [7, 5, 6], DType::I16, Endian::Big);
    let plane = Plane::new([-2.0, 3.0, 1.0], [0.4, 0.1, 0.3], [0.05, 0.5, -0.2], 83, 61).unwrap();
    let depths = Plane::slab_offsets(3.0, 0.75).unwrap();
    for d in [&[0.0][..], &depths[..]] {
        let opts = SampleOptions {
            method: Method::Linear,
            mode: Mode::Constant,
            cval: f64::NAN,
        };
        let mapped = VolumeField::new(vol.view(), opts, None, None);
        let chunked = ChunkedField::new(&vol, opts, None, ChunkCache::new(1 << 20));
        let mut want = vec![0.0f64; plane.nu * plane.nv];
        let mut got = want.clone();
        evaluate_plane(&mapped, &plane, d, Reduce::Mean, &mut want).unwrap();
        evaluate_plane(&chunked, &plane, d, Reduce::Mean, &mut got).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g.is_nan() && w.is_nan()) || (g - w).abs() < 1e-9,
                "{g} vs {w}"
            );
        }
    }
}

/// A source whose chunk (1,0,0) is corrupt.
struct Broken(Chunked);
impl VolumeSource for Broken {
    fn info(&self) -> &VolumeInfo {
        &self.0.info
    }
    fn read_chunk(&self, idx: [usize; 3], out: &mut [u8]) -> Result<()> {
        if idx == [1, 0, 0] {
            return Err(voxfield_core::Error::format(
                "mem",
                "chunk [1, 0, 0] is corrupt",
            ));
        }
        self.0.read_chunk(idx, out)
    }
}

#[test]
fn a_corrupt_chunk_is_an_error_that_names_it() {
    let vol = Broken(volume([8, 4, 4], [4, 4, 4], DType::F32, Endian::Little));
    let f = ChunkedField::new(
        &vol,
        SampleOptions::default(),
        None,
        ChunkCache::new(1 << 20),
    );
    let mut out = [0.0; 2];
    // A point inside the broken chunk, and one that straddles into it.
    for p in [[5.0, 1.0, 1.0], [3.5, 1.0, 1.0]] {
        let e = f.sample_block(&[p, [0.5, 0.5, 0.5]], &mut out).unwrap_err();
        assert!(e.to_string().contains("[1, 0, 0]"), "{e}");
    }
    let _ = Arc::new(());
}

/// The vectorised linear path (interior points of a buffer) and the general path
/// (points whose taps straddle 2-voxel chunks) agree bit for bit, in every dtype.
#[test]
fn linear_interior_and_general_paths_agree_bit_for_bit() {
    for (dtype, endian) in [
        (DType::U8, Endian::Little),
        (DType::I16, Endian::Big),
        (DType::F32, Endian::Little),
    ] {
        let vol = volume([11, 9, 13], [2, 2, 2], dtype, endian);
        let pts = points(vol.info.shape, 4000);
        let list = PointList::new(&pts).unwrap();
        for mode in [Mode::Constant, Mode::Nearest, Mode::Mirror] {
            let opts = SampleOptions {
                method: Method::Linear,
                mode,
                cval: -3.25,
            };
            let mut want = vec![0.0f64; list.len()];
            evaluate(
                &VolumeField::new(vol.view(), opts, None, None),
                &list,
                &mut want,
            )
            .unwrap();
            let chunked = ChunkedField::new(&vol, opts, None, ChunkCache::new(1 << 20));
            let mut got = vec![0.0f64; list.len()];
            evaluate(&chunked, &list, &mut got).unwrap();
            for i in 0..got.len() {
                assert!(
                    got[i].to_bits() == want[i].to_bits(),
                    "{dtype:?} {mode} point {:?}: general {} vs interior {}",
                    &pts[3 * i..3 * i + 3],
                    got[i],
                    want[i]
                );
            }
        }
    }
}

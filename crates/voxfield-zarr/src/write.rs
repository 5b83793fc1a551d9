//! Writing any source to a Zarr v3 array, chunk by chunk: memory stays at a few
//! chunks per worker whatever the volume's size, and the store is built under a
//! temporary name next to the destination and renamed into place only when every
//! chunk is written, so an interrupted conversion never leaves a partial store.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rayon::prelude::*;
use voxfield_core::work::Watch;
use voxfield_core::{chunk_grid, Error, Result, VolumeSource};

use zarrs::array::codec::{
    BloscCodec, BloscCompressionLevel, BloscCompressor, BloscShuffleMode, GzipCodec, ZstdCodec,
};
use zarrs::array::{ArrayBuilder, ArrayBytes, BytesToBytesCodecTraits, FillValue};
use zarrs::filesystem::FilesystemStore;

/// The compressor of a written array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Codec {
    #[default]
    Zstd,
    Blosc,
    Gzip,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct WriteOptions {
    pub chunks: [usize; 3],
    pub codec: Codec,
    /// Compression level (zstd 1–22, blosc 0–9, gzip 0–9).
    pub level: i32,
    /// Zarr v3 sharding: this many chunks per shard along each axis (fewer files;
    /// each worker then holds one shard while writing it).
    pub shard: Option<usize>,
}

fn codec(opts: &WriteOptions, elem: usize) -> Result<Arc<dyn BytesToBytesCodecTraits>> {
    let bad = |m: String| {
        Error::invalid(format!(
            "--codec {:?} --level {}: {m}",
            opts.codec, opts.level
        ))
    };
    Ok(match opts.codec {
        Codec::Zstd => {
            if !(1..=22).contains(&opts.level) {
                return Err(bad("zstd levels are 1..=22".into()));
            }
            Arc::new(ZstdCodec::new(opts.level, false))
        }
        Codec::Gzip | Codec::Blosc if !(0..=9).contains(&opts.level) => {
            return Err(bad("gzip and blosc levels are 0..=9".into()));
        }
        Codec::Gzip => Arc::new(GzipCodec::new(opts.level as u32).map_err(|e| bad(e.to_string()))?),
        Codec::Blosc => {
            let level = BloscCompressionLevel::try_from(opts.level as u8)
                .map_err(|e| bad(format!("{e:?}")))?;
            Arc::new(
                BloscCodec::new(
                    BloscCompressor::Zstd,
                    level,
                    None,
                    BloscShuffleMode::Shuffle,
                    Some(elem),
                )
                .map_err(|e| bad(e.to_string()))?,
            )
        }
    })
}

/// The largest chunk `convert` writes (bytes): every worker holds one or two.
pub const MAX_CHUNK_BYTES: usize = 1 << 30;

/// Refuses an empty chunk shape or one whose chunks exceed [`MAX_CHUNK_BYTES`].
pub fn check_chunks(chunks: [usize; 3], elem: usize) -> Result<()> {
    if chunks.contains(&0) {
        return Err(Error::invalid(format!("chunk shape {chunks:?} has a zero")));
    }
    let bytes = chunks
        .iter()
        .try_fold(elem, |a, &c| a.checked_mul(c))
        .filter(|&b| b <= MAX_CHUNK_BYTES);
    if bytes.is_none() {
        return Err(Error::invalid(format!(
            "chunk shape {chunks:?} of {elem}-byte elements exceeds {} MiB per chunk",
            MAX_CHUNK_BYTES >> 20
        )));
    }
    Ok(())
}

/// A new store's temporary directory beside `dst` (which must not exist); it is
/// renamed into place by [`publish`].
pub(crate) fn start_store(dst: &Path, chunks: &[usize], elem: usize) -> Result<tempfile::TempDir> {
    voxfield_io::safety::refuse_url(dst)?;
    if std::fs::symlink_metadata(dst).is_ok() {
        return Err(Error::format(
            dst,
            "already exists; remove it or choose another destination",
        ));
    }
    let c3: [usize; 3] = match chunks {
        [a, b, c] => [*a, *b, *c],
        [b, c] => [1, *b, *c],
        [c] => [1, 1, *c],
        _ => return Err(Error::invalid(format!("chunk shape {chunks:?}"))),
    };
    check_chunks(c3, elem)?;
    let parent = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    voxfield_io::safety::remove_stale_temporaries(dst);
    tempfile::Builder::new()
        .prefix(&voxfield_io::safety::temp_prefix(dst))
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))
}

/// Renames a finished temporary store into place.
pub(crate) fn publish(tmp: tempfile::TempDir, dst: &Path) -> Result<()> {
    let kept = tmp.keep();
    std::fs::rename(&kept, dst).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        Error::io(dst, e)
    })
}

/// One array to write: where, its shape, chunks, element type and attributes.
pub(crate) struct ArraySpec<'a> {
    pub node: &'a str,
    pub shape: &'a [usize],
    pub chunks: &'a [usize],
    pub dtype: voxfield_core::DType,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// The phase long writes report to their [`Watch`].
pub const CHUNKS: &str = "writing chunks";

/// Fills `out` with the box at `start` of `size` (native-endian C order).
pub(crate) type BoxReader<'a> = dyn Fn(&[usize], &[usize], &mut [u8]) -> Result<()> + Sync + 'a;

/// Writes one array chunk by chunk, in parallel: `read(start, size, out)` fills
/// each chunk's box (native-endian C order); edge chunks are padded with zeros.
/// `done` is called after each chunk; `watch` stops the work between chunks.
pub(crate) fn write_array(
    store: &Arc<FilesystemStore>,
    dst: &Path,
    spec: &ArraySpec,
    opts: &WriteOptions,
    read: &BoxReader,
    done: &(dyn Fn() + Sync),
    watch: &Watch,
) -> Result<()> {
    let esize = spec.dtype.size();
    let rank = spec.shape.len();
    // With sharding, the unit written (and held by a worker) is a shard, clipped to
    // the array so small levels do not pad to a whole shard.
    let shards: Vec<usize> = match opts.shard {
        Some(k) => (0..rank)
            .map(|a| (spec.chunks[a] * k).min(spec.shape[a].next_multiple_of(spec.chunks[a])))
            .collect(),
        None => spec.chunks.to_vec(),
    };
    let mut builder = ArrayBuilder::new(
        spec.shape.iter().map(|&n| n as u64).collect::<Vec<_>>(),
        shards.iter().map(|&n| n as u64).collect::<Vec<_>>(),
        spec.dtype.name(), // numpy's names are Zarr v3's
        FillValue::from(vec![0u8; esize]),
    );
    builder
        .bytes_to_bytes_codecs(vec![codec(opts, esize)?])
        .attributes(spec.attributes.clone());
    if opts.shard.is_some() {
        builder.subchunk_shape(spec.chunks.iter().map(|&n| n as u64).collect::<Vec<_>>());
    }
    let unit: &[usize] = &shards;
    if unit
        .iter()
        .try_fold(esize, |a, &c| a.checked_mul(c))
        .is_none_or(|b| b > MAX_CHUNK_BYTES)
    {
        return Err(Error::invalid(format!(
            "shards of shape {unit:?} exceed {} MiB; use fewer chunks per shard",
            MAX_CHUNK_BYTES >> 20
        )));
    }
    let array = builder
        .build(store.clone(), spec.node)
        .map_err(|e| Error::format(dst, format!("cannot create the array: {e}")))?;
    array
        .store_metadata()
        .map_err(|e| Error::format(dst, format!("cannot write metadata: {e}")))?;
    let grid: Vec<usize> = (0..rank).map(|a| spec.shape[a].div_ceil(unit[a])).collect();
    let total: usize = grid.iter().product();
    let full_len = unit.iter().product::<usize>() * esize;
    (0..total).into_par_iter().try_for_each(|id| -> Result<()> {
        watch.check()?;
        let mut c = vec![0usize; rank];
        let mut r = id;
        for a in (0..rank).rev() {
            c[a] = r % grid[a];
            r /= grid[a];
        }
        let start: Vec<usize> = (0..rank).map(|a| c[a] * unit[a]).collect();
        let size: Vec<usize> = (0..rank)
            .map(|a| unit[a].min(spec.shape[a] - start[a]))
            .collect();
        let mut part = vec![0u8; size.iter().product::<usize>() * esize];
        read(&start, &size, &mut part)?;
        let full = if size == unit {
            part
        } else {
            pad(&part, &size, unit, esize, full_len)
        };
        let idx: Vec<u64> = c.iter().map(|&x| x as u64).collect();
        array
            .store_chunk_opt(&idx, ArrayBytes::new_flen(full), &Default::default())
            .map_err(|e| Error::format(dst, format!("cannot write chunk {c:?}: {e}")))?;
        done();
        Ok(())
    })
}

/// Copies a C-order box of `size` into the corner of a zeroed box of `chunks`.
fn pad(part: &[u8], size: &[usize], chunks: &[usize], esize: usize, full_len: usize) -> Vec<u8> {
    let mut full = vec![0u8; full_len];
    let rank = size.len();
    let row = size[rank - 1] * esize;
    let rows: usize = size[..rank - 1].iter().product();
    let mut idx = vec![0usize; rank - 1];
    for r in 0..rows {
        let mut rem = r;
        for a in (0..rank - 1).rev() {
            idx[a] = rem % size[a];
            rem /= size[a];
        }
        let d = idx
            .iter()
            .enumerate()
            .fold(0, |acc, (a, &i)| acc * chunks[a] + i)
            * chunks[rank - 1]
            * esize;
        full[d..d + row].copy_from_slice(&part[r * row..(r + 1) * row]);
    }
    full
}

/// The attributes that keep a volume's geometry in a plain Zarr array
/// (`voxfield.affine`, index → world, row-major 4×4), read back by voxfield.
pub(crate) fn affine_attributes(
    affine: Option<voxfield_core::Affine>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    if let Some(a) = affine {
        m.insert("voxfield".into(), serde_json::json!({ "affine": a.rows() }));
    }
    m
}

/// Writes `src` to a new Zarr v3 array at `dst` (which must not exist), with the
/// source's affine in its attributes. `watch` hears of each chunk written
/// (phase "writing chunks") and can stop the conversion between chunks (the
/// destination is then not created).
pub fn write_zarr(
    src: &dyn VolumeSource,
    dst: &Path,
    opts: &WriteOptions,
    watch: &Watch,
) -> Result<()> {
    let info = src.info();
    let tmp = start_store(dst, &opts.chunks, info.dtype.size())?;
    let store = Arc::new(
        FilesystemStore::new(tmp.path()).map_err(|e| Error::format(tmp.path(), e.to_string()))?,
    );
    let grid = {
        let mut i = info.clone();
        i.chunk_shape = opts.chunks;
        chunk_grid(&i)
    };
    let total = (grid[0] * grid[1] * grid[2]) as u64;
    let n = std::sync::atomic::AtomicU64::new(0);
    let spec = ArraySpec {
        node: "/",
        shape: &info.shape,
        chunks: &opts.chunks,
        dtype: info.dtype,
        attributes: affine_attributes(info.affine),
    };
    let read = |start: &[usize], size: &[usize], out: &mut [u8]| {
        src.read_box_native(
            [start[0], start[1], start[2]],
            [size[0], size[1], size[2]],
            out,
        )
    };
    let done = || watch.report(CHUNKS, n.fetch_add(1, Ordering::Relaxed) + 1, total);
    write_array(&store, dst, &spec, opts, &read, &done, watch)?;
    publish(tmp, dst)
}

//! Writing any source to a Zarr v3 array, chunk by chunk: memory stays at a few
//! chunks per worker whatever the volume's size, and the store is built under a
//! temporary name next to the destination and renamed into place only when every
//! chunk is written, so an interrupted conversion never leaves a partial store.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rayon::prelude::*;
use voxfield_core::{chunk_grid, Error, Result, VolumeSource};
use zarrs::array::codec::{
    BloscCodec, BloscCompressionLevel, BloscCompressor, BloscShuffleMode, GzipCodec, ZstdCodec,
};
use zarrs::array::{ArrayBuilder, ArrayBytes, BytesToBytesCodecTraits, FillValue};
use zarrs::filesystem::FilesystemStore;

/// The compressor of a written array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Zstd,
    Blosc,
    Gzip,
}

#[derive(Clone, Copy, Debug)]
pub struct WriteOptions {
    pub chunks: [usize; 3],
    pub codec: Codec,
    /// Compression level (zstd 1–22, blosc 0–9, gzip 0–9).
    pub level: i32,
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

/// Writes `src` to a new Zarr v3 array at `dst` (which must not exist). `progress`
/// is called with the number of chunks written so far and the total; `cancel`
/// stops the conversion between chunks (the destination is then not created).
pub fn write_zarr(
    src: &dyn VolumeSource,
    dst: &Path,
    opts: &WriteOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
    cancel: &AtomicBool,
) -> Result<()> {
    let info = src.info();
    if std::fs::symlink_metadata(dst).is_ok() {
        return Err(Error::format(
            dst,
            "already exists; remove it or choose another destination",
        ));
    }
    check_chunks(opts.chunks, info.dtype.size())?;
    let parent = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    voxfield_io::safety::remove_stale_temporaries(dst);
    let tmp = tempfile::Builder::new()
        .prefix(&voxfield_io::safety::temp_prefix(dst))
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let store = Arc::new(
        FilesystemStore::new(tmp.path()).map_err(|e| Error::format(tmp.path(), e.to_string()))?,
    );
    let chunks = opts.chunks.map(|c| c as u64);
    let shape: Vec<u64> = info.shape.iter().map(|&n| n as u64).collect();
    let esize = info.dtype.size();
    let array = ArrayBuilder::new(
        shape,
        chunks,
        info.dtype.name(), // numpy's names are Zarr v3's
        FillValue::from(vec![0u8; esize]),
    )
    .bytes_to_bytes_codecs(vec![codec(opts, esize)?])
    .build(store, "/")
    .map_err(|e| Error::format(dst, format!("cannot create the array: {e}")))?;
    array
        .store_metadata()
        .map_err(|e| Error::format(dst, format!("cannot write metadata: {e}")))?;

    // The destination's chunk grid, written in parallel, each chunk read once.
    let grid = {
        let mut i = info.clone();
        i.chunk_shape = opts.chunks;
        chunk_grid(&i)
    };
    let total = (grid[0] * grid[1] * grid[2]) as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    (0..total)
        .into_par_iter()
        .try_for_each(|id| -> Result<()> {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::invalid("conversion interrupted"));
            }
            let id = id as usize;
            let c = [
                id / (grid[1] * grid[2]),
                (id / grid[2]) % grid[1],
                id % grid[2],
            ];
            let start = [0, 1, 2].map(|a| c[a] * opts.chunks[a]);
            let size = [0, 1, 2].map(|a| opts.chunks[a].min(info.shape[a] - start[a]));
            let mut part = vec![0u8; size.iter().product::<usize>() * esize];
            src.read_box_native(start, size, &mut part)?;
            // Pad edge chunks to the full chunk shape (zero: the fill value).
            let full: Vec<u8> = if size == opts.chunks {
                part
            } else {
                let mut full = vec![0u8; opts.chunks.iter().product::<usize>() * esize];
                let row = size[2] * esize;
                for i in 0..size[0] {
                    for j in 0..size[1] {
                        let s = (i * size[1] + j) * row;
                        let d = (i * opts.chunks[1] + j) * opts.chunks[2] * esize;
                        full[d..d + row].copy_from_slice(&part[s..s + row]);
                    }
                }
                full
            };
            let idx = c.map(|x| x as u64);
            array
                .store_chunk_opt(&idx, ArrayBytes::new_flen(full), &Default::default())
                .map_err(|e| Error::format(dst, format!("cannot write chunk {c:?}: {e}")))?;
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(n, total);
            Ok(())
        })?;
    let kept = tmp.keep();
    std::fs::rename(&kept, dst).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        Error::io(dst, e)
    })?;
    Ok(())
}

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
        Codec::Gzip => {
            Arc::new(GzipCodec::new(opts.level.clamp(0, 9) as u32).map_err(|e| bad(e.to_string()))?)
        }
        Codec::Blosc => {
            let level = BloscCompressionLevel::try_from(opts.level.clamp(0, 9) as u8)
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
    if dst.exists() {
        return Err(Error::format(
            dst,
            "already exists; remove it or choose another destination",
        ));
    }
    if opts.chunks.contains(&0) {
        return Err(Error::invalid(format!(
            "chunk shape {:?} has a zero",
            opts.chunks
        )));
    }
    let parent = match dst.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.voxfield-tmp-"))
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

use std::sync::Arc;

use voxfield_core::{check_chunk, Endian, Error, Result, VolumeInfo, VolumeSource};

use crate::filters::{decode, Step};
use crate::format::H5File;
use crate::index::ChunkIndex;

/// A chunked HDF5 dataset: each chunk located through the dataset's chunk index
/// and read with one positioned read (lock-free, so chunks decode in parallel).
pub struct H5ChunkedVolume {
    f: Arc<H5File>,
    info: VolumeInfo,
    steps: Vec<Step>,
    /// The stored array's chunk shape, and the chunk grid the index numbers chunks
    /// in: axes in `order` (an extensible array puts its unlimited axis first),
    /// sized by the maximum dimensions (libhdf5's `max_down_chunks`).
    chunk: Vec<usize>,
    grid: Vec<u64>,
    order: Vec<usize>,
    index: ChunkIndex,
    /// One element of the dataset's fill value (file byte order), for unwritten chunks.
    fill: Vec<u8>,
}

impl H5ChunkedVolume {
    pub(crate) fn new(
        f: Arc<H5File>,
        info: VolumeInfo,
        steps: Vec<Step>,
        chunk: Vec<usize>,
        index: ChunkIndex,
        fill: Vec<u8>,
        max_dims: Option<Vec<u64>>,
    ) -> Self {
        let shape = info.axes.shape();
        let grid = (0..chunk.len())
            .map(|a| {
                let n = match max_dims.as_ref().map(|m| m[a]) {
                    Some(m) if m != crate::format::UNDEF && m as usize >= shape[a] => m as usize,
                    _ => shape[a],
                };
                n.div_ceil(chunk[a]) as u64
            })
            .collect();
        let unlimited = max_dims
            .as_ref()
            .and_then(|m| m.iter().position(|&x| x == crate::format::UNDEF));
        let mut order: Vec<usize> = (0..chunk.len()).collect();
        if let (ChunkIndex::Extensible(_), Some(u)) = (&index, unlimited) {
            order.remove(u);
            order.insert(0, u);
        }
        Self {
            f,
            info,
            steps,
            chunk,
            grid,
            order,
            index,
            fill,
        }
    }

    /// Which chunk index the dataset uses (for diagnostics and tests).
    pub fn index_kind(&self) -> &'static str {
        match self.index {
            ChunkIndex::BTree { .. } => "v1 B-tree",
            ChunkIndex::Single(_) => "single chunk",
            ChunkIndex::Implicit { .. } => "implicit",
            ChunkIndex::Fixed { .. } => "fixed array",
            ChunkIndex::Extensible(_) => "extensible array",
            ChunkIndex::BTreeV2 { .. } => "v2 B-tree",
        }
    }
}

impl VolumeSource for H5ChunkedVolume {
    fn info(&self) -> &VolumeInfo {
        &self.info
    }

    fn read_chunk(&self, idx: [usize; 3], out: &mut [u8]) -> Result<()> {
        check_chunk(&self.info, idx, out.len())?;
        let ci = self.info.axes.array_chunk(idx, &self.chunk);
        let bad = |m: String| Error::format(&self.info.path, format!("chunk {ci:?}: {m}"));
        let offset: Vec<u64> = ci
            .iter()
            .zip(&self.chunk)
            .map(|(&i, &c)| (i * c) as u64)
            .collect();
        // The grid is sized by the maximum dimensions, which a file can forge.
        let linear = self
            .order
            .iter()
            .try_fold(0u64, |acc, &a| {
                acc.checked_mul(self.grid[a])?.checked_add(ci[a] as u64)
            })
            .ok_or_else(|| {
                bad(format!(
                    "a chunk grid of {:?} (from the maximum dimensions) is too large to number",
                    self.grid
                ))
            })?;
        let elem = self.info.dtype.size();
        match self.index.locate(&self.f, &offset, linear).map_err(bad)? {
            None => {
                for e in out.chunks_exact_mut(elem) {
                    e.copy_from_slice(&self.fill);
                }
            }
            Some((addr, size, mask)) => {
                let stored = self.f.read(addr, size).map_err(bad)?;
                let full = self.chunk.iter().product::<usize>() * elem;
                let data = decode(&self.steps, mask, stored, full, elem).map_err(bad)?;
                self.info.axes.extract_chunk(&self.chunk, elem, &data, out);
            }
        }
        if self.info.endian != Endian::NATIVE && elem > 1 {
            for e in out.chunks_exact_mut(elem) {
                e.reverse();
            }
        }
        Ok(())
    }
}

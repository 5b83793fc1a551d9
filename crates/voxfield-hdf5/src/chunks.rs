use std::path::{Path, PathBuf};

use hdf5_sys::h5::{herr_t, hsize_t};
use hdf5_sys::h5d::H5Dread_chunk;
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::H5P_DEFAULT;
use voxfield_core::{check_chunk, Endian, Error, Result, VolumeInfo, VolumeSource};

use crate::btree::ChunkIndex;
use crate::filters::{decode, Step};

unsafe extern "C" {
    // In libhdf5 since 1.10.5; not bound by hdf5-sys. A B-tree lookup, like H5Dread_chunk.
    fn H5Dget_chunk_storage_size(
        dset_id: hid_t,
        offset: *const hsize_t,
        chunk_bytes: *mut hsize_t,
    ) -> herr_t;
}

/// A chunked HDF5 dataset.
pub struct H5ChunkedVolume {
    // The file stays open while the dataset is read.
    _file: hdf5::File,
    ds: hdf5::Dataset,
    file_path: PathBuf,
    info: VolumeInfo,
    steps: Vec<Step>,
    /// The stored array's chunk shape.
    chunk: Vec<usize>,
    /// Our own reader of the chunk B-tree, when the file uses one we understand.
    index: Option<ChunkIndex>,
}

impl H5ChunkedVolume {
    pub(crate) fn new(
        file: hdf5::File,
        ds: hdf5::Dataset,
        file_path: &Path,
        info: VolumeInfo,
        steps: Vec<Step>,
        chunk: Vec<usize>,
    ) -> Result<Self> {
        let index = ChunkIndex::open(file_path, &ds, &chunk);
        Ok(Self {
            _file: file,
            ds,
            file_path: file_path.to_path_buf(),
            info,
            steps,
            chunk,
            index,
        })
    }

    /// Whether chunks are located by voxfield's own B-tree reader (lock-free)
    /// rather than by libhdf5.
    pub fn reads_index_directly(&self) -> bool {
        self.index.is_some()
    }

    /// The chunk's stored (still filtered) bytes and filter mask, read by libhdf5
    /// under its global lock (two B-tree lookups: its size, then its bytes); None
    /// if the chunk was never written. (`H5Dget_chunk_info_by_coord` would give the
    /// file address for a lock-free read, but libhdf5 1.10 finds it by scanning
    /// every chunk, which made 1e3 points on a 262,144-chunk dataset take 9 s.)
    fn stored(&self, idx: &[usize]) -> std::result::Result<Option<(Vec<u8>, u32)>, String> {
        let offset: Vec<hsize_t> = idx
            .iter()
            .zip(&self.chunk)
            .map(|(&i, &c)| (i * c) as hsize_t)
            .collect();
        if let Some(index) = &self.index {
            return match index.locate(&offset)? {
                Some((addr, size, mask)) => Ok(Some((index.read_at(addr, size)?, mask))),
                None => Ok(None),
            };
        }
        let id = self.ds.id();
        hdf5::sync::sync(|| {
            let mut size: hsize_t = 0;
            // SAFETY: id is a valid dataset while `self.ds` lives; pointers are to locals.
            if unsafe { H5Dget_chunk_storage_size(id, offset.as_ptr(), &mut size) } < 0 {
                return Err("cannot locate it in the file (is the file truncated?)".to_string());
            }
            if size == 0 {
                return Ok(None);
            }
            let mut buf = vec![0u8; size as usize];
            let mut mask = 0u32;
            // SAFETY: buf holds the chunk's stored size, as libhdf5 just reported it.
            let status = unsafe {
                H5Dread_chunk(
                    id,
                    H5P_DEFAULT,
                    offset.as_ptr(),
                    &mut mask,
                    buf.as_mut_ptr().cast(),
                )
            };
            if status < 0 {
                return Err(format!(
                    "cannot read its {size} stored bytes from {}",
                    self.file_path.display()
                ));
            }
            Ok(Some((buf, mask)))
        })
    }
}

impl VolumeSource for H5ChunkedVolume {
    fn info(&self) -> &VolumeInfo {
        &self.info
    }

    /// Reads the stored bytes through libhdf5, then undoes the filters in Rust,
    /// outside libhdf5's lock, so chunks decode in parallel.
    fn read_chunk(&self, idx: [usize; 3], out: &mut [u8]) -> Result<()> {
        check_chunk(&self.info, idx, out.len())?;
        let ci = self.info.axes.array_chunk(idx, &self.chunk);
        let bad = |m: String| Error::format(&self.info.path, format!("chunk {ci:?}: {m}"));
        let Some((stored, mask)) = self.stored(&ci).map_err(bad)? else {
            out.fill(0);
            return Ok(());
        };
        let elem = self.info.dtype.size();
        let full = self.chunk.iter().product::<usize>() * elem;
        let data = decode(&self.steps, mask, stored, full, elem).map_err(bad)?;
        self.info.axes.extract_chunk(&self.chunk, elem, &data, out);
        if self.info.endian != Endian::NATIVE && elem > 1 {
            for e in out.chunks_exact_mut(elem) {
                e.reverse();
            }
        }
        Ok(())
    }
}

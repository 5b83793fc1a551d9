use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hdf5_sys::h5::haddr_t;
use hdf5_sys::h5d::H5Dget_chunk_info_by_coord;
use voxfield_core::{check_chunk, Endian, Error, Result, VolumeInfo, VolumeSource};

use crate::filters::{decode, Step};

/// Where a chunk's stored bytes are: (file address, size, filter mask); None if the
/// chunk was never written (it reads as the fill value, 0).
type Location = Option<(u64, u64, u32)>;

/// A chunked HDF5 dataset.
pub struct H5ChunkedVolume {
    // The file and dataset stay open: chunk locations are looked up lazily.
    _file: hdf5::File,
    ds: hdf5::Dataset,
    raw: std::fs::File,
    file_path: PathBuf,
    info: VolumeInfo,
    steps: Vec<Step>,
    index: Mutex<HashMap<[usize; 3], Location>>,
}

impl H5ChunkedVolume {
    pub(crate) fn new(
        file: hdf5::File,
        ds: hdf5::Dataset,
        file_path: &Path,
        info: VolumeInfo,
        steps: Vec<Step>,
    ) -> Result<Self> {
        let raw = std::fs::File::open(file_path).map_err(|e| Error::io(file_path, e))?;
        Ok(Self {
            _file: file,
            ds,
            raw,
            file_path: file_path.to_path_buf(),
            info,
            steps,
            index: Mutex::new(HashMap::new()),
        })
    }

    fn locate(&self, idx: [usize; 3]) -> Result<Location> {
        if let Some(l) = self
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&idx)
        {
            return Ok(*l);
        }
        let coord: Vec<u64> = (0..3)
            .map(|a| (idx[a] * self.info.chunk_shape[a]) as u64)
            .collect();
        let (mut mask, mut addr, mut size) = (0u32, 0 as haddr_t, 0u64);
        let id = self.ds.id();
        // SAFETY: the dataset id is valid while `self.ds` lives; out-pointers are locals.
        let status = hdf5::sync::sync(|| unsafe {
            H5Dget_chunk_info_by_coord(id, coord.as_ptr(), &mut mask, &mut addr, &mut size)
        });
        if status < 0 {
            return Err(Error::format(
                &self.info.path,
                format!("chunk {idx:?}: cannot locate it in the file"),
            ));
        }
        let loc = (addr != haddr_t::MAX && size > 0).then_some((addr, size, mask));
        self.index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(idx, loc);
        Ok(loc)
    }
}

impl VolumeSource for H5ChunkedVolume {
    fn info(&self) -> &VolumeInfo {
        &self.info
    }

    fn read_chunk(&self, idx: [usize; 3], out: &mut [u8]) -> Result<()> {
        check_chunk(&self.info, idx, out.len())?;
        let Some((addr, size, mask)) = self.locate(idx)? else {
            out.fill(0);
            return Ok(());
        };
        let bad = |m: String| {
            Error::format(
                &self.info.path,
                format!("chunk {idx:?} (file offset {addr}, {size} bytes): {m}"),
            )
        };
        let mut stored = vec![0u8; size as usize];
        self.raw.read_exact_at(&mut stored, addr).map_err(|e| {
            bad(format!(
                "cannot read from {}: {e}",
                self.file_path.display()
            ))
        })?;
        let elem = self.info.dtype.size();
        let data = decode(&self.steps, mask, stored, out.len(), elem).map_err(bad)?;
        out.copy_from_slice(&data);
        if self.info.endian != Endian::NATIVE && elem > 1 {
            for e in out.chunks_exact_mut(elem) {
                e.reverse();
            }
        }
        Ok(())
    }
}

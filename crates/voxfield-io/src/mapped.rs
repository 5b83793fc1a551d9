use std::fs::File;
use std::path::Path;

use memmap2::Mmap;
use voxfield_core::{ContiguousView, Error, Result, VolumeInfo, VolumeSource};

/// A dense volume inside a memory-mapped file: every local format reduces to this
/// (a byte offset, a shape, a dtype, a byte order and an axis order).
pub struct MappedVolume {
    map: Mmap,
    info: VolumeInfo,
    data_offset: usize,
    fortran: bool,
}

impl MappedVolume {
    /// Maps `file` and checks that `[data_offset, data_offset + nbytes)` exists.
    /// `exact` also rejects trailing bytes (formats whose size the header fixes).
    pub fn new(
        file: &File,
        info: VolumeInfo,
        data_offset: u64,
        fortran: bool,
        exact: bool,
    ) -> Result<Self> {
        let path = info.path.clone();
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        let shape = info.axes.shape();
        let nbytes = shape
            .iter()
            .try_fold(info.dtype.size() as u64, |a, &n| a.checked_mul(n as u64))
            .filter(|&n| n <= isize::MAX as u64)
            .ok_or_else(|| Error::format(&path, format!("shape {shape:?} overflows")))?;
        let need = data_offset.saturating_add(nbytes);
        if data_offset > len {
            return Err(Error::format(
                &path,
                format!("data offset {data_offset} is past the end of the file ({len} bytes)"),
            ));
        }
        if len < need {
            return Err(Error::format(
                &path,
                format!(
                    "file is truncated: shape {shape:?} of {} needs {nbytes} data bytes from offset {data_offset} \
                     ({need} bytes in all) but the file has {len}",
                    info.dtype
                ),
            ));
        }
        if exact && len > need {
            return Err(Error::format(
                &path,
                format!(
                    "file size {len} disagrees with the header: shape {shape:?} of {} needs exactly {need} bytes",
                    info.dtype
                ),
            ));
        }
        // SAFETY: the map is read-only; like every memory-mapped reader we rely on the
        // file not being truncated by another process while it is open.
        let map = unsafe { Mmap::map(file) }.map_err(|e| Error::io(&path, e))?;
        let data_offset = usize::try_from(data_offset)
            .map_err(|_| Error::format(&path, "data offset does not fit in memory"))?;
        let v = Self {
            map,
            info,
            data_offset,
            fortran,
        };
        v.view()?;
        Ok(v)
    }

    fn view(&self) -> Result<ContiguousView<'_>> {
        let i = &self.info;
        ContiguousView::select(
            &self.map[self.data_offset..],
            &i.axes,
            i.dtype,
            i.endian,
            self.fortran,
        )
        .map_err(|e| Error::format(&i.path, e.to_string()))
    }
}

impl VolumeSource for MappedVolume {
    fn info(&self) -> &VolumeInfo {
        &self.info
    }
    fn contiguous(&self) -> Option<ContiguousView<'_>> {
        self.view().ok()
    }
}

pub(crate) fn open_file(path: &Path) -> Result<File> {
    crate::safety::regular_input(path)?;
    File::open(path).map_err(|e| Error::io(path, e))
}

/// Decompresses a gzip stream (starting at `offset` of `path`) into an unlinked
/// temporary file, returning it and its size. Used for formats that cannot be mapped.
pub(crate) fn gunzip_to_temp(path: &Path, offset: u64) -> Result<(File, u64)> {
    use std::io::{Seek, SeekFrom};
    let mut src = open_file(path)?;
    src.seek(SeekFrom::Start(offset))
        .map_err(|e| Error::io(path, e))?;
    let mut dec =
        flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 20, src));
    let mut tmp = tempfile::tempfile().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let n = std::io::copy(&mut dec, &mut tmp)
        .map_err(|e| Error::format(path, format!("gzip data is corrupt or truncated: {e}")))?;
    Ok((tmp, n))
}

pub(crate) fn file_len(path: &Path) -> Result<u64> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| Error::io(path, e))
}

pub(crate) fn is_gzip(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

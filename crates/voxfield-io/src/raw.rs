//! Headerless binary volumes described entirely by the caller.

use std::path::Path;

use voxfield_core::{DType, Endian, Error, Result, VolumeInfo};

use crate::mapped::{file_len, open_file, MappedVolume};

/// How to interpret a raw file.
#[derive(Clone, Debug, PartialEq)]
pub struct RawOptions {
    pub shape: [usize; 3],
    pub dtype: DType,
    /// Bytes to skip before the first voxel.
    pub offset: u64,
    /// Axis 0 fastest (Fortran order) instead of axis 2 fastest (C order).
    pub fortran: bool,
    pub endian: Endian,
}

/// Maps a raw file; trailing bytes after the volume are allowed (raw files often carry footers).
pub fn open(path: &Path, opts: &RawOptions) -> Result<MappedVolume> {
    if opts.shape.contains(&0) {
        return Err(Error::invalid(format!(
            "{}: raw shape {:?} has a zero-length axis",
            path.display(),
            opts.shape
        )));
    }
    let info = VolumeInfo {
        format: "raw",
        path: path.to_path_buf(),
        shape: opts.shape,
        dtype: opts.dtype,
        endian: opts.endian,
        chunk_shape: opts.shape,
        affine: None,
        bytes_on_disk: file_len(path)?,
        value_scale: None,
        notes: vec![],
        axes: voxfield_core::Axes::plain(opts.shape),
    };
    let f = open_file(path)?;
    MappedVolume::new(&f, info, opts.offset, opts.fortran, false)
}

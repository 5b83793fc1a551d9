use std::io::Read;
use std::path::Path;

use voxfield_core::{Error, IndexRequest, Result, VolumeSource};

use crate::raw::RawOptions;

/// Volume file formats this crate opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Npy,
    Raw,
    Nifti,
    Nrrd,
    SparseNpz,
}

/// Options for `open`. With `raw` set the file is read as raw binary whatever its name.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    pub raw: Option<RawOptions>,
    /// Index of each non-spatial axis (time, channel, ...) of an N-D array.
    pub index: IndexRequest,
}

/// Opens any supported local volume in O(1) (gzip payloads excepted, see the crate docs).
pub fn open(path: &Path, opts: &OpenOptions) -> Result<Box<dyn VolumeSource>> {
    if let Some(raw) = &opts.raw {
        return Ok(Box::new(crate::raw::open(path, raw)?));
    }
    Ok(match detect(path)? {
        Format::Npy => Box::new(crate::npy::open(path, &opts.index)?),
        Format::Nifti => Box::new(crate::nifti::open(path, &opts.index)?),
        Format::Nrrd => Box::new(crate::nrrd::open(path, &opts.index)?),
        Format::SparseNpz => Box::new(crate::sparse::SparseVolume::open_npz(path)?),
        Format::Raw => {
            return Err(Error::format(
                path,
                "raw binary file: give its layout with --shape and --dtype (and --offset, --order, --endian if needed)",
            ))
        }
    })
}

/// Picks the format from the name, then from the first bytes.
pub fn detect(path: &Path) -> Result<Format> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match std::fs::metadata(path) {
        Err(e) => return Err(Error::io(path, e)),
        Ok(m) if m.is_dir() => {
            return Err(Error::format(path, "is a directory, not a volume file"))
        }
        Ok(_) => crate::safety::regular_input(path)?,
    }
    for (suffix, f) in [
        (".npy", Format::Npy),
        (".nii", Format::Nifti),
        (".nii.gz", Format::Nifti),
        (".hdr", Format::Nifti),
        (".nrrd", Format::Nrrd),
        (".nhdr", Format::Nrrd),
        (".npz", Format::SparseNpz),
        (".raw", Format::Raw),
        (".bin", Format::Raw),
    ] {
        if name.ends_with(suffix) {
            return Ok(f);
        }
    }
    let mut head = [0u8; 348];
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let n = f.read(&mut head).map_err(|e| Error::io(path, e))?;
    let head = &head[..n];
    if head.starts_with(&voxfield_core::VXR_MAGIC) || name.ends_with(".vxr") {
        return Err(Error::format(
            path,
            "is a fitted RBF model (.vxr), not a volume: evaluate it with `voxfield rbf eval`/`grid`, \
             `voxfield sample`/`slice`, or voxfield.load() in Python",
        ));
    }
    Ok(if head.starts_with(b"\x93NUMPY") {
        Format::Npy
    } else if head.starts_with(b"NRRD000") {
        Format::Nrrd
    } else if n == 348 && (&head[344..348] == b"n+1\0" || &head[344..348] == b"ni1\0") {
        Format::Nifti
    } else {
        Format::Raw
    })
}

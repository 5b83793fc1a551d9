//! HDF5 volumes (`file.h5:/group/dataset`). Opening reads metadata only.
//!
//! * Contiguous, unfiltered datasets are memory-mapped at their file offset and
//!   sampled zero-copy, like `.npy` files.
//! * Chunked datasets are read chunk by chunk. Where the chunk index is the
//!   version-1 B-tree (h5py's default), voxfield reads the tree itself and each
//!   chunk with one positioned read, lock-free; otherwise libhdf5 reads the stored
//!   bytes (under its global lock). Either way the filters are undone in Rust
//!   (deflate, shuffle, fletcher32, and h5py's lzf, id 32000), in parallel. Each
//!   chunk's filter mask is honoured (h5py stores chunks that lzf cannot shrink
//!   raw). Any other filter is refused at open with its name and id.

mod btree;
mod chunks;
mod filters;

use std::path::{Path, PathBuf};

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use voxfield_core::{
    ArrayEntry, Axes, DType, Endian, Error, IndexRequest, Result, VolumeInfo, VolumeSource,
};

pub use chunks::H5ChunkedVolume;

/// Splits `file.h5:/group/dataset` into the file and the dataset path (None when absent).
pub fn split_path(path: &Path) -> (PathBuf, Option<String>) {
    let s = path.to_string_lossy();
    let lower = s.to_ascii_lowercase();
    for ext in [".h5:", ".hdf5:", ".he5:", ".nc:"] {
        if let Some(i) = lower.find(ext) {
            let cut = i + ext.len() - 1;
            let ds = s[cut + 1..].to_string();
            let ds = if ds.starts_with('/') {
                ds
            } else {
                format!("/{ds}")
            };
            return (PathBuf::from(&s[..cut]), (ds != "/").then_some(ds));
        }
    }
    (path.to_path_buf(), None)
}

fn h5err(path: &Path, what: &str, e: hdf5::Error) -> Error {
    Error::format(path, format!("{what}: {e}"))
}

fn open_file(file: &Path) -> Result<hdf5::File> {
    if !file.exists() {
        return Err(Error::io(
            file,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    hdf5::silence_errors(true);
    hdf5::File::open(file).map_err(|e| h5err(file, "cannot open as HDF5", e))
}

/// Opens a chunked dataset (an error for other layouts).
pub fn open_chunked(path: &Path, index: &IndexRequest) -> Result<H5ChunkedVolume> {
    match open_any(path, index)? {
        Opened::Chunked(v) => Ok(*v),
        Opened::Other(_) => Err(Error::format(path, "dataset is not chunked")),
    }
}

enum Opened {
    Chunked(Box<H5ChunkedVolume>),
    Other(Box<dyn VolumeSource>),
}

/// Opens one dataset (rank 1 to 5 or more; `index` selects the leading
/// non-spatial axes) as a volume source.
pub fn open(path: &Path, index: &IndexRequest) -> Result<Box<dyn VolumeSource>> {
    Ok(match open_any(path, index)? {
        Opened::Chunked(v) => v,
        Opened::Other(v) => v,
    })
}

fn open_any(path: &Path, index: &IndexRequest) -> Result<Opened> {
    let (file_path, ds_path) = split_path(path);
    let file = open_file(&file_path)?;
    let Some(ds_path) = ds_path else {
        let list = list_datasets(&file, &file_path)?;
        let names: Vec<String> = list
            .iter()
            .map(|e| format!("{} {:?} {}", e.path, e.shape, e.dtype))
            .collect();
        return Err(Error::format(
            &file_path,
            format!(
                "name a dataset as FILE:/path; the file holds: {}",
                if names.is_empty() {
                    "(no datasets)".into()
                } else {
                    names.join(", ")
                }
            ),
        ));
    };
    let ds = file.dataset(&ds_path).map_err(|_| {
        let known: Vec<String> = list_datasets(&file, &file_path)
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.path)
            .collect();
        Error::format(
            &file_path,
            format!(
                "no dataset '{ds_path}' in the file (datasets: {})",
                known.join(", ")
            ),
        )
    })?;
    let shape = ds.shape();
    let axes = Axes::select(path, Axes::default_for(&shape), index)?;
    let dt = ds
        .dtype()
        .map_err(|e| h5err(path, "cannot read the datatype", e))?;
    let desc = dt
        .to_descriptor()
        .map_err(|e| h5err(path, "unsupported datatype", e))?;
    let dtype = dtype_of(&desc).ok_or_else(|| {
        Error::format(
            path,
            format!("dataset '{ds_path}' has datatype {desc:?}; a volume needs a numeric type"),
        )
    })?;
    let endian = match dt.byte_order() {
        hdf5::datatype::ByteOrder::BigEndian => Endian::Big,
        _ => Endian::Little,
    };
    let bytes_on_disk = std::fs::metadata(&file_path).map(|m| m.len()).unwrap_or(0);
    let chunk = ds.chunk().unwrap_or_else(|| shape.clone());
    let mut info = VolumeInfo::selected("hdf5", path, axes, &chunk, dtype, endian);
    info.bytes_on_disk = bytes_on_disk;
    let pipeline = filters::pipeline(&ds)
        .map_err(|m| Error::format(path, format!("dataset '{ds_path}': {m}")))?;
    match ds.chunk() {
        Some(c) => {
            let v = H5ChunkedVolume::new(file, ds, &file_path, info, pipeline, c)?;
            Ok(Opened::Chunked(Box::new(v)))
        }
        None => {
            let offset = ds.offset().ok_or_else(|| {
                Error::format(path, format!("dataset '{ds_path}' has no data in the file (compact layout or never written)"))
            })?;
            let f = std::fs::File::open(&file_path).map_err(|e| Error::io(&file_path, e))?;
            let mapped = voxfield_io::MappedVolume::new(&f, info, offset, false, false)?;
            Ok(Opened::Other(Box::new(mapped)))
        }
    }
}

fn dtype_of(d: &TypeDescriptor) -> Option<DType> {
    Some(match d {
        TypeDescriptor::Boolean => DType::Bool,
        TypeDescriptor::Integer(IntSize::U1) => DType::I8,
        TypeDescriptor::Integer(IntSize::U2) => DType::I16,
        TypeDescriptor::Integer(IntSize::U4) => DType::I32,
        TypeDescriptor::Integer(IntSize::U8) => DType::I64,
        TypeDescriptor::Unsigned(IntSize::U1) => DType::U8,
        TypeDescriptor::Unsigned(IntSize::U2) => DType::U16,
        TypeDescriptor::Unsigned(IntSize::U4) => DType::U32,
        TypeDescriptor::Unsigned(IntSize::U8) => DType::U64,
        TypeDescriptor::Float(FloatSize::U4) => DType::F32,
        TypeDescriptor::Float(FloatSize::U8) => DType::F64,
        _ => return None,
    })
}

fn list_datasets(file: &hdf5::File, path: &Path) -> Result<Vec<ArrayEntry>> {
    let mut out = vec![];
    let mut stack = vec![(
        "/".to_string(),
        file.as_group().map_err(|e| h5err(path, "root group", e))?,
    )];
    while let Some((prefix, g)) = stack.pop() {
        for name in g.member_names().map_err(|e| h5err(path, "listing", e))? {
            let full = format!("{}{name}", prefix);
            if let Ok(ds) = g.dataset(&name) {
                let dtype = ds
                    .dtype()
                    .ok()
                    .and_then(|t| t.to_descriptor().ok())
                    .map(|d| dtype_of(&d).map_or(format!("{d:?}"), |t| t.name().to_string()))
                    .unwrap_or_default();
                out.push(ArrayEntry {
                    path: full,
                    shape: ds.shape().iter().map(|&n| n as u64).collect(),
                    dtype,
                });
            } else if let Ok(sub) = g.group(&name) {
                stack.push((format!("{full}/"), sub));
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The datasets of an HDF5 file when `path` names the file without a dataset.
pub fn list_container(path: &Path) -> Result<Option<Vec<ArrayEntry>>> {
    let (file_path, ds) = split_path(path);
    if ds.is_some() {
        return Ok(None);
    }
    let file = open_file(&file_path)?;
    list_datasets(&file, &file_path).map(Some)
}

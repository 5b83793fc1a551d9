//! HDF5 volumes (`file.h5:/group/dataset`), read by voxfield's own parser of the
//! HDF5 format: no libhdf5, no system package, no global lock. Opening reads the
//! superblock and the dataset's object header only.
//!
//! * Contiguous, unfiltered datasets are memory-mapped at their file offset and
//!   sampled zero-copy, like `.npy` files.
//! * Chunked datasets are read chunk by chunk: the chunk index (version-1 B-tree,
//!   or the single-chunk, implicit, fixed-array, extensible-array and version-2
//!   B-tree indexes of `libver="latest"` files) gives each chunk's address, one positioned read fetches it and the
//!   filters are undone in Rust, in parallel. Each chunk's filter mask is honoured
//!   (h5py stores chunks that lzf cannot shrink raw); chunks never written take
//!   the dataset's fill value. An unknown filter is refused at open with its name
//!   and id.
//! * Datasets of any rank: the last (up to) three axes are spatial, the others are
//!   selected by index.

mod checksum;
mod chunks;
mod dense;
mod earray;
mod filters;
mod format;
mod group;
mod index;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use voxfield_core::{
    ArrayEntry, Axes, DType, Endian, Error, IndexRequest, Result, VolumeInfo, VolumeSource,
};

pub use chunks::H5ChunkedVolume;
use format::{H5File, Layout, NumType, UNDEF};

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

fn open_file(file: &Path) -> Result<H5File> {
    match std::fs::metadata(file) {
        Ok(m) if !m.is_file() => {
            return Err(Error::format(
                file,
                "is not a regular file (a directory, device or FIFO)",
            ))
        }
        Ok(_) => {}
        Err(e) => return Err(Error::io(file, e)),
    }
    H5File::open(file).map_err(|m| Error::format(file, format!("cannot open as HDF5: {m}")))
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

fn dtype_of(t: &NumType) -> Option<DType> {
    Some(match (t.boolean, t.float, t.signed, t.size) {
        (true, ..) => DType::Bool,
        (_, true, _, 4) => DType::F32,
        (_, true, _, 8) => DType::F64,
        (_, false, true, 1) => DType::I8,
        (_, false, true, 2) => DType::I16,
        (_, false, true, 4) => DType::I32,
        (_, false, true, 8) => DType::I64,
        (_, false, false, 1) => DType::U8,
        (_, false, false, 2) => DType::U16,
        (_, false, false, 4) => DType::U32,
        (_, false, false, 8) => DType::U64,
        _ => return None,
    })
}

fn open_any(path: &Path, index: &IndexRequest) -> Result<Opened> {
    let (file_path, ds_path) = split_path(path);
    let f = open_file(&file_path)?;
    let bad = |m: String| Error::format(&file_path, m);
    let Some(ds_path) = ds_path else {
        let list = list_datasets(&f).map_err(bad)?;
        let names: Vec<String> = list
            .iter()
            .map(|e| format!("{} {:?} {}", e.path, e.shape, e.dtype))
            .collect();
        return Err(bad(format!(
            "name a dataset as FILE:/path; the file holds: {}",
            if names.is_empty() {
                "(no datasets)".into()
            } else {
                names.join(", ")
            }
        )));
    };
    let known = || {
        list_datasets(&f)
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.path)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(addr) = group::resolve(&f, &ds_path).map_err(|m| bad(format!("'{ds_path}': {m}")))?
    else {
        return Err(bad(format!(
            "no dataset '{ds_path}' in the file (datasets: {})",
            known()
        )));
    };
    let bad_ds = |m: String| Error::format(&file_path, format!("dataset '{ds_path}': {m}"));
    let msgs = f.messages(addr).map_err(bad_ds)?;
    let Some(layout) = format::find(&msgs, format::MSG_LAYOUT) else {
        return Err(bad(format!(
            "'{ds_path}' is a group, not a dataset (datasets: {})",
            known()
        )));
    };
    let layout = format::layout(layout, &f).map_err(bad_ds)?;
    let space = format::find(&msgs, format::MSG_DATASPACE)
        .ok_or_else(|| bad_ds("no dataspace message".into()))?;
    let (dims, max_dims) = format::dataspace_max(space, &f).map_err(bad_ds)?;
    let shape: Vec<usize> = dims
        .into_iter()
        .map(|n| usize::try_from(n).map_err(|_| bad_ds(format!("axis length {n} is too large"))))
        .collect::<Result<_>>()?;
    let axes = Axes::select(path, Axes::default_for(&shape), index)?;
    let dt = format::find(&msgs, format::MSG_DATATYPE)
        .ok_or_else(|| bad_ds("no datatype message".into()))?;
    if dt.flags & 0x02 != 0 {
        return Err(bad_ds(
            "its datatype is a shared (committed) type, which voxfield does not read yet".into(),
        ));
    }
    let num = format::datatype(&dt.data)
        .map_err(|m| bad_ds(format!("{m}; a volume needs a numeric type")))?;
    let dtype = dtype_of(&num).ok_or_else(|| {
        bad_ds(format!(
            "{}-byte {} elements are not supported",
            num.size,
            if num.float { "float" } else { "integer" }
        ))
    })?;
    let endian = if num.big_endian {
        Endian::Big
    } else {
        Endian::Little
    };
    let filters = match format::find(&msgs, format::MSG_PIPELINE) {
        Some(m) => format::pipeline(m, &f).map_err(bad_ds)?,
        None => vec![],
    };
    let steps = filters::steps(&filters).map_err(bad_ds)?;
    let bytes_on_disk = f.len;
    let f = Arc::new(f);
    match layout {
        Layout::Chunked { chunk, index: kind } => {
            if chunk.len() != shape.len() || chunk.contains(&0) {
                return Err(bad_ds(format!(
                    "chunk shape {chunk:?} does not fit the dataset shape {shape:?}"
                )));
            }
            let mut info = VolumeInfo::selected("hdf5", path, axes, &chunk, dtype, endian);
            info.bytes_on_disk = bytes_on_disk;
            let chunk_bytes = chunk
                .iter()
                .try_fold(dtype.size() as u64, |a, &c| a.checked_mul(c as u64))
                .filter(|&n| n <= 1 << 32)
                .ok_or_else(|| {
                    bad_ds(format!("chunk shape {chunk:?} is too large (over 4 GiB)"))
                })?;
            let grid: Vec<u64> = shape
                .iter()
                .zip(&chunk)
                .map(|(&n, &c)| n.div_ceil(c) as u64)
                .collect();
            let index = index::ChunkIndex::open(
                &f,
                &kind,
                shape.len(),
                &grid,
                chunk_bytes,
                !steps.is_empty(),
                &chunk,
            )
            .map_err(bad_ds)?;
            let fill = match format::fill_value(&msgs, &f).map_err(bad_ds)? {
                Some(v) if v.len() == dtype.size() => v,
                Some(v) => {
                    return Err(bad_ds(format!(
                        "fill value has {} bytes for {}-byte elements",
                        v.len(),
                        dtype.size()
                    )))
                }
                None => vec![0; dtype.size()],
            };
            let v = H5ChunkedVolume::new(f, info, steps, chunk, index, fill, max_dims);
            Ok(Opened::Chunked(Box::new(v)))
        }
        Layout::Contiguous { addr, .. } => {
            if addr == UNDEF {
                return Err(bad_ds("it was never written (no data in the file)".into()));
            }
            if !steps.is_empty() {
                return Err(bad_ds(
                    "a contiguous dataset with filters is invalid".into(),
                ));
            }
            let offset = f.abs(addr).map_err(bad_ds)?;
            let mut info = VolumeInfo::selected("hdf5", path, axes, &shape, dtype, endian);
            info.bytes_on_disk = bytes_on_disk;
            let mapped = voxfield_io::MappedVolume::new(&f.file, info, offset, false, false)?;
            Ok(Opened::Other(Box::new(mapped)))
        }
        Layout::Compact => Err(bad_ds(
            "its data is compact (stored in the object header), which voxfield does not read; \
             such datasets hold at most 64 KiB: load them with h5py"
                .into(),
        )),
    }
}

fn list_datasets(f: &H5File) -> std::result::Result<Vec<ArrayEntry>, String> {
    let mut out = vec![];
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![("/".to_string(), f.root)];
    while let Some((prefix, addr)) = stack.pop() {
        if !seen.insert(addr) || seen.len() > 100_000 {
            continue;
        }
        let msgs = f.messages(addr)?;
        for link in group::links(f, &msgs)? {
            let Some(child) = link.addr else { continue };
            let full = format!("{prefix}{}", link.name);
            let Ok(cm) = f.messages(child) else { continue };
            if format::find(&cm, format::MSG_LAYOUT).is_some() {
                let shape = format::find(&cm, format::MSG_DATASPACE)
                    .and_then(|m| format::dataspace(m, f).ok())
                    .unwrap_or_default();
                let dtype = format::find(&cm, format::MSG_DATATYPE)
                    .map(|m| match format::datatype(&m.data) {
                        Ok(t) => dtype_of(&t)
                            .map_or(format!("{}-byte number", t.size), |d| d.name().to_string()),
                        Err(e) => e,
                    })
                    .unwrap_or_default();
                out.push(ArrayEntry {
                    path: full,
                    shape,
                    dtype,
                });
            } else {
                stack.push((format!("{full}/"), child));
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
    let f = open_file(&file_path)?;
    list_datasets(&f)
        .map(Some)
        .map_err(|m| Error::format(&file_path, m))
}

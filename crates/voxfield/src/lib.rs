//! voxfield: one entry point over every volume source and the sampling engine.
//!
//! ```no_run
//! use voxfield::{ChunkCache, FieldOptions, OpenOptions, Source};
//! // Any path: a volume of any format, a neural model (.vxn) or an RBF model (.vxr).
//! let src = Source::open("scan.zarr/0".as_ref(), &OpenOptions::default()).unwrap();
//! let cache = ChunkCache::new(ChunkCache::DEFAULT_BYTES);
//! let f = src.field(&FieldOptions::default(), &cache, 0).unwrap();
//! let mut out = [0.0f32; 1];
//! voxfield::evaluate(f.as_ref(), &voxfield::PointList::new(&[1.0, 2.0, 3.0]).unwrap(), &mut out).unwrap();
//! ```

use std::path::Path;
use std::sync::Arc;

mod compare;
pub mod render;
mod source;
pub use compare::{compare, Comparison};
pub use source::{field_of_source, is_neural_model, is_rbf_model, FieldOptions, Source};

pub use voxfield_core::cache::{new_source_id, ChunkKey};
pub use voxfield_core::rng::Rng;
pub use voxfield_core::voxel::{convert_native, store_f64};
pub use voxfield_core::work::Watch;
pub use voxfield_core::{
    lift_points, Affine, ArrayEntry as Entry, Axes, Axis, AxisKind, ChunkCache, ContiguousView,
    DType, Endian, Error, Field, IndexRequest, Result, VolumeInfo, VolumeSource,
};
pub use voxfield_io::RawOptions;
pub use voxfield_sample::{
    evaluate, evaluate_plane, ChunkedField, Grid, Method, Mode, OutElem, Plane, PointList,
    Positions, Reduce, SampleOptions, SparseField, VolumeField,
};
pub use voxfield_zarr::{
    write_ome_zarr, write_zarr, Codec as ZarrCodec, Downsample, PyramidOptions,
    WriteOptions as ZarrWriteOptions, ZarrOptions,
};

/// Spatial environments: bins with a connectivity graph over 1-3-D space,
/// point→bin queries, paths, matrix-free diffusion smoothing, occupancy.
pub mod env {
    pub use voxfield_env::cells::{Autocorrelation, BorderScore, GridScore, Metric};
    pub use voxfield_env::decoding::{bin_spikes_in_time, Decoded, Prior};
    pub use voxfield_env::directional;
    pub use voxfield_env::encoding::Kde;
    pub use voxfield_env::scores::{rate_scores, sparsity, spatial_information};
    pub use voxfield_env::shuffle::{
        p_value_greater, RateMaps, ScoreSet, Shuffled, MAX_SHUFFLED_MAPS,
    };
    pub use voxfield_env::trajectory::{Csr, OccupancyOptions};
    pub use voxfield_env::{
        BinField, Environment, FieldOptions, Generator, Graph, Grid, Hex, Layout, Mode, Operator,
        OrderedEdge, Reach, Reading, Shaping, TieBreak, Track,
    };
}

/// Scattered interpolation: partition-of-unity RBF fits (`.vxr`) and their fields.
pub mod rbf {
    pub use voxfield_rbf::{blend, file, parts};
    pub use voxfield_rbf::{
        fit, Census, Duplicates, FitOptions, GridVolume, Kernel, ModelInfo, Plan, Ramp, RbfField,
        RbfModel, Solved, Spread, DEFAULT_GRID_NODES,
    };
}

/// Multi-resolution vector pyramids: zarr-vectors 0.9.x stores read level by
/// level or by bounding box.
pub mod vectors {
    pub use voxfield_vectors::neuroglancer::{
        property_id, write_annotations, Geometry, Property, PropertyType,
    };
    pub use voxfield_vectors::ply::{read_ply, write_ply, PlyPoints};
    pub use voxfield_vectors::store::{itemsize, Column};
    pub use voxfield_vectors::swc::{read_swc, write_swc, Swc};
    pub use voxfield_vectors::tracts::{read_tck, read_trk, write_tck, write_trk, Tracts};
    pub use voxfield_vectors::trx::{read_trx, write_trx};
    pub use voxfield_vectors::{
        build_pyramid, export, import_file, validate, write_graph, write_points,
        write_points_coords, write_points_from, write_points_watched, write_points_with_objects,
        write_polylines, Aggregation, Attribute, AttributeSpec, Coarsening, Compressor, Condition,
        Coords, CrossLevel, Exported, Graph, GraphSummary, ImportOptions, Imported, LasPoints,
        LevelInfo, LevelSummary, LinesSummary, NpyTable, Objects, ObjectsSummary, Op, PointInput,
        PointObjects, Points, PointsOptions, PyramidOptions, Report, Selected, Selection,
        SliceInput, Store, Thinning, Watch,
    };
}

/// Neural compression: hash-grid + MLP models of volumes (`.vxn`), trained on CPU.
pub mod neural {
    pub use voxfield_neural::model::MAGIC;
    pub use voxfield_neural::{
        compress, for_ratio, meta_train, model_bytes, native_bytes, CompressOptions, Loss,
        MetaOptions, Net, NeuralField, NeuralModel, NeuralVolume, Quant, Sizes,
    };
}

/// How to open a path. [`Source::open`] refuses those that do not apply to a model file.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Read the file as raw binary with this layout.
    pub raw: Option<RawOptions>,
    /// OME-Zarr level choice.
    pub level: ZarrOptions,
    /// With an (N,3) coordinates `.npy` as the path: its (N,) values `.npy` and the
    /// volume's shape (a sparse volume with fill value 0).
    pub sparse_values: Option<(std::path::PathBuf, [usize; 3])>,
    /// Index of each non-spatial axis (time, channel, ...) of an N-D array.
    pub index: IndexRequest,
    /// Endpoint of an S3-compatible server for `s3://` URLs (else
    /// `AWS_ENDPOINT_URL` or AWS itself).
    pub s3_endpoint: Option<String>,
}

/// The container formats a path can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Zarr,
    Hdf5,
    Local,
}

/// Which backend a path belongs to (by name; the backend checks the content).
pub fn kind_of(path: &Path) -> Kind {
    let s = path.to_string_lossy().to_ascii_lowercase();
    let is_h5 = [".h5", ".hdf5", ".he5", ".nc"]
        .iter()
        .any(|e| s.ends_with(e) || s.contains(&format!("{e}:")));
    if is_h5 {
        Kind::Hdf5
    } else if path.components().any(|c| {
        c.as_os_str()
            .to_string_lossy()
            .to_ascii_lowercase()
            .ends_with(".zarr")
    }) {
        Kind::Zarr
    } else {
        Kind::Local
    }
}

/// Opens any supported volume: `.npy`, raw, NIfTI, NRRD, sparse `.npz`, Zarr/OME-Zarr
/// (local, or behind an `http(s)://` or `s3://` URL), and HDF5 (`file.h5:/group/dataset`).
pub fn open(path: &Path, opts: &OpenOptions) -> Result<Box<dyn VolumeSource>> {
    let src = open_any(&local_path(path), opts)?;
    src.info().check_sizes()?;
    Ok(src)
}

/// A `file://` URL as the local path it names (other paths unchanged).
pub(crate) fn local_path(path: &Path) -> std::borrow::Cow<'_, Path> {
    match path.to_str().and_then(|s| s.strip_prefix("file://")) {
        Some(rest) => std::borrow::Cow::Owned(std::path::PathBuf::from(rest)),
        None => std::borrow::Cow::Borrowed(path),
    }
}

fn open_any(path: &Path, opts: &OpenOptions) -> Result<Box<dyn VolumeSource>> {
    if let Some((values, shape)) = &opts.sparse_values {
        return Ok(Box::new(voxfield_io::SparseVolume::open_pair(
            path, values, *shape, 0.0,
        )?));
    }
    if let Some(url) = path.to_str().filter(|s| voxfield_zarr::remote::is_url(s)) {
        return Ok(Box::new(voxfield_zarr::open_url(
            url,
            opts.s3_endpoint.as_deref(),
            opts.level,
            &opts.index,
        )?));
    }
    if opts.raw.is_none() && is_neural_model(path) {
        return open_neural(path);
    }
    let kind = if opts.raw.is_some() {
        Kind::Local
    } else {
        kind_of(path)
    };
    if kind != Kind::Zarr && opts.level != ZarrOptions::FullResolution {
        return Err(Error::format(
            path,
            "is not a multiscale OME-Zarr image: a scale level or spacing does not apply",
        ));
    }
    match kind {
        Kind::Zarr => Ok(Box::new(voxfield_zarr::open(
            path,
            opts.level,
            &opts.index,
        )?)),
        Kind::Hdf5 => open_hdf5(path, &opts.index),
        Kind::Local => voxfield_io::open(
            path,
            &voxfield_io::OpenOptions {
                raw: opts.raw.clone(),
                index: opts.index.clone(),
            },
        ),
    }
}

/// A neural model as a volume (its field is the network; its voxels decode).
fn open_neural(path: &Path) -> Result<Box<dyn VolumeSource>> {
    let model = voxfield_neural::NeuralModel::load(path)?;
    Ok(Box::new(voxfield_neural::NeuralVolume::new(model, path)?))
}

/// A neural model's voxels as float32 (what its network says between integer
/// levels), decoded by its row decoder.
pub fn open_model_values(path: &Path) -> Result<Box<dyn VolumeSource>> {
    let model = voxfield_neural::NeuralModel::load(path)?;
    Ok(Box::new(
        voxfield_neural::NeuralVolume::new(model, path)?.with_dtype(DType::F32),
    ))
}

/// The levels after level 0 of the multiscale OME-Zarr image `level0` was
/// opened from (same index selection), finest first; empty for any other
/// source, or when `opts` pinned a level.
pub fn open_coarser_levels(
    path: &Path,
    opts: &OpenOptions,
    level0: &dyn VolumeSource,
) -> Result<Vec<Box<dyn VolumeSource>>> {
    if opts.level != ZarrOptions::FullResolution {
        return Ok(vec![]);
    }
    // The Zarr reader says how many levels the image has in its note.
    let count = level0.info().notes.iter().find_map(|n| {
        n.strip_prefix("OME-Zarr image with ")
            .and_then(|r| r.split_once(" levels"))
            .and_then(|(n, _)| n.parse::<usize>().ok())
    });
    let mut levels = Vec::new();
    for i in 1..count.unwrap_or(1) {
        let o = OpenOptions {
            level: ZarrOptions::Level(i),
            ..opts.clone()
        };
        levels.push(open(path, &o)?);
    }
    Ok(levels)
}

fn open_hdf5(path: &Path, index: &IndexRequest) -> Result<Box<dyn VolumeSource>> {
    voxfield_hdf5::open(path, index)
}

/// The arrays inside `path` when it names a container rather than a volume
/// (a Zarr group that is not an OME-Zarr image, or an HDF5 file without a
/// dataset path); `None` for a volume.
pub fn list_container(path: &Path) -> Result<Option<Vec<Entry>>> {
    if let Some(url) = path.to_str().filter(|s| voxfield_zarr::remote::is_url(s)) {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
        if voxfield_zarr::is_plain_remote_group(url, endpoint.as_deref())? {
            return Ok(Some(voxfield_zarr::list_container_url(
                url,
                endpoint.as_deref(),
            )?));
        }
        return Ok(None);
    }
    match kind_of(path) {
        Kind::Zarr if voxfield_zarr::is_plain_group(path)? => {
            Ok(Some(voxfield_zarr::list_container(path)?))
        }
        Kind::Zarr | Kind::Local => Ok(None),
        Kind::Hdf5 => list_hdf5(path),
    }
}

fn list_hdf5(path: &Path) -> Result<Option<Vec<Entry>>> {
    voxfield_hdf5::list_container(path)
}

/// The field that samples `src` with `opts`, through a fresh id in `cache`
/// (see [`field_of_source`]).
pub fn field<'a>(
    src: &'a dyn VolumeSource,
    opts: &FieldOptions,
    cache: &Arc<ChunkCache>,
) -> Result<Box<dyn Field + 'a>> {
    field_of_source(src, opts, cache, voxfield_core::cache::new_source_id())
}

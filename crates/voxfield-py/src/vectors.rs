//! zarr-vectors stores for `voxfield.vectors`: levels, store and level
//! metadata, and vertex reads (whole level or bounding box) with attributes.
//! Arrays cross as little-endian bytes with their numpy dtype names.

use std::path::PathBuf;

use pyo3::buffer::{Element, PyBuffer};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use voxfield::vectors::{Column, Coords, Store};

use crate::py_err;

type Raw<'py> = (String, String, usize, Bound<'py, PyBytes>);

fn raw<'py>(py: Python<'py>, c: &Column) -> Raw<'py> {
    (
        c.name.clone(),
        c.dtype.clone(),
        c.width,
        PyBytes::new(py, &c.bytes),
    )
}

/// The resolution levels of a store.
#[pyfunction]
pub fn vectors_levels(py: Python<'_>, path: PathBuf) -> PyResult<Vec<u64>> {
    py.detach(|| Store::open(&path)?.levels()).map_err(py_err)
}

/// Store and per-level metadata as JSON.
#[pyfunction]
pub fn vectors_info(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    py.detach(|| -> voxfield::Result<String> {
        let s = Store::open(&path)?;
        let mut levels = vec![];
        for l in s.levels()? {
            let info = s.level(l)?;
            levels.push(serde_json::json!({"level": l, "metadata": info.attrs,
                "attributes": s.attribute_names(l)?}));
        }
        Ok(serde_json::json!({"zarr_vectors": s.attrs, "levels": levels}).to_string())
    })
    .map_err(py_err)
}

/// Vertices of a level (all, or inside a box) and the named attributes.
#[pyfunction]
#[pyo3(signature = (path, level, bbox=None, names=None))]
pub fn vectors_read_points<'py>(
    py: Python<'py>,
    path: PathBuf,
    level: u64,
    bbox: Option<(Vec<f64>, Vec<f64>)>,
    names: Option<Vec<String>>,
) -> PyResult<(Raw<'py>, Vec<Raw<'py>>)> {
    let points = py
        .detach(|| {
            let s = Store::open(&path)?;
            let b = bbox.as_ref().map(|(lo, hi)| (lo.as_slice(), hi.as_slice()));
            s.read_points(level, b, names.as_deref())
        })
        .map_err(py_err)?;
    Ok((
        raw(py, &points.positions),
        points.attributes.iter().map(|c| raw(py, c)).collect(),
    ))
}

/// The elements of a C-contiguous buffer. Our Python wrappers pass arrays
/// nobody writes while the call runs (the GIL is released meanwhile).
fn elements<T: Element>(b: &PyBuffer<T>) -> PyResult<&[T]> {
    let p = b
        .as_slice_ptr()
        .ok_or_else(|| PyValueError::new_err("arrays must be C-contiguous"))?;
    // SAFETY: the buffer stays exported (and so alive and unmoved) while `b` lives.
    Ok(unsafe { p.as_ref() })
}

/// Writes a file (.npy, .las, .ply, .trk, .tck, .trx, .swc) as a new store;
/// returns (kind, vertices, objects, chunks, links).
#[pyfunction]
#[pyo3(signature = (input, out, kind=None, attributes=None, dims=3, chunk_shape=None, bin_shape=None, dtype="float32".to_string(), shard_shape=None, compressor=None, object_ids=None))]
#[allow(clippy::too_many_arguments)]
pub fn vectors_import(
    py: Python<'_>,
    input: PathBuf,
    out: PathBuf,
    kind: Option<String>,
    attributes: Option<Vec<String>>,
    dims: usize,
    chunk_shape: Option<Vec<f64>>,
    bin_shape: Option<Vec<f64>>,
    dtype: String,
    shard_shape: Option<Vec<u64>>,
    compressor: Option<String>,
    object_ids: Option<String>,
) -> PyResult<(String, usize, usize, usize, usize)> {
    let layout = options(chunk_shape, bin_shape, dtype, shard_shape, compressor).map_err(py_err)?;
    let o = voxfield::vectors::ImportOptions {
        kind,
        attributes,
        dims,
        object_ids,
        layout,
    };
    let s = crate::work::interruptible(py, |watch| {
        voxfield::vectors::import_file(&input, &out, &o, watch)
    })?;
    Ok((s.kind.to_string(), s.vertices, s.objects, s.chunks, s.links))
}

/// Writes a level (or a selection of it) to a file chosen by its extension;
/// returns (what, count, vertices).
#[pyfunction]
#[pyo3(signature = (path, out, level, bbox=None, near=None, objects=None, groups=None, conditions=vec![], limit=None, names=None, cell_limit=5000))]
#[allow(clippy::too_many_arguments)]
pub fn vectors_export(
    py: Python<'_>,
    path: PathBuf,
    out: PathBuf,
    level: u64,
    bbox: Option<(Vec<f64>, Vec<f64>)>,
    near: Option<(Vec<f64>, f64)>,
    objects: Option<Vec<i64>>,
    groups: Option<Vec<i64>>,
    conditions: Vec<(String, String, f64)>,
    limit: Option<usize>,
    names: Option<Vec<String>>,
    cell_limit: usize,
) -> PyResult<(String, usize, usize)> {
    let sel = selection(bbox, near, objects, groups, conditions, limit, names)?;
    let e = py
        .detach(|| {
            let s = Store::open(&path)?;
            voxfield::vectors::export(&s, level, &sel, &out, cell_limit)
        })
        .map_err(py_err)?;
    Ok((e.what.to_string(), e.count, e.vertices))
}

/// Per vertex of `level`, the row of its parent one level coarser (−1: none).
#[pyfunction]
pub fn vectors_parents(py: Python<'_>, path: PathBuf, level: u64) -> PyResult<Vec<i64>> {
    py.detach(|| Store::open(&path)?.parents(level))
        .map_err(py_err)
}

/// Per vertex of `level`, its children one level finer, as CSR (offsets, rows).
#[pyfunction]
pub fn vectors_children(
    py: Python<'_>,
    path: PathBuf,
    level: u64,
) -> PyResult<(Vec<usize>, Vec<u64>)> {
    py.detach(|| Store::open(&path)?.children(level))
        .map_err(py_err)
}

/// Writes points with object ids (float64 bytes, n × dims), vertex attributes,
/// object attributes (a row per distinct id, ascending) and groups (member
/// ids per group id); returns (vertices, chunks, objects, groups).
#[pyfunction]
#[pyo3(signature = (path, positions, dims, vertex_attributes, object_ids, object_attributes, groups, chunk_shape=None, bin_shape=None, dtype="float32".to_string(), shard_shape=None, compressor=None))]
#[allow(clippy::too_many_arguments)]
pub fn vectors_write_point_objects(
    py: Python<'_>,
    path: PathBuf,
    positions: &[u8],
    dims: usize,
    vertex_attributes: Vec<RawAttribute>,
    object_ids: Vec<i64>,
    object_attributes: Vec<RawAttribute>,
    groups: Vec<Vec<i64>>,
    chunk_shape: Option<Vec<f64>>,
    bin_shape: Option<Vec<f64>>,
    dtype: String,
    shard_shape: Option<Vec<u64>>,
    compressor: Option<String>,
) -> PyResult<(usize, usize, usize, usize)> {
    let pos = floats(positions);
    let o = options(chunk_shape, bin_shape, dtype, shard_shape, compressor).map_err(py_err)?;
    py.detach(|| {
        let (va, oa) = (
            attributes(&vertex_attributes),
            attributes(&object_attributes),
        );
        let objects = voxfield::vectors::PointObjects {
            ids: &object_ids,
            attributes: &oa,
            groups: &groups,
        };
        voxfield::vectors::write_points_with_objects(&path, &pos, dims, &va, &objects, &o)
    })
    .map(|s| (s.vertices, s.chunks, s.objects, s.groups))
    .map_err(py_err)
}

/// A validation report as it crosses: ok, passed, warnings, errors.
type ReportRaw = (bool, Vec<String>, Vec<String>, Vec<String>);

/// zarr-vectors' validation up to `level`: (ok, passed, warnings, errors).
#[pyfunction]
pub fn vectors_validate(py: Python<'_>, path: PathBuf, level: u8) -> PyResult<ReportRaw> {
    let r = py
        .detach(|| voxfield::vectors::validate(&path, level))
        .map_err(py_err)?;
    Ok((r.ok(), r.passed, r.warnings, r.errors))
}

/// A selection from the keyword arguments `select` and `export` take.
fn selection(
    bbox: Option<(Vec<f64>, Vec<f64>)>,
    near: Option<(Vec<f64>, f64)>,
    objects: Option<Vec<i64>>,
    groups: Option<Vec<i64>>,
    conditions: Vec<(String, String, f64)>,
    limit: Option<usize>,
    names: Option<Vec<String>>,
) -> PyResult<voxfield::vectors::Selection> {
    let conditions = conditions
        .into_iter()
        .map(|(name, op, value)| {
            voxfield::vectors::Condition::new(&name, voxfield::vectors::Op::parse(&op)?, value)
        })
        .collect::<voxfield::Result<Vec<_>>>()
        .map_err(py_err)?;
    Ok(voxfield::vectors::Selection {
        bbox,
        near,
        objects,
        groups,
        conditions,
        limit,
        attributes: names,
    })
}

/// A selection as it crosses: positions, attributes, object ids, truncated.
type SelectedRaw<'py> = (Raw<'py>, Vec<Raw<'py>>, Option<Vec<i64>>, bool);

/// zarr-vectors' selection on a level: the kept vertices, the asked
/// attributes, per vertex its object id (when objects were selected) and
/// whether `limit` cut the result short.
#[pyfunction]
#[pyo3(signature = (path, level, bbox=None, near=None, objects=None, groups=None, conditions=vec![], limit=None, names=None))]
#[allow(clippy::too_many_arguments)]
pub fn vectors_select<'py>(
    py: Python<'py>,
    path: PathBuf,
    level: u64,
    bbox: Option<(Vec<f64>, Vec<f64>)>,
    near: Option<(Vec<f64>, f64)>,
    objects: Option<Vec<i64>>,
    groups: Option<Vec<i64>>,
    conditions: Vec<(String, String, f64)>,
    limit: Option<usize>,
    names: Option<Vec<String>>,
) -> PyResult<SelectedRaw<'py>> {
    let sel = selection(bbox, near, objects, groups, conditions, limit, names)?;
    let got = py
        .detach(|| Store::open(&path)?.select(level, &sel))
        .map_err(py_err)?;
    Ok((
        raw(py, &got.points.positions),
        got.points.attributes.iter().map(|c| raw(py, c)).collect(),
        got.object_ids,
        got.truncated,
    ))
}

/// Writes a point cloud store from a float32 or float64 (n, dims) array and
/// attributes as (name, dtype, width, bytes viewed as uint8), without copies.
#[pyfunction]
#[pyo3(signature = (path, positions, dims, attrs, chunk_shape=None, bin_shape=None, dtype="float32".to_string(), shard_shape=None, compressor=None))]
#[allow(clippy::too_many_arguments)]
pub fn vectors_write_points(
    py: Python<'_>,
    path: PathBuf,
    positions: &Bound<'_, PyAny>,
    dims: usize,
    attrs: Vec<(String, String, usize, PyBuffer<u8>)>,
    chunk_shape: Option<Vec<f64>>,
    bin_shape: Option<Vec<f64>>,
    dtype: String,
    shard_shape: Option<Vec<u64>>,
    compressor: Option<String>,
) -> PyResult<usize> {
    let (f32s, f64s) = match PyBuffer::<f32>::get(positions) {
        Ok(b) => (Some(b), None),
        Err(_) => (None, Some(PyBuffer::<f64>::get(positions)?)),
    };
    let coords = match (&f32s, &f64s) {
        (Some(b), _) => Coords::F32(elements(b)?),
        (_, Some(b)) => Coords::F64(elements(b)?),
        _ => unreachable!("one buffer was taken"),
    };
    let raw: Vec<(&str, &str, usize, &[u8])> = attrs
        .iter()
        .map(|(n, d, w, b)| Ok((n.as_str(), d.as_str(), *w, elements(b)?)))
        .collect::<PyResult<_>>()?;
    let o = options(chunk_shape, bin_shape, dtype, shard_shape, compressor).map_err(py_err)?;
    py.detach(|| {
        let attributes: Vec<voxfield::vectors::Attribute> = raw
            .iter()
            .map(
                |&(name, dtype, width, bytes)| voxfield::vectors::Attribute {
                    name,
                    dtype,
                    width,
                    bytes,
                },
            )
            .collect();
        voxfield::vectors::write_points_coords(&path, coords, dims, &attributes, &o)
    })
    .map_err(py_err)
}

fn floats(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect()
}

/// How a store is laid out, from the keyword arguments every writer takes.
fn options(
    chunk_shape: Option<Vec<f64>>,
    bin_shape: Option<Vec<f64>>,
    dtype: String,
    shard_shape: Option<Vec<u64>>,
    compressor: Option<String>,
) -> voxfield::Result<voxfield::vectors::PointsOptions> {
    Ok(voxfield::vectors::PointsOptions {
        chunk_shape,
        bin_shape,
        dtype,
        shard_shape,
        compressor: match compressor {
            Some(c) => voxfield::vectors::Compressor::parse(&c)?,
            None => None,
        },
    })
}

/// An attribute as it crosses: (name, dtype, width, little-endian bytes).
type RawAttribute = (String, String, usize, Vec<u8>);

fn attributes(raw: &[RawAttribute]) -> Vec<voxfield::vectors::Attribute<'_>> {
    raw.iter()
        .map(|(name, dtype, width, bytes)| voxfield::vectors::Attribute {
            name,
            dtype,
            width: *width,
            bytes,
        })
        .collect()
}

/// Writes a polyline store: vertices as float64 bytes, polyline `i` the
/// rows `offsets[i]..offsets[i + 1]`; returns (polylines, vertices, chunks, stitches).
#[pyfunction]
#[pyo3(signature = (path, positions, offsets, dims, vertex_attributes, object_attributes, chunk_shape=None, bin_shape=None, dtype="float32".to_string(), geometry="streamline".to_string(), shard_shape=None, compressor=None))]
#[allow(clippy::too_many_arguments)]
pub fn vectors_write_polylines(
    py: Python<'_>,
    path: PathBuf,
    positions: &[u8],
    offsets: Vec<usize>,
    dims: usize,
    vertex_attributes: Vec<RawAttribute>,
    object_attributes: Vec<RawAttribute>,
    chunk_shape: Option<Vec<f64>>,
    bin_shape: Option<Vec<f64>>,
    dtype: String,
    geometry: String,
    shard_shape: Option<Vec<u64>>,
    compressor: Option<String>,
) -> PyResult<(usize, usize, usize, usize)> {
    let pos = floats(positions);
    let o = options(chunk_shape, bin_shape, dtype, shard_shape, compressor).map_err(py_err)?;
    py.detach(|| {
        let (va, oa) = (
            attributes(&vertex_attributes),
            attributes(&object_attributes),
        );
        voxfield::vectors::write_polylines(&path, &pos, &offsets, dims, &va, &oa, &o, &geometry)
    })
    .map(|s| (s.polylines, s.vertices, s.chunks, s.stitches))
    .map_err(py_err)
}

/// Objects as they cross: (dtype, dims, vertex bytes, offsets, object ids).
type RawObjects<'py> = (String, usize, Bound<'py, PyBytes>, Vec<usize>, Vec<i64>);

/// The objects (polylines) of a level.
#[pyfunction]
pub fn vectors_read_objects<'py>(
    py: Python<'py>,
    path: PathBuf,
    level: u64,
) -> PyResult<RawObjects<'py>> {
    let o = py
        .detach(|| Store::open(&path)?.read_objects(level))
        .map_err(py_err)?;
    Ok((
        o.dtype,
        o.dims,
        PyBytes::new(py, &o.vertices),
        o.offsets,
        o.object_ids,
    ))
}

/// Removes a coarse level.
#[pyfunction]
pub fn vectors_remove_level(py: Python<'_>, path: PathBuf, level: u64) -> PyResult<()> {
    py.detach(|| Store::open(&path)?.remove_level(level))
        .map_err(py_err)
}

/// Builds coarse levels; returns (level, vertices, objects kept) per level.
/// `keep` (per level, the object rows kept, or None for all) replaces the
/// thinning draw when given.
#[pyfunction]
#[pyo3(signature = (path, factors, cross_level="explicit", depth=1, thinning="random", seed=0, keep=None, aggregation=None, method="per_object"))]
#[allow(clippy::too_many_arguments)]
pub fn vectors_build_pyramid(
    py: Python<'_>,
    path: PathBuf,
    factors: Vec<(f64, f64)>,
    cross_level: &str,
    depth: i64,
    thinning: &str,
    seed: u64,
    keep: Option<Vec<Option<Vec<usize>>>>,
    aggregation: Option<String>,
    method: &str,
) -> PyResult<Vec<(u64, usize, usize)>> {
    use voxfield::vectors::{Aggregation, Coarsening, CrossLevel, PyramidOptions, Thinning};
    let method = match method {
        "per_object" => Coarsening::PerObject,
        "cross_object_metanode" => Coarsening::CrossObjectMetanode,
        m => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "method {m:?}: per_object or cross_object_metanode"
            )))
        }
    };
    let cross_level = match cross_level {
        "none" => CrossLevel::None,
        "implicit" => CrossLevel::Implicit,
        "explicit" => CrossLevel::Explicit,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "cross_level_storage {other:?}: none, implicit or explicit"
            )))
        }
    };
    let thinning = match (keep, thinning) {
        (Some(k), _) => Thinning::Given(k),
        (None, "random") => Thinning::Random { seed },
        (None, "spatial_coverage") => Thinning::SpatialCoverage { seed },
        (None, other) => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "sparsity_strategy {other:?}: random or spatial_coverage"
            )))
        }
    };
    let aggregation = aggregation
        .map(|a| Aggregation::parse(&a))
        .transpose()
        .map_err(py_err)?;
    let o = PyramidOptions {
        method,
        factors,
        cross_level,
        depth,
        thinning,
        aggregation,
    };
    py.detach(|| voxfield::vectors::build_pyramid(&path, &o, &voxfield::vectors::Watch::none()))
        .map(|levels| {
            levels
                .into_iter()
                .map(|l| (l.level, l.vertices, l.objects))
                .collect()
        })
        .map_err(py_err)
}

/// Writes a graph store: positions as float64 bytes (n × dims), edges as
/// pairs of vertex indices, object ids per vertex (or None); returns
/// (vertices, edges, chunks, objects, intra-chunk edges).
#[pyfunction]
#[pyo3(signature = (path, positions, dims, edges, object_ids, vertex_attributes, object_attributes, chunk_shape=None, bin_shape=None, dtype="float32".to_string(), shard_shape=None, compressor=None))]
#[allow(clippy::too_many_arguments)]
pub fn vectors_write_graph(
    py: Python<'_>,
    path: PathBuf,
    positions: &[u8],
    dims: usize,
    edges: Vec<[u64; 2]>,
    object_ids: Option<Vec<i64>>,
    vertex_attributes: Vec<RawAttribute>,
    object_attributes: Vec<RawAttribute>,
    chunk_shape: Option<Vec<f64>>,
    bin_shape: Option<Vec<f64>>,
    dtype: String,
    shard_shape: Option<Vec<u64>>,
    compressor: Option<String>,
) -> PyResult<(usize, usize, usize, usize, usize)> {
    let pos = floats(positions);
    let o = options(chunk_shape, bin_shape, dtype, shard_shape, compressor).map_err(py_err)?;
    py.detach(|| {
        let (va, oa) = (
            attributes(&vertex_attributes),
            attributes(&object_attributes),
        );
        voxfield::vectors::write_graph(
            &path,
            &pos,
            dims,
            &edges,
            object_ids.as_deref(),
            &va,
            &oa,
            &o,
        )
    })
    .map(|s| (s.vertices, s.edges, s.chunks, s.objects, s.intra))
    .map_err(py_err)
}

/// The graph of a level: (dims, float64 positions bytes, edges).
#[pyfunction]
pub fn vectors_read_graph<'py>(
    py: Python<'py>,
    path: PathBuf,
    level: u64,
) -> PyResult<(usize, Bound<'py, PyBytes>, Vec<[u64; 2]>)> {
    let g = py
        .detach(|| Store::open(&path)?.read_graph(level))
        .map_err(py_err)?;
    let bytes: Vec<u8> = g.positions.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok((g.dims, PyBytes::new(py, &bytes), g.edges))
}

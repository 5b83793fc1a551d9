//! zarr-vectors stores for `voxfield.vectors`: levels, store and level
//! metadata, and vertex reads (whole level or bounding box) with attributes.
//! Arrays cross as little-endian bytes with their numpy dtype names.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use voxfield::vectors::{Column, Store};

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

/// Writes a point cloud store: positions as float64 little-endian bytes
/// (n × dims), attributes as (name, dtype, width, bytes).
#[pyfunction]
#[pyo3(signature = (path, positions, dims, attrs, chunk_shape=None, bin_shape=None, dtype="float32".to_string()))]
pub fn vectors_write_points(
    py: Python<'_>,
    path: PathBuf,
    positions: &[u8],
    dims: usize,
    attrs: Vec<RawAttribute>,
    chunk_shape: Option<Vec<f64>>,
    bin_shape: Option<Vec<f64>>,
    dtype: String,
) -> PyResult<usize> {
    let pos = floats(positions);
    let o = voxfield::vectors::PointsOptions {
        chunk_shape,
        bin_shape,
        dtype,
    };
    py.detach(|| voxfield::vectors::write_points(&path, &pos, dims, &attributes(&attrs), &o))
        .map_err(py_err)
}

fn floats(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect()
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
#[pyo3(signature = (path, positions, offsets, dims, vertex_attributes, object_attributes, chunk_shape=None, bin_shape=None, dtype="float32".to_string(), geometry="streamline".to_string()))]
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
) -> PyResult<(usize, usize, usize, usize)> {
    let pos = floats(positions);
    let o = voxfield::vectors::PointsOptions {
        chunk_shape,
        bin_shape,
        dtype,
    };
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

/// Builds coarse levels of a point-cloud store; returns their vertex counts.
#[pyfunction]
pub fn vectors_build_point_pyramid(
    py: Python<'_>,
    path: PathBuf,
    factors: Vec<f64>,
) -> PyResult<Vec<usize>> {
    py.detach(|| voxfield::vectors::build_point_pyramid(&path, &factors))
        .map_err(py_err)
}

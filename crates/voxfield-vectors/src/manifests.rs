//! Writing a level's objects as zarr-vectors 0.9.2 writes them: the
//! `object_index` (per object a manifest of (chunk, fragment) blocks in
//! object order, `vlen_manifests_v2`, zstd-compressed in 16,384-row chunks,
//! plus the row → object id table) and the dense `object_attributes`
//! arrays (65,536-row chunks, absent rows at the dtype's sentinel).

use std::borrow::Cow;
use std::path::Path;

use serde_json::{json, Value};
use voxfield_core::{Error, Result};

use crate::codecs::Compressor;
use crate::store::itemsize;
use crate::write::{group, write_json, Attribute};

/// Manifest rows per chunk of `object_index/manifests`.
pub(crate) const MANIFEST_ROWS: usize = 16_384;
/// Rows per chunk of an object attribute.
const OBJECT_ATTRIBUTE_ROWS: usize = 65_536;
/// The manifest of an object absent from a level (dropped by thinning).
pub(crate) const EMPTY_MANIFEST: [u8; 4] = [0; 4];

/// A manifest of single-fragment blocks (mode 0), in object order.
pub(crate) fn encode_manifest<'a>(
    blocks: impl ExactSizeIterator<Item = (&'a [i64], u64)>,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + blocks.len() * 33);
    b.extend((blocks.len() as u32).to_le_bytes());
    for (chunk, frag) in blocks {
        chunk.iter().for_each(|c| b.extend(c.to_le_bytes()));
        b.push(0);
        b.extend((frag as i64).to_le_bytes());
    }
    b
}

fn array_meta(
    shape: Vec<usize>,
    chunks: Vec<usize>,
    dtype: &str,
    fill: Value,
    codecs: Value,
    attributes: Value,
) -> Value {
    json!({
        "shape": shape,
        "data_type": dtype,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill,
        "codecs": codecs,
        "attributes": attributes,
        "zarr_format": 3,
        "node_type": "array",
        "storage_transformers": [],
    })
}

fn write_file(p: &Path, bytes: &[u8]) -> Result<()> {
    let dir = p.parent().expect("a chunk file has a directory");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    std::fs::write(p, bytes).map_err(|e| Error::io(p, e))
}

fn zstd(p: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    zstd::bulk::compress(bytes, 0).map_err(|e| Error::io(p, e))
}

/// zarr-vectors' compressor of pyramid levels' object tables.
pub(crate) const LEVEL_ZSTD: Compressor = Compressor::Zstd {
    level: 0,
    checksum: false,
};

/// Writes `level/object_index`: one manifest per row, row `i` naming object
/// `ids[i]` (ascending); the id table compressed by `ids_with` (zstd on
/// pyramid levels, the store's compressor at level 0, as zarr-vectors).
pub(crate) fn write_object_index(
    level: &Path,
    dims: usize,
    manifests: &[Vec<u8>],
    ids: &[i64],
    ids_with: Option<&Compressor>,
) -> Result<()> {
    debug_assert_eq!(manifests.len(), ids.len());
    write_object_index_by_chunks(level, dims, ids, ids_with, |rows| {
        Ok(Cow::Borrowed(&manifests[rows]))
    })
}

/// [`write_object_index`] with the manifests made a chunk of rows at a time
/// by `manifests(rows)` (borrowed when they are at hand), so a pyramid
/// level never holds them all.
pub(crate) fn write_object_index_by_chunks<'a>(
    level: &Path,
    dims: usize,
    ids: &[i64],
    ids_with: Option<&Compressor>,
    mut manifests: impl FnMut(std::ops::Range<usize>) -> Result<Cow<'a, [Vec<u8>]>>,
) -> Result<()> {
    let n = ids.len();
    let index = level.join("object_index");
    let mut present = 0;
    if n > 0 {
        let rows = MANIFEST_ROWS.min(n);
        let dir = index.join("manifests");
        let zstd_codec = json!({"name": "zstd", "configuration": {"level": 0, "checksum": false}});
        write_json(
            &dir,
            &array_meta(
                vec![n],
                vec![rows],
                "variable_length_bytes",
                json!(""),
                json!([{"name": "vlen-bytes", "configuration": {}}, zstd_codec]),
                json!({}),
            ),
        )?;
        for (k, first) in (0..n).step_by(rows).enumerate() {
            let part = manifests(first..(first + rows).min(n))?;
            present += part.iter().filter(|m| m[..] != EMPTY_MANIFEST).count();
            // A chunk always holds `rows` items: the edge chunk is padded with empty ones.
            let mut b = Vec::with_capacity(4 + part.iter().map(|m| m.len() + 4).sum::<usize>());
            b.extend((rows as u32).to_le_bytes());
            for m in part.iter() {
                b.extend((m.len() as u32).to_le_bytes());
                b.extend(m);
            }
            b.extend(std::iter::repeat_n(0u8, 4 * (rows - part.len())));
            let p = dir.join("c").join(k.to_string());
            write_file(&p, &zstd(&p, &b)?)?;
        }
    }
    write_json(
        &index,
        &group(
            json!({"zv_array": "object_index", "num_objects": n, "num_present": present,
            "sid_ndim": dims, "layout": "vlen_manifests_v2", "object_ids_sorted": true}),
        ),
    )?;
    if n == 0 {
        return Ok(());
    }
    let dir = index.join("object_ids");
    let mut codecs = vec![json!({"name": "bytes", "configuration": {"endian": "little"}})];
    codecs.extend(ids_with.map(Compressor::metadata));
    write_json(
        &dir,
        &array_meta(
            vec![n],
            vec![n],
            "int64",
            json!(0),
            json!(codecs),
            json!({}),
        ),
    )?;
    // zarr-python writes no chunk that holds only its fill value (0).
    if ids.iter().all(|&i| i == 0) {
        return Ok(());
    }
    let b: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
    let p = dir.join("c").join("0");
    let b = match ids_with {
        Some(c) => c.encode(&b, &p)?,
        None => b,
    };
    write_file(&p, &b)
}

/// Whether every element of `b` is the fill value (any NaN for a NaN fill,
/// as zarr-python compares them).
fn only_fill(b: &[u8], fill: &[u8], dtype: &str) -> bool {
    let w = fill.len();
    b.chunks_exact(w).all(|e| {
        e == fill
            || match dtype {
                "float32" => f32::from_le_bytes(e.try_into().expect("4")).is_nan(),
                "float64" => f64::from_le_bytes(e.try_into().expect("8")).is_nan(),
                _ => false,
            } && match dtype {
                "float32" => f32::from_le_bytes(fill.try_into().expect("4")).is_nan(),
                _ => f64::from_le_bytes(fill.try_into().expect("8")).is_nan(),
            }
    })
}

/// The "absent" sentinel zarr-vectors fills missing object rows with:
/// NaN for floats, the minimum of signed and the maximum of unsigned ints.
pub(crate) fn sentinel_bytes(dtype: &str) -> Option<Vec<u8>> {
    sentinel(dtype).map(|(_, b)| b)
}

fn sentinel(dtype: &str) -> Option<(Value, Vec<u8>)> {
    Some(match dtype {
        "float32" => (json!("NaN"), f32::NAN.to_le_bytes().to_vec()),
        "float64" => (json!("NaN"), f64::NAN.to_le_bytes().to_vec()),
        "int8" => (json!(i8::MIN), i8::MIN.to_le_bytes().to_vec()),
        "int16" => (json!(i16::MIN), i16::MIN.to_le_bytes().to_vec()),
        "int32" => (json!(i32::MIN), i32::MIN.to_le_bytes().to_vec()),
        "int64" => (json!(i64::MIN), i64::MIN.to_le_bytes().to_vec()),
        "uint8" => (json!(u8::MAX), u8::MAX.to_le_bytes().to_vec()),
        "uint16" => (json!(u16::MAX), u16::MAX.to_le_bytes().to_vec()),
        "uint32" => (json!(u32::MAX), u32::MAX.to_le_bytes().to_vec()),
        "uint64" => (json!(u64::MAX), u64::MAX.to_le_bytes().to_vec()),
        _ => return None,
    })
}

/// Writes `level/object_attributes/<name>` for `n` objects: dense arrays of
/// the attributes' rows (already aligned with the object rows), compressed by
/// `with` (zstd on pyramid levels, the store's compressor at level 0).
pub(crate) fn write_object_attributes(
    level: &Path,
    attributes: &[Attribute],
    n: usize,
    with: Option<&Compressor>,
) -> Result<()> {
    if attributes.is_empty() {
        return Ok(());
    }
    let root = level.join("object_attributes");
    write_json(&root, &group(json!({})))?;
    for a in attributes {
        let (fill, fill_bytes) = sentinel(a.dtype).ok_or_else(|| {
            Error::invalid(format!(
                "object attribute {}: dtype {} is not numeric",
                a.name, a.dtype
            ))
        })?;
        let row = a.width * itemsize(a.dtype).expect("numeric");
        let (shape, chunks) = if a.width > 1 {
            (vec![n, a.width], vec![OBJECT_ATTRIBUTE_ROWS, a.width])
        } else {
            (vec![n], vec![OBJECT_ATTRIBUTE_ROWS])
        };
        let dir = root.join(a.name);
        let mut codecs = vec![json!({"name": "bytes", "configuration": {"endian": "little"}})];
        codecs.extend(with.map(Compressor::metadata));
        write_json(
            &dir,
            &array_meta(
                shape.clone(),
                chunks,
                a.dtype,
                fill,
                json!(codecs),
                json!({"zv_array": "object_attribute", "name": a.name, "dtype": a.dtype,
                    "shape": shape, "fill_sentinel_meaning": "absent"}),
            ),
        )?;
        for (k, part) in a.bytes.chunks(OBJECT_ATTRIBUTE_ROWS * row).enumerate() {
            // Chunks are whole: rows past the end hold the sentinel.
            let mut b = part.to_vec();
            let missing = OBJECT_ATTRIBUTE_ROWS * a.width - part.len() / (row / a.width);
            b.extend(fill_bytes.iter().cycle().take(missing * fill_bytes.len()));
            // zarr-python writes no chunk that holds only the fill value.
            if only_fill(&b, &fill_bytes, a.dtype) {
                continue;
            }
            let mut p = dir.join("c").join(k.to_string());
            if a.width > 1 {
                p.push("0");
            }
            let b = match with {
                Some(c) => c.encode(&b, &p)?,
                None => b,
            };
            write_file(&p, &b)?;
        }
    }
    Ok(())
}

/// Writes `level/groups`: one vlen item per group id (its members as
/// little-endian int64, in the order given), a single chunk, zstd level 0 —
/// zarr-vectors' `write_groupings` for explicit (non-range) groups.
pub(crate) fn write_groups(level: &Path, groups: &[Vec<i64>]) -> Result<()> {
    if groups.is_empty() {
        return Ok(());
    }
    let n = groups.len();
    let dir = level.join("groups");
    write_json(
        &dir,
        &array_meta(
            vec![n],
            vec![n],
            "variable_length_bytes",
            json!(""),
            json!([{"name": "vlen-bytes", "configuration": {}}, LEVEL_ZSTD.metadata()]),
            json!({"zv_array": "groups", "num_groups": n}),
        ),
    )?;
    let mut b = (n as u32).to_le_bytes().to_vec();
    for g in groups {
        b.extend(((g.len() * 8) as u32).to_le_bytes());
        g.iter().for_each(|m| b.extend(m.to_le_bytes()));
    }
    let p = dir.join("c").join("0");
    write_file(&p, &LEVEL_ZSTD.encode(&b, &p)?)
}

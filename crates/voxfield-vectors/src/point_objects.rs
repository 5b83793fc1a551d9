//! Point clouds with object ids, laid out as zarr-vectors 0.9.2's
//! `write_points(object_ids=…)` lays them out: in each chunk (ascending)
//! the points sorted stably by object id, one fragment per object present
//! (ascending id), each object's manifest its (chunk, fragment) in chunk
//! order; the object index rows are the distinct ids ascending, object
//! attributes one row per object (zstd, as it writes them), groups a vlen
//! array of member ids per group id (zstd). Held in memory (unlike the
//! streamed writer of plain point clouds): O(points).

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use voxfield_core::{Error, Result};

use crate::manifests::{encode_manifest, write_object_attributes, write_object_index, LEVEL_ZSTD};
use crate::store::itemsize;
use crate::write::{
    check_attributes, check_positions, chunk_key, fragment_index, publish, temp_beside,
    write_attribute_arrays, write_json, write_level_zero, Attribute, Layout, PointsOptions,
};

/// The objects of a point cloud.
pub struct PointObjects<'a> {
    /// Per point its object id (≥ 0).
    pub ids: &'a [i64],
    /// Per object (the distinct ids ascending) its attribute rows.
    pub attributes: &'a [Attribute<'a>],
    /// Group g's member object ids, g = 0, 1, ….
    pub groups: &'a [Vec<i64>],
}

/// What `write_points_with_objects` wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectsSummary {
    pub vertices: usize,
    pub chunks: usize,
    pub objects: usize,
    pub groups: usize,
}

/// Writes points (rows of `dims`) with object ids, vertex attributes, object
/// attributes and groups as a new store at `path` (refused if something is
/// there); built under a temporary name and renamed into place.
pub fn write_points_with_objects(
    path: &Path,
    positions: &[f64],
    dims: usize,
    vertex_attributes: &[Attribute],
    objects: &PointObjects,
    o: &PointsOptions,
) -> Result<ObjectsSummary> {
    let n = check_positions(positions, dims)?;
    if objects.ids.len() != n {
        return Err(Error::invalid(format!(
            "{} object ids for {n} points",
            objects.ids.len()
        )));
    }
    if let Some(i) = objects.ids.iter().position(|&id| id < 0) {
        return Err(Error::invalid(format!(
            "point {i} has object id {}: ids must be ≥ 0",
            objects.ids[i]
        )));
    }
    check_attributes(vertex_attributes, n, "points")?;
    let mut distinct: Vec<i64> = objects.ids.to_vec();
    distinct.par_sort_unstable();
    distinct.dedup();
    check_attributes(objects.attributes, distinct.len(), "objects")?;
    for (g, members) in objects.groups.iter().enumerate() {
        if let Some(m) = members.iter().find(|m| distinct.binary_search(m).is_err()) {
            return Err(Error::invalid(format!(
                "group {g} names object {m}, which no point has"
            )));
        }
    }
    let lay = Layout::new(path, positions, dims, o)?;
    // Per chunk (ascending) its rows, stably sorted by object id.
    let mut chunks: BTreeMap<[i64; 3], Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        chunks.entry(lay.chunk_of(i)).or_default().push(i);
    }
    let chunks: Vec<([i64; 3], Vec<usize>)> = chunks
        .into_iter()
        .map(|(c, mut rows)| {
            rows.sort_by_key(|&r| objects.ids[r]);
            (c, rows)
        })
        .collect();
    // Per object its (chunk, fragment) blocks, chunks ascending.
    let mut blocks: BTreeMap<i64, Vec<(usize, u64)>> = BTreeMap::new();
    for (k, (_, rows)) in chunks.iter().enumerate() {
        let mut frag = 0u64;
        for (j, &r) in rows.iter().enumerate() {
            if j > 0 && objects.ids[rows[j - 1]] != objects.ids[r] {
                frag += 1;
            }
            if j == 0 || objects.ids[rows[j - 1]] != objects.ids[r] {
                blocks.entry(objects.ids[r]).or_default().push((k, frag));
            }
        }
    }
    let manifests: Vec<Vec<u8>> = blocks
        .values()
        .map(|b| encode_manifest(b.iter().map(|&(k, f)| (&chunks[k].0[..dims], f))))
        .collect();
    let grid = lay.grid();
    let tmp = temp_beside(path)?;
    let result = (|| -> Result<()> {
        let level = tmp.join("0");
        let (vertices, fragments) = (level.join("vertices"), level.join("vertex_fragments"));
        chunks.par_iter().try_for_each(|(c, rows)| -> Result<()> {
            let c = &c[..dims];
            let mut v = vec![];
            rows.iter().for_each(|&r| lay.put_rows(r..r + 1, &mut v));
            grid.put(&vertices, c, &v)?;
            let mut counts = vec![];
            for (j, &r) in rows.iter().enumerate() {
                match counts.last_mut() {
                    Some(k) if objects.ids[rows[j - 1]] == objects.ids[r] => *k += 1,
                    _ => counts.push(1usize),
                }
            }
            grid.put(&fragments, c, &fragment_index(&counts))?;
            for a in vertex_attributes {
                let row = a.width * itemsize(a.dtype).expect("checked");
                let item: Vec<u8> = rows
                    .iter()
                    .flat_map(|&r| a.bytes[r * row..(r + 1) * row].iter().copied())
                    .collect();
                grid.put(&level.join("vertex_attributes").join(a.name), c, &item)?;
            }
            Ok(())
        })?;
        let nonempty: Vec<String> = chunks.iter().map(|(c, _)| chunk_key(&c[..dims])).collect();
        grid.write_vertex_arrays(&level, &nonempty, &o.dtype)?;
        write_attribute_arrays(&grid, &level, vertex_attributes, &nonempty)?;
        write_object_index(&level, dims, &manifests, &distinct, o.compressor.as_ref())?;
        write_object_attributes(
            &level,
            objects.attributes,
            distinct.len(),
            Some(&LEVEL_ZSTD),
        )?;
        crate::manifests::write_groups(&level, objects.groups)?;
        let mut present = vec!["vertices"];
        if !vertex_attributes.is_empty() {
            present.push("vertex_attributes");
        }
        present.push("object_index");
        write_level_zero(&level, n, &present)?;
        write_json(&tmp, &lay.root(path, "point_cloud", o.bin_shape.as_ref()))
    })();
    publish(&tmp, path, result)?;
    Ok(ObjectsSummary {
        vertices: n,
        chunks: chunks.len(),
        objects: distinct.len(),
        groups: objects.groups.len(),
    })
}

//! Graphs (vertices and edges, grouped into objects) as zarr-vectors
//! 0.9.2's `write_graph` lays them out, and read back: each vertex goes to
//! the chunk of its position, a chunk's vertices ordered by object (input
//! order within an object), one fragment per object present; every edge is
//! stored (the `explicit` links convention) — an edge within a chunk as a
//! flat row `(vi_a, vi_b)` of `links/0/0.0.0` (grouped by the level's
//! `link_fragments`), an edge across chunks once, under its
//! lexicographically smaller endpoint, as `(perm, vi, vi)` in the
//! `links/0/<offset>` array of the gap.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use serde_json::json;
use voxfield_core::{Error, Result};

use crate::cells::CellArray;
use crate::links::{offset_name, Family, LinkBuckets};
use crate::manifests::{encode_manifest, write_object_attributes, write_object_index};
use crate::store::{itemsize, Store};
use crate::write::{
    check_attributes, check_positions, chunk_key, fragment_index, publish, temp_beside,
    write_attribute_arrays, write_json, write_level_zero, Attribute, Layout, PointsOptions,
};

/// What `write_graph` wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphSummary {
    pub vertices: usize,
    pub edges: usize,
    pub chunks: usize,
    pub objects: usize,
    /// Edges whose endpoints share a chunk.
    pub intra: usize,
}

/// Writes a graph — `positions` (rows of `dims`), `edges` (pairs of vertex
/// indices), `object_ids` per vertex (None: all object 0) — with vertex and
/// object attributes as a new store at `path`.
#[allow(clippy::too_many_arguments)]
pub fn write_graph(
    path: &Path,
    positions: &[f64],
    dims: usize,
    edges: &[[u64; 2]],
    object_ids: Option<&[i64]>,
    vertex_attributes: &[Attribute],
    object_attributes: &[Attribute],
    o: &PointsOptions,
) -> Result<GraphSummary> {
    let n = check_positions(positions, dims)?;
    check_attributes(vertex_attributes, n, "vertices")?;
    if let Some(e) = edges
        .iter()
        .find(|e| e[0] as usize >= n || e[1] as usize >= n)
    {
        return Err(Error::invalid(format!(
            "edge ({}, {}) names a vertex past the {n} vertices",
            e[0], e[1]
        )));
    }
    let zeros;
    let oids = match object_ids {
        Some(ids) if ids.len() == n => ids,
        Some(ids) => {
            return Err(Error::invalid(format!(
                "{} object ids for {n} vertices",
                ids.len()
            )))
        }
        None => {
            zeros = vec![0i64; n];
            &zeros[..]
        }
    };
    if let Some(&bad) = oids.iter().find(|&&id| id < 0) {
        return Err(Error::invalid(format!("object id {bad} is negative")));
    }
    let objects = oids.iter().max().map_or(0, |&m| m as usize + 1);
    // Object rows are dense up to the largest id: refuse ids that would
    // make far more rows than the vertices could fill.
    if objects > 64 * n + 65_536 {
        return Err(Error::invalid(format!(
            "object id {} would make {objects} object rows for {n} vertices; number objects densely",
            objects - 1
        )));
    }
    check_attributes(object_attributes, objects, "objects")?;
    let lay = Layout::new(path, positions, dims, o)?;
    // Vertices by chunk (chunks ascending), then by object, input order kept.
    let mut order: Vec<usize> = (0..n).collect();
    order.par_sort_by_key(|&v| (lay.chunk_of(v), oids[v]));
    let mut chunks: Vec<(usize, usize)> = vec![];
    let mut s = 0;
    while s < n {
        let c = lay.chunk_of(order[s]);
        let e = s + order[s..]
            .iter()
            .take_while(|&&v| lay.chunk_of(v) == c)
            .count();
        chunks.push((s, e));
        s = e;
    }
    // Each vertex's (chunk index, row in its chunk).
    let mut place = vec![(0usize, 0i64); n];
    for (k, &(s, e)) in chunks.iter().enumerate() {
        for (r, &v) in order[s..e].iter().enumerate() {
            place[v] = (k, r as i64);
        }
    }
    let chunk_at = |k: usize| lay.chunk_of(order[chunks[k].0]);
    // Manifests: per object, its fragment in each chunk it has vertices in.
    let mut blocks: Vec<Vec<([i64; 3], u64)>> = vec![vec![]; objects];
    let mut frags: Vec<Vec<usize>> = vec![];
    for (k, &(s, e)) in chunks.iter().enumerate() {
        let mut counts = vec![];
        let mut i = s;
        while i < e {
            let id = oids[order[i]];
            let j = i + order[i..e].iter().take_while(|&&v| oids[v] == id).count();
            blocks[id as usize].push((chunk_at(k), counts.len() as u64));
            counts.push(j - i);
            i = j;
        }
        frags.push(counts);
    }
    let manifests: Vec<Vec<u8>> = blocks
        .iter()
        .map(|b| encode_manifest(b.iter().map(|(c, f)| (&c[..dims], *f))))
        .collect();
    // Edges: within a chunk as input; across, under the smaller endpoint.
    let mut intra: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    let mut cross = LinkBuckets::new();
    for e in edges {
        let (a, b) = (place[e[0] as usize], place[e[1] as usize]);
        if a.0 == b.0 {
            intra.entry(a.0).or_default().extend([a.1, b.1]);
            continue;
        }
        let (ca, cb) = (chunk_at(a.0), chunk_at(b.0));
        let ((src, sv), (dst, dv), perm) = if (ca, a.1) <= (cb, b.1) {
            ((ca, a.1), (cb, b.1), 0)
        } else {
            ((cb, b.1), (ca, a.1), 1)
        };
        let offset: Vec<i64> = (0..dims).map(|x| dst[x] - src[x]).collect();
        cross
            .entry(offset)
            .or_default()
            .entry(src[..dims].to_vec())
            .or_default()
            .extend([perm, sv, dv]);
    }
    let n_intra: usize = intra.values().map(|r| r.len() / 2).sum();
    let grid = lay.grid();
    let tmp = temp_beside(path)?;
    let result = (|| -> Result<()> {
        let level = tmp.join("0");
        chunks
            .par_iter()
            .enumerate()
            .try_for_each(|(k, &(s, e))| -> Result<()> {
                let c = chunk_at(k);
                let mut v = vec![];
                for &i in &order[s..e] {
                    lay.put_rows(i..i + 1, &mut v);
                }
                grid.put(&level.join("vertices"), &c[..dims], &v)?;
                grid.put(
                    &level.join("vertex_fragments"),
                    &c[..dims],
                    &fragment_index(&frags[k]),
                )?;
                for a in vertex_attributes {
                    let row = a.width * itemsize(a.dtype).expect("checked");
                    let mut item = Vec::with_capacity((e - s) * row);
                    order[s..e]
                        .iter()
                        .for_each(|&i| item.extend(&a.bytes[i * row..(i + 1) * row]));
                    grid.put(
                        &level.join("vertex_attributes").join(a.name),
                        &c[..dims],
                        &item,
                    )?;
                }
                Ok(())
            })?;
        let nonempty: Vec<String> = (0..chunks.len())
            .map(|k| chunk_key(&chunk_at(k)[..dims]))
            .collect();
        grid.write_vertex_arrays(&level, &nonempty, &o.dtype)?;
        write_attribute_arrays(&grid, &level, vertex_attributes, &nonempty)?;
        // Intra-chunk edges: flat rows, one link fragment per cell.
        let zero = vec![0i64; dims];
        let intra_dir = level.join("links").join("0").join(offset_name(&zero));
        for (&k, rows) in &intra {
            let c = &chunk_at(k)[..dims];
            let flat: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
            grid.put(&intra_dir, c, &flat)?;
            grid.put(
                &level.join("link_fragments"),
                c,
                &fragment_index(&[rows.len() / 2]),
            )?;
        }
        let intra_keys: Vec<String> = intra
            .keys()
            .map(|&k| chunk_key(&chunk_at(k)[..dims]))
            .collect();
        grid.write_array(
            &intra_dir,
            &intra_keys,
            json!({"zv_array": "links", "dtype": "int64", "offsets": [zero],
                "has_perm": false, "link_width": 2, "level_delta": 0}),
        )?;
        if !intra.is_empty() {
            grid.write_array(
                &level.join("link_fragments"),
                &intra_keys,
                json!({"zv_array": "link_fragments", "encoding": "fragment_index_v1"}),
            )?;
        }
        let family = Family {
            name: "0".into(),
            has_perm: true,
            directed: false,
            dims,
        };
        let mut keys = BTreeMap::new();
        for (offset, cells) in &cross {
            cells
                .par_iter()
                .try_for_each(|(src, rows)| family.put(&grid, &level, offset, src, rows))?;
            keys.insert(offset.clone(), cells.keys().map(|c| chunk_key(c)).collect());
        }
        family.finish(&grid, &level, &keys, edges.len())?;
        let ids: Vec<i64> = (0..objects as i64).collect();
        write_object_index(&level, dims, &manifests, &ids, o.compressor.as_ref())?;
        write_object_attributes(&level, object_attributes, objects, o.compressor.as_ref())?;
        write_level_zero(&level, n, &["vertices", "links", "object_index"])?;
        let mut root = lay.root(path, "graph", o.bin_shape.as_ref());
        root["attributes"]["zarr_vectors"]["links_convention"] = json!("explicit");
        write_json(&tmp, &root)
    })();
    publish(&tmp, path, result)?;
    Ok(GraphSummary {
        vertices: n,
        edges: edges.len(),
        chunks: chunks.len(),
        objects: blocks.iter().filter(|b| !b.is_empty()).count(),
        intra: n_intra,
    })
}

/// A level's vertices (chunks ascending, rows as stored) and every stored
/// edge as a pair of indices into them, each cross-chunk edge in its
/// original orientation.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub dims: usize,
    /// Coordinates as float64, row-major.
    pub positions: Vec<f64>,
    pub edges: Vec<[u64; 2]>,
}

impl Store {
    /// The graph of `level`: vertices and the `links/0` edges.
    pub fn read_graph(&self, level: u64) -> Result<Graph> {
        let d = self.dims;
        let points = self.read_points(level, None, Some(&[]))?;
        let positions = points.positions.to_f64();
        let dir = self.loc.join(&level.to_string());
        let vertices = CellArray::open_at(&dir.join("vertices"), d)?;
        let mut chunks = vertices.nonempty.clone();
        chunks.sort();
        chunks.dedup();
        let row = d * itemsize(vertices.attrs["dtype"].as_str().unwrap_or("float32")).unwrap_or(4);
        // Global row of each chunk's first vertex.
        let mut start = BTreeMap::new();
        let mut at = 0u64;
        for c in &chunks {
            start.insert(c.clone(), at);
            at += (vertices.read(c)?.len() / row) as u64;
        }
        let family_node = dir.join("links").join("0");
        let family = family_node.path();
        let mut edges = vec![];
        let names = match family_node.children()? {
            Some(n) => n,
            None if !family_node.exists()? => vec![],
            None => return Err(Error::format(
                &family,
                "the server cannot list the link arrays (no index page, no consolidated metadata)",
            )),
        };
        for name in names {
            let offset: Vec<i64> = name
                .split('.')
                .map(|p| p.parse::<i64>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| Error::format(family.join(&name), "not an offsets name"))?;
            if offset.len() != d {
                return Err(Error::format(
                    family.join(&name),
                    "offsets of the wrong rank",
                ));
            }
            let arr = CellArray::open_at(&family_node.join(&name), d)?;
            let perm = arr.attrs["has_perm"].as_bool().unwrap_or(false);
            let intra = offset.iter().all(|&o| o == 0);
            let mut srcs = arr.nonempty.clone();
            srcs.sort();
            for src in srcs {
                let b = arr.read(&src)?;
                let values = if intra {
                    b.chunks_exact(8)
                        .map(|x| i64::from_le_bytes(x.try_into().expect("8")))
                        .collect::<Vec<i64>>()
                } else {
                    decode_ragged(&b)
                        .map_err(|m| Error::format(&arr.path, format!("cell {src:?}: {m}")))?
                };
                let width = if perm { 3 } else { 2 };
                if values.len() % width != 0 {
                    return Err(Error::format(
                        &arr.path,
                        format!("cell {src:?} is not whole rows of {width}"),
                    ));
                }
                let dst: Vec<i64> = src.iter().zip(&offset).map(|(s, o)| s + o).collect();
                let (s0, d0) = match (start.get(&src), start.get(&dst)) {
                    (Some(&a), Some(&b)) => (a, b),
                    _ => {
                        return Err(Error::format(
                            &arr.path,
                            format!("cell {src:?} links chunks that hold no vertices"),
                        ))
                    }
                };
                for r in values.chunks_exact(width) {
                    let (p, a, z) = if perm {
                        (r[0], r[1], r[2])
                    } else {
                        (0, r[0], r[1])
                    };
                    if a < 0 || z < 0 {
                        return Err(Error::format(&arr.path, "a negative vertex index"));
                    }
                    let (ga, gz) = (s0 + a as u64, d0 + z as u64);
                    edges.push(if p == 1 { [gz, ga] } else { [ga, gz] });
                }
            }
        }
        if let Some(e) = edges.iter().find(|e| e[0] >= at || e[1] >= at) {
            return Err(Error::format(
                &family,
                format!(
                    "edge ({}, {}) names a vertex past the {at} vertices",
                    e[0], e[1]
                ),
            ));
        }
        Ok(Graph {
            dims: d,
            positions,
            edges,
        })
    }
}

/// The rows of an inline ragged link blob (`i64 k`, `i64 offsets[k]`, rows).
pub(crate) fn decode_ragged(b: &[u8]) -> std::result::Result<Vec<i64>, String> {
    let v: Vec<i64> = b
        .chunks_exact(8)
        .map(|x| i64::from_le_bytes(x.try_into().expect("8")))
        .collect();
    if !b.len().is_multiple_of(8) || v.is_empty() {
        return Err("not a ragged link blob".into());
    }
    let k = v[0];
    if k < 0 || k as usize + 1 > v.len() {
        return Err(format!("a ragged blob claims {k} groups"));
    }
    Ok(v[1 + k as usize..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::ragged_blob;

    #[test]
    fn ragged_blobs_round_trip_and_refuse_nonsense() {
        let b = ragged_blob(&[0, 3, 4, 1, 5, 6]);
        assert_eq!(decode_ragged(&b).unwrap(), vec![0, 3, 4, 1, 5, 6]);
        assert!(decode_ragged(&b[..5]).is_err());
        assert!(decode_ragged(&(99i64).to_le_bytes())
            .unwrap_err()
            .contains("claims"));
    }
}

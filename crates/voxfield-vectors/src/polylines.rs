//! Writing polylines (streamlines) as zarr-vectors 0.9.2's `write_polylines`
//! lays them out: each polyline is cut where its vertices change chunk
//! (`floor(position / chunk)`), each run becomes one fragment of its chunk
//! (fragments numbered in polyline order, rows in vertex order), the
//! manifest of a polyline lists its runs in order, and each cut is stored
//! as a cross-chunk stitch — an undirected record (last vertex of one run,
//! first of the next) filed once under the lexicographically smaller
//! endpoint in `links/0/<offset>` with its permutation index.

use std::path::Path;

use rayon::prelude::*;
use voxfield_core::{Error, Result};

use crate::links::{write_link_family, Family, LinkBuckets};
use crate::manifests::{encode_manifest, write_object_attributes, write_object_index};
use crate::store::itemsize;
use crate::write::{
    check_attributes, check_positions, chunk_key, fragment_index, publish, temp_beside,
    write_attribute_arrays, write_json, write_level_zero, Attribute, Layout, PointsOptions,
};

/// What `write_polylines` wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinesSummary {
    pub polylines: usize,
    pub vertices: usize,
    pub chunks: usize,
    /// Cross-chunk stitches (one per cut).
    pub stitches: usize,
}

/// One run of a polyline inside one chunk: vertex rows `start..end`.
#[derive(Clone, Copy, Debug)]
struct Run {
    chunk: [i64; 3],
    start: usize,
    end: usize,
}

/// Writes polylines — vertex rows `offsets[i]..offsets[i + 1]` of
/// `positions` (rows of `dims`) — with per-vertex and per-polyline
/// attributes as a new store at `path` (refused if something is there).
/// `geometry` is `streamline` or `polyline`.
pub fn write_polylines(
    path: &Path,
    positions: &[f64],
    offsets: &[usize],
    dims: usize,
    vertex_attributes: &[Attribute],
    object_attributes: &[Attribute],
    o: &PointsOptions,
    geometry: &str,
) -> Result<LinesSummary> {
    let n = check_positions(positions, dims)?;
    if !matches!(geometry, "streamline" | "polyline" | "line") {
        return Err(Error::invalid(format!(
            "geometry {geometry}: streamline, polyline or line"
        )));
    }
    if offsets.len() < 2
        || offsets[0] != 0
        || offsets[offsets.len() - 1] != n
        || offsets.windows(2).any(|w| w[0] > w[1])
    {
        return Err(Error::invalid(format!(
            "polyline offsets must rise from 0 to the {n} vertices"
        )));
    }
    let lines = offsets.len() - 1;
    check_attributes(vertex_attributes, n, "vertices")?;
    check_attributes(object_attributes, lines, "polylines")?;
    let lay = Layout::new(path, positions, dims, o)?;
    // Runs of each polyline, in order.
    let runs: Vec<Vec<Run>> = (0..lines)
        .into_par_iter()
        .map(|l| {
            let mut out: Vec<Run> = vec![];
            for v in offsets[l]..offsets[l + 1] {
                let c = lay.chunk_of(v);
                match out.last_mut() {
                    Some(r) if r.chunk == c => r.end = v + 1,
                    _ => out.push(Run {
                        chunk: c,
                        start: v,
                        end: v + 1,
                    }),
                }
            }
            out
        })
        .collect();
    // Fragments per chunk in polyline order: (line, run) sorted stably by chunk.
    let flat: Vec<(usize, usize)> = runs
        .iter()
        .enumerate()
        .flat_map(|(l, rs)| (0..rs.len()).map(move |k| (l, k)))
        .collect();
    let mut order: Vec<usize> = (0..flat.len()).collect();
    order.par_sort_by_key(|&i| runs[flat[i].0][flat[i].1].chunk);
    // Per run: (fragment index, first row in its chunk).
    let mut place = vec![(0u64, 0i64); flat.len()];
    let mut groups = vec![];
    let mut s = 0;
    while s < order.len() {
        let chunk = runs[flat[order[s]].0][flat[order[s]].1].chunk;
        let (mut e, mut row) = (s, 0i64);
        while e < order.len() && runs[flat[order[e]].0][flat[order[e]].1].chunk == chunk {
            let r = runs[flat[order[e]].0][flat[order[e]].1];
            place[order[e]] = ((e - s) as u64, row);
            row += (r.end - r.start) as i64;
            e += 1;
        }
        groups.push((s, e));
        s = e;
    }
    let mut first_run = vec![0usize; lines + 1];
    for (l, rs) in runs.iter().enumerate() {
        first_run[l + 1] = first_run[l] + rs.len();
    }
    let manifests: Vec<Vec<u8>> = (0..lines)
        .into_par_iter()
        .map(|l| {
            encode_manifest(
                (0..runs[l].len()).map(|k| (&runs[l][k].chunk[..dims], place[first_run[l] + k].0)),
            )
        })
        .collect();
    // Stitches: (last of run k, first of run k + 1), filed under the smaller endpoint.
    let mut buckets = LinkBuckets::new();
    let mut stitches = 0;
    for (l, rs) in runs.iter().enumerate() {
        for k in 1..rs.len() {
            let (a, b) = (&rs[k - 1], &rs[k]);
            let pa = place[first_run[l] + k - 1];
            let pb = place[first_run[l] + k];
            let end_a = (a.chunk, pa.1 + (a.end - a.start) as i64 - 1);
            let start_b = (b.chunk, pb.1);
            let (src, dst, perm) = if end_a <= start_b {
                (end_a, start_b, 0)
            } else {
                (start_b, end_a, 1)
            };
            let offset: Vec<i64> = (0..dims).map(|x| dst.0[x] - src.0[x]).collect();
            buckets
                .entry(offset)
                .or_default()
                .entry(src.0[..dims].to_vec())
                .or_default()
                .extend([perm, src.1, dst.1]);
            stitches += 1;
        }
    }
    let grid = lay.grid();
    let tmp = temp_beside(path)?;
    let result = (|| -> Result<()> {
        let level = tmp.join("0");
        let (vertices, fragments) = (level.join("vertices"), level.join("vertex_fragments"));
        groups.par_iter().try_for_each(|&(s, e)| -> Result<()> {
            let members: Vec<Run> = order[s..e]
                .iter()
                .map(|&i| runs[flat[i].0][flat[i].1])
                .collect();
            let c = &members[0].chunk[..dims];
            let mut v = vec![];
            members
                .iter()
                .for_each(|r| lay.put_rows(r.start..r.end, &mut v));
            grid.put(&vertices, c, &v)?;
            let counts: Vec<usize> = members.iter().map(|r| r.end - r.start).collect();
            grid.put(&fragments, c, &fragment_index(&counts))?;
            for a in vertex_attributes {
                let row = a.width * itemsize(a.dtype).expect("checked");
                let mut item = vec![];
                members
                    .iter()
                    .for_each(|r| item.extend(&a.bytes[r.start * row..r.end * row]));
                grid.put(&level.join("vertex_attributes").join(a.name), c, &item)?;
            }
            Ok(())
        })?;
        let nonempty: Vec<String> = groups
            .iter()
            .map(|&(s, _)| chunk_key(&runs[flat[order[s]].0][flat[order[s]].1].chunk[..dims]))
            .collect();
        grid.write_vertex_arrays(&level, &nonempty, &o.dtype)?;
        write_attribute_arrays(&grid, &level, vertex_attributes, &nonempty)?;
        let ids: Vec<i64> = (0..lines as i64).collect();
        write_object_index(&level, dims, &manifests, &ids, o.compressor.as_ref())?;
        write_object_attributes(&level, object_attributes, lines, o.compressor.as_ref())?;
        if stitches > 0 {
            let family = Family {
                name: "0".into(),
                has_perm: true,
                directed: false,
                dims,
            };
            write_link_family(&grid, &level, &family, &buckets)?;
        }
        write_level_zero(&level, n, &["vertices", "object_index"])?;
        write_json(&tmp, &lay.root(path, geometry, o.bin_shape.as_ref()))
    })();
    publish(&tmp, path, result)?;
    Ok(LinesSummary {
        polylines: lines,
        vertices: n,
        chunks: groups.len(),
        stitches,
    })
}

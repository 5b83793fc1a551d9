//! One coarser level from the level before it, in memory (polylines, graphs, small point clouds).

use serde_json::{json, Value};
use voxfield_core::{Error, Result};

use super::aggregate::{aggregate, copy_object_attributes};
use super::level::{level_json, write_arrays_meta, write_cells};
use super::options::{LevelSummary, Method, PyramidOptions};
use super::root::add_level_to_root;
use super::source::{bin_key, kept_rows, metanodes, Metanodes, Source};
use crate::manifests::{encode_manifest, write_object_index, EMPTY_MANIFEST};
use crate::store::Store;
use crate::write::{chunk_key, group, write_json, CellGrid};

/// Builds level `target` from `src` (level `source`); returns its summary.
#[allow(clippy::too_many_arguments)]
pub(super) fn coarsen(
    store: &Store,
    src: &Source,
    source: u64,
    target: u64,
    bin: &[f64],
    base_bin: &[f64],
    sparsity: f64,
    o: &PyramidOptions,
) -> Result<LevelSummary> {
    let d = store.dims;
    let src_dir = store.path.join(source.to_string());
    let has_objects = src_dir.join("object_index").join("zarr.json").is_file();
    // Each object row's vertices (global rows), in order.
    let (ids, objects): (Vec<i64>, Vec<Vec<usize>>) = if has_objects {
        let (ids, rows) = store.manifest_rows(source)?;
        let objects = rows
            .iter()
            .map(|blocks| -> Result<Vec<usize>> {
                let mut v = vec![];
                for (c, frags) in blocks {
                    let k = src.chunk_index(c).ok_or_else(|| {
                        Error::format(
                            src_dir.join("object_index"),
                            format!("a manifest names chunk {c:?}, which holds no vertices"),
                        )
                    })?;
                    for &f in frags {
                        let rows = src.fragment(k, f as usize).ok_or_else(|| {
                            Error::format(
                                src_dir.join("vertex_fragments"),
                                format!("chunk {c:?} has no fragment {f}"),
                            )
                        })?;
                        v.extend(rows);
                    }
                }
                Ok(v)
            })
            .collect::<Result<_>>()?;
        (ids, objects)
    } else {
        let all: Vec<usize> = src.fragment_rows().collect();
        (vec![0], vec![all])
    };
    let alive: Vec<usize> = (0..objects.len())
        .filter(|&r| !objects[r].is_empty())
        .collect();
    let pos = &src.pos;
    let keep: Vec<usize> = if has_objects {
        let mid = |r: usize| {
            let v = &objects[r];
            let g = v[v.len() / 2];
            bin_key(&pos[g * d..(g + 1) * d], bin)
        };
        let keep = kept_rows(o, target, sparsity, alive, &mid);
        if let Some(&r) = keep.iter().find(|&&r| r >= objects.len()) {
            return Err(Error::invalid(format!(
                "kept object row {r} is past the {} objects",
                objects.len()
            )));
        }
        keep
    } else {
        vec![0]
    };
    // Members in order: the kept objects' vertices, concatenated.
    let members = || -> Box<dyn Iterator<Item = usize> + '_> {
        Box::new(keep.iter().flat_map(|&r| objects[r].iter().copied()))
    };
    let cs = &store.chunk_shape;
    let Metanodes {
        id_of_row,
        meta,
        by_chunk,
    } = metanodes(src, &members, bin, cs, d);
    let m = meta.len() / d;
    // Metanode id → (chunk, fragment) in the new level.
    let mut place: Vec<(usize, u64)> = vec![(0, 0); m];
    let chunk_list: Vec<&Vec<i64>> = by_chunk.keys().collect();
    for (k, ids) in by_chunk.values().enumerate() {
        for (f, &i) in ids.iter().enumerate() {
            place[i] = (k, f as u64);
        }
    }
    // Objects keep their ids and paths (per_object) or dissolve into the
    // metanodes (cross_object_metanode).
    let keep_ids = has_objects && o.method == Method::PerObject;
    // Manifests: each kept object's metanodes, consecutive repeats collapsed.
    let mut manifests = vec![EMPTY_MANIFEST.to_vec(); objects.len()];
    if keep_ids {
        for &r in &keep {
            let mut blocks: Vec<usize> = Vec::with_capacity(objects[r].len());
            for &g in &objects[r] {
                let id = id_of_row[g] as usize;
                if blocks.last() != Some(&id) {
                    blocks.push(id);
                }
            }
            manifests[r] = encode_manifest(
                blocks
                    .iter()
                    .map(|&id| (&chunk_list[place[id].0][..], place[id].1)),
            );
        }
    }
    let aggregated = match o.aggregation {
        Some(agg) => aggregate(store, source, src, &members, &id_of_row, m, agg)?,
        None => vec![],
    };
    let [lo, hi] = &store.bounds;
    let grid = CellGrid::new(lo, hi, cs).sharded(store.shard_shape());
    let tmp = store
        .path
        .join(format!(".{target}.partial-{}", std::process::id()));
    let built = (|| -> Result<()> {
        write_cells(&grid, &tmp, &meta, &by_chunk, d, &aggregated)?;
        let nonempty: Vec<String> = by_chunk.keys().map(|c| chunk_key(c)).collect();
        let metas: Vec<(String, Value)> = aggregated
            .iter()
            .map(|a| (a.name.clone(), a.attrs.clone()))
            .collect();
        write_arrays_meta(&grid, &tmp, &nonempty, &metas)?;
        let mut present = vec!["vertices"];
        if keep_ids {
            write_object_index(
                &tmp,
                d,
                &manifests,
                &ids,
                Some(&crate::manifests::LEVEL_ZSTD),
            )?;
            copy_object_attributes(&src_dir, &tmp, &keep)?;
            present.push("object_index");
        }
        if !aggregated.is_empty() {
            present.push("vertex_attributes");
        }
        let objects_in = if keep_ids { objects.len() } else { 0 };
        let level = level_json(target, sparsity, m, &present, keep_ids, objects_in, o);
        write_json(&tmp, &group(json!({"zarr_vectors_level": level})))
    })();
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let dir = store.path.join(target.to_string());
    std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
    add_level_to_root(store, target, bin, base_bin, keep_ids)?;
    Ok(LevelSummary {
        level: target,
        vertices: m,
        objects: if keep_ids { keep.len() } else { 0 },
    })
}

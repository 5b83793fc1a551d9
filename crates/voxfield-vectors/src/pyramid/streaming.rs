//! Levels built chunk unit by chunk unit, with bounded memory, when bins
//! nest with chunks: point clouds, and objects (polylines, graphs) through
//! an [`ObjectPlan`] of their manifests.

use std::collections::HashMap;

use serde_json::{json, Value};
use voxfield_core::work::Watch;
use voxfield_core::{Error, Result};

use super::aggregate::{aggregate, copy_object_attributes};
use super::batches::{run_batches, shard_batches};
use super::level::{level_json, unit_ratio, units, write_arrays_meta, write_cells};
use super::linking::{link_streaming, link_unit, Keys};
use super::options::{deepest, linked, CrossLevel, LevelSummary, Method, PyramidOptions};
use super::paths::{pieces_spill, write_paths, Pieces};
use super::plan::{ObjectPlan, Ref};
use super::root::{add_level_to_root, stamp_root};
use super::source::{bin_key, metanodes, Source};
use crate::links::Family;
use crate::spill::spill_budget;
use crate::store::Store;
use crate::write::{chunk_key, group, write_json, CellGrid};

/// A pyramid built unit by unit (bins nest with chunks), from level `done` on.
pub(super) fn build_streaming(
    store: &Store,
    o: &PyramidOptions,
    base_bin: &[f64],
    bins: &[Vec<f64>],
    done: usize,
    watch: &Watch,
) -> Result<Vec<LevelSummary>> {
    let mut out = vec![];
    for (i, bin) in bins.iter().enumerate() {
        let (source, target) = (i as u64, i as u64 + 1);
        let made = if i < done {
            store.level(target)?.vertex_count.unwrap_or(1) as usize
        } else {
            let summary = coarsen_streaming(
                store,
                source,
                target,
                bin,
                base_bin,
                o.factors[i].1,
                o,
                watch,
            )?;
            let made = summary.vertices;
            out.push(summary);
            made
        };
        if o.cross_level != CrossLevel::None && made > 0 {
            // Families a resumed build may still lack (each is whole or
            // absent); the adjacent one came out of the coarsening pass.
            for delta in 1..=deepest(o, target) {
                let fine = target - delta;
                if !linked(store, fine, delta, o.cross_level) {
                    let between = &bins[fine as usize..target as usize];
                    link_streaming(store, fine, target, between, o.cross_level, watch)?;
                }
            }
        }
        stamp_root(store, o, false)?;
    }
    stamp_root(store, o, true)?;
    Ok(out)
}

/// What one unit made.
struct Unit {
    /// Metanodes written.
    metanodes: usize,
    attributes: Vec<(String, Value)>,
    /// Link cells written, by offset: `+1` (staged in the source level) and `-1`.
    up: Keys,
    down: Keys,
    /// Link records (source vertices with a metanode).
    records: usize,
    /// The unit's new chunks and the kept objects' paths through them.
    paths: Pieces,
}

/// Builds level `target` unit by unit: each unit's source chunks are loaded,
/// coarsened and written on their own, so memory is a unit (per thread) plus,
/// for objects, the plan of their manifests — not a level.
#[allow(clippy::too_many_arguments)]
pub(super) fn coarsen_streaming(
    store: &Store,
    source: u64,
    target: u64,
    bin: &[f64],
    base_bin: &[f64],
    sparsity: f64,
    o: &PyramidOptions,
    watch: &Watch,
) -> Result<LevelSummary> {
    let d = store.dims;
    let cs = &store.chunk_shape;
    let ratio = unit_ratio(bin, cs);
    let groups = units(store, source, &ratio)?;
    let source_dir = store.path.join(source.to_string());
    let [lo, hi] = &store.bounds;
    let grid = CellGrid::new(lo, hi, cs).sharded(store.shard_shape());
    let batches = shard_batches(&grid, &groups, &ratio);
    // Spilled references and paths of objects, beside the level being built.
    let work = store
        .path
        .join(format!(".{target}.work.partial-{}", std::process::id()));
    let budget = spill_budget();
    let plan = match source_dir.join("object_index").join("zarr.json").is_file() {
        true => Some(ObjectPlan::new(
            store,
            source,
            target,
            &groups,
            &batches,
            (bin, sparsity),
            o,
            (&work, budget),
        )),
        false => None,
    }
    .transpose()
    .inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&work);
    })?;
    // Objects keep their ids and paths (per_object) or dissolve into the
    // metanodes (cross_object_metanode).
    let keep_ids = plan.is_some() && o.method == Method::PerObject;
    let finished = std::sync::atomic::AtomicU64::new(0);
    let phase = format!("level {target}");
    let tmp = store
        .path
        .join(format!(".{target}.partial-{}", std::process::id()));
    // The adjacent links come out of the same pass: `+1` staged in the source
    // level (committed once this level is published), `-1` inside the new level.
    let family = |name: &str| Family {
        name: name.into(),
        has_perm: false,
        directed: true,
        dims: d,
    };
    let (up, down) = (family("+1"), family("-1"));
    let stage_up = match o.cross_level {
        CrossLevel::None => None,
        _ => Some(crate::links::stage(&source_dir)?),
    };
    let built = (|| -> Result<(usize, Keys, usize)> {
        let one_unit = |ui: usize, chunks: &Vec<Vec<i64>>| -> Result<Unit> {
            watch.check()?;
            let refs: Option<Vec<Ref>> = match &plan {
                Some(p) => Some(p.take_unit(ui as u32)?),
                None => None,
            };
            let refs = refs.as_ref();
            let src = Source::load_chunks(store, source, Some(chunks), plan.is_some())?;
            // Members in order: the kept objects' fragments' vertices (a
            // point cloud's vertices in row order).
            let place = |r: &Ref| -> (usize, usize) {
                let c = plan.as_ref().expect("objects").chunk(r.chunk);
                let k = src.chunk_index(c).expect("a unit holds its chunks");
                (k, r.frag as usize)
            };
            if let (Some(p), Some(refs)) = (&plan, refs) {
                if let Some(r) = refs.iter().find(|r| {
                    let (k, f) = place(r);
                    src.fragment(k, f).is_none()
                }) {
                    return Err(Error::format(
                        source_dir.join("vertex_fragments"),
                        format!("chunk {:?} has no fragment {}", p.chunk(r.chunk), r.frag),
                    ));
                }
            }
            let members = || -> Box<dyn Iterator<Item = usize> + '_> {
                match refs {
                    None => Box::new(src.fragment_rows()),
                    Some(refs) => Box::new(refs.iter().flat_map(|r| {
                        let (k, f) = place(r);
                        src.fragment(k, f).expect("checked")
                    })),
                }
            };
            let mn = metanodes(&src, &members, bin, cs, d);
            let m = mn.meta.len() / d;
            let aggregated = match o.aggregation {
                Some(agg) => aggregate(store, source, &src, &members, &mn.id_of_row, m, agg)?,
                None => vec![],
            };
            write_cells(&grid, &tmp, &mn.meta, &mn.by_chunk, d, &aggregated)?;
            // Each metanode's chunk (in the unit's list) and row.
            let mut at = vec![(0u32, 0u32); m];
            for (k, ids) in mn.by_chunk.values().enumerate() {
                for (r, &i) in ids.iter().enumerate() {
                    at[i] = (k as u32, r as u32);
                }
            }
            let mut paths = Pieces::new(mn.by_chunk.keys().cloned().collect());
            if keep_ids {
                for r in refs.into_iter().flatten() {
                    let (k, f) = place(r);
                    let rows = src.fragment(k, f).expect("checked");
                    let ids = rows.map(|g| mn.id_of_row[g] as usize);
                    paths.add(r.row, r.seq, ids, &at);
                }
            }
            let (mut ku, mut kd, mut records) = (Keys::new(), Keys::new(), 0);
            if let Some(stage) = &stage_up {
                // Each source vertex's metanode: a point's is its own; an
                // object vertex's is the one in its bin, if any (a dropped
                // object's vertex may share a bin with a kept one).
                let of: HashMap<[u8; 24], usize> = match &plan {
                    None => HashMap::new(),
                    Some(_) => (0..m)
                        .map(|i| (bin_key(&mn.meta[i * d..(i + 1) * d], bin), i))
                        .collect(),
                };
                let parent = |g: usize| {
                    let id = match &plan {
                        None => Some(mn.id_of_row[g] as usize),
                        Some(_) => of.get(&bin_key(&src.pos[g * d..(g + 1) * d], bin)).copied(),
                    };
                    id.map(|id| (at[id].0 as usize, at[id].1 as usize))
                };
                let explicit = o.cross_level == CrossLevel::Explicit;
                (ku, kd, records) = link_unit(
                    &grid,
                    &src,
                    &paths.chunks,
                    parent,
                    (&up, stage),
                    explicit.then_some((&down, tmp.as_path())),
                )?;
            }
            let n = finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            (watch.progress)(&phase, n, groups.len() as u64);
            Ok(Unit {
                metanodes: m,
                attributes: aggregated.into_iter().map(|a| (a.name, a.attrs)).collect(),
                up: ku,
                down: kd,
                records,
                paths,
            })
        };
        // Group by group of batches (one for a point cloud): a group's
        // references in memory, its units in parallel, their paths spilled.
        let phases = match &plan {
            Some(p) => p.batch_groups(&batches),
            None => vec![batches.clone()],
        };
        let mut pieces = pieces_spill(&work, budget / 4);
        let (mut m, mut records, mut metas) = (0, 0, vec![]);
        let (mut ku, mut kd) = (Keys::new(), Keys::new());
        let mut nonempty: Vec<String> = vec![];
        for part in &phases {
            let done = run_batches(&grid, part, &groups, one_unit)?;
            for u in done {
                m += u.metanodes;
                records += u.records;
                if metas.is_empty() {
                    metas = u.attributes;
                }
                for (off, k) in u.up {
                    ku.entry(off).or_default().extend(k);
                }
                for (off, k) in u.down {
                    kd.entry(off).or_default().extend(k);
                }
                nonempty.extend(u.paths.chunks.iter().map(|c| chunk_key(c)));
                u.paths.spill_into(&mut pieces)?;
            }
        }
        write_arrays_meta(&grid, &tmp, &nonempty, &metas)?;
        let mut present = vec!["vertices"];
        let mut objects_in = 0;
        if let (true, Some(p)) = (keep_ids, &plan) {
            write_paths(&tmp, d, &p.ids, pieces)?;
            copy_object_attributes(&source_dir, &tmp, &p.keep)?;
            present.push("object_index");
            objects_in = p.ids.len();
        } else {
            pieces.remove()?;
        }
        if !metas.is_empty() {
            present.push("vertex_attributes");
        }
        let level = level_json(target, sparsity, m, &present, keep_ids, objects_in, o);
        write_json(&tmp, &group(json!({"zarr_vectors_level": level})))?;
        if o.cross_level == CrossLevel::Explicit && m > 0 {
            down.finish(&grid, &tmp, &kd, records)?;
        }
        Ok((m, ku, records))
    })();
    let kept = plan.as_ref().filter(|_| keep_ids).map(|p| p.keep.len());
    let _ = plan.map(ObjectPlan::remove);
    let _ = std::fs::remove_dir_all(&work);
    let (m, ku, records) = match built {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            if let Some(stage) = &stage_up {
                let _ = std::fs::remove_dir_all(stage);
            }
            return Err(e);
        }
    };
    let dir = store.path.join(target.to_string());
    std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
    if let Some(stage) = &stage_up {
        if m > 0 {
            up.finish(&grid, stage, &ku, records)?;
            crate::links::commit(&source_dir, stage, &up.name)?;
        } else {
            let _ = std::fs::remove_dir_all(stage);
        }
    }
    add_level_to_root(store, target, bin, base_bin, keep_ids)?;
    Ok(LevelSummary {
        level: target,
        vertices: m,
        objects: kept.unwrap_or(0),
    })
}

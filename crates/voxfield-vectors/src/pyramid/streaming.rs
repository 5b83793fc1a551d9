//! Point-cloud levels built chunk unit by chunk unit, with bounded memory, and their links.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde_json::{json, Value};
use voxfield_core::{Error, Result};

use super::aggregate::aggregate;
use super::level::{level_json, unit_ratio, units, write_arrays_meta, write_cells};
use super::options::{deepest, linked, CrossLevel, LevelSummary, PyramidOptions};
use super::root::{add_level_to_root, file_cross_record, stamp_root};
use super::source::{bin_key, metanodes, Source};
use crate::links::{Family, LinkBuckets};
use crate::store::Store;
use crate::write::{chunk_key, group, write_json, CellGrid};
use voxfield_core::work::Watch;

/// A point-cloud pyramid built unit by unit (bins nest with chunks), from
/// level `done` on.
pub(super) fn build_points_streaming(
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
            let summary = coarsen_points_streaming(
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
            // Families a resumed build may still lack (each is whole or absent).
            for delta in 1..=deepest(o, target) {
                if !linked(store, target - delta, delta, o.cross_level) {
                    link_points_streaming(
                        store,
                        target - delta,
                        target,
                        bin,
                        o.cross_level,
                        watch,
                    )?;
                }
            }
        }
        stamp_root(store, o, false)?;
    }
    stamp_root(store, o, true)?;
    Ok(out)
}

/// Builds level `target` of a point cloud unit by unit: each unit's source
/// chunks are loaded, coarsened and written on their own, so memory is a
/// unit (per thread), not a level.
pub(super) fn coarsen_points_streaming(
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
    let groups = units(store, source, &unit_ratio(bin, cs))?;
    let finished = std::sync::atomic::AtomicU64::new(0);
    let phase = format!("level {target}");
    let [lo, hi] = &store.bounds;
    let grid = CellGrid::new(lo, hi, cs).sharded(store.shard_shape());
    let tmp = store
        .path
        .join(format!(".{target}.partial-{}", std::process::id()));
    // The adjacent links come out of the same pass: `+1` staged in the source
    // level (committed once this level is published), `-1` inside the new level.
    let links = o.cross_level != CrossLevel::None;
    let family = |name: &str| Family {
        name: name.into(),
        has_perm: false,
        directed: true,
        dims: d,
    };
    let (up, down) = (family("+1"), family("-1"));
    let source_dir = store.path.join(source.to_string());
    let stage_up = if links {
        Some(crate::links::stage(&source_dir)?)
    } else {
        None
    };
    type Keys = BTreeMap<Vec<i64>, Vec<String>>;
    let ratio = unit_ratio(bin, cs);
    let batches = shard_batches(&grid, &groups, &ratio);
    let built = (|| -> Result<(usize, Keys, usize)> {
        type Part = (Vec<String>, usize, Vec<(String, Value)>, Keys, Keys, usize);
        let one_unit = |chunks: &Vec<Vec<i64>>| -> Result<Part> {
            watch.check()?;
            let src = Source::load_chunks(store, source, Some(chunks), false)?;
            let members: Vec<usize> = src.fragments.iter().flatten().flatten().copied().collect();
            let mn = metanodes(&src, &members, bin, cs, d);
            let m = mn.meta.len() / d;
            let aggregated = match o.aggregation {
                Some(agg) => aggregate(store, source, &src, &members, &mn.inverse, m, agg)?,
                None => vec![],
            };
            write_cells(&grid, &tmp, &mn.meta, &mn.by_chunk, d, &aggregated)?;
            let (mut ku, mut kd) = (Keys::new(), Keys::new());
            if let Some(stage) = &stage_up {
                // Each metanode's chunk and row; each member row's parent.
                let mut at = vec![(0usize, 0i64); m];
                let coarse: Vec<&Vec<i64>> = mn.by_chunk.keys().collect();
                for (k, ids) in mn.by_chunk.values().enumerate() {
                    for (r, &i) in ids.iter().enumerate() {
                        at[i] = (k, r as i64);
                    }
                }
                let (mut ups, mut downs) = (LinkBuckets::new(), LinkBuckets::new());
                for (&g, &id) in members.iter().zip(&mn.inverse) {
                    let (fk, fi) = src.locate(g);
                    let (ck, ci) = at[id];
                    let mirror = (o.cross_level == CrossLevel::Explicit).then_some(&mut downs);
                    file_cross_record(
                        &mut ups,
                        mirror,
                        (&src.chunks[fk], fi as i64),
                        (coarse[ck], ci),
                    );
                }
                for (buckets, fam, dir, keys) in
                    [(&ups, &up, stage, &mut ku), (&downs, &down, &tmp, &mut kd)]
                {
                    for (off, cells) in buckets {
                        for (c, rows) in cells {
                            fam.put(&grid, dir, off, c, rows)?;
                            keys.entry(off.clone()).or_default().push(chunk_key(c));
                        }
                    }
                }
            }
            let n = finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            (watch.progress)(&phase, n, groups.len() as u64);
            Ok((
                mn.by_chunk.keys().map(|c| chunk_key(c)).collect(),
                m,
                aggregated.into_iter().map(|a| (a.name, a.attrs)).collect(),
                ku,
                kd,
                members.len(),
            ))
        };
        let parts: Vec<Part> = run_batches(&grid, &batches, &groups, one_unit)?;
        let nonempty: Vec<String> = parts.iter().flat_map(|p| p.0.iter().cloned()).collect();
        let m: usize = parts.iter().map(|p| p.1).sum();
        // Every source vertex has a parent: one record each.
        let fine_rows: usize = parts.iter().map(|p| p.5).sum();
        let (mut ku, mut kd) = (Keys::new(), Keys::new());
        let mut metas = vec![];
        for (_, _, meta, u, dn, _) in parts {
            if metas.is_empty() {
                metas = meta;
            }
            for (off, k) in u {
                ku.entry(off).or_default().extend(k);
            }
            for (off, k) in dn {
                kd.entry(off).or_default().extend(k);
            }
        }
        write_arrays_meta(&grid, &tmp, &nonempty, &metas)?;
        let mut present = vec!["vertices"];
        if !metas.is_empty() {
            present.push("vertex_attributes");
        }
        let level = level_json(target, sparsity, m, &present, false, 0, o);
        write_json(&tmp, &group(json!({"zarr_vectors_level": level})))?;
        if links && o.cross_level == CrossLevel::Explicit && m > 0 {
            down.finish(&grid, &tmp, &kd, fine_rows)?;
        }
        Ok((m, ku, fine_rows))
    })();
    let (m, ku, fine_rows) = match built {
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
            up.finish(&grid, stage, &ku, fine_rows)?;
            crate::links::commit(&source_dir, stage, &up.name)?;
        } else {
            let _ = std::fs::remove_dir_all(stage);
        }
    }
    add_level_to_root(store, target, bin, base_bin, false)?;
    Ok(LevelSummary {
        level: target,
        vertices: m,
        objects: 0,
    })
}

/// Units batched so that, on a sharded store, no two batches write into the
/// same shard: each batch lists its units and the shards it alone fills.
pub(super) type Batch = (Vec<Vec<i64>>, Vec<Vec<u64>>);

pub(super) fn shard_batches(
    grid: &CellGrid,
    units: &BTreeMap<Vec<i64>, Vec<Vec<i64>>>,
    ratio: &[i64],
) -> Vec<Batch> {
    let one_each = || units.keys().map(|u| (vec![u.clone()], vec![])).collect();
    let Some(s) = &grid.shard else {
        return one_each();
    };
    // Early flushes only where unit regions tile shards exactly (a unit never
    // straddles a shard boundary); otherwise shards wait for the level's end.
    let aligned = (0..ratio.len()).all(|a| {
        let (r, sa) = (ratio[a], s[a] as i64);
        (sa % r == 0 || r % sa == 0)
            && grid.origin[a].rem_euclid(r.min(sa)) == 0
            && (r <= sa || grid.origin[a].rem_euclid(r) == 0)
    });
    if !aligned {
        return one_each();
    }
    // A unit covers chunks u·ratio .. u·ratio + ratio; batch by the block of
    // shards that region belongs to (units and shards nest: both powers of 2).
    let mut batches: BTreeMap<Vec<i64>, Batch> = BTreeMap::new();
    for u in units.keys() {
        let first: Vec<i64> = u.iter().zip(ratio).map(|(x, r)| x * r).collect();
        let span: Vec<i64> = (0..u.len()).map(|a| ratio[a].max(s[a] as i64)).collect();
        let block: Vec<i64> = (0..u.len())
            .map(|a| (first[a] - grid.origin[a]).div_euclid(span[a]))
            .collect();
        let b = batches.entry(block.clone()).or_default();
        b.0.push(u.clone());
        if b.1.is_empty() {
            let start: Vec<i64> = (0..u.len())
                .map(|a| block[a] * span[a] + grid.origin[a])
                .collect();
            b.1 = grid.shards_of_block(&start, &span);
        }
    }
    batches.into_values().collect()
}

/// Runs `one` on every unit, batch by batch in parallel, writing each
/// batch's shards as soon as it is done; results in unit order.
pub(super) fn run_batches<T: Send>(
    grid: &CellGrid,
    batches: &[Batch],
    units: &BTreeMap<Vec<i64>, Vec<Vec<i64>>>,
    one: impl Fn(&Vec<Vec<i64>>) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let done: Vec<Vec<(Vec<i64>, T)>> = batches
        .par_iter()
        .map(|(members, shards)| -> Result<Vec<(Vec<i64>, T)>> {
            let out = members
                .iter()
                .map(|u| Ok((u.clone(), one(&units[u])?)))
                .collect::<Result<Vec<_>>>()?;
            shards
                .iter()
                .try_for_each(|k| grid.flush_shard_everywhere(k))?;
            Ok(out)
        })
        .collect::<Result<_>>()?;
    let mut all: Vec<(Vec<i64>, T)> = done.into_iter().flatten().collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

/// Links each vertex of point level `fine` to its metanode in `coarse`
/// (binned at `bin`, the coarse level's bin), unit by unit.
pub(super) fn link_points_streaming(
    store: &Store,
    fine: u64,
    coarse: u64,
    bin: &[f64],
    storage: CrossLevel,
    watch: &Watch,
) -> Result<()> {
    let d = store.dims;
    let cs = &store.chunk_shape;
    let ratio = unit_ratio(bin, cs);
    let fine_units = units(store, fine, &ratio)?;
    let coarse_units = units(store, coarse, &ratio)?;
    let [lo, hi] = &store.bounds;
    let grid = CellGrid::new(lo, hi, cs).sharded(store.shard_shape());
    let delta = coarse - fine;
    let family = |name: String| Family {
        name,
        has_perm: false,
        directed: true,
        dims: d,
    };
    let (up, down) = (family(format!("+{delta}")), family(format!("-{delta}")));
    let (fine_dir, coarse_dir) = (
        store.path.join(fine.to_string()),
        store.path.join(coarse.to_string()),
    );
    let stage_up = crate::links::stage(&fine_dir)?;
    let stage_down = crate::links::stage(&coarse_dir)?;
    let explicit = storage == CrossLevel::Explicit;
    type Keys = BTreeMap<Vec<i64>, Vec<String>>;
    let batches = shard_batches(&grid, &fine_units, &ratio);
    let built = (|| -> Result<()> {
        let unit_of: BTreeMap<&Vec<Vec<i64>>, &Vec<i64>> =
            fine_units.iter().map(|(u, c)| (c, u)).collect();
        let one_unit = |chunks: &Vec<Vec<i64>>| -> Result<(Keys, Keys, usize)> {
            let u = unit_of[chunks];
            watch.check()?;
            let f = Source::load_chunks(store, fine, Some(chunks), false)?;
            let none = vec![];
            let c = Source::load_chunks(
                store,
                coarse,
                Some(coarse_units.get(u).unwrap_or(&none)),
                false,
            )?;
            let mut at: std::collections::HashMap<[u8; 24], (usize, usize)> =
                std::collections::HashMap::new();
            for g in 0..c.pos.len() / d {
                at.insert(bin_key(&c.pos[g * d..(g + 1) * d], bin), c.locate(g));
            }
            let (mut ups, mut downs) = (LinkBuckets::new(), LinkBuckets::new());
            let mut records = 0;
            for g in 0..f.pos.len() / d {
                let Some(&(ck, ci)) = at.get(&bin_key(&f.pos[g * d..(g + 1) * d], bin)) else {
                    continue;
                };
                let (fk, fi) = f.locate(g);
                file_cross_record(
                    &mut ups,
                    explicit.then_some(&mut downs),
                    (&f.chunks[fk], fi as i64),
                    (&c.chunks[ck], ci as i64),
                );
                records += 1;
            }
            let mut keys = (Keys::new(), Keys::new());
            for (buckets, fam, stage, k) in [
                (&ups, &up, &stage_up, &mut keys.0),
                (&downs, &down, &stage_down, &mut keys.1),
            ] {
                for (off, cells) in buckets {
                    for (src, rows) in cells {
                        fam.put(&grid, stage, off, src, rows)?;
                        k.entry(off.clone()).or_default().push(chunk_key(src));
                    }
                }
            }
            Ok((keys.0, keys.1, records))
        };
        let parts: Vec<(Keys, Keys, usize)> = run_batches(&grid, &batches, &fine_units, one_unit)?;
        let (mut ku, mut kd, mut records) = (Keys::new(), Keys::new(), 0);
        for (u, dn, r) in parts {
            for (o, k) in u {
                ku.entry(o).or_default().extend(k);
            }
            for (o, k) in dn {
                kd.entry(o).or_default().extend(k);
            }
            records += r;
        }
        if records == 0 {
            return Ok(());
        }
        up.finish(&grid, &stage_up, &ku, records)?;
        crate::links::commit(&fine_dir, &stage_up, &up.name)?;
        if explicit {
            down.finish(&grid, &stage_down, &kd, records)?;
            crate::links::commit(&coarse_dir, &stage_down, &down.name)?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&stage_up);
    let _ = std::fs::remove_dir_all(&stage_down);
    built
}

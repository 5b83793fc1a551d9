//! Cross-level links of a streamed pyramid, unit by unit: each vertex of a
//! fine level to its ancestor some levels up.

use std::collections::{BTreeMap, HashMap};

use voxfield_core::work::Watch;
use voxfield_core::Result;

use super::batches::{run_batches, shard_batches};
use super::level::{unit_ratio, units};
use super::options::CrossLevel;
use super::root::file_cross_record;
use super::source::{bin_key, Source};
use crate::links::{Family, LinkBuckets};
use crate::store::Store;
use crate::write::{chunk_key, CellGrid};

/// Links each vertex of level `fine` to its ancestor at level `coarse`:
/// the metanode of its bin one level up, then that metanode's, and so on
/// (`bins[i]` is level `fine + 1 + i`'s bin) — a vertex whose bin holds no
/// metanode at some level between has none, as zarr-vectors composes the
/// adjacent links. Built unit by unit at the coarse bin, in which every
/// finer bin nests, so memory is a unit of each level, not a level.
pub(super) fn link_streaming(
    store: &Store,
    fine: u64,
    coarse: u64,
    bins: &[Vec<f64>],
    storage: CrossLevel,
    watch: &Watch,
) -> Result<()> {
    let d = store.dims;
    let cs = &store.chunk_shape;
    let bin = bins.last().expect("at least one level up");
    let ratio = unit_ratio(bin, cs);
    let fine_units = units(store, fine, &ratio)?;
    let fine_keys: Vec<&Vec<i64>> = fine_units.keys().collect();
    // The chunks of every level above `fine`, by unit.
    let above: Vec<BTreeMap<Vec<i64>, Vec<Vec<i64>>>> = (fine + 1..=coarse)
        .map(|l| units(store, l, &ratio))
        .collect::<Result<_>>()?;
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
        let one_unit = |ui: usize, chunks: &Vec<Vec<i64>>| -> Result<(Keys, Keys, usize)> {
            watch.check()?;
            let f = Source::load_chunks(store, fine, Some(chunks), false)?;
            let none = vec![];
            // Each level above: its vertices in the unit, found by bin key.
            let mut levels: Vec<(Source, HashMap<[u8; 24], usize>)> = vec![];
            for (i, by_unit) in above.iter().enumerate() {
                let only = by_unit.get(fine_keys[ui]).unwrap_or(&none);
                let s = Source::load_chunks(store, fine + 1 + i as u64, Some(only), false)?;
                let at = (0..s.pos.len() / d)
                    .map(|g| (bin_key(&s.pos[g * d..(g + 1) * d], &bins[i]), g))
                    .collect();
                levels.push((s, at));
            }
            let ancestor = |g: usize| -> Option<usize> {
                let mut p = &f.pos[g * d..(g + 1) * d];
                let mut row = None;
                for (i, (s, at)) in levels.iter().enumerate() {
                    let r = *at.get(&bin_key(p, &bins[i]))?;
                    p = &s.pos[r * d..(r + 1) * d];
                    row = Some(r);
                }
                row
            };
            let top = &levels.last().expect("at least one level up").0;
            let (mut ups, mut downs) = (LinkBuckets::new(), LinkBuckets::new());
            let mut records = 0;
            for g in 0..f.pos.len() / d {
                let Some(r) = ancestor(g) else {
                    continue;
                };
                let (fk, fi) = f.locate(g);
                let (ck, ci) = top.locate(r);
                file_cross_record(
                    &mut ups,
                    explicit.then_some(&mut downs),
                    (&f.chunks[fk], fi as i64),
                    (&top.chunks[ck], ci as i64),
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
        let parts = run_batches(&grid, &batches, &fine_units, one_unit)?;
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

//! Cross-level links of a streamed pyramid, unit by unit: each vertex of a
//! fine level to its ancestor some levels up.

use std::collections::{BTreeMap, HashMap};

use voxfield_core::work::Watch;
use voxfield_core::Result;

use super::batches::{run_batches, shard_batches};
use super::level::{unit_ratio, units};
use super::options::CrossLevel;
use super::source::{bin_key, Source};
use crate::links::Family;
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
            link_unit(
                &grid,
                &f,
                &top.chunks,
                |g| ancestor(g).map(|r| top.locate(r)),
                (&up, &stage_up),
                explicit.then_some((&down, stage_down.as_path())),
            )
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

/// Cells of link records written, by offset: their source chunks' keys.
pub(super) type Keys = BTreeMap<Vec<i64>, Vec<String>>;

/// Writes one unit's links from the rows of `fine` to their coarse rows
/// (`parent(g)`: chunk in `coarse`, row): the `up` family's cells fine chunk
/// by fine chunk into its directory and, when `down` is given, the mirror
/// records (8 bytes each until written) into its. Returns the cells written
/// by offset, up then down, and the record count.
pub(super) fn link_unit(
    grid: &CellGrid,
    fine: &Source,
    coarse: &[Vec<i64>],
    parent: impl Fn(usize) -> Option<(usize, usize)>,
    up: (&Family, &std::path::Path),
    down: Option<(&Family, &std::path::Path)>,
) -> Result<(Keys, Keys, usize)> {
    let (mut ku, mut kd, mut records) = (Keys::new(), Keys::new(), 0);
    let mut downs: BTreeMap<Vec<i64>, BTreeMap<usize, Vec<u32>>> = BTreeMap::new();
    let mut off: Vec<i64> = vec![];
    for (k, fc) in fine.chunks.iter().enumerate() {
        let mut ups: BTreeMap<Vec<i64>, Vec<i64>> = BTreeMap::new();
        for g in fine.starts[k]..fine.starts[k + 1] {
            let Some((ck, ci)) = parent(g) else { continue };
            let fi = g - fine.starts[k];
            let cc = &coarse[ck];
            off.clear();
            off.extend(cc.iter().zip(fc).map(|(c, f)| c - f));
            match ups.get_mut(&off[..]) {
                Some(rows) => rows.extend([fi as i64, ci as i64]),
                None => {
                    ups.insert(off.clone(), vec![fi as i64, ci as i64]);
                }
            }
            if down.is_some() {
                off.iter_mut().for_each(|x| *x = -*x);
                let cells = match downs.get_mut(&off[..]) {
                    Some(cells) => cells,
                    None => downs.entry(off.clone()).or_default(),
                };
                cells.entry(ck).or_default().extend([ci as u32, fi as u32]);
            }
            records += 1;
        }
        for (o, rows) in ups {
            up.0.put(grid, up.1, &o, fc, &rows)?;
            ku.entry(o).or_default().push(chunk_key(fc));
        }
    }
    if let Some((family, dir)) = down {
        for (o, cells) in downs {
            for (ck, rows) in cells {
                let rows: Vec<i64> = rows.into_iter().map(i64::from).collect();
                family.put(grid, dir, &o, &coarse[ck], &rows)?;
                kd.entry(o.clone())
                    .or_default()
                    .push(chunk_key(&coarse[ck]));
            }
        }
    }
    Ok((ku, kd, records))
}

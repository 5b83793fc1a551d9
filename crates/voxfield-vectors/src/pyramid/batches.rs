//! Units of a streamed level batched so that no two batches write into the same shard, and run in parallel.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use voxfield_core::Result;

use crate::write::CellGrid;

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

/// Runs `one(unit number, its chunks)` on every unit, batch by batch in
/// parallel, writing each batch's shards as soon as it is done; results in
/// unit order.
pub(super) fn run_batches<T: Send>(
    grid: &CellGrid,
    batches: &[Batch],
    units: &BTreeMap<Vec<i64>, Vec<Vec<i64>>>,
    one: impl Fn(usize, &Vec<Vec<i64>>) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let number: HashMap<&Vec<i64>, usize> = units.keys().enumerate().map(|(i, u)| (u, i)).collect();
    let done: Vec<Vec<(Vec<i64>, T)>> = batches
        .par_iter()
        .map(|(members, shards)| -> Result<Vec<(Vec<i64>, T)>> {
            let out = members
                .iter()
                .map(|u| Ok((u.clone(), one(number[u], &units[u])?)))
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

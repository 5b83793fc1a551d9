//! What a coarse level of objects needs before its units are built: every
//! manifest's fragment references, sorted out by the unit that holds them
//! (in a [`Spill`], so they need not fit in memory), each object's vertex
//! count, which objects the level keeps, and the groups of units whose
//! paths are gathered together. Memory is a quarter of the spill budget,
//! a byte a fragment and ~20 an object — never a vertex.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;
use voxfield_core::{Error, Result};

use super::batches::Batch;
use super::options::{PyramidOptions, Thinning};
use super::source::{bin_key, kept_rows, Source};
use crate::cells::CellArray;
use crate::objects::{decode_fragments, FragmentRows};
use crate::spill::Spill;
use crate::store::Store;

/// One fragment of one object's manifest: the object row, the fragment's
/// place in that manifest, and the fragment (chunk in the plan's list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Ref {
    pub(super) row: u32,
    pub(super) seq: u32,
    pub(super) chunk: u32,
    pub(super) frag: u32,
}

const REF_BYTES: usize = 16;

pub(super) struct ObjectPlan {
    pub(super) ids: Vec<i64>,
    /// The source level's nonempty chunks, ascending, and each one's unit.
    chunks: Vec<(Vec<i64>, u32)>,
    /// The references, by unit number.
    refs: Spill<u32>,
    /// Per batch, its group.
    group_of_batch: Vec<u32>,
    kept: Vec<bool>,
    /// The kept object rows, ascending.
    pub(super) keep: Vec<usize>,
}

/// The position of each unit in `units` order.
fn unit_numbers(units: &BTreeMap<Vec<i64>, Vec<Vec<i64>>>) -> HashMap<&Vec<i64>, u32> {
    units
        .keys()
        .enumerate()
        .map(|(i, u)| (u, i as u32))
        .collect()
}

impl ObjectPlan {
    /// Reads level `source`'s fragment indices and manifests (a batch at a
    /// time), spilling the references into `spill_dir` beyond a quarter of
    /// `budget` bytes, and draws the objects level `target` keeps.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        store: &Store,
        source: u64,
        target: u64,
        units: &BTreeMap<Vec<i64>, Vec<Vec<i64>>>,
        batches: &[Batch],
        (bin, sparsity): (&[f64], f64),
        o: &PyramidOptions,
        (spill_dir, budget): (&std::path::Path, usize),
    ) -> Result<ObjectPlan> {
        let dir = store.path.join(source.to_string());
        let mut chunks: Vec<(Vec<i64>, u32)> = units
            .values()
            .enumerate()
            .flat_map(|(u, cs)| cs.iter().map(move |c| (c.clone(), u as u32)))
            .collect();
        chunks.sort();
        let lens = fragment_lengths(store, source, &chunks)?;
        let numbers = unit_numbers(units);
        let mut refs: Spill<u32> =
            Spill::new(spill_dir.join(".refs"), budget / 4, |u| format!("unit-{u}"));
        let mut refs_of_unit = vec![0usize; units.len()];
        let coverage = matches!(o.thinning, Thinning::SpatialCoverage { .. }) && sparsity > 1.0;
        let mut vertices: Vec<u64> = vec![];
        // Per object (spatial coverage only): its fragments' (chunk, fragment,
        // length) while it is walked, then its middle vertex as (chunk,
        // fragment, row within the fragment).
        let mut walk: Vec<(u32, u32, u64)> = vec![];
        let mut middles: Vec<(u32, u32, u64)> = vec![];
        let mut seq: u32 = 0;
        let mut failed: Option<Error> = None;
        let index = dir.join("object_index");
        let finish_row = |vertices: &mut Vec<u64>,
                          walk: &mut Vec<(u32, u32, u64)>,
                          middles: &mut Vec<(u32, u32, u64)>| {
            if coverage {
                let mut at = vertices.last().copied().unwrap_or(0) / 2;
                let mid = walk.iter().find(|&&(_, _, n)| {
                    let inside = at < n;
                    if !inside {
                        at -= n;
                    }
                    inside
                });
                middles.push(mid.map_or((0, 0, 0), |&(k, f, _)| (k, f, at)));
                walk.clear();
            }
        };
        let ids = store.visit_manifests(source, |row, c, frags| {
            if failed.is_some() {
                return;
            }
            // A new row: the rows before it (some with no blocks) are done.
            while vertices.len() <= row {
                if !vertices.is_empty() {
                    finish_row(&mut vertices, &mut walk, &mut middles);
                }
                vertices.push(0);
                seq = 0;
            }
            let Ok(k) = chunks.binary_search_by(|(x, _)| x[..].cmp(c)) else {
                failed = Some(Error::format(
                    &index,
                    format!("a manifest names chunk {c:?}, which holds no vertices"),
                ));
                return;
            };
            for f in frags.iter() {
                let Some(n) = lens.get(k, f) else {
                    failed = Some(Error::format(
                        dir.join("vertex_fragments"),
                        format!("chunk {c:?} has no fragment {f}"),
                    ));
                    return;
                };
                let r = Ref {
                    row: row as u32,
                    seq,
                    chunk: k as u32,
                    frag: f as u32,
                };
                let unit = chunks[k].1;
                refs_of_unit[unit as usize] += 1;
                if let Err(e) = refs.push(unit, &r.bytes()) {
                    failed = Some(e);
                    return;
                }
                let Some(next) = seq.checked_add(1) else {
                    failed = Some(Error::format(
                        &index,
                        format!("object row {row}: over 2^32 fragments"),
                    ));
                    return;
                };
                seq = next;
                if coverage {
                    walk.push((k as u32, f as u32, n as u64));
                }
                *vertices.last_mut().expect("pushed") += n as u64;
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if !vertices.is_empty() {
            finish_row(&mut vertices, &mut walk, &mut middles);
        }
        while vertices.len() < ids.len() {
            vertices.push(0);
            middles.push((0, 0, 0));
        }
        let alive: Vec<usize> = (0..ids.len()).filter(|&r| vertices[r] > 0).collect();
        drop(vertices);
        let keys = if coverage && alive.len() > 1 {
            middle_keys(store, source, &chunks, &middles, &alive, bin)?
        } else {
            vec![]
        };
        let keep = kept_rows(o, target, sparsity, alive, &|r| keys[r]);
        if let Some(&r) = keep.iter().find(|&&r| r >= ids.len()) {
            return Err(Error::invalid(format!(
                "kept object row {r} is past the {} objects",
                ids.len()
            )));
        }
        let mut kept = vec![false; ids.len()];
        keep.iter().for_each(|&r| kept[r] = true);
        // Batches grouped in order so that a group's references take about a
        // quarter of the budget: the paths its units find are held until the
        // group is done.
        let per_group = (budget / 4 / REF_BYTES).max(1);
        let mut group_of_batch = Vec::with_capacity(batches.len());
        let (mut group, mut filled) = (0u32, 0usize);
        for (members, _) in batches {
            let n: usize = members
                .iter()
                .map(|u| refs_of_unit[numbers[u] as usize])
                .sum();
            if filled > 0 && filled + n > per_group {
                (group, filled) = (group + 1, 0);
            }
            filled += n;
            group_of_batch.push(group);
        }
        Ok(ObjectPlan {
            ids,
            chunks,
            refs,
            group_of_batch,
            kept,
            keep,
        })
    }

    /// `batches` split into the groups the references were sorted into.
    pub(super) fn batch_groups(&self, batches: &[Batch]) -> Vec<Vec<Batch>> {
        let mut out: Vec<Vec<Batch>> = vec![];
        for (b, &g) in batches.iter().zip(&self.group_of_batch) {
            if out.len() <= g as usize {
                out.resize(g as usize + 1, vec![]);
            }
            out[g as usize].push(b.clone());
        }
        out
    }

    /// The kept objects' references in unit `u` (by number), in (row,
    /// place) order; callable from many threads at once.
    pub(super) fn take_unit(&self, u: u32) -> Result<Vec<Ref>> {
        let bytes = self.refs.take(&u)?;
        let mut refs: Vec<Ref> = bytes
            .chunks_exact(REF_BYTES)
            .map(Ref::from_bytes)
            .filter(|r| self.kept[r.row as usize])
            .collect();
        drop(bytes);
        refs.sort_unstable();
        Ok(refs)
    }

    /// The coordinates of chunk `k` of the plan's list.
    pub(super) fn chunk(&self, k: u32) -> &[i64] {
        &self.chunks[k as usize].0
    }

    /// Removes the spilled references.
    pub(super) fn remove(self) -> Result<()> {
        self.refs.remove()
    }
}

impl Ref {
    fn bytes(&self) -> [u8; REF_BYTES] {
        let mut b = [0u8; REF_BYTES];
        for (i, v) in [self.row, self.seq, self.chunk, self.frag]
            .iter()
            .enumerate()
        {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    fn from_bytes(b: &[u8]) -> Ref {
        let w = |i: usize| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().expect("4"));
        Ref {
            row: w(0),
            seq: w(1),
            chunk: w(2),
            frag: w(3),
        }
    }
}

/// The vertex count of every fragment of every chunk (in `chunks` order), a
/// byte each — a level-0 chunk may hold about as many fragments as vertices
/// — with counts of 255 and more kept aside.
struct FragmentLengths {
    short: Vec<Vec<u8>>,
    long: HashMap<(u32, u32), u32>,
}

impl FragmentLengths {
    fn get(&self, k: usize, f: u64) -> Option<u32> {
        let n = *self.short[k].get(usize::try_from(f).ok()?)?;
        Some(match n {
            u8::MAX => self.long[&(k as u32, f as u32)],
            n => n as u32,
        })
    }
}

fn fragment_lengths(
    store: &Store,
    level: u64,
    chunks: &[(Vec<i64>, u32)],
) -> Result<FragmentLengths> {
    let dir = store.path.join(level.to_string());
    let frags = CellArray::open(&dir.join("vertex_fragments"), store.dims)?;
    // Per chunk: the short counts, and the (fragment, count) of long ones.
    type Lengths = (Vec<u8>, Vec<(u32, u32)>);
    let per_chunk: Vec<Lengths> = chunks
        .par_iter()
        .map(|(c, _)| {
            let rows = decode_fragments(&frags.read(c)?)
                .map_err(|e| Error::format(&frags.path, format!("chunk {c:?}: {e}")))?
                .rows;
            let mut short = Vec::with_capacity(rows.len());
            let mut long = vec![];
            for (i, f) in rows.iter().enumerate() {
                let n = match f {
                    FragmentRows::Range(_, n) => *n,
                    FragmentRows::List(l) => l.len() as u64,
                };
                let n = u32::try_from(n).map_err(|_| {
                    Error::format(&frags.path, format!("chunk {c:?}: a fragment of {n} rows"))
                })?;
                short.push(n.min(u8::MAX as u32) as u8);
                if n >= u8::MAX as u32 {
                    long.push((i as u32, n));
                }
            }
            Ok((short, long))
        })
        .collect::<Result<_>>()?;
    let mut out = FragmentLengths {
        short: Vec::with_capacity(per_chunk.len()),
        long: HashMap::new(),
    };
    for (k, (short, long)) in per_chunk.into_iter().enumerate() {
        out.short.push(short);
        out.long
            .extend(long.into_iter().map(|(f, n)| ((k as u32, f), n)));
    }
    Ok(out)
}

/// The target bin key of each alive object's middle vertex (indexed by object
/// row), reading only the chunks that hold a middle vertex.
fn middle_keys(
    store: &Store,
    level: u64,
    chunks: &[(Vec<i64>, u32)],
    middles: &[(u32, u32, u64)],
    alive: &[usize],
    bin: &[f64],
) -> Result<Vec<[u8; 24]>> {
    let d = store.dims;
    let mut by_chunk: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for &r in alive {
        by_chunk.entry(middles[r].0).or_default().push(r);
    }
    let found: Vec<Vec<(usize, [u8; 24])>> = by_chunk
        .par_iter()
        .map(|(&k, rows)| -> Result<Vec<(usize, [u8; 24])>> {
            let c = &chunks[k as usize].0;
            let src = Source::load_chunks(store, level, Some(std::slice::from_ref(c)), true)?;
            Ok(rows
                .iter()
                .map(|&r| {
                    let (_, f, at) = middles[r];
                    let g = src
                        .fragment(0, f as usize)
                        .and_then(|mut rows| rows.nth(at as usize))
                        .expect("the plan measured this fragment");
                    (r, bin_key(&src.pos[g * d..(g + 1) * d], bin))
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    let mut keys = vec![[0u8; 24]; middles.len()];
    for (r, key) in found.into_iter().flatten() {
        keys[r] = key;
    }
    Ok(keys)
}

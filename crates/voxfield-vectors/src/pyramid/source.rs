//! A source level read for coarsening: its vertices, objects and bins; which rows a level keeps; metanodes.

use std::collections::BTreeMap;

use rayon::prelude::*;
use voxfield_core::rng::Rng;
use voxfield_core::{Error, Result};

use super::options::{PyramidOptions, Thinning};
use crate::cells::CellArray;
use crate::objects::{decode_fragments, FragmentRows};
use crate::store::Store;

/// A level as loaded for coarsening: chunks in ascending order, every
/// vertex (as float32) numbered chunk by chunk.
pub(super) struct Source {
    pub(super) chunks: Vec<Vec<i64>>,
    /// Global row of each chunk's first vertex; one more entry at the end.
    pub(super) starts: Vec<usize>,
    pub(super) pos: Vec<f32>,
    /// Per chunk: its fragments' rows within the chunk (checked).
    fragments: Vec<ChunkFragments>,
}

/// One chunk's fragments, compactly (a level-0 chunk may hold about as many
/// fragments as vertices): each a run of rows `(start, count)`, or
/// `(LIST, i)` for explicit list `i`.
struct ChunkFragments {
    runs: Vec<(u32, u32)>,
    lists: Vec<Vec<u32>>,
}

const LIST: u32 = u32::MAX;

impl ChunkFragments {
    /// The fragments of a chunk of `rows` rows, or the first row past it.
    fn new(frags: Vec<FragmentRows>, rows: u64) -> std::result::Result<ChunkFragments, u64> {
        let mut out = ChunkFragments {
            runs: Vec::with_capacity(frags.len()),
            lists: vec![],
        };
        for f in frags {
            match f {
                FragmentRows::Range(s, n) => match s.checked_add(n) {
                    Some(e) if e <= rows => out.runs.push((s as u32, n as u32)),
                    _ => return Err(s.saturating_add(n).saturating_sub(1)),
                },
                FragmentRows::List(l) => {
                    if let Some(&r) = l.iter().find(|&&r| r >= rows) {
                        return Err(r);
                    }
                    out.runs.push((LIST, out.lists.len() as u32));
                    out.lists.push(l.into_iter().map(|r| r as u32).collect());
                }
            }
        }
        Ok(out)
    }
}

impl Source {
    pub(super) fn load(store: &Store, level: u64) -> Result<Source> {
        Source::load_chunks(store, level, None, true)
    }

    /// The level's vertices in `only` chunks (all with None); with
    /// `fragments` false each chunk's rows are taken as one fragment in
    /// order (point levels, whose fragments tile their rows), saving a read.
    pub(super) fn load_chunks(
        store: &Store,
        level: u64,
        only: Option<&[Vec<i64>]>,
        fragments: bool,
    ) -> Result<Source> {
        let d = store.dims;
        let dir = store.path.join(level.to_string());
        let vertices = CellArray::open(&dir.join("vertices"), d)?;
        let frag_array = if fragments {
            CellArray::open(&dir.join("vertex_fragments"), d).ok()
        } else {
            None
        };
        let dtype = vertices.attrs["dtype"].as_str().unwrap_or("float32");
        let size = match dtype {
            "float32" => 4,
            "float64" => 8,
            _ => {
                return Err(Error::format(
                    vertices.path.join("zarr.json"),
                    format!("vertex dtype {dtype} is not float32 or float64"),
                ))
            }
        };
        let mut chunks = match only {
            Some(c) => c.to_vec(),
            None => vertices.nonempty.clone(),
        };
        chunks.sort();
        chunks.dedup();
        let loaded: Vec<(Vec<f32>, ChunkFragments)> = chunks
            .par_iter()
            .map(|c| -> Result<(Vec<f32>, ChunkFragments)> {
                let b = vertices.read(c)?;
                if b.len() % (size * d) != 0 {
                    return Err(Error::format(
                        &vertices.path,
                        format!("chunk {c:?} holds {} bytes, not whole rows", b.len()),
                    ));
                }
                let pos: Vec<f32> = if size == 4 {
                    b.chunks_exact(4)
                        .map(|x| f32::from_le_bytes(x.try_into().expect("4")))
                        .collect()
                } else {
                    b.chunks_exact(8)
                        .map(|x| f64::from_le_bytes(x.try_into().expect("8")) as f32)
                        .collect()
                };
                drop(b);
                let rows = (pos.len() / d) as u64;
                let frags = match &frag_array {
                    Some(f) => {
                        decode_fragments(&f.read(c)?)
                            .map_err(|e| Error::format(&f.path, format!("chunk {c:?}: {e}")))?
                            .rows
                    }
                    None => vec![FragmentRows::Range(0, rows)],
                };
                let frags = ChunkFragments::new(frags, rows).map_err(|r| {
                    Error::format(
                        dir.join("vertex_fragments"),
                        format!("chunk {c:?} has no row {r}"),
                    )
                })?;
                Ok((pos, frags))
            })
            .collect::<Result<_>>()?;
        let total: usize = loaded.iter().map(|(p, _)| p.len()).sum();
        let mut src = Source {
            chunks,
            starts: vec![0],
            pos: Vec::with_capacity(total),
            fragments: Vec::with_capacity(loaded.len()),
        };
        for (pos, frags) in loaded {
            src.fragments.push(frags);
            src.pos.extend(pos);
            src.starts.push(src.pos.len() / d);
        }
        Ok(src)
    }

    /// The global rows of fragment `f` of chunk `k`, if it has one.
    pub(super) fn fragment(&self, k: usize, f: usize) -> Option<Rows<'_>> {
        let start = self.starts[k];
        let frags = &self.fragments[k];
        frags.runs.get(f).map(|&(s, n)| match s {
            LIST => Rows::List(start, frags.lists[n as usize].iter()),
            _ => Rows::Run(start + s as usize..start + s as usize + n as usize),
        })
    }

    /// Every vertex, chunk by chunk in fragment order (a point level's
    /// fragments tile its rows in order).
    pub(super) fn fragment_rows(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.chunks.len()).flat_map(move |k| {
            (0..self.fragments[k].runs.len())
                .flat_map(move |f| self.fragment(k, f).expect("in range"))
        })
    }

    pub(super) fn chunk_index(&self, c: &[i64]) -> Option<usize> {
        self.chunks.binary_search_by(|x| x[..].cmp(c)).ok()
    }

    /// (chunk, local row) of global vertex `g`.
    pub(super) fn locate(&self, g: usize) -> (usize, usize) {
        let k = self.starts.partition_point(|&s| s <= g) - 1;
        (k, g - self.starts[k])
    }
}

/// The global rows of one fragment.
pub(super) enum Rows<'a> {
    Run(std::ops::Range<usize>),
    List(usize, std::slice::Iter<'a, u32>),
}

impl Iterator for Rows<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        match self {
            Rows::Run(r) => r.next(),
            Rows::List(start, l) => l.next().map(|&r| *start + r as usize),
        }
    }
}

/// `k` of `items`, drawn without replacement (partial Fisher-Yates).
pub(super) fn draw(rng: &mut Rng, mut items: Vec<usize>, k: usize) -> Vec<usize> {
    let k = k.min(items.len());
    for i in 0..k {
        let j = i + rng.below(items.len() - i);
        items.swap(i, j);
    }
    items.truncate(k);
    items
}

/// Python's `round` (halves to even) of `n / sparsity`, at least 1.
pub(super) fn budget(n: usize, sparsity: f64) -> usize {
    ((n as f64 / sparsity).round_ties_even() as usize).max(1)
}

/// The bin key of a position: int64 bin coordinates as little-endian bytes,
/// which order as numpy's `unique` orders void keys.
pub(super) fn bin_key(p: &[f32], bin: &[f64]) -> [u8; 24] {
    let mut k = [0u8; 24];
    for (a, (&x, &b)) in p.iter().zip(bin).enumerate() {
        let c = (x as f64 / b).floor() as i64;
        k[a * 8..(a + 1) * 8].copy_from_slice(&c.to_le_bytes());
    }
    k
}

/// The rows kept at level `target` from a source with `alive` object rows.
pub(super) fn kept_rows(
    o: &PyramidOptions,
    target: u64,
    sparsity: f64,
    alive: Vec<usize>,
    midpoints: &dyn Fn(usize) -> [u8; 24],
) -> Vec<usize> {
    let mut keep = match &o.thinning {
        Thinning::Given(g) => g[target as usize - 1].clone().unwrap_or(alive),
        _ if sparsity <= 1.0 || alive.len() <= 1 => alive,
        Thinning::Random { seed } => {
            let k = budget(alive.len(), sparsity);
            draw(&mut Rng(seed.wrapping_add(target)), alive, k)
        }
        Thinning::SpatialCoverage { seed } => {
            let k = budget(alive.len(), sparsity);
            let mut rng = Rng(seed.wrapping_add(target));
            let mut bins: BTreeMap<[u8; 24], Vec<usize>> = BTreeMap::new();
            for &r in &alive {
                bins.entry(midpoints(r)).or_default().push(r);
            }
            let mut firsts: Vec<usize> = bins
                .values()
                .map(|members| members[rng.below(members.len())])
                .collect();
            firsts = draw(&mut rng, firsts, k);
            let chosen: std::collections::HashSet<usize> = firsts.iter().copied().collect();
            let rest: Vec<usize> = alive.into_iter().filter(|r| !chosen.contains(r)).collect();
            let more = k - firsts.len();
            firsts.extend(draw(&mut rng, rest, more));
            firsts
        }
    };
    keep.sort_unstable();
    keep.dedup();
    keep
}

/// Each fine vertex's metanode in `coarse` (its bin's vertex), or -1.
pub(super) fn parent_rows(fine: &Source, coarse: &Source, bin: &[f64], d: usize) -> Vec<i64> {
    let at: std::collections::HashMap<[u8; 24], i64> = (0..coarse.pos.len() / d)
        .map(|g| (bin_key(&coarse.pos[g * d..(g + 1) * d], bin), g as i64))
        .collect();
    (0..fine.pos.len() / d)
        .into_par_iter()
        .map(|g| {
            *at.get(&bin_key(&fine.pos[g * d..(g + 1) * d], bin))
                .unwrap_or(&-1)
        })
        .collect()
}

/// The members of a level being built: source rows in order (a row may
/// recur — a metanode shared by several kept objects counts once for each),
/// walked afresh by each call, so no list of them is held.
pub(super) type Members<'a> = &'a (dyn Fn() -> Box<dyn Iterator<Item = usize> + 'a> + Sync);

/// The metanodes of `members` binned at `bin`: ids in numpy-`unique` order
/// of the bin keys, each source row's id (`NOT_MEMBER` for rows no kept
/// object holds), the float32 means of the members (summed in member order,
/// as zarr-vectors sums them), and per chunk of their own positions the ids
/// in order.
pub(super) struct Metanodes {
    pub(super) id_of_row: Vec<u32>,
    pub(super) meta: Vec<f32>,
    pub(super) by_chunk: BTreeMap<Vec<i64>, Vec<usize>>,
}

pub(super) const NOT_MEMBER: u32 = u32::MAX;

pub(super) fn metanodes(
    src: &Source,
    members: Members,
    bin: &[f64],
    cs: &[f64],
    d: usize,
) -> Metanodes {
    let pos = &src.pos;
    let key = |g: usize| bin_key(&pos[g * d..(g + 1) * d], bin);
    let mut id_of_row = vec![NOT_MEMBER; pos.len() / d];
    for g in members() {
        id_of_row[g] = 0;
    }
    // The occupied bins, numbered in key order (numpy's `unique`).
    let mut keys: Vec<[u8; 24]> = (0..id_of_row.len())
        .filter(|&g| id_of_row[g] == 0)
        .map(key)
        .collect();
    keys.par_sort_unstable();
    keys.dedup();
    let m = keys.len();
    id_of_row.par_iter_mut().enumerate().for_each(|(g, id)| {
        if *id == 0 {
            *id = keys.binary_search(&key(g)).expect("a member's bin") as u32;
        }
    });
    drop(keys);
    let mut sums = vec![0.0f64; m * d];
    let mut count = vec![0u64; m];
    for g in members() {
        let id = id_of_row[g] as usize;
        count[id] += 1;
        for a in 0..d {
            sums[id * d + a] += pos[g * d + a] as f64;
        }
    }
    let meta: Vec<f32> = (0..m * d)
        .map(|j| (sums[j] / count[j / d].max(1) as f64) as f32)
        .collect();
    let mut by_chunk: BTreeMap<Vec<i64>, Vec<usize>> = BTreeMap::new();
    for i in 0..m {
        let c: Vec<i64> = (0..d)
            .map(|a| (meta[i * d + a] as f64 / cs[a]).floor() as i64)
            .collect();
        by_chunk.entry(c).or_default().push(i);
    }
    Metanodes {
        id_of_row,
        meta,
        by_chunk,
    }
}

//! Coarser levels, as zarr-vectors 0.9.2's `per_object` coarsener builds
//! them: the surviving objects' vertices of the source level (a point cloud
//! is one implicit object) are binned at the target bin (the source bin ×
//! the factor); each occupied bin becomes one metanode at the float64 mean
//! of its members, stored as float32, shared by every object through it;
//! metanodes are ordered as numpy's `unique` orders the bins' raw int64
//! bytes and laid out by the chunk of their own position, one fragment
//! each; an object's manifest is its vertices' metanodes with consecutive
//! repeats collapsed, and its object id is kept (dropped objects keep an
//! empty manifest). Cross-level links record each fine vertex's metanode
//! (`+N` in the fine level, `-N` mirrored in the coarse one when explicit).
//!
//! Beyond 0.9.2: vertex attributes carried to coarse levels by an
//! aggregation, thinning with a fresh seed per level among the surviving
//! objects, and `spatial_coverage` thinning (one object per occupied bin
//! first). Each level is built under a temporary name and renamed into
//! place before the root metadata names it, so an interrupted build leaves
//! the levels finished so far.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use serde_json::{json, Value};
use voxfield_core::rng::Rng;
use voxfield_core::{Error, Result};

use crate::cells::{read_json, CellArray};
use crate::links::{publish_family, write_link_family, Family, LinkBuckets};
use crate::manifests::{
    encode_manifest, sentinel_bytes, write_object_attributes, write_object_index, EMPTY_MANIFEST,
};
use crate::objects::{decode_fragments, FragmentRows};
use crate::store::{decode_f64, itemsize, Store};
use crate::write::{chunk_key, fragment_index, group, write_json, Attribute, CellGrid};

/// Which cross-level links a build writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrossLevel {
    None,
    /// `+N` only, in the finer level.
    Implicit,
    /// `+N` in the finer level and `-N` in the coarser one.
    Explicit,
}

/// How objects are chosen at a level with a sparsity factor above 1.
#[derive(Clone, Debug, PartialEq)]
pub enum Thinning {
    /// `round(alive / sparsity)` of the objects alive in the source level,
    /// drawn with seed `seed + level`.
    Random { seed: u64 },
    /// At least one alive object per occupied target bin of the objects'
    /// middle vertices, then random ones up to the same budget.
    SpatialCoverage { seed: u64 },
    /// The object rows to keep, per built level (`None`: all); how
    /// zarr-vectors' own draws are reproduced.
    Given(Vec<Option<Vec<usize>>>),
}

/// How vertex attributes reach coarse levels (zarr-vectors 0.9.2 drops them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    Mean,
    Sum,
    Min,
    Max,
    Mode,
    Count,
    First,
}

impl Aggregation {
    pub fn parse(s: &str) -> Result<Aggregation> {
        Ok(match s {
            "mean" => Aggregation::Mean,
            "sum" => Aggregation::Sum,
            "min" => Aggregation::Min,
            "max" => Aggregation::Max,
            "mode" => Aggregation::Mode,
            "count" => Aggregation::Count,
            "first" => Aggregation::First,
            _ => {
                return Err(Error::invalid(format!(
                    "aggregation {s}: mean, sum, min, max, mode, count or first"
                )))
            }
        })
    }
}

/// How a coarse level treats objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    /// zarr-vectors 0.9.2's: metanodes shared across objects, every kept
    /// object keeps its id and its path through them.
    #[default]
    PerObject,
    /// The metanodes alone: the kept objects' vertices merged per bin into
    /// one point level with no object index (a density summary of many
    /// streamlines or graphs; deeper levels coarsen it as points).
    CrossObjectMetanode,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::PerObject => "per_object",
            Method::CrossObjectMetanode => "cross_object_metanode",
        }
    }
}

/// A pyramid build.
#[derive(Clone, Debug)]
pub struct PyramidOptions {
    pub method: Method,
    /// Per level: (coarsen factor ≥ 1, sparsity factor ≥ 1).
    pub factors: Vec<(f64, f64)>,
    pub cross_level: CrossLevel,
    /// Deepest level delta linked (1 = adjacent levels; -1 = all).
    pub depth: i64,
    pub thinning: Thinning,
    /// None reproduces zarr-vectors 0.9.2: no attributes at coarse levels.
    pub aggregation: Option<Aggregation>,
}

pub use voxfield_core::work::Watch;

/// What one level of a build made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelSummary {
    pub level: u64,
    pub vertices: usize,
    /// Objects kept (0 for a point cloud).
    pub objects: usize,
}

/// A level as loaded for coarsening: chunks in ascending order, every
/// vertex (as float32) numbered chunk by chunk.
struct Source {
    chunks: Vec<Vec<i64>>,
    /// Global row of each chunk's first vertex; one more entry at the end.
    starts: Vec<usize>,
    pos: Vec<f32>,
    /// Per chunk, per fragment: global vertex rows.
    fragments: Vec<Vec<Vec<usize>>>,
}

impl Source {
    fn load(store: &Store, level: u64) -> Result<Source> {
        Source::load_chunks(store, level, None, true)
    }

    /// The level's vertices in `only` chunks (all with None); with
    /// `fragments` false each chunk's rows are taken as one fragment in
    /// order (point levels, whose fragments tile their rows), saving a read.
    fn load_chunks(
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
        let loaded: Vec<(Vec<f32>, Vec<FragmentRows>)> = chunks
            .par_iter()
            .map(|c| -> Result<(Vec<f32>, Vec<FragmentRows>)> {
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
                let rows = pos.len() / d;
                let frags = match &frag_array {
                    Some(f) => {
                        decode_fragments(&f.read(c)?)
                            .map_err(|e| Error::format(&f.path, format!("chunk {c:?}: {e}")))?
                            .rows
                    }
                    None => vec![FragmentRows::Range(0, rows as u64)],
                };
                Ok((pos, frags))
            })
            .collect::<Result<_>>()?;
        let mut src = Source {
            chunks,
            starts: vec![0],
            pos: vec![],
            fragments: vec![],
        };
        for (k, (pos, frags)) in loaded.into_iter().enumerate() {
            let start = src.pos.len() / d;
            let rows = pos.len() / d;
            let mut out = Vec::with_capacity(frags.len());
            for f in frags {
                let list: Vec<usize> = match f {
                    FragmentRows::Range(s, n) => (s as usize..(s + n) as usize).collect(),
                    FragmentRows::List(l) => l.into_iter().map(|r| r as usize).collect(),
                };
                if let Some(r) = list.iter().find(|&&r| r >= rows) {
                    return Err(Error::format(
                        dir.join("vertex_fragments"),
                        format!("chunk {:?} has no row {r}", src.chunks[k]),
                    ));
                }
                out.push(list.into_iter().map(|r| start + r).collect());
            }
            src.fragments.push(out);
            src.pos.extend(pos);
            src.starts.push(src.pos.len() / d);
        }
        Ok(src)
    }

    fn chunk_index(&self, c: &[i64]) -> Option<usize> {
        self.chunks.binary_search_by(|x| x[..].cmp(c)).ok()
    }

    /// (chunk, local row) of global vertex `g`.
    fn locate(&self, g: usize) -> (usize, usize) {
        let k = self.starts.partition_point(|&s| s <= g) - 1;
        (k, g - self.starts[k])
    }
}

/// `k` of `items`, drawn without replacement (partial Fisher-Yates).
fn draw(rng: &mut Rng, mut items: Vec<usize>, k: usize) -> Vec<usize> {
    let k = k.min(items.len());
    for i in 0..k {
        let j = i + rng.below(items.len() - i);
        items.swap(i, j);
    }
    items.truncate(k);
    items
}

/// Python's `round` (halves to even) of `n / sparsity`, at least 1.
fn budget(n: usize, sparsity: f64) -> usize {
    ((n as f64 / sparsity).round_ties_even() as usize).max(1)
}

/// The bin key of a position: int64 bin coordinates as little-endian bytes,
/// which order as numpy's `unique` orders void keys.
fn bin_key(p: &[f32], bin: &[f64]) -> [u8; 24] {
    let mut k = [0u8; 24];
    for (a, (&x, &b)) in p.iter().zip(bin).enumerate() {
        let c = (x as f64 / b).floor() as i64;
        k[a * 8..(a + 1) * 8].copy_from_slice(&c.to_le_bytes());
    }
    k
}

/// Builds levels 1.. of a store from level 0. Returns each new level's
/// summary. A store holding levels 1..k of the same factors (an interrupted
/// build) is resumed from level k; other coarse levels are refused.
pub fn build_pyramid(path: &Path, o: &PyramidOptions, watch: &Watch) -> Result<Vec<LevelSummary>> {
    let store = Store::open(path)?;
    let levels = store.levels()?;
    if o.factors.is_empty() {
        return Err(Error::invalid("no factors: give at least one level"));
    }
    for &(c, s) in &o.factors {
        if !(c.is_finite() && c >= 1.0 && s.is_finite() && s >= 1.0) {
            return Err(Error::invalid(format!(
                "factor ({c}, {s}): coarsen and sparsity factors must be numbers ≥ 1"
            )));
        }
    }
    if let Thinning::Given(g) = &o.thinning {
        if g.len() != o.factors.len() {
            return Err(Error::invalid(format!(
                "{} kept-object lists for {} levels",
                g.len(),
                o.factors.len()
            )));
        }
    }
    if o.depth < -1 {
        return Err(Error::invalid(format!(
            "cross-level depth {} must be ≥ -1",
            o.depth
        )));
    }
    clear_partials(path)?;
    let base_bin = store
        .base_bin_shape
        .clone()
        .unwrap_or_else(|| store.chunk_shape.clone());
    let mut bins = vec![];
    let mut b = base_bin.clone();
    for &(factor, _) in &o.factors {
        b = b.iter().map(|x| x * factor).collect();
        bins.push(b.clone());
    }
    if let Some(b) = bins.iter().flatten().find(|b| !b.is_finite()) {
        return Err(Error::invalid(format!(
            "the factors make a bin of {b}: coarsen factors must keep bins finite"
        )));
    }
    let (done, unnamed) = resumable(&store, &levels, &bins)?;
    let points = !path
        .join("0")
        .join("object_index")
        .join("zarr.json")
        .is_file();
    if unnamed {
        add_level_to_root(&store, done as u64, &bins[done - 1], &base_bin, !points)?;
    }
    if points && bins.iter().all(|b| nests(b, &store.chunk_shape)) {
        return build_points_streaming(&store, o, &base_bin, &bins, done, watch);
    }
    let mut out = vec![];
    // Per adjacent pair: each fine vertex's metanode (global row) or -1.
    let mut parents: Vec<Vec<i64>> = vec![];
    let mut sources: Vec<Source> = vec![Source::load(&store, 0)?];
    for (i, &(_, sparsity)) in o.factors.iter().enumerate() {
        watch.check()?;
        (watch.progress)("levels", i as u64, o.factors.len() as u64);
        let (source, target) = (i as u64, i as u64 + 1);
        if i >= done {
            out.push(coarsen(
                &store,
                &sources[i],
                source,
                target,
                &bins[i],
                &base_bin,
                sparsity,
                o,
            )?);
        }
        // Each source vertex's metanode: the new level's vertex in its bin.
        let coarse = Source::load(&store, target)?;
        parents.push(parent_rows(&sources[i], &coarse, &bins[i], store.dims));
        sources.push(coarse);
        if o.cross_level != CrossLevel::None && !sources[i + 1].pos.is_empty() {
            // Deeper links compose the adjacent parents, as zarr-vectors does.
            for delta in 1..=deepest(o, target) as usize {
                let fine = i + 1 - delta;
                let mut parent = parents[fine].clone();
                for inter in &parents[fine + 1..=i] {
                    parent = parent
                        .iter()
                        .map(|&p| if p >= 0 { inter[p as usize] } else { -1 })
                        .collect();
                }
                if parent.iter().all(|&p| p < 0)
                    || linked(&store, fine as u64, delta as u64, o.cross_level)
                {
                    continue;
                }
                write_cross_level(
                    &store,
                    fine as u64,
                    delta as i64,
                    &sources[fine],
                    &sources[i + 1],
                    &parent,
                    o.cross_level,
                )?;
            }
        }
        stamp_root(&store, o, false)?;
    }
    stamp_root(&store, o, true)?;
    (watch.progress)("levels", o.factors.len() as u64, o.factors.len() as u64);
    Ok(out)
}

/// How many coarse levels of `bins` the store already holds (an interrupted
/// build of the same factors), and whether the newest is not yet named in
/// the root; other coarse levels are refused.
fn resumable(store: &Store, levels: &[u64], bins: &[Vec<f64>]) -> Result<(usize, bool)> {
    let done = levels.len().saturating_sub(1);
    let contiguous = levels.iter().enumerate().all(|(i, &l)| l == i as u64);
    // A level's bin is twice its multiscales translation.
    let root = read_json(&store.path)?;
    let datasets = root["attributes"]["multiscales"][0]["datasets"].clone();
    let bin_of = |l: usize| -> Option<Vec<f64>> {
        let ds = datasets
            .as_array()?
            .iter()
            .find(|d| d["path"].as_str().and_then(|p| p.parse::<usize>().ok()) == Some(l))?;
        ds["coordinateTransformations"]
            .as_array()?
            .iter()
            .find(|t| t["type"] == "translation")?["translation"]
            .as_array()?
            .iter()
            .map(|v| v.as_f64().map(|x| 2.0 * x))
            .collect()
    };
    // The newest level may be in place but not yet named in the root (a build
    // killed between the two): the caller names it again.
    let unnamed = done > 0 && bin_of(done).is_none();
    let named = if unnamed { done - 1 } else { done };
    let same = contiguous
        && done <= bins.len()
        && (1..=named).all(|l| {
            bin_of(l).is_some_and(|b| {
                b.len() == bins[l - 1].len()
                    && b.iter()
                        .zip(&bins[l - 1])
                        .all(|(x, y)| (x - y).abs() <= 1e-9 * y.abs())
            })
        });
    if !same || (done > 0 && done == bins.len() && !unnamed) {
        return Err(Error::invalid(format!(
            "{} has levels {levels:?}; a pyramid is built from level 0 alone (remove the others first)",
            store.path.display()
        )));
    }
    Ok((done, unnamed))
}

/// Each fine vertex's metanode in `coarse` (its bin's vertex), or -1.
fn parent_rows(fine: &Source, coarse: &Source, bin: &[f64], d: usize) -> Vec<i64> {
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

/// A point-cloud pyramid built unit by unit (bins nest with chunks), from
/// level `done` on.
fn build_points_streaming(
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

/// The deepest level delta linked into level `target`: as zarr-vectors,
/// adjacent links are written even at depth 0; -1 links every pair.
fn deepest(o: &PyramidOptions, target: u64) -> u64 {
    if o.depth == -1 {
        target
    } else {
        (o.depth.max(1) as u64).min(target)
    }
}

/// Whether `fine`'s `+delta` family (and, explicit, the coarse `-delta`
/// mirror) is already in place.
fn linked(store: &Store, fine: u64, delta: u64, storage: CrossLevel) -> bool {
    let has = |level: u64, name: String| {
        store
            .path
            .join(level.to_string())
            .join("links")
            .join(name)
            .join("zarr.json")
            .is_file()
    };
    has(fine, format!("+{delta}"))
        && (storage != CrossLevel::Explicit || has(fine + delta, format!("-{delta}")))
}

/// Removes what an interrupted build left: `.N.partial-*` level
/// directories and `.partial-*` link families.
fn clear_partials(path: &Path) -> Result<()> {
    let entries = std::fs::read_dir(path).map_err(|e| Error::io(path, e))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if name.starts_with('.') && name.contains(".partial-") {
            std::fs::remove_dir_all(&p).map_err(|err| Error::io(&p, err))?;
        } else if name.parse::<u64>().is_ok() && p.is_dir() {
            // Link families staged in a level by a build that died.
            for inner in std::fs::read_dir(&p)
                .map_err(|err| Error::io(&p, err))?
                .flatten()
            {
                if inner
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".links.partial-")
                {
                    let q = inner.path();
                    std::fs::remove_dir_all(&q).map_err(|err| Error::io(&q, err))?;
                }
            }
        }
    }
    Ok(())
}

/// The rows kept at level `target` from a source with `alive` object rows.
fn kept_rows(
    o: &PyramidOptions,
    target: u64,
    sparsity: f64,
    alive: Vec<usize>,
    midpoints: &dyn Fn(usize) -> [u8; 24],
) -> Vec<usize> {
    let mut keep = match &o.thinning {
        Thinning::Given(g) => return g[target as usize - 1].clone().unwrap_or(alive),
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
    keep
}

/// Builds level `target` from `src` (level `source`); returns its summary.
#[allow(clippy::too_many_arguments)]
fn coarsen(
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
                        let rows = src.fragments[k].get(f as usize).ok_or_else(|| {
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
        let all: Vec<usize> = src.fragments.iter().flatten().flatten().copied().collect();
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
    let members: Vec<usize> = keep
        .iter()
        .flat_map(|&r| objects[r].iter().copied())
        .collect();
    let cs = &store.chunk_shape;
    let Metanodes {
        inverse,
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
        let mut at = 0;
        for &r in &keep {
            let n = objects[r].len();
            let seq = &inverse[at..at + n];
            at += n;
            let mut blocks: Vec<usize> = Vec::with_capacity(n);
            for &id in seq {
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
        Some(agg) => aggregate(store, source, src, &members, &inverse, m, agg)?,
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
            write_object_index(&tmp, d, &manifests, &ids, true)?;
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

/// The metanodes of `members` (rows of `src`, in order) binned at `bin`:
/// ids in numpy-`unique` order of the bin keys, each member's id, the
/// float32 means, and per chunk of their own positions the ids in order.
struct Metanodes {
    inverse: Vec<usize>,
    meta: Vec<f32>,
    by_chunk: BTreeMap<Vec<i64>, Vec<usize>>,
}

fn metanodes(src: &Source, members: &[usize], bin: &[f64], cs: &[f64], d: usize) -> Metanodes {
    let pos = &src.pos;
    let keys: Vec<[u8; 24]> = members
        .par_iter()
        .map(|&g| bin_key(&pos[g * d..(g + 1) * d], bin))
        .collect();
    let mut ids_of: BTreeMap<[u8; 24], usize> = keys.iter().map(|k| (*k, 0)).collect();
    for (i, v) in ids_of.values_mut().enumerate() {
        *v = i;
    }
    let m = ids_of.len();
    let inverse: Vec<usize> = keys.iter().map(|k| ids_of[k]).collect();
    let mut sums = vec![0.0f64; m * d];
    let mut count = vec![0u64; m];
    for (&g, &id) in members.iter().zip(&inverse) {
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
        inverse,
        meta,
        by_chunk,
    }
}

/// Writes each chunk's metanodes (one fragment each) and aggregated
/// attributes into the level directory `dir`.
fn write_cells(
    grid: &CellGrid,
    dir: &Path,
    meta: &[f32],
    by_chunk: &BTreeMap<Vec<i64>, Vec<usize>>,
    d: usize,
    aggregated: &[Aggregated],
) -> Result<()> {
    let (vertices, fragments) = (dir.join("vertices"), dir.join("vertex_fragments"));
    by_chunk.par_iter().try_for_each(|(c, ids)| -> Result<()> {
        let mut v = Vec::with_capacity(ids.len() * d * 4);
        for &i in ids {
            meta[i * d..(i + 1) * d]
                .iter()
                .for_each(|x| v.extend(x.to_le_bytes()));
        }
        grid.put(&vertices, c, &v)?;
        grid.put(&fragments, c, &fragment_index(&vec![1; ids.len()]))?;
        for a in aggregated {
            let mut item = Vec::with_capacity(ids.len() * a.row);
            for &i in ids {
                item.extend(&a.bytes[i * a.row..(i + 1) * a.row]);
            }
            grid.put(&dir.join("vertex_attributes").join(&a.name), c, &item)?;
        }
        Ok(())
    })
}

/// The per-chunk arrays' metadata of a coarse level.
fn write_arrays_meta(
    grid: &CellGrid,
    dir: &Path,
    nonempty: &[String],
    aggregated: &[(String, Value)],
) -> Result<()> {
    grid.write_vertex_arrays(dir, nonempty, "float32")?;
    if !aggregated.is_empty() {
        write_json(&dir.join("vertex_attributes"), &group(json!({})))?;
    }
    for (name, attrs) in aggregated {
        grid.write_array(
            &dir.join("vertex_attributes").join(name),
            nonempty,
            attrs.clone(),
        )?;
    }
    Ok(())
}

/// A coarse level's `zarr_vectors_level` metadata.
fn level_json(
    target: u64,
    sparsity: f64,
    vertices: usize,
    present: &[&str],
    has_objects: bool,
    objects: usize,
    o: &PyramidOptions,
) -> Value {
    let mut level = json!({"level": target, "object_sparsity": 1.0 / sparsity,
        "vertex_count": vertices, "coarsening_method": o.method.name(), "parent_level": target - 1,
        "arrays_present": present, "inherited_num_objects": objects, "shared_fragments": true});
    if has_objects {
        level["preserves_object_ids"] = json!(true);
    }
    if let Some(agg) = o.aggregation {
        level["attribute_aggregation"] = json!(format!("{agg:?}").to_lowercase());
    }
    level
}

/// Whether bins of size `bin` nest with chunks of size `chunk` on every
/// axis (one divides the other by a power of two, so the two grids' floors
/// agree exactly) — then coarsening is chunk-local.
fn nests(bin: &[f64], chunk: &[f64]) -> bool {
    bin.iter().zip(chunk).all(|(&b, &c)| {
        let r = if b >= c { b / c } else { c / b };
        r.fract() == 0.0 && r <= (1u64 << 52) as f64 && (r as u64).is_power_of_two()
    })
}

/// Chunks per unit on each axis: a unit is one chunk, or the block of
/// chunks one bin covers when bins are larger.
fn unit_ratio(bin: &[f64], chunk: &[f64]) -> Vec<i64> {
    bin.iter()
        .zip(chunk)
        .map(|(&b, &c)| if b > c { (b / c) as i64 } else { 1 })
        .collect()
}

/// The nonempty chunks of a level's vertices grouped by unit.
fn units(store: &Store, level: u64, ratio: &[i64]) -> Result<BTreeMap<Vec<i64>, Vec<Vec<i64>>>> {
    let v = CellArray::open(
        &store.path.join(level.to_string()).join("vertices"),
        store.dims,
    )?;
    let mut out: BTreeMap<Vec<i64>, Vec<Vec<i64>>> = BTreeMap::new();
    for c in &v.nonempty {
        let u: Vec<i64> = c.iter().zip(ratio).map(|(x, r)| x.div_euclid(*r)).collect();
        out.entry(u).or_default().push(c.clone());
    }
    Ok(out)
}

/// Builds level `target` of a point cloud unit by unit: each unit's source
/// chunks are loaded, coarsened and written on their own, so memory is a
/// unit (per thread), not a level.
fn coarsen_points_streaming(
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
type Batch = (Vec<Vec<i64>>, Vec<Vec<u64>>);

fn shard_batches(
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
fn run_batches<T: Send>(
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
fn link_points_streaming(
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

/// One aggregated vertex attribute of a new level, rows in metanode id order.
struct Aggregated {
    name: String,
    attrs: Value,
    /// Bytes per row.
    row: usize,
    bytes: Vec<u8>,
}

fn encode(v: &[f64], dtype: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(v.len() * 8);
    for &x in v {
        match dtype {
            "float32" => b.extend((x as f32).to_le_bytes()),
            "float64" => b.extend(x.to_le_bytes()),
            "int8" => b.extend((x as i8).to_le_bytes()),
            "uint8" => b.extend((x as u8).to_le_bytes()),
            "int16" => b.extend((x as i16).to_le_bytes()),
            "uint16" => b.extend((x as u16).to_le_bytes()),
            "int32" => b.extend((x as i32).to_le_bytes()),
            "uint32" => b.extend((x as u32).to_le_bytes()),
            "int64" => b.extend((x as i64).to_le_bytes()),
            _ => b.extend((x as u64).to_le_bytes()),
        }
    }
    b
}

/// Each vertex attribute of the source level aggregated over the members of
/// each metanode (`members[j]` belongs to metanode `inverse[j]`).
fn aggregate(
    store: &Store,
    source: u64,
    src: &Source,
    members: &[usize],
    inverse: &[usize],
    m: usize,
    agg: Aggregation,
) -> Result<Vec<Aggregated>> {
    let dir = store
        .path
        .join(source.to_string())
        .join("vertex_attributes");
    let mut out = vec![];
    for name in store.attribute_names(source)? {
        let a = CellArray::open(&dir.join(&name), store.dims)?;
        let dtype = a.attrs["dtype"].as_str().unwrap_or("float32").to_string();
        if itemsize(&dtype).is_none() {
            continue;
        }
        let width = a.attrs["row_shape"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_u64).product::<u64>() as usize)
            .unwrap_or(1)
            .max(1);
        // The attribute's rows, numbered as the source vertices are.
        let mut values = Vec::with_capacity(src.pos.len() / store.dims * width);
        for (k, c) in src.chunks.iter().enumerate() {
            let v = decode_f64(&a.read(c)?, &dtype);
            let rows = src.starts[k + 1] - src.starts[k];
            if v.len() != rows * width {
                return Err(Error::format(
                    &a.path,
                    format!("chunk {c:?} has {} values for {rows} vertices", v.len()),
                ));
            }
            values.extend(v);
        }
        let mut groups: Vec<Vec<usize>> = vec![vec![]; m];
        for (&g, &id) in members.iter().zip(inverse) {
            groups[id].push(g);
        }
        let out_dtype = match agg {
            Aggregation::Count => "int64".to_string(),
            Aggregation::Mean if !dtype.starts_with("float") => "float64".to_string(),
            Aggregation::Sum if dtype.starts_with("float") => "float64".to_string(),
            Aggregation::Sum if dtype.starts_with('u') => "uint64".to_string(),
            Aggregation::Sum => "int64".to_string(),
            _ => dtype.clone(),
        };
        let w = if agg == Aggregation::Count { 1 } else { width };
        let mut result = Vec::with_capacity(m * w);
        for g in &groups {
            for ch in 0..w {
                let it = g.iter().map(|&r| values[r * width + ch]);
                result.push(match agg {
                    Aggregation::Mean => it.sum::<f64>() / g.len().max(1) as f64,
                    Aggregation::Sum => it.sum(),
                    Aggregation::Min => it.fold(f64::INFINITY, f64::min),
                    Aggregation::Max => it.fold(f64::NEG_INFINITY, f64::max),
                    Aggregation::Count => g.len() as f64,
                    Aggregation::First => it.into_iter().next().unwrap_or(f64::NAN),
                    Aggregation::Mode => {
                        // The most frequent value; ties to the smallest.
                        let mut v: Vec<f64> = it.collect();
                        v.sort_by(f64::total_cmp);
                        let (mut best, mut best_n, mut i) = (f64::NAN, 0, 0);
                        while i < v.len() {
                            let j = v[i..].iter().take_while(|&&x| x == v[i]).count();
                            if j > best_n {
                                (best, best_n) = (v[i], j);
                            }
                            i += j.max(1);
                        }
                        best
                    }
                });
            }
        }
        let mut attrs = json!({"zv_array": "attribute", "name": name, "dtype": out_dtype,
            "row_shape": if w > 1 { vec![w] } else { vec![] }});
        if w > 1 {
            attrs["channel_names"] = a.attrs["channel_names"].clone();
        }
        out.push(Aggregated {
            row: w * itemsize(&out_dtype).expect("numeric"),
            bytes: encode(&result, &out_dtype),
            name,
            attrs,
        });
    }
    Ok(out)
}

/// Copies the source level's object attributes for the kept rows; other
/// rows take the dtype's "absent" sentinel, as zarr-vectors writes them.
fn copy_object_attributes(src_dir: &Path, dst: &Path, keep: &[usize]) -> Result<()> {
    let from = src_dir.join("object_attributes");
    for name in &crate::cells::child_nodes(&from) {
        let meta = read_json(&from.join(name))?;
        let dtype = meta["data_type"].as_str().unwrap_or("").to_string();
        let size = itemsize(&dtype).ok_or_else(|| {
            Error::format(from.join(name).join("zarr.json"), format!("dtype {dtype}"))
        })?;
        let shape: Vec<usize> = meta["shape"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_u64)
                    .map(|v| v as usize)
                    .collect()
            })
            .unwrap_or_default();
        let (n, width) = (
            shape.first().copied().unwrap_or(0),
            shape.get(1).copied().unwrap_or(1),
        );
        let row = width * size;
        let data = crate::objects::read_dense(&from.join(name), n * row)?;
        let fill = sentinel_bytes(&dtype).expect("numeric");
        let mut out: Vec<u8> = fill.iter().cycle().take(n * row).copied().collect();
        for &r in keep.iter().filter(|&&r| r < n) {
            out[r * row..(r + 1) * row].copy_from_slice(&data[r * row..(r + 1) * row]);
        }
        let a = Attribute {
            name,
            dtype: &dtype,
            width,
            bytes: &out,
        };
        write_object_attributes(dst, &[a], n, true)?;
    }
    Ok(())
}

/// Files one cross-level record — fine vertex (chunk `fc`, row `fi`) to its
/// metanode (chunk `cc`, row `ci`) — in the fine level's `+N` buckets and,
/// when `down` is given, its mirror in the coarse level's `-N` buckets.
fn file_cross_record(
    up: &mut LinkBuckets,
    down: Option<&mut LinkBuckets>,
    (fc, fi): (&[i64], i64),
    (cc, ci): (&[i64], i64),
) {
    let off: Vec<i64> = cc.iter().zip(fc).map(|(c, f)| c - f).collect();
    up.entry(off)
        .or_default()
        .entry(fc.to_vec())
        .or_default()
        .extend([fi, ci]);
    if let Some(down) = down {
        let off: Vec<i64> = fc.iter().zip(cc).map(|(f, c)| f - c).collect();
        down.entry(off)
            .or_default()
            .entry(cc.to_vec())
            .or_default()
            .extend([ci, fi]);
    }
}

/// Writes the `+delta` links of `fine` (each fine vertex to its metanode at
/// `fine + delta`) and, when explicit, the `-delta` mirror in the coarse level.
fn write_cross_level(
    store: &Store,
    fine_level: u64,
    delta: i64,
    fine: &Source,
    coarse: &Source,
    parent: &[i64],
    storage: CrossLevel,
) -> Result<()> {
    let d = store.dims;
    let [lo, hi] = &store.bounds;
    let grid = CellGrid::new(lo, hi, &store.chunk_shape).sharded(store.shard_shape());
    let mut up = LinkBuckets::new();
    let mut down = LinkBuckets::new();
    for (g, &p) in parent.iter().enumerate() {
        if p < 0 {
            continue;
        }
        let (fk, fi) = fine.locate(g);
        let (ck, ci) = coarse.locate(p as usize);
        let mirror = (storage == CrossLevel::Explicit).then_some(&mut down);
        file_cross_record(
            &mut up,
            mirror,
            (&fine.chunks[fk], fi as i64),
            (&coarse.chunks[ck], ci as i64),
        );
    }
    let put = |level: u64, name: String, buckets: &LinkBuckets| -> Result<()> {
        let family = Family {
            name: name.clone(),
            has_perm: false,
            directed: true,
            dims: d,
        };
        publish_family(&store.path.join(level.to_string()), &name, |staging| {
            write_link_family(&grid, staging, &family, buckets)
        })
    };
    put(fine_level, format!("+{delta}"), &up)?;
    if storage == CrossLevel::Explicit {
        put(fine_level + delta as u64, format!("-{delta}"), &down)?;
    }
    Ok(())
}

fn write_root(store: &Store, root: &Value) -> Result<()> {
    let root_path = store.path.join("zarr.json");
    let tmp_root = store.path.join("zarr.json.partial");
    let text = serde_json::to_string_pretty(root).expect("JSON values serialise");
    std::fs::write(&tmp_root, text).map_err(|e| Error::io(&tmp_root, e))?;
    std::fs::rename(&tmp_root, &root_path).map_err(|e| Error::io(&root_path, e))
}

fn add_capability(zv: &mut Value, cap: &str) {
    let mut caps = zv["format_capabilities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !caps.iter().any(|c| c == cap) {
        caps.push(json!(cap));
    }
    zv["format_capabilities"] = json!(caps);
}

/// Names a new level in the root metadata (multiscales, OME nodes, capabilities).
fn add_level_to_root(
    store: &Store,
    level: u64,
    bin: &[f64],
    base_bin: &[f64],
    objects: bool,
) -> Result<()> {
    let mut root = read_json(&store.path)?;
    let a = &mut root["attributes"];
    if objects {
        add_capability(&mut a["zarr_vectors"], "preserved_object_ids");
    }
    add_capability(&mut a["zarr_vectors"], "shared_fragments");
    let ratio: Vec<f64> = bin
        .iter()
        .zip(base_bin)
        // Python's round: halves to even.
        .map(|(t, r)| (t / r).round_ties_even().max(1.0))
        .collect();
    if let Some(ds) = a["multiscales"][0]["datasets"].as_array_mut() {
        ds.push(json!({"path": level.to_string(), "coordinateTransformations": [
            {"type": "scale", "scale": ratio},
            {"type": "translation", "translation": bin.iter().map(|b| b / 2.0).collect::<Vec<_>>()}]}));
    }
    if let Some(nodes) = a["ome"]["nodes"].as_array_mut() {
        nodes.push(json!({"type": "zv:level", "name": level.to_string()}));
    }
    write_root(store, &root)
}

/// Stamps the cross-level settings (and, once done, the links capability).
fn stamp_root(store: &Store, o: &PyramidOptions, done: bool) -> Result<()> {
    let mut root = read_json(&store.path)?;
    let zv = &mut root["attributes"]["zarr_vectors"];
    zv["cross_level_depth"] = json!(o.depth);
    zv["cross_level_storage"] = json!(match o.cross_level {
        CrossLevel::None => "none",
        CrossLevel::Implicit => "implicit",
        CrossLevel::Explicit => "explicit",
    });
    if done && o.cross_level != CrossLevel::None && o.depth != 0 && !o.factors.is_empty() {
        add_capability(zv, "multiscale_links");
    }
    write_root(store, &root)
}

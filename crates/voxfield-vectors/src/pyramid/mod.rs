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

mod aggregate;
mod batches;
mod coarsen;
mod level;
mod linking;
mod options;
mod paths;
mod plan;
mod root;
mod source;
mod streaming;

use std::path::Path;

use voxfield_core::{Error, Result};

use crate::cells::read_json;
use crate::store::Store;
use coarsen::coarsen;
use level::nests;
use options::{deepest, linked};
use root::{add_level_to_root, stamp_root, write_cross_level};
use source::{parent_rows, Source};
use streaming::build_streaming;

pub use options::{Aggregation, CrossLevel, LevelSummary, Method, PyramidOptions, Thinning};

pub use voxfield_core::work::Watch;

/// Builds levels 1.. of a store from level 0. Returns each new level's
/// summary. A store holding levels 1..k of the same factors (an interrupted
/// build) is resumed from level k; other coarse levels are refused.
pub fn build_pyramid(path: &Path, o: &PyramidOptions, watch: &Watch) -> Result<Vec<LevelSummary>> {
    let store = Store::open(path)?;
    store.local_only("building a pyramid")?;
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
    if bins.iter().all(|b| nests(b, &store.chunk_shape)) {
        return build_streaming(&store, o, &base_bin, &bins, done, watch);
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

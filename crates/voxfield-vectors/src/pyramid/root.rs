//! The store's root metadata and cross-level link records a build publishes.

use serde_json::{json, Value};
use voxfield_core::{Error, Result};

use super::options::{CrossLevel, PyramidOptions};
use super::source::Source;
use crate::cells::read_json;
use crate::links::{publish_family, write_link_family, Family, LinkBuckets};
use crate::store::Store;
use crate::write::CellGrid;

pub(super) fn write_root(store: &Store, root: &Value) -> Result<()> {
    let root_path = store.path.join("zarr.json");
    let tmp_root = store.path.join("zarr.json.partial");
    let text = serde_json::to_string_pretty(root).expect("JSON values serialise");
    std::fs::write(&tmp_root, text).map_err(|e| Error::io(&tmp_root, e))?;
    std::fs::rename(&tmp_root, &root_path).map_err(|e| Error::io(&root_path, e))
}

pub(super) fn add_capability(zv: &mut Value, cap: &str) {
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
pub(super) fn add_level_to_root(
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
pub(super) fn stamp_root(store: &Store, o: &PyramidOptions, done: bool) -> Result<()> {
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

/// Files one cross-level record — fine vertex (chunk `fc`, row `fi`) to its
/// metanode (chunk `cc`, row `ci`) — in the fine level's `+N` buckets and,
/// when `down` is given, its mirror in the coarse level's `-N` buckets.
pub(super) fn file_cross_record(
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
pub(super) fn write_cross_level(
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

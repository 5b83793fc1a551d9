//! Coarser levels of a point cloud, as zarr-vectors 0.9.2's `per_object`
//! coarsener builds them for stores without objects: the source level's
//! vertices (chunk by chunk, rows in order) are binned at the target bin
//! (the source bin × the factor); each occupied bin becomes one metanode at
//! the float64 mean of its members, stored as float32; metanodes are ordered
//! as numpy's `unique` orders the bins' raw int64 bytes, laid out by the chunk
//! of their own position, one fragment each. Each level is built under a
//! temporary name and renamed into place before the root metadata names it,
//! so an interrupted build leaves the levels finished so far.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use serde_json::{json, Value};
use voxfield_core::{Error, Result};

use crate::cells::read_json;
use crate::store::Store;
use crate::write::{chunk_key, fragment_index, group, write_json, CellGrid};

/// Builds levels 1.. of a point-cloud store from `factors` (each level's bin
/// is the previous one × its factor). Returns each new level's vertex count.
/// Stores with objects (polylines, graphs) and stores that already have
/// coarse levels are refused; cross-level links are not written
/// (zarr-vectors' `cross_level_storage="none"`).
pub fn build_point_pyramid(path: &Path, factors: &[f64]) -> Result<Vec<usize>> {
    let store = Store::open(path)?;
    let levels = store.levels()?;
    if levels != [0] {
        return Err(Error::invalid(format!(
            "{} has levels {levels:?}; a pyramid is built from level 0 alone (remove the others first)",
            path.display()
        )));
    }
    if path
        .join("0")
        .join("object_index")
        .join("zarr.json")
        .is_file()
    {
        return Err(Error::invalid(
            "this store has objects (polylines or graphs); only point clouds are coarsened so far",
        ));
    }
    if let Some(f) = factors.iter().find(|f| !(f.is_finite() && **f >= 1.0)) {
        return Err(Error::invalid(format!(
            "coarsening factor {f} must be a number ≥ 1"
        )));
    }
    let d = store.dims;
    let base_bin = store
        .base_bin_shape
        .clone()
        .unwrap_or_else(|| store.chunk_shape.clone());
    let mut bin = base_bin.clone();
    let mut counts = vec![];
    for (i, &factor) in factors.iter().enumerate() {
        let (source, target) = (i as u64, i as u64 + 1);
        bin = bin.iter().map(|b| b * factor).collect();
        let src = store.read_points(source, None, Some(&[]))?;
        let pos: Vec<f32> = src
            .positions
            .bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4")))
            .collect();
        let meta = metanodes(&pos, d, &bin);
        counts.push(meta.len() / d);
        write_level(&store, target, &meta, &bin, &base_bin)?;
    }
    Ok(counts)
}

/// Metanode positions (row-major, in metanode id order) of `pos` binned at `bin`.
fn metanodes(pos: &[f32], d: usize, bin: &[f64]) -> Vec<f32> {
    let n = pos.len() / d;
    let keys: Vec<[u8; 24]> = pos
        .par_chunks_exact(d)
        .map(|r| {
            let mut k = [0u8; 24];
            for a in 0..d {
                let b = (r[a] as f64 / bin[a]).floor() as i64;
                k[a * 8..(a + 1) * 8].copy_from_slice(&b.to_le_bytes());
            }
            k
        })
        .collect();
    // numpy's unique over void keys: ascending raw bytes.
    let mut ids: BTreeMap<[u8; 24], usize> = BTreeMap::new();
    for k in &keys {
        ids.entry(*k).or_insert(0);
    }
    for (i, v) in ids.values_mut().enumerate() {
        *v = i;
    }
    let m = ids.len();
    let mut sums = vec![0.0f64; m * d];
    let mut count = vec![0u64; m];
    for (p, k) in (0..n).zip(&keys) {
        let id = ids[k];
        count[id] += 1;
        for a in 0..d {
            sums[id * d + a] += pos[p * d + a] as f64;
        }
    }
    (0..m * d)
        .map(|j| (sums[j] / count[j / d].max(1) as f64) as f32)
        .collect()
}

fn write_level(
    store: &Store,
    level: u64,
    meta: &[f32],
    bin: &[f64],
    base_bin: &[f64],
) -> Result<()> {
    let d = store.dims;
    let cs = &store.chunk_shape;
    let m = meta.len() / d;
    // Chunks of the metanodes' own positions; metanodes in id order within each.
    let mut by_chunk: BTreeMap<Vec<i64>, Vec<usize>> = BTreeMap::new();
    for i in 0..m {
        let c: Vec<i64> = (0..d)
            .map(|a| (meta[i * d + a] as f64 / cs[a]).floor() as i64)
            .collect();
        by_chunk.entry(c).or_default().push(i);
    }
    let [lo, hi] = &store.bounds;
    let grid = CellGrid::new(lo, hi, cs);
    let tmp = store
        .path
        .join(format!(".{level}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let built = (|| -> Result<()> {
        let (vertices, fragments) = (tmp.join("vertices"), tmp.join("vertex_fragments"));
        by_chunk.par_iter().try_for_each(|(c, ids)| -> Result<()> {
            let mut v = Vec::with_capacity(ids.len() * d * 4);
            for &i in ids {
                meta[i * d..(i + 1) * d]
                    .iter()
                    .for_each(|x| v.extend(x.to_le_bytes()));
            }
            grid.put(&vertices, c, &v)?;
            grid.put(&fragments, c, &fragment_index(&vec![1; ids.len()]))
        })?;
        let nonempty: Vec<String> = by_chunk.keys().map(|c| chunk_key(c)).collect();
        grid.write_vertex_arrays(&tmp, &nonempty, "float32")?;
        write_json(
            &tmp,
            &group(
                json!({"zarr_vectors_level": {"level": level, "object_sparsity": 1.0,
            "vertex_count": m, "coarsening_method": "per_object", "parent_level": level - 1,
            "arrays_present": ["vertices"], "inherited_num_objects": 0, "shared_fragments": true}}),
            ),
        )
    })();
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let dir = store.path.join(level.to_string());
    std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&dir, e))?;
    // Then the root names the level.
    let mut root = read_json(&store.path)?;
    let a = &mut root["attributes"];
    let zv = &mut a["zarr_vectors"];
    let caps = zv["format_capabilities"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut caps: Vec<Value> = caps;
    if !caps.iter().any(|c| c == "shared_fragments") {
        caps.push(json!("shared_fragments"));
    }
    zv["format_capabilities"] = json!(caps);
    zv["cross_level_depth"] = json!(1);
    zv["cross_level_storage"] = json!("none");
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
    let root_path = store.path.join("zarr.json");
    let tmp_root = store.path.join("zarr.json.partial");
    let text = serde_json::to_string_pretty(&root).expect("JSON values serialise");
    std::fs::write(&tmp_root, text).map_err(|e| Error::io(&tmp_root, e))?;
    std::fs::rename(&tmp_root, &root_path).map_err(|e| Error::io(&root_path, e))
}

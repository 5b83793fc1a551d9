//! Writing one level's cells and array metadata; chunk units of nested grids.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use serde_json::{json, Value};
use voxfield_core::Result;

use super::aggregate::Aggregated;
use super::options::PyramidOptions;
use crate::cells::CellArray;
use crate::store::Store;
use crate::write::{fragment_index, group, write_json, CellGrid};

/// Writes each chunk's metanodes (one fragment each) and aggregated
/// attributes into the level directory `dir`.
pub(super) fn write_cells(
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
pub(super) fn write_arrays_meta(
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
pub(super) fn level_json(
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
pub(super) fn nests(bin: &[f64], chunk: &[f64]) -> bool {
    bin.iter().zip(chunk).all(|(&b, &c)| {
        let r = if b >= c { b / c } else { c / b };
        r.fract() == 0.0 && r <= (1u64 << 52) as f64 && (r as u64).is_power_of_two()
    })
}

/// Chunks per unit on each axis: a unit is one chunk, or the block of
/// chunks one bin covers when bins are larger.
pub(super) fn unit_ratio(bin: &[f64], chunk: &[f64]) -> Vec<i64> {
    bin.iter()
        .zip(chunk)
        .map(|(&b, &c)| if b > c { (b / c) as i64 } else { 1 })
        .collect()
}

/// The nonempty chunks of a level's vertices grouped by unit.
pub(super) fn units(
    store: &Store,
    level: u64,
    ratio: &[i64],
) -> Result<BTreeMap<Vec<i64>, Vec<Vec<i64>>>> {
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

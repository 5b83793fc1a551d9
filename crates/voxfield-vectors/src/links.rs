//! Link families (`links/<delta>/<offset>`) as zarr-vectors 0.9.x writes
//! them: per offset one per-chunk array whose cell is the record's source
//! chunk, each cell an inline ragged blob (`i64 1, i64 0`, then the int64
//! rows), the family's policy and counts on the `<delta>` group.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use serde_json::json;
use voxfield_core::{Error, Result};

use crate::write::{chunk_key, group, write_json, CellGrid};

/// An offsets segment name as zarr-vectors writes it: `0`, `+k`, `-k`
/// joined with `.`.
pub(crate) fn offset_name(offset: &[i64]) -> String {
    offset
        .iter()
        .map(|&o| {
            if o > 0 {
                format!("+{o}")
            } else {
                o.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// An inline ragged link blob with one group: `i64 1, i64 0`, then the rows.
pub(crate) fn ragged_blob(rows: &[i64]) -> Vec<u8> {
    let mut b = Vec::with_capacity(16 + rows.len() * 8);
    b.extend(1i64.to_le_bytes());
    b.extend(0i64.to_le_bytes());
    rows.iter().for_each(|v| b.extend(v.to_le_bytes()));
    b
}

/// Link records of one family by offset, then by source chunk: the rows of
/// a cell, flat, in input order.
pub(crate) type LinkBuckets = BTreeMap<Vec<i64>, BTreeMap<Vec<i64>, Vec<i64>>>;

/// A family of two-endpoint links: its delta name ("0", "+1", "-2") and policy.
#[derive(Clone, Debug)]
pub(crate) struct Family {
    pub name: String,
    pub has_perm: bool,
    pub directed: bool,
    pub dims: usize,
}

impl Family {
    /// The rows of one cell: `rows` (flat int64) of source chunk `src` under `offset`.
    pub fn put(
        &self,
        grid: &CellGrid,
        level: &Path,
        offset: &[i64],
        src: &[i64],
        rows: &[i64],
    ) -> Result<()> {
        let dir = level
            .join("links")
            .join(&self.name)
            .join(offset_name(offset));
        grid.put(&dir, src, &ragged_blob(rows))
    }

    /// The arrays' and the family's metadata once every cell is written:
    /// `keys` lists each offset's source chunks.
    pub fn finish(
        &self,
        grid: &CellGrid,
        level: &Path,
        keys: &BTreeMap<Vec<i64>, Vec<String>>,
        records: usize,
    ) -> Result<()> {
        let family = level.join("links").join(&self.name);
        let delta: i64 = self.name.parse().unwrap_or(0);
        for (offset, cells) in keys {
            grid.write_array(
                &family.join(offset_name(offset)),
                cells,
                json!({"zv_array": "links", "dtype": "int64", "offsets": [offset],
                    "has_perm": self.has_perm, "link_width": 2, "level_delta": delta}),
            )?;
        }
        if !level.join("links").join("zarr.json").is_file() {
            write_json(&level.join("links"), &group(json!({})))?;
        }
        write_json(
            &family,
            &group(
                json!({"zv_array": "links_family", "level_delta": delta, "link_width": 2,
                "directed": self.directed, "store": "canonical", "sid_ndim": self.dims,
                "num_links": records, "num_physical_records": records}),
            ),
        )
    }
}

/// Writes `level/links/<family>/<offset>` arrays from `buckets` (one record each).
pub(crate) fn write_link_family(
    grid: &CellGrid,
    level: &Path,
    family: &Family,
    buckets: &LinkBuckets,
) -> Result<()> {
    let width = if family.has_perm { 3 } else { 2 };
    let mut keys = BTreeMap::new();
    let mut records = 0;
    for (offset, cells) in buckets {
        cells
            .par_iter()
            .try_for_each(|(src, rows)| family.put(grid, level, offset, src, rows))?;
        keys.insert(
            offset.clone(),
            cells.keys().map(|src| chunk_key(src)).collect(),
        );
        records += cells.values().map(|r| r.len() / width).sum::<usize>();
    }
    family.finish(grid, level, &keys, records)
}

/// A fresh staging directory in `level` for building a link family.
pub(crate) fn stage(level: &Path) -> Result<std::path::PathBuf> {
    let staging = level.join(format!(".links.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    Ok(staging)
}

/// Renames the family `name` built in `staging` to `level/links/<name>`
/// (replacing what a crashed build left there), so a family is either whole
/// or absent.
pub(crate) fn commit(level: &Path, staging: &Path, name: &str) -> Result<()> {
    let links = level.join("links");
    if !links.join("zarr.json").is_file() {
        write_json(&links, &group(json!({})))?;
    }
    let family = links.join(name);
    if family.exists() {
        std::fs::remove_dir_all(&family).map_err(|e| Error::io(&family, e))?;
    }
    let from = staging.join("links").join(name);
    std::fs::rename(&from, &family).map_err(|e| Error::io(&family, e))?;
    std::fs::remove_dir_all(staging).map_err(|e| Error::io(staging, e))
}

/// Builds a level's link family in a staging directory and commits it.
pub(crate) fn publish_family(
    level: &Path,
    name: &str,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let staging = stage(level)?;
    if let Err(e) = build(&staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    commit(level, &staging, name)
}

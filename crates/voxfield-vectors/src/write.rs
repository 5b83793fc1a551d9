//! Writing point clouds as zarr-vectors 0.9.2 stores, laid out as its own
//! `write_points` lays them out: each point's bin is floor(position / bin),
//! its chunk the bin's chunk; in each chunk the rows go bin by bin (bins in
//! row-major order, input order within a bin) and the fragment index lists
//! every bin of the chunk as a range, empty ones included, so bounding-box
//! reads can skip bins. The store is built under a temporary name beside the
//! target and renamed into place when complete.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use voxfield_core::{Error, Result};

use std::collections::HashMap;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::cells::Shard;
use crate::codecs::Compressor;
use crate::store::itemsize;

/// The format version written.
pub const VERSION: &str = "0.9.2";
/// Chunk cells per shard, at most (a 16 MiB shard index).
const MAX_SHARD_CELLS: u64 = 1 << 20;
/// Bins per chunk, at most: each is a fragment of every chunk's index.
const MAX_BINS_PER_CHUNK: u64 = 1 << 21;
/// 'ZVFG' little-endian: the fragment index magic.
const FRAGMENT_MAGIC: u32 = 0x5A56_4647;

/// A vertex attribute to write: little-endian rows of `width` values.
pub struct Attribute<'a> {
    pub name: &'a str,
    pub dtype: &'a str,
    pub width: usize,
    pub bytes: &'a [u8],
}

/// How a point cloud is written.
pub struct PointsOptions {
    /// Chunk size in physical units (None: one chunk spanning the data, as zarr-vectors).
    pub chunk_shape: Option<Vec<f64>>,
    /// Bin size (None: one bin per chunk); the chunk must hold a whole number of bins.
    pub bin_shape: Option<Vec<f64>>,
    /// `float32` (zarr-vectors' default) or `float64`.
    pub dtype: String,
    /// Chunk cells per shard on each axis (Zarr v3 sharding: one file per
    /// shard instead of per cell), zarr-vectors' `shard_shape`.
    pub shard_shape: Option<Vec<u64>>,
    /// A compressor after `vlen-bytes` on every per-chunk array (zarr-vectors'
    /// `compressor=`); None writes them uncompressed, its default.
    pub compressor: Option<Compressor>,
}

/// Fragment index v1 bytes for `counts.len()` range fragments.
pub fn fragment_index(counts: &[usize]) -> Vec<u8> {
    let f = counts.len();
    let mut b = vec![];
    b.extend(FRAGMENT_MAGIC.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(0u16.to_le_bytes());
    b.extend((f as u32).to_le_bytes());
    b.extend((f as u32).to_le_bytes());
    let mut bitmap = vec![0u8; f.div_ceil(8).div_ceil(8) * 8];
    for i in 0..f {
        bitmap[i / 8] |= 1 << (i % 8);
    }
    b.extend(bitmap);
    let mut start = 0i64;
    for &c in counts {
        b.extend(start.to_le_bytes());
        b.extend((c as i64).to_le_bytes());
        start += c as i64;
    }
    b.extend(0u32.to_le_bytes()); // explicit CSR: offsets[0] only
    b
}

pub(crate) fn vlen(item: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(item.len() + 8);
    b.extend(1u32.to_le_bytes());
    b.extend((item.len() as u32).to_le_bytes());
    b.extend_from_slice(item);
    b
}

pub(crate) fn write_json(dir: &Path, v: &Value) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let p = dir.join("zarr.json");
    let text = serde_json::to_string_pretty(v).expect("JSON values serialise");
    std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
}

pub(crate) fn group(attributes: Value) -> Value {
    json!({"attributes": attributes, "zarr_format": 3, "node_type": "group"})
}

/// Writes level 0's group metadata, as zarr-vectors' writers stamp it: `n`
/// vertices, the arrays `present`, fragments tiling each chunk's buffer.
pub(crate) fn write_level_zero(level: &Path, n: usize, present: &[&str]) -> Result<()> {
    write_json(
        level,
        &group(
            json!({"zarr_vectors_level": {"level": 0, "object_sparsity": 1.0,
            "vertex_count": n, "coarsening_method": "none", "parent_level": null,
            "arrays_present": present, "fragments_tile": true}}),
        ),
    )
}

pub(crate) fn cell_array(shape: &[u64], attributes: Value) -> Value {
    json!({
        "shape": shape,
        "data_type": "variable_length_bytes",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": vec![1; shape.len()]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": "",
        "codecs": [{"name": "vlen-bytes", "configuration": {}}],
        "attributes": attributes,
        "zarr_format": 3,
        "node_type": "array",
        "storage_transformers": [],
    })
}

/// A level's chunk grid, sized from the store's bounds as zarr-vectors sizes
/// it: cells are absolute chunks shifted by `origin` (negative coordinates
/// fit), `shape` cells per axis.
pub(crate) struct CellGrid {
    pub origin: Vec<i64>,
    pub shape: Vec<u64>,
    /// Cells per shard (Zarr v3 `sharding_indexed`), or one file per cell.
    pub shard: Option<Vec<u64>>,
    /// The compressor after `vlen-bytes` (None: uncompressed).
    pub compressor: Option<Compressor>,
    /// Sharded cells held until their array is finished: per array, per shard,
    /// (row-major index in the shard, encoded cell).
    pending: Mutex<HashMap<PathBuf, ShardCells>>,
    /// Held while a shard file is written (and perhaps merged with itself).
    writing: Mutex<()>,
}

type ShardCells = HashMap<Vec<u64>, Vec<(usize, Vec<u8>)>>;

impl CellGrid {
    pub fn new(lo: &[f64], hi: &[f64], chunk: &[f64]) -> CellGrid {
        let origin: Vec<i64> = lo
            .iter()
            .zip(chunk)
            .map(|(l, c)| (l / c).floor() as i64)
            .collect();
        let shape = (0..lo.len())
            .map(|a| {
                ((hi[a] / chunk[a]).floor() as i64)
                    .saturating_sub(origin[a])
                    .saturating_add(1)
                    .max(1) as u64
            })
            .collect();
        CellGrid {
            origin,
            shape,
            shard: None,
            compressor: None,
            pending: Mutex::new(HashMap::new()),
            writing: Mutex::new(()),
        }
    }

    /// The same grid writing shards of `shard` cells per axis (None: cell files).
    pub fn sharded(mut self, shard: Option<Vec<u64>>) -> CellGrid {
        self.shard = shard;
        self
    }

    /// The same grid compressing every cell with `c`.
    pub fn compressed(mut self, c: Option<Compressor>) -> CellGrid {
        self.compressor = c;
        self
    }

    /// A cell's bytes as stored: the vlen-bytes item, then compressed.
    fn encode(&self, file: &Path, item: &[u8]) -> Result<Vec<u8>> {
        match &self.compressor {
            Some(c) => c.encode(&vlen(item), file),
            None => Ok(vlen(item)),
        }
    }

    /// The absolute chunk (padded to three axes) of row-major cell index `cell`.
    pub fn chunk_of_cell(&self, mut cell: u64, dims: usize) -> [i64; 3] {
        let mut c = [0i64; 3];
        for a in (0..dims).rev() {
            c[a] = (cell % self.shape[a]) as i64 + self.origin[a];
            cell /= self.shape[a];
        }
        c
    }

    /// Writes one cell's item (vlen-encoded) of `array` for absolute `chunk`.
    pub fn put(&self, array: &Path, chunk: &[i64], item: &[u8]) -> Result<()> {
        if let Some(s) = &self.shard {
            let mut key = Vec::with_capacity(s.len());
            let mut inner = 0usize;
            for (a, &x) in chunk.iter().enumerate() {
                let cell = (x - self.origin[a]) as u64;
                key.push(cell / s[a]);
                inner = inner * s[a] as usize + (cell % s[a]) as usize;
            }
            let bytes = self.encode(array, item)?;
            let mut pending = self.pending.lock().expect("no panics while held");
            let cells = pending.entry(array.to_path_buf()).or_default();
            cells.entry(key).or_default().push((inner, bytes));
            return Ok(());
        }
        let mut p = array.join("c");
        for (a, &x) in chunk.iter().enumerate() {
            p.push((x - self.origin[a]).to_string());
        }
        let dir = p.parent().expect("a cell has a directory");
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let bytes = self.encode(&p, item)?;
        std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))
    }

    /// The shard holding absolute `chunk` (None when not sharded).
    pub fn shard_of(&self, chunk: &[i64]) -> Option<Vec<u64>> {
        let s = self.shard.as_ref()?;
        Some(
            chunk
                .iter()
                .enumerate()
                .map(|(a, &x)| (x - self.origin[a]) as u64 / s[a])
                .collect(),
        )
    }

    /// Writes shard `key` of `array` now (its cells are all put), so
    /// streaming writers hold one shard per thread, not the whole array.
    pub fn flush_shard(&self, array: &Path, key: &[u64]) -> Result<()> {
        let Some(shape) = &self.shard else {
            return Ok(());
        };
        let cells = self
            .pending
            .lock()
            .expect("no panics while held")
            .get_mut(array)
            .and_then(|m| m.remove(key));
        let Some(cells) = cells else {
            return Ok(());
        };
        let _one = self.writing.lock().expect("no panics while held");
        write_shard(array, key, shape, cells)
    }

    /// Writes shard `key` of every array with cells pending in it, for
    /// writers that know no later cell lands in that shard of any array.
    pub fn flush_shard_everywhere(&self, key: &[u64]) -> Result<()> {
        let arrays: Vec<PathBuf> = self
            .pending
            .lock()
            .expect("no panics while held")
            .iter()
            .filter(|(_, m)| m.contains_key(key))
            .map(|(a, _)| a.clone())
            .collect();
        arrays.iter().try_for_each(|a| self.flush_shard(a, key))
    }

    /// The shards covering chunks `first..first + count` on each axis.
    pub fn shards_of_block(&self, first: &[i64], count: &[i64]) -> Vec<Vec<u64>> {
        let Some(s) = &self.shard else {
            return vec![];
        };
        let lo: Vec<u64> = (0..first.len())
            .map(|a| (first[a] - self.origin[a]).max(0) as u64 / s[a])
            .collect();
        let hi: Vec<u64> = (0..first.len())
            .map(|a| (first[a] + count[a] - 1 - self.origin[a]).max(0) as u64 / s[a])
            .collect();
        let mut out = vec![vec![]];
        for a in 0..first.len() {
            out = out
                .into_iter()
                .flat_map(|p: Vec<u64>| {
                    (lo[a]..=hi[a]).map(move |k| {
                        let mut q = p.clone();
                        q.push(k);
                        q
                    })
                })
                .collect();
        }
        out
    }

    /// A per-chunk array's `zarr.json` with `attrs`, the nonempty chunk keys
    /// and the origin (when not zero).
    pub fn write_array(&self, array: &Path, nonempty: &[String], attrs: Value) -> Result<()> {
        if let Some(shape) = &self.shard {
            let cells = self
                .pending
                .lock()
                .expect("no panics while held")
                .remove(array)
                .unwrap_or_default();
            cells
                .into_par_iter()
                .try_for_each(|(key, cells)| -> Result<()> {
                    let mut p = array.join("c");
                    key.iter().for_each(|k| p.push(k.to_string()));
                    let dir = p.parent().expect("a shard has a directory");
                    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                    std::fs::write(&p, Shard::encode(shape, cells)).map_err(|e| Error::io(&p, e))
                })?;
        }
        let mut attrs = attrs;
        // Sorted as strings, as zarr-vectors stores them.
        let mut keys = nonempty.to_vec();
        keys.sort_unstable();
        let mut all = json!({"nonempty_chunks": keys});
        if let (Value::Object(a), Value::Object(extra)) = (&mut all, attrs.take()) {
            a.extend(extra);
        }
        if self.origin.iter().any(|&g| g != 0) {
            all["chunk_grid_origin"] = json!(self.origin);
        }
        let mut meta = cell_array(&self.shape, all);
        let mut codecs = vec![json!({"name": "vlen-bytes", "configuration": {}})];
        codecs.extend(self.compressor.iter().map(Compressor::metadata));
        meta["codecs"] = json!(codecs);
        if let Some(shape) = &self.shard {
            meta["chunk_grid"]["configuration"]["chunk_shape"] = json!(shape);
            meta["codecs"] = json!([Shard::codec(shape, codecs)]);
        }
        write_json(array, &meta)
    }

    /// The `vertices` and `vertex_fragments` arrays' metadata of a level.
    pub fn write_vertex_arrays(
        &self,
        level: &Path,
        nonempty: &[String],
        dtype: &str,
    ) -> Result<()> {
        self.write_array(
            &level.join("vertices"),
            nonempty,
            json!({"zv_array": "vertices", "dtype": dtype, "encoding": "raw"}),
        )?;
        self.write_array(
            &level.join("vertex_fragments"),
            nonempty,
            json!({"zv_array": "vertex_fragments", "encoding": "fragment_index_v1"}),
        )
    }
}

/// Writes shard `key` of `array` with `cells`, merged with the cells of the
/// shard file already written there (a shard flushed early keeps them).
fn write_shard(
    array: &Path,
    key: &[u64],
    shape: &[u64],
    mut cells: Vec<(usize, Vec<u8>)>,
) -> Result<()> {
    let mut p = array.join("c");
    key.iter().for_each(|k| p.push(k.to_string()));
    if let Ok(old) = std::fs::read(&p) {
        let earlier = Shard::decode_all(shape, &old)
            .ok_or_else(|| Error::format(&p, "a shard being extended cannot be decoded"))?;
        cells.extend(earlier);
    }
    let dir = p.parent().expect("a shard has a directory");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    std::fs::write(&p, Shard::encode(shape, cells)).map_err(|e| Error::io(&p, e))
}

/// An absolute chunk key, "i.j.k".
pub(crate) fn chunk_key(c: &[i64]) -> String {
    c.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// Checks `positions` (rows of `dims` finite coordinates); returns the row count.
pub(crate) fn check_positions(positions: &[f64], dims: usize) -> Result<usize> {
    if !(2..=3).contains(&dims) || !positions.len().is_multiple_of(dims) {
        return Err(Error::invalid(format!(
            "positions must be rows of 2 or 3 coordinates (got {dims})"
        )));
    }
    let n = positions.len() / dims;
    if n == 0 {
        return Err(Error::invalid("no points: the input is empty"));
    }
    if let Some(i) = positions.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(format!(
            "vertex {} has a non-finite coordinate ({})",
            i / dims,
            positions[i]
        )));
    }
    Ok(n)
}

/// Checks that each attribute is numeric, has `rows` rows and a name a Zarr
/// array can carry; `what` names the rows ("points", "polylines").
pub(crate) fn check_attributes(attributes: &[Attribute], rows: usize, what: &str) -> Result<()> {
    for a in attributes {
        let size = itemsize(a.dtype).ok_or_else(|| {
            Error::invalid(format!(
                "attribute {}: dtype {} is not numeric",
                a.name, a.dtype
            ))
        })?;
        if a.width == 0 || a.bytes.len() != rows * a.width * size {
            return Err(Error::invalid(format!(
                "attribute {} has {} values for {rows} {what}",
                a.name,
                a.bytes.len() / size
            )));
        }
        check_attribute_name(a.name)?;
    }
    Ok(())
}

/// Refuses attribute names that cannot name a Zarr array (empty, a path, hidden).
pub(crate) fn check_attribute_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Error::invalid(format!(
            "attribute name {name:?} cannot name a Zarr array"
        )));
    }
    Ok(())
}

/// Whether the options store float32 (else float64) coordinates.
pub(crate) fn stores_single(o: &PointsOptions) -> Result<bool> {
    match o.dtype.as_str() {
        "float32" => Ok(true),
        "float64" => Ok(false),
        d => Err(Error::invalid(format!("dtype {d}: float32 or float64"))),
    }
}

/// The layout shared by the writers: coordinates as stored (float32 rounds
/// them), their bounds, and the chunk and bin sizes.
pub(crate) struct Layout {
    pub shard: Option<Vec<u64>>,
    pub compressor: Option<Compressor>,
    pub dims: usize,
    pub single: bool,
    pub stored: Vec<f64>,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
    pub chunk: Vec<f64>,
    pub bin: Vec<f64>,
}

impl Layout {
    /// Checks the options and the target path, rounds the coordinates as
    /// stored and measures them.
    pub fn new(path: &Path, positions: &[f64], dims: usize, o: &PointsOptions) -> Result<Layout> {
        let single = stores_single(o)?;
        let stored: Vec<f64> = if single {
            positions.iter().map(|&v| v as f32 as f64).collect()
        } else {
            positions.to_vec()
        };
        let mut lo = vec![f64::INFINITY; dims];
        let mut hi = vec![f64::NEG_INFINITY; dims];
        for r in stored.chunks_exact(dims) {
            for a in 0..dims {
                lo[a] = lo[a].min(r[a]);
                hi[a] = hi[a].max(r[a]);
            }
        }
        let mut lay = Layout::with_bounds(path, dims, lo, hi, o)?;
        lay.stored = stored;
        Ok(lay)
    }

    /// The layout of a store whose stored coordinates span `lo..=hi` (no
    /// coordinates held).
    pub fn with_bounds(
        path: &Path,
        dims: usize,
        lo: Vec<f64>,
        hi: Vec<f64>,
        o: &PointsOptions,
    ) -> Result<Layout> {
        let single = stores_single(o)?;
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(Error::invalid(format!(
                "{} already exists; remove it or choose another store path",
                path.display()
            )));
        }
        let chunk = match &o.chunk_shape {
            Some(c) => c.clone(),
            None => {
                let extent = (0..dims).map(|a| hi[a] - lo[a]).fold(0.0, f64::max);
                let top = hi.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                vec![extent + top.abs() + 1.0; dims]
            }
        };
        let bin = o.bin_shape.clone().unwrap_or_else(|| chunk.clone());
        if chunk.len() != dims || bin.len() != dims {
            return Err(Error::invalid(format!(
                "chunk and bin shapes need {dims} values"
            )));
        }
        if let Some(v) = chunk
            .iter()
            .chain(&bin)
            .find(|v| !(v.is_finite() && **v > 0.0))
        {
            return Err(Error::invalid(format!(
                "chunk and bin sizes must be positive, not {v}"
            )));
        }
        // Every chunk lists each of its bins as a fragment (empty ones too), so
        // a chunk holds a whole number of bins, and not absurdly many.
        let mut bins_per_chunk = 1.0;
        for a in 0..dims {
            let r = chunk[a] / bin[a];
            if r < 1.0 {
                return Err(Error::invalid("a bin must not be larger than its chunk"));
            }
            if (r - r.round()).abs() > 1e-9 * r {
                return Err(Error::invalid(format!(
                    "the chunk ({}) must hold a whole number of bins ({}) on axis {a}",
                    chunk[a], bin[a]
                )));
            }
            bins_per_chunk *= r.round();
        }
        if bins_per_chunk > MAX_BINS_PER_CHUNK as f64 {
            return Err(Error::invalid(format!(
                "{bins_per_chunk:e} bins per chunk (at most {MAX_BINS_PER_CHUNK}): choose a larger bin shape"
            )));
        }
        // Cells per axis in float64: an absurd chunk on wide data must not
        // overflow the grid (or ask for a file per grain of sand).
        let cells: f64 = (0..dims)
            .map(|a| (hi[a] / chunk[a]).floor() - (lo[a] / chunk[a]).floor() + 1.0)
            .product();
        if cells.is_nan() || cells > (1u64 << 62) as f64 {
            return Err(Error::invalid(format!(
                "a grid of {cells:e} chunks is too large: choose a larger chunk shape"
            )));
        }
        if let Some(s) = &o.shard_shape {
            if s.len() != dims || s.iter().any(|&v| v == 0 || v > 4096) {
                return Err(Error::invalid(format!(
                    "shard shape {s:?}: {dims} counts of chunk cells between 1 and 4096"
                )));
            }
            // A shard's index has 16 bytes per cell, written whole.
            let cells: u64 = s.iter().product();
            if cells > MAX_SHARD_CELLS {
                return Err(Error::invalid(format!(
                    "shard shape {s:?} has {cells} chunk cells, over {MAX_SHARD_CELLS} (its index alone \
                     would take {} MiB): choose a smaller shard shape",
                    (cells * 16) >> 20
                )));
            }
        }
        Ok(Layout {
            shard: o.shard_shape.clone(),
            compressor: o.compressor.clone(),
            dims,
            single,
            stored: vec![],
            lo,
            hi,
            chunk,
            bin,
        })
    }

    /// The chunk of stored row `i`, padded to three axes.
    pub fn chunk_of(&self, i: usize) -> [i64; 3] {
        let mut c = [0i64; 3];
        for a in 0..self.dims {
            c[a] = (self.stored[i * self.dims + a] / self.chunk[a]).floor() as i64;
        }
        c
    }

    /// Little-endian bytes of stored rows `rows`, appended to `out`.
    pub fn put_rows(&self, rows: std::ops::Range<usize>, out: &mut Vec<u8>) {
        for &x in &self.stored[rows.start * self.dims..rows.end * self.dims] {
            if self.single {
                out.extend((x as f32).to_le_bytes());
            } else {
                out.extend(x.to_le_bytes());
            }
        }
    }

    pub fn grid(&self) -> CellGrid {
        CellGrid::new(&self.lo, &self.hi, &self.chunk)
            .sharded(self.shard.clone())
            .compressed(self.compressor.clone())
    }

    /// The root group's metadata for a new store of `geometry` with level 0.
    pub fn root(&self, path: &Path, geometry: &str, base_bin: Option<&Vec<f64>>) -> Value {
        let names = ["x", "y", "z"];
        let axes: Vec<Value> = (0..self.dims)
            .map(|a| json!({"name": names[a], "type": "space"}))
            .collect();
        let mut zv = json!({"zv_version": VERSION, "format_capabilities": [], "chunk_shape": self.chunk,
            "bounds": [self.lo, self.hi], "geometry_types": [geometry],
            "links_convention": "implicit_sequential", "object_index_convention": "standard",
            "cross_chunk_strategy": "explicit_links"});
        if let Some(b) = base_bin {
            zv["base_bin_shape"] = json!(b);
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        group(json!({
            "zarr_vectors": zv,
            "multiscales": [{"version": "0.4", "name": "default", "axes": axes,
                "datasets": [{"path": "0", "coordinateTransformations": [
                    {"type": "scale", "scale": vec![1.0; self.dims]},
                    {"type": "translation", "translation": self.bin.iter().map(|b| b / 2.0).collect::<Vec<_>>()}]}],
                "metadata": {"format": "zarr_vectors"}}],
            "ome": {"version": "0.6", "type": "collection", "name": name,
                "attributes": {"scene": {"coordinateSystems": [{"name": "world", "axes": axes}],
                    "coordinateTransformations": []}},
                "nodes": [{"type": "zv:level", "name": "0"}]},
        }))
    }
}

/// The `vertex_attributes/<name>` arrays' metadata of a level.
pub(crate) fn write_attribute_arrays(
    grid: &CellGrid,
    level: &Path,
    attributes: &[Attribute],
    nonempty: &[String],
) -> Result<()> {
    if attributes.is_empty() {
        return Ok(());
    }
    write_json(&level.join("vertex_attributes"), &group(json!({})))?;
    for a in attributes {
        let mut attrs = json!({"zv_array": "attribute", "name": a.name, "dtype": a.dtype,
            "row_shape": if a.width > 1 { vec![a.width] } else { vec![] }});
        if a.width > 1 {
            attrs["channel_names"] =
                json!((0..a.width).map(|i| format!("ch{i}")).collect::<Vec<_>>());
        }
        grid.write_array(
            &level.join("vertex_attributes").join(a.name),
            nonempty,
            attrs,
        )?;
    }
    Ok(())
}

/// Renames the finished `tmp` store to `path`, or removes it after a failure.
pub(crate) fn publish(tmp: &Path, path: &Path, built: Result<()>) -> Result<()> {
    match built {
        Ok(()) => std::fs::rename(tmp, path).map_err(|e| Error::io(path, e)),
        Err(e) => {
            let _ = std::fs::remove_dir_all(tmp);
            Err(e)
        }
    }
}

/// A fresh directory beside `path` for building the store.
pub(crate) fn temp_beside(path: &Path) -> Result<PathBuf> {
    voxfield_io::safety::refuse_url(path)?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for k in 0..1000u32 {
        let t = parent.join(format!(".{stem}.partial-{}-{k}", std::process::id()));
        match std::fs::create_dir(&t) {
            Ok(()) => return Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&t, e)),
        }
    }
    Err(Error::invalid(format!(
        "no temporary name free beside {}",
        path.display()
    )))
}

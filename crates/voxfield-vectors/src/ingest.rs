//! Streaming point ingestion in bounded memory: the input is read block by
//! block twice — once for its bounds (and to refuse bad coordinates before
//! anything is written), once to spill each point's record (coordinates as
//! stored, then its attributes) to a file per chunk beside the store — and
//! then each chunk is laid out on its own, in parallel, as zarr-vectors'
//! `write_points` lays it out: rows bin by bin (bins row-major, input order
//! within a bin), every bin of the chunk a range fragment, empty ones
//! included. Memory is the block, the spill buffers (`spill::SPILL_BUDGET`) and
//! one chunk per thread, whatever the number of points.

use std::ops::Range;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use voxfield_core::{Error, Result};

use crate::spill::{spill_budget, Spill};
use crate::store::itemsize;
use crate::write::{
    check_attribute_name, check_attributes, chunk_key, fragment_index, publish, stores_single,
    temp_beside, write_attribute_arrays, write_json, write_level_zero, Attribute, Layout,
    PointsOptions,
};
use voxfield_core::work::Watch;

/// Points read per block.
const BLOCK: usize = 1 << 18;
/// A vertex attribute's name and row layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeSpec {
    pub name: String,
    pub dtype: String,
    pub width: usize,
}

/// Points read by row ranges (in memory, or a file read piecewise).
pub trait PointInput: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn dims(&self) -> usize;
    fn attributes(&self) -> Vec<AttributeSpec>;
    /// Appends rows `rows`: coordinates (row-major) to `coords`, and each
    /// attribute's little-endian bytes to `attrs[i]`.
    fn read(&self, rows: Range<usize>, coords: &mut Vec<f64>, attrs: &mut [Vec<u8>]) -> Result<()>;
}

/// Coordinates held in memory, as float32 or float64.
#[derive(Clone, Copy, Debug)]
pub enum Coords<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl Coords<'_> {
    fn len(&self) -> usize {
        match self {
            Coords::F32(v) => v.len(),
            Coords::F64(v) => v.len(),
        }
    }
}

/// Points and attributes held in memory.
pub struct SliceInput<'a> {
    pub coords: Coords<'a>,
    pub dims: usize,
    pub attributes: &'a [Attribute<'a>],
}

impl PointInput for SliceInput<'_> {
    fn len(&self) -> usize {
        self.coords.len() / self.dims.max(1)
    }
    fn dims(&self) -> usize {
        self.dims
    }
    fn attributes(&self) -> Vec<AttributeSpec> {
        self.attributes
            .iter()
            .map(|a| AttributeSpec {
                name: a.name.to_string(),
                dtype: a.dtype.to_string(),
                width: a.width,
            })
            .collect()
    }
    fn read(&self, rows: Range<usize>, coords: &mut Vec<f64>, attrs: &mut [Vec<u8>]) -> Result<()> {
        let (s, e) = (rows.start * self.dims, rows.end * self.dims);
        match self.coords {
            Coords::F32(v) => coords.extend(v[s..e].iter().map(|&x| x as f64)),
            Coords::F64(v) => coords.extend_from_slice(&v[s..e]),
        }
        for (a, out) in self.attributes.iter().zip(attrs) {
            let row = a.width * itemsize(a.dtype).expect("checked");
            out.extend_from_slice(&a.bytes[rows.start * row..rows.end * row]);
        }
        Ok(())
    }
}

/// Checks the input's shape, attributes and coordinates in one pass and
/// returns the bounds of the coordinates as stored.
fn bounds(input: &dyn PointInput, single: bool) -> Result<(Vec<f64>, Vec<f64>)> {
    let (n, dims) = (input.len(), input.dims());
    if !(2..=3).contains(&dims) {
        return Err(Error::invalid(format!(
            "positions must be rows of 2 or 3 coordinates (got {dims})"
        )));
    }
    if n == 0 {
        return Err(Error::invalid("no points: the input is empty"));
    }
    for a in input.attributes() {
        if itemsize(&a.dtype).is_none() || a.width == 0 {
            return Err(Error::invalid(format!(
                "attribute {}: dtype {} is not numeric",
                a.name, a.dtype
            )));
        }
        check_attribute_name(&a.name)?;
    }
    let mut lo = vec![f64::INFINITY; dims];
    let mut hi = vec![f64::NEG_INFINITY; dims];
    let mut coords = Vec::with_capacity(BLOCK * dims);
    let mut none: Vec<Vec<u8>> = vec![];
    for start in (0..n).step_by(BLOCK) {
        coords.clear();
        input.read(start..(start + BLOCK).min(n), &mut coords, &mut none)?;
        if let Some(i) = coords.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "vertex {} has a non-finite coordinate ({})",
                start + i / dims,
                coords[i]
            )));
        }
        for r in coords.chunks_exact(dims) {
            for a in 0..dims {
                let v = if single { r[a] as f32 as f64 } else { r[a] };
                lo[a] = lo[a].min(v);
                hi[a] = hi[a].max(v);
            }
        }
    }
    Ok((lo, hi))
}

/// Writes the points of `input` as a new store at `path` (refused if
/// something is there), streaming. Returns the number of chunks.
pub fn write_points_from(path: &Path, input: &dyn PointInput, o: &PointsOptions) -> Result<usize> {
    write_points_watched(path, input, o, &Watch::none())
}

/// `write_points_from` reporting progress ("reading", then "chunks") and
/// stopping (nothing written) when `watch` says so.
pub fn write_points_watched(
    path: &Path,
    input: &dyn PointInput,
    o: &PointsOptions,
    watch: &Watch,
) -> Result<usize> {
    let single = stores_single(o)?;
    let (lo, hi) = bounds(input, single)?;
    let (n, dims) = (input.len(), input.dims());
    let lay = Layout::with_bounds(path, dims, lo, hi, o)?;
    let (chunk, bin) = (&lay.chunk, &lay.bin);
    let per_chunk: Vec<i64> = chunk
        .iter()
        .zip(bin)
        // Python's round, as zarr-vectors computes bins per chunk: halves to even.
        .map(|(c, b)| (c / b).round_ties_even() as i64)
        .collect();
    if per_chunk.iter().any(|&p| p < 1) {
        return Err(Error::invalid("a bin must not be larger than its chunk"));
    }
    let total_bins: i64 = per_chunk.iter().product();
    if total_bins > 1 << 20 {
        return Err(Error::invalid(format!(
            "{total_bins} bins per chunk is too many"
        )));
    }
    let specs = input.attributes();
    let vsize = if single { 4 } else { 8 };
    let widths: Vec<usize> = specs
        .iter()
        .map(|a| a.width * itemsize(&a.dtype).expect("checked"))
        .collect();
    let record = dims * vsize + widths.iter().sum::<usize>();
    let grid = lay.grid();
    let tmp = temp_beside(path)?;
    let result = (|| -> Result<Vec<[i64; 3]>> {
        let mut spill: Spill<[i64; 3]> =
            Spill::new(tmp.join(".spill"), spill_budget(), |c| chunk_key(c));
        let mut coords = Vec::with_capacity(BLOCK * dims);
        let mut attrs: Vec<Vec<u8>> = vec![vec![]; specs.len()];
        for start in (0..n).step_by(BLOCK) {
            watch.check()?;
            (watch.progress)("reading", start as u64, n as u64);
            let end = (start + BLOCK).min(n);
            coords.clear();
            attrs.iter_mut().for_each(Vec::clear);
            input.read(start..end, &mut coords, &mut attrs)?;
            for (a, (spec, w)) in attrs.iter().zip(specs.iter().zip(&widths)) {
                if a.len() != (end - start) * w {
                    return Err(Error::invalid(format!(
                        "attribute {} has {} bytes for {} points",
                        spec.name,
                        a.len(),
                        end - start
                    )));
                }
            }
            // Each point's chunk cell, the block's points sorted by cell (input
            // order kept within a cell), each cell's records built in parallel.
            let mut keyed: Vec<(u64, u32)> = coords
                .par_chunks_exact(dims)
                .enumerate()
                .map(|(i, r)| {
                    let mut cell = 0u64;
                    for a in 0..dims {
                        let v = if single { r[a] as f32 as f64 } else { r[a] };
                        let c = ((v / bin[a]).floor() as i64).div_euclid(per_chunk[a]);
                        cell = cell * grid.shape[a] + (c - grid.origin[a]) as u64;
                    }
                    (cell, i as u32)
                })
                .collect();
            keyed.par_sort_unstable();
            let mut runs = vec![];
            let mut s = 0;
            while s < keyed.len() {
                let e = s + keyed[s..].iter().take_while(|k| k.0 == keyed[s].0).count();
                runs.push((s, e));
                s = e;
            }
            let built: Vec<(u64, Vec<u8>)> = runs
                .par_iter()
                .map(|&(s, e)| {
                    let mut rec = Vec::with_capacity((e - s) * record);
                    for &(_, i) in &keyed[s..e] {
                        let i = i as usize;
                        for &v in &coords[i * dims..(i + 1) * dims] {
                            if single {
                                rec.extend((v as f32).to_le_bytes());
                            } else {
                                rec.extend(v.to_le_bytes());
                            }
                        }
                        for (a, w) in attrs.iter().zip(&widths) {
                            rec.extend_from_slice(&a[i * w..(i + 1) * w]);
                        }
                    }
                    (keyed[s].0, rec)
                })
                .collect();
            for (cell, rec) in built {
                spill.push(grid.chunk_of_cell(cell, dims), &rec)?;
            }
        }
        let mut chunks: Vec<[i64; 3]> = spill.keys();
        chunks.sort_unstable();
        let level = tmp.join("0");
        let attr_dirs: Vec<PathBuf> = specs
            .iter()
            .map(|a| level.join("vertex_attributes").join(&a.name))
            .collect();
        let finished = std::sync::atomic::AtomicU64::new(0);
        let lay_out = |c: &[i64; 3]| -> Result<()> {
            watch.check()?;
            let k = finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (watch.progress)("chunks", k, chunks.len() as u64);
            let bytes = spill.take(c)?;
            let rows = bytes.len() / record;
            // Each record's bin within the chunk, then a stable counting sort.
            let frag: Vec<usize> = bytes
                .chunks_exact(record)
                .map(|r| {
                    let mut f = 0i64;
                    for a in 0..dims {
                        let v = if single {
                            f32::from_le_bytes(r[a * 4..a * 4 + 4].try_into().expect("4")) as f64
                        } else {
                            f64::from_le_bytes(r[a * 8..a * 8 + 8].try_into().expect("8"))
                        };
                        let b = (v / bin[a]).floor() as i64;
                        f = f * per_chunk[a] + (b - c[a] * per_chunk[a]);
                    }
                    f as usize
                })
                .collect();
            let mut counts = vec![0usize; total_bins as usize];
            frag.iter().for_each(|&f| counts[f] += 1);
            let mut at: Vec<usize> = counts
                .iter()
                .scan(0, |s, &c| {
                    let x = *s;
                    *s += c;
                    Some(x)
                })
                .collect();
            let mut order = vec![0usize; rows];
            for (i, &f) in frag.iter().enumerate() {
                order[at[f]] = i;
                at[f] += 1;
            }
            let cell = &c[..dims];
            let vlen = dims * vsize;
            let mut v = Vec::with_capacity(rows * vlen);
            order
                .iter()
                .for_each(|&i| v.extend_from_slice(&bytes[i * record..i * record + vlen]));
            grid.put(&level.join("vertices"), cell, &v)?;
            grid.put(
                &level.join("vertex_fragments"),
                cell,
                &fragment_index(&counts),
            )?;
            let mut off = vlen;
            for (w, dir) in widths.iter().zip(&attr_dirs) {
                let mut item = Vec::with_capacity(rows * w);
                order.iter().for_each(|&i| {
                    item.extend_from_slice(&bytes[i * record + off..i * record + off + w])
                });
                grid.put(dir, cell, &item)?;
                off += w;
            }
            Ok(())
        };
        // Chunks grouped by shard (one group each when not sharded): a
        // shard's file is written as soon as its chunks are laid out.
        let mut by_shard: std::collections::BTreeMap<Vec<u64>, Vec<[i64; 3]>> =
            std::collections::BTreeMap::new();
        for c in &chunks {
            let key = grid
                .shard_of(&c[..dims])
                .unwrap_or_else(|| c[..dims].iter().map(|&x| x as u64).collect());
            by_shard.entry(key).or_default().push(*c);
        }
        let arrays: Vec<PathBuf> = [level.join("vertices"), level.join("vertex_fragments")]
            .into_iter()
            .chain(attr_dirs.iter().cloned())
            .collect();
        by_shard
            .par_iter()
            .try_for_each(|(key, group)| -> Result<()> {
                group.iter().try_for_each(&lay_out)?;
                if grid.shard.is_some() {
                    for a in &arrays {
                        grid.flush_shard(a, key)?;
                    }
                }
                Ok(())
            })?;

        spill.remove()?;
        let nonempty: Vec<String> = chunks.iter().map(|c| chunk_key(&c[..dims])).collect();
        grid.write_vertex_arrays(&level, &nonempty, &o.dtype)?;
        let owned: Vec<Attribute> = specs
            .iter()
            .map(|a| Attribute {
                name: &a.name,
                dtype: &a.dtype,
                width: a.width,
                bytes: &[],
            })
            .collect();
        write_attribute_arrays(&grid, &level, &owned, &nonempty)?;
        let mut present = vec!["vertices"];
        if !specs.is_empty() {
            present.push("vertex_attributes");
        }
        write_level_zero(&level, n, &present)?;
        write_json(&tmp, &lay.root(path, "point_cloud", o.bin_shape.as_ref()))?;
        Ok(chunks)
    })();
    let count = result.as_ref().map_or(0, Vec::len);
    publish(&tmp, path, result.map(|_| ()))?;
    Ok(count)
}

/// Drops mapped pages of bytes `start..end` (whole pages only) from this
/// process's resident memory once read; they stay in the page cache, so a
/// file streamed through a map does not grow the resident set.
pub(crate) fn release(map: &memmap2::Mmap, start: usize, end: usize) {
    const PAGE: usize = 4096;
    let (a, b) = (start.div_ceil(PAGE) * PAGE, end / PAGE * PAGE);
    if b > a {
        // SAFETY: a read-only file mapping: dropped pages are read again from
        // the file if touched, so no data is lost.
        let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, a, b - a) };
    }
}

/// An (N, C) float32 or float64 `.npy` read through a memory map, so a file
/// larger than memory streams: the first `dims` columns are coordinates,
/// the others attributes (named in order), kept in the file's dtype.
pub struct NpyTable {
    map: memmap2::Mmap,
    offset: usize,
    rows: usize,
    cols: usize,
    single: bool,
    dims: usize,
    names: Vec<String>,
}

impl NpyTable {
    pub fn open(path: &Path, dims: usize, names: &[String]) -> Result<NpyTable> {
        use voxfield_core::{DType, Endian};
        let h = voxfield_io::npy::read_header(path)?;
        let single = match h.dtype {
            DType::F32 => true,
            DType::F64 => false,
            d => {
                return Err(Error::format(
                    path,
                    format!("points must be float32 or float64, not {d}"),
                ))
            }
        };
        if h.endian != Endian::Little || h.fortran_order {
            return Err(Error::format(
                path,
                "points must be little-endian and C-ordered",
            ));
        }
        let (rows, cols) = match h.shape.as_slice() {
            [r, c] => (*r, *c),
            s => {
                return Err(Error::format(
                    path,
                    format!("points must have shape (N, C), got {s:?}"),
                ))
            }
        };
        if cols != dims + names.len() {
            return Err(Error::format(
                path,
                format!(
                    "{cols} columns, but {dims} coordinates and {} attribute names make {}",
                    names.len(),
                    dims + names.len()
                ),
            ));
        }
        voxfield_io::safety::regular_input(path)?;
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the file is only read; a concurrent truncation is the
        // usual caveat of memory-mapped input.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let size = if single { 4 } else { 8 };
        let offset = h.data_offset as usize;
        let need = rows
            .checked_mul(cols * size)
            .and_then(|b| b.checked_add(offset));
        if need.is_none_or(|n| n > map.len()) {
            return Err(Error::format(
                path,
                format!(
                    "truncated: the header claims {rows} × {cols} values, the file holds {} bytes",
                    map.len()
                ),
            ));
        }
        Ok(NpyTable {
            map,
            offset,
            rows,
            cols,
            single,
            dims,
            names: names.to_vec(),
        })
    }

    fn value(&self, row: usize, col: usize) -> f64 {
        let i = self.offset + (row * self.cols + col) * if self.single { 4 } else { 8 };
        if self.single {
            f32::from_le_bytes(self.map[i..i + 4].try_into().expect("4")) as f64
        } else {
            f64::from_le_bytes(self.map[i..i + 8].try_into().expect("8"))
        }
    }
}

impl PointInput for NpyTable {
    fn len(&self) -> usize {
        self.rows
    }
    fn dims(&self) -> usize {
        self.dims
    }
    fn attributes(&self) -> Vec<AttributeSpec> {
        let dtype = if self.single { "float32" } else { "float64" };
        self.names
            .iter()
            .map(|n| AttributeSpec {
                name: n.clone(),
                dtype: dtype.into(),
                width: 1,
            })
            .collect()
    }
    fn read(&self, rows: Range<usize>, coords: &mut Vec<f64>, attrs: &mut [Vec<u8>]) -> Result<()> {
        let size = if self.single { 4 } else { 8 };
        let span = (
            self.offset + rows.start * self.cols * size,
            self.offset + rows.end * self.cols * size,
        );
        for r in rows {
            for c in 0..self.dims {
                coords.push(self.value(r, c));
            }
            for (k, out) in attrs.iter_mut().enumerate() {
                let i = self.offset + (r * self.cols + self.dims + k) * size;
                out.extend_from_slice(&self.map[i..i + size]);
            }
        }
        release(&self.map, span.0, span.1);
        Ok(())
    }
}

/// Writes `positions` (n rows of `dims`) and `attributes` as a new store at
/// `path` (refused if something is there). Returns the number of chunks.
pub fn write_points(
    path: &Path,
    positions: &[f64],
    dims: usize,
    attributes: &[Attribute],
    o: &PointsOptions,
) -> Result<usize> {
    write_points_coords(path, Coords::F64(positions), dims, attributes, o)
}

/// `write_points` for float32 or float64 coordinates.
pub fn write_points_coords(
    path: &Path,
    coords: Coords,
    dims: usize,
    attributes: &[Attribute],
    o: &PointsOptions,
) -> Result<usize> {
    let len = match coords {
        Coords::F32(v) => v.len(),
        Coords::F64(v) => v.len(),
    };
    if !(2..=3).contains(&dims) || !len.is_multiple_of(dims) {
        return Err(Error::invalid(format!(
            "positions must be rows of 2 or 3 coordinates (got {dims})"
        )));
    }
    check_attributes(attributes, len / dims, "points")?;
    let input = SliceInput {
        coords,
        dims,
        attributes,
    };
    write_points_from(path, &input, o)
}

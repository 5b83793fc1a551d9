//! Per-chunk `variable_length_bytes` arrays: one item per chunk cell, stored
//! as `<array>/c/<i>/<j>/<k>` (cell = absolute chunk − `chunk_grid_origin`),
//! encoded `u32 n_items` then, per item, `u32 length` and the bytes
//! (`vlen-bytes`), optionally zstd- or gzip-compressed after that.

use std::path::{Path, PathBuf};

use serde_json::Value;
use voxfield_core::{Error, Result};

use crate::codecs::Compressor;
use crate::location::Location;

/// Items a cell may claim (each cell holds one; more is corruption).
const MAX_ITEMS: u32 = 1 << 20;

/// One per-chunk array of a level.
#[derive(Clone, Debug)]
pub struct CellArray {
    /// The array's node (local or remote).
    pub node: Location,
    /// Its path or URL, for messages.
    pub path: PathBuf,
    /// The array's `attributes` (role, dtype, row shape, …).
    pub attrs: Value,
    pub shape: Vec<u64>,
    /// Absolute chunk coordinates of cell (0, …, 0).
    pub origin: Vec<i64>,
    /// Absolute keys of the cells that hold data.
    pub nonempty: Vec<Vec<i64>>,
    /// Bytes→bytes codecs after `vlen-bytes`, in order.
    pub compression: Vec<Compressor>,
    /// Cells per shard and the index layout, for `sharding_indexed` arrays.
    pub shard: Option<Shard>,
}

/// A `sharding_indexed` layout: shards of `shape` cells (one item each),
/// each file the cells' encodings then (or first) an index of
/// (offset, length) u64 pairs in row-major cell order, empty cells as
/// (2⁶⁴−1, 2⁶⁴−1), optionally followed by its CRC32C.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub shape: Vec<u64>,
    index_at_end: bool,
    crc: bool,
}

impl Shard {
    fn parse(meta: &Value, meta_path: &Path) -> Result<Shard> {
        let c = &meta["codecs"][0]["configuration"];
        let ones = c["chunk_shape"]
            .as_array()
            .is_some_and(|s| s.iter().all(|v| v.as_u64() == Some(1)));
        if !ones {
            return Err(bad(
                meta_path,
                "sharded cells must be one item each (inner chunk_shape of 1s)",
            ));
        }
        let shape: Vec<u64> = meta["chunk_grid"]["configuration"]["chunk_shape"]
            .as_array()
            .and_then(|s| s.iter().map(Value::as_u64).collect::<Option<Vec<_>>>())
            .filter(|s| s.iter().all(|&v| v > 0))
            .ok_or_else(|| bad(meta_path, "no shard shape (chunk_grid chunk_shape)"))?;
        let names: Vec<&str> = c["index_codecs"]
            .as_array()
            .map(|v| v.iter().filter_map(|x| x["name"].as_str()).collect())
            .unwrap_or_default();
        let crc = match names.as_slice() {
            ["bytes"] => false,
            ["bytes", "crc32c"] => true,
            other => {
                return Err(bad(
                    meta_path,
                    format!("shard index codecs {other:?} (bytes, then crc32c)"),
                ))
            }
        };
        if c["index_codecs"][0]["configuration"]["endian"]
            .as_str()
            .unwrap_or("little")
            != "little"
        {
            return Err(bad(meta_path, "shard indexes must be little-endian"));
        }
        let index_at_end = c["index_location"].as_str().unwrap_or("end") != "start";
        Ok(Shard {
            shape,
            index_at_end,
            crc,
        })
    }

    /// The sharding codec's metadata for `shape` cells per shard, each
    /// cell encoded by `codecs`.
    pub fn codec(shape: &[u64], codecs: Vec<Value>) -> Value {
        serde_json::json!({"name": "sharding_indexed", "configuration": {
            "chunk_shape": vec![1; shape.len()],
            "codecs": codecs,
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
            "index_location": "end"}})
    }

    /// Bytes of a shard's index (with its checksum).
    fn index_len(&self) -> usize {
        let n: usize = self.shape.iter().product::<u64>() as usize;
        n * 16 + if self.crc { 4 } else { 0 }
    }

    /// Where cell `inner` lies in a shard file of `len` bytes, from its index
    /// (None when the cell is empty).
    fn locate(
        &self,
        file: &Path,
        index: &[u8],
        len: u64,
        inner: usize,
    ) -> Result<Option<(u64, u64)>> {
        let n = self.index_len() / 16;
        if self.crc {
            let (body, sum) = index.split_at(n * 16);
            if crc32c(body).to_le_bytes() != sum {
                return Err(bad(file, "shard index checksum (crc32c) mismatch"));
            }
        }
        let at = |i: usize| u64::from_le_bytes(index[i..i + 8].try_into().expect("8"));
        let (off, size) = (at(inner * 16), at(inner * 16 + 8));
        if off == u64::MAX && size == u64::MAX {
            return Ok(None);
        }
        match off.checked_add(size) {
            Some(end) if end <= len => Ok(Some((off, size))),
            _ => Err(bad(
                file,
                format!("shard cell {inner} claims bytes {off}+{size} of {len}"),
            )),
        }
    }

    /// One cell of shard `rel` of `array`, reading only its index (a
    /// suffix or prefix read) and the cell's bytes (a ranged read).
    fn read_cell(&self, array: &Location, rel: &str, inner: usize) -> Result<Option<Vec<u8>>> {
        let file = array.path().join(rel);
        let need = self.index_len() as u64;
        let truncated = || {
            bad(
                &file,
                format!("truncated shard: its index alone needs {need} bytes"),
            )
        };
        let (index, len) = if self.index_at_end {
            // A remote object's length is not known without a HEAD: the
            // cell's range read fails if the index points past the end.
            let len = match array.is_remote() {
                true => u64::MAX,
                false => array.size(rel)?.ok_or_else(truncated)?,
            };
            if len < need {
                return Err(truncated());
            }
            (array.get_range(rel, None, need)?, len)
        } else {
            (array.get_range(rel, Some(0), need)?, u64::MAX)
        };
        let Some(index) = index else {
            return Ok(None);
        };
        if index.len() as u64 != need {
            return Err(truncated());
        }
        let Some((off, size)) = self.locate(&file, &index, len, inner)? else {
            return Ok(None);
        };
        if size == 0 {
            return Ok(Some(vec![]));
        }
        array
            .get_range(rel, Some(off), size)?
            .ok_or_else(|| bad(&file, "the shard vanished while it was read"))
            .map(Some)
    }

    /// The bytes of one cell of a whole shard file in memory.
    #[cfg(test)]
    fn cell<'a>(&self, file: &Path, b: &'a [u8], inner: usize) -> Result<Option<&'a [u8]>> {
        let need = self.index_len();
        if b.len() < need {
            return Err(bad(
                file,
                format!(
                    "truncated shard: {} bytes, its index alone needs {need}",
                    b.len()
                ),
            ));
        }
        let index = if self.index_at_end {
            &b[b.len() - need..]
        } else {
            &b[..need]
        };
        Ok(self
            .locate(file, index, b.len() as u64, inner)?
            .map(|(o, n)| &b[o as usize..(o + n) as usize]))
    }

    /// The cells of a shard file this crate wrote (index at the end, crc32c).
    pub fn decode_all(shape: &[u64], b: &[u8]) -> Option<Vec<(usize, Vec<u8>)>> {
        let n: usize = shape.iter().product::<u64>() as usize;
        let index = b.get(b.len().checked_sub(n * 16 + 4)?..b.len() - 4)?;
        let mut out = vec![];
        for i in 0..n {
            let off = u64::from_le_bytes(index[i * 16..i * 16 + 8].try_into().ok()?);
            let len = u64::from_le_bytes(index[i * 16 + 8..i * 16 + 16].try_into().ok()?);
            if off != u64::MAX {
                out.push((i, b.get(off as usize..(off + len) as usize)?.to_vec()));
            }
        }
        Some(out)
    }

    /// A shard file of `cells` (row-major index within the shard, encoded cell bytes).
    /// The cells go in Morton order, as zarr-python lays a shard out, so
    /// the files are byte-identical to its own.
    pub fn encode(shape: &[u64], mut cells: Vec<(usize, Vec<u8>)>) -> Vec<u8> {
        cells.sort_by_key(|c| morton(c.0 as u64, shape));
        let n: usize = shape.iter().product::<u64>() as usize;
        let mut index = vec![u64::MAX; 2 * n];
        let mut out =
            Vec::with_capacity(cells.iter().map(|c| c.1.len()).sum::<usize>() + 16 * n + 4);
        for (i, bytes) in cells {
            index[2 * i] = out.len() as u64;
            index[2 * i + 1] = bytes.len() as u64;
            out.extend(bytes);
        }
        let body: Vec<u8> = index.iter().flat_map(|v| v.to_le_bytes()).collect();
        out.extend(&body);
        out.extend(crc32c(&body).to_le_bytes());
        out
    }
}

/// The Morton code of row-major cell `index` in a shard of `shape` cells,
/// as zarr-python's `decode_morton` inverts it: bit k of every axis in turn,
/// the first axis lowest, axes out of bits skipped.
fn morton(mut index: u64, shape: &[u64]) -> u64 {
    let mut coords = vec![0u64; shape.len()];
    for a in (0..shape.len()).rev() {
        coords[a] = index % shape[a];
        index /= shape[a];
    }
    let bits: Vec<u32> = shape
        .iter()
        .map(|&c| 64 - (c.max(1) - 1).leading_zeros())
        .collect();
    let (mut code, mut at) = (0u64, 0u32);
    for bit in 0..bits.iter().copied().max().unwrap_or(0) {
        for (a, &b) in bits.iter().enumerate() {
            if bit < b {
                code |= ((coords[a] >> bit) & 1) << at;
                at += 1;
            }
        }
    }
    code
}

/// CRC-32C (Castagnoli), as Zarr's `crc32c` codec computes it.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8)
    })
}

fn bad(path: &Path, m: impl Into<String>) -> Error {
    Error::format(path, m.into())
}

/// Reads and parses the `zarr.json` of a local node.
pub fn read_json(dir: &Path) -> Result<Value> {
    Location::local(dir).json()
}

/// Names of the Zarr nodes directly under a local `dir` (children with a
/// `zarr.json`), sorted; none when `dir` is absent.
pub fn child_nodes(dir: &Path) -> Vec<String> {
    Location::local(dir)
        .children()
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// An absolute chunk key "i.j.k" (components may be negative).
pub fn parse_key(key: &str, dims: usize) -> Option<Vec<i64>> {
    let c: Vec<i64> = key
        .split('.')
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    (c.len() == dims).then_some(c)
}

impl CellArray {
    /// Opens the array at `path` (its `zarr.json`): a `variable_length_bytes`
    /// array with one-cell chunks; sharded stores are refused by name.
    pub fn open(path: &Path, dims: usize) -> Result<CellArray> {
        Self::open_at(&Location::local(path), dims)
    }

    /// Opens the array at a node of a local or remote store.
    pub fn open_at(node: &Location, dims: usize) -> Result<CellArray> {
        let meta = node.json()?;
        let path = node.path();
        let meta_path = path.join("zarr.json");
        if meta["data_type"] != "variable_length_bytes" {
            return Err(bad(
                &meta_path,
                format!(
                    "data_type {} is not variable_length_bytes",
                    meta["data_type"]
                ),
            ));
        }
        let outer = meta["codecs"].as_array().cloned().unwrap_or_default();
        let (codecs, shard) = match outer.first() {
            Some(c) if c["name"] == "sharding_indexed" => (
                c["configuration"]["codecs"].clone(),
                Some(Shard::parse(&meta, &meta_path)?),
            ),
            _ => (meta["codecs"].clone(), None),
        };
        let mut compression = vec![];
        for (i, c) in codecs.as_array().into_iter().flatten().enumerate() {
            match (i, c["name"].as_str()) {
                (0, Some("vlen-bytes")) => {}
                (0, name) => {
                    return Err(bad(
                        &meta_path,
                        format!(
                            "codec {} is not supported here: cells start with vlen-bytes",
                            name.unwrap_or("?")
                        ),
                    ))
                }
                _ => compression.push(Compressor::from_metadata(c, &meta_path)?),
            }
        }
        if compression.len() + 1 != codecs.as_array().map_or(0, Vec::len) {
            return Err(bad(&meta_path, "codecs must start with vlen-bytes"));
        }
        let shape: Vec<u64> = meta["shape"]
            .as_array()
            .and_then(|s| s.iter().map(Value::as_u64).collect())
            .ok_or_else(|| bad(&meta_path, "no integer shape"))?;
        if shape.len() != dims {
            return Err(bad(
                &meta_path,
                format!("shape {shape:?} has {} axes, the store {dims}", shape.len()),
            ));
        }
        let chunk = &meta["chunk_grid"]["configuration"]["chunk_shape"];
        if shard.is_none()
            && chunk
                .as_array()
                .is_none_or(|c| c.iter().any(|v| v.as_u64() != Some(1)))
        {
            return Err(bad(
                &meta_path,
                format!("chunk_shape {chunk} is not one cell per chunk"),
            ));
        }
        let sep = meta["chunk_key_encoding"]["configuration"]["separator"]
            .as_str()
            .unwrap_or("/");
        if meta["chunk_key_encoding"]["name"]
            .as_str()
            .unwrap_or("default")
            != "default"
            || sep != "/"
        {
            return Err(bad(
                &meta_path,
                "chunk keys must use the default encoding with '/'",
            ));
        }
        let attrs = meta["attributes"].clone();
        let origin: Vec<i64> = match attrs.get("chunk_grid_origin") {
            None | Some(Value::Null) => vec![0; dims],
            Some(o) => o
                .as_array()
                .and_then(|o| o.iter().map(Value::as_i64).collect::<Option<Vec<_>>>())
                .filter(|o| o.len() == dims)
                .ok_or_else(|| {
                    bad(
                        &meta_path,
                        format!("chunk_grid_origin {o} is not {dims} integers"),
                    )
                })?,
        };
        let nonempty = attrs["nonempty_chunks"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .map(|k| {
                        k.as_str().and_then(|k| parse_key(k, dims)).ok_or_else(|| {
                            bad(
                                &meta_path,
                                format!("nonempty_chunks key {k} is not {dims} integers"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(CellArray {
            node: node.clone(),
            path,
            attrs,
            shape,
            origin,
            nonempty,
            compression,
            shard,
        })
    }

    /// The item of the cell holding absolute chunk `chunk` (empty when the
    /// cell is absent or outside the array).
    pub fn read(&self, chunk: &[i64]) -> Result<Vec<u8>> {
        Ok(self.read_cell(chunk)?.unwrap_or_default())
    }

    /// The item of the cell holding absolute chunk `chunk`, None when the
    /// cell is absent (no file, an empty shard slot, outside the array).
    pub fn read_cell(&self, chunk: &[i64]) -> Result<Option<Vec<u8>>> {
        let mut rel = String::from("c");
        let mut inner = 0usize;
        for (a, (&c, &o)) in chunk.iter().zip(&self.origin).enumerate() {
            let cell = c - o;
            if cell < 0 || cell as u64 >= self.shape[a] {
                return Ok(None);
            }
            rel.push('/');
            match &self.shard {
                Some(s) => {
                    rel.push_str(&(cell as u64 / s.shape[a]).to_string());
                    inner = inner * s.shape[a] as usize + (cell as u64 % s.shape[a]) as usize;
                }
                None => rel.push_str(&cell.to_string()),
            }
        }
        let file = self.path.join(&rel);
        let got = match &self.shard {
            Some(s) => s.read_cell(&self.node, &rel, inner)?,
            None => self.node.get(&rel)?,
        };
        let Some(mut bytes) = got else {
            return Ok(None);
        };
        for c in self.compression.iter().rev() {
            bytes = c.decode(&bytes, &file)?;
        }
        let (start, len) = single_item(&bytes).map_err(|m| bad(&file, m))?;
        bytes.truncate(start + len);
        bytes.drain(..start);
        Ok(Some(bytes))
    }
}

/// Where the one item of a vlen-bytes chunk lies (start, length).
fn single_item(b: &[u8]) -> std::result::Result<(usize, usize), String> {
    let u32_at = |i: usize| -> std::result::Result<u32, String> {
        b.get(i..i + 4)
            .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
            .ok_or_else(|| format!("truncated vlen-bytes chunk ({} bytes)", b.len()))
    };
    let n = u32_at(0)?;
    if n > MAX_ITEMS {
        return Err(format!("a vlen-bytes chunk claims {n} items"));
    }
    if n == 0 {
        return Ok((0, 0));
    }
    if n != 1 {
        return Err(format!("a one-cell chunk holds {n} items"));
    }
    let len = u32_at(4)? as usize;
    if b.len() < 8 + len {
        return Err(format!(
            "truncated vlen-bytes item: {len} bytes claimed, {} present",
            b.len() - 8
        ));
    }
    Ok((8, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlen_items_and_keys() {
        let mut b = 1u32.to_le_bytes().to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend([7, 8, 9]);
        assert_eq!(single_item(&b).unwrap(), (8, 3));
        assert_eq!(single_item(&0u32.to_le_bytes()).unwrap(), (0, 0));
        assert!(single_item(&b[..9]).unwrap_err().contains("truncated"));
        assert!(single_item(&[1, 0]).unwrap_err().contains("truncated"));
        assert!(single_item(&u32::MAX.to_le_bytes())
            .unwrap_err()
            .contains("claims"));
        let mut two = 2u32.to_le_bytes().to_vec();
        two.extend([0; 8]);
        assert!(single_item(&two).unwrap_err().contains("holds 2"));
        assert_eq!(parse_key("-1.0.12", 3), Some(vec![-1, 0, 12]));
        assert_eq!(parse_key("1.2", 3), None);
        assert_eq!(parse_key("a.b.c", 3), None);
    }
}

#[cfg(test)]
mod shard_tests {
    use super::*;

    #[test]
    fn morton_order_is_zarr_pythons() {
        // zarr.core.indexing._morton_order((2, 3)): (0,0) (1,0) (0,1) (1,1) (0,2) (1,2).
        let shape = [2, 3];
        let mut cells: Vec<u64> = (0..6).collect();
        cells.sort_by_key(|&c| morton(c, &shape));
        let coords: Vec<(u64, u64)> = cells.iter().map(|c| (c / 3, c % 3)).collect();
        assert_eq!(coords, [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]);
    }

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn shard_files_round_trip_and_mark_empty_cells() {
        let shard = Shard {
            shape: vec![2, 2],
            index_at_end: true,
            crc: true,
        };
        let b = Shard::encode(&shard.shape, vec![(3, vec![7, 8]), (0, vec![1])]);
        let f = Path::new("s");
        assert_eq!(shard.cell(f, &b, 0).unwrap(), Some(&[1u8][..]));
        assert_eq!(shard.cell(f, &b, 1).unwrap(), None);
        assert_eq!(shard.cell(f, &b, 3).unwrap(), Some(&[7u8, 8][..]));
        assert!(shard.cell(f, &b[..10], 0).is_err());
    }
}

//! Objects (polylines, streamlines, point groups): the level's
//! `object_index` — per object a manifest of (chunk, fragments) blocks
//! (`vlen_manifests_v2`) and the row → object id table — and the fragment
//! index v1 that says which vertex rows of a chunk a fragment holds.

use std::collections::HashMap;

use rayon::prelude::*;
use serde_json::Value;
use voxfield_core::le::Cursor;
use voxfield_core::{Error, Result};

use crate::codecs::Compressor;
use crate::location::Location;
use crate::store::{itemsize, Store};

const FRAGMENT_MAGIC: u32 = 0x5A56_4647;

/// Rows an object table may claim (2^28 objects; a forged shape must not
/// make the reader walk or fill 10^12 rows).
const MAX_OBJECT_ROWS: u64 = 1 << 28;

/// Which rows of a chunk each fragment holds.
#[derive(Clone, Debug, Default)]
pub struct Fragments {
    /// Per fragment: rows as a range (start, count) or an explicit list.
    pub rows: Vec<FragmentRows>,
}

#[derive(Clone, Debug)]
pub enum FragmentRows {
    Range(u64, u64),
    List(Vec<u64>),
}

/// Decodes a fragment index v1 (an empty item is no fragments).
pub fn decode_fragments(b: &[u8]) -> std::result::Result<Fragments, String> {
    if b.is_empty() {
        return Ok(Fragments::default());
    }
    let mut r = Cursor::new(b, 0);
    if r.u32()? != FRAGMENT_MAGIC {
        return Err("not a fragment index (bad magic)".into());
    }
    if r.u16()? != 1 {
        return Err("fragment index version is not 1".into());
    }
    r.u16()?;
    let (f, n_ranges) = (r.u32()? as usize, r.u32()? as usize);
    if f > b.len() * 8 || n_ranges > f {
        return Err(format!(
            "fragment index claims {f} fragments ({n_ranges} ranges) in {} bytes",
            b.len()
        ));
    }
    let bitmap = r.take(f.div_ceil(8).div_ceil(8) * 8)?.to_vec();
    let is_range = |i: usize| bitmap[i / 8] >> (i % 8) & 1 == 1;
    let mut ranges = Vec::with_capacity(n_ranges);
    for _ in 0..n_ranges {
        let (s, c) = (r.i64()?, r.i64()?);
        if s < 0 || c < 0 {
            return Err(format!("negative fragment range ({s}, {c})"));
        }
        ranges.push(FragmentRows::Range(s as u64, c as u64));
    }
    let explicit = f - n_ranges;
    let offsets: Vec<u32> = (0..=explicit)
        .map(|_| r.u32())
        .collect::<std::result::Result<_, _>>()?;
    let total = *offsets.last().unwrap_or(&0) as usize;
    if total > b.len() {
        return Err(format!("fragment index claims {total} explicit rows"));
    }
    let rows: Vec<u64> = (0..total)
        .map(|_| r.i64().map(|v| v as u64))
        .collect::<std::result::Result<_, _>>()?;
    let (mut ri, mut ei) = (ranges.into_iter(), 0usize);
    let mut out = Vec::with_capacity(f);
    for i in 0..f {
        if is_range(i) {
            out.push(ri.next().ok_or("fewer ranges than the bitmap marks")?);
        } else {
            let (a, z) = (offsets[ei] as usize, offsets[ei + 1] as usize);
            if a > z || z > rows.len() {
                return Err("explicit fragment offsets out of order".into());
            }
            out.push(FragmentRows::List(rows[a..z].to_vec()));
            ei += 1;
        }
    }
    Ok(Fragments { rows: out })
}

/// One manifest block: a chunk and fragments in it, in object order.
pub type Block = (Vec<i64>, Vec<u64>);

fn decode_manifest(b: &[u8], dims: usize) -> std::result::Result<Vec<Block>, String> {
    let mut blocks = vec![];
    walk_manifest(b, dims, |chunk, frags| {
        blocks.push((chunk.to_vec(), frags.iter().collect()))
    })?;
    Ok(blocks)
}

/// The fragments of one manifest block: a run `start..start + count`, or a list.
pub(crate) enum BlockFragments {
    Run(u64, u64),
    List(Vec<u64>),
}

impl BlockFragments {
    pub(crate) fn iter(&self) -> Box<dyn Iterator<Item = u64> + '_> {
        match self {
            BlockFragments::Run(s, c) => Box::new(*s..s + c),
            BlockFragments::List(l) => Box::new(l.iter().copied()),
        }
    }
}

/// Calls `block(chunk, fragments)` for each block of a manifest, in order,
/// without building the decoded manifest.
pub(crate) fn walk_manifest(
    b: &[u8],
    dims: usize,
    mut block: impl FnMut(&[i64], BlockFragments),
) -> std::result::Result<(), String> {
    let mut r = Cursor::new(b, 0);
    let n = r.u32()? as usize;
    if n > b.len() {
        return Err(format!("a manifest claims {n} blocks in {} bytes", b.len()));
    }
    let mut chunk = vec![0i64; dims];
    for _ in 0..n {
        for c in chunk.iter_mut() {
            *c = r.i64()?;
        }
        let frags = match r.u8()? {
            0 => BlockFragments::Run(r.i64()? as u64, 1),
            1 => {
                let (s, c) = (r.i64()?, r.i64()?);
                if s < 0 || c < 0 || c as usize > b.len() * 8 {
                    return Err(format!("bad fragment range ({s}, {c})"));
                }
                BlockFragments::Run(s as u64, c as u64)
            }
            2 => {
                let k = r.u32()? as usize;
                if k > b.len() {
                    return Err(format!("a block claims {k} fragments"));
                }
                BlockFragments::List(
                    (0..k)
                        .map(|_| r.i64().map(|v| v as u64))
                        .collect::<std::result::Result<_, _>>()?,
                )
            }
            m => return Err(format!("unknown manifest block mode {m}")),
        };
        block(&chunk, frags);
    }
    Ok(())
}

/// `count` elements of an array's fill value, little-endian.
fn fill_chunk(meta: &Value, count: usize, meta_path: &std::path::Path) -> Result<Vec<u8>> {
    let dtype = meta["data_type"].as_str().unwrap_or("");
    let f = &meta["fill_value"];
    let nan = f.as_str().is_some_and(|s| s.eq_ignore_ascii_case("nan"));
    let v = f.as_f64().unwrap_or(0.0);
    let one: Vec<u8> = match dtype {
        "float32" => (if nan { f32::NAN } else { v as f32 })
            .to_le_bytes()
            .to_vec(),
        "float64" => (if nan { f64::NAN } else { v }).to_le_bytes().to_vec(),
        "int8" => (f.as_i64().unwrap_or(0) as i8).to_le_bytes().to_vec(),
        "int16" => (f.as_i64().unwrap_or(0) as i16).to_le_bytes().to_vec(),
        "int32" => (f.as_i64().unwrap_or(0) as i32).to_le_bytes().to_vec(),
        "int64" => f.as_i64().unwrap_or(0).to_le_bytes().to_vec(),
        "uint8" => (f.as_u64().unwrap_or(0) as u8).to_le_bytes().to_vec(),
        "uint16" => (f.as_u64().unwrap_or(0) as u16).to_le_bytes().to_vec(),
        "uint32" => (f.as_u64().unwrap_or(0) as u32).to_le_bytes().to_vec(),
        "uint64" => f.as_u64().unwrap_or(0).to_le_bytes().to_vec(),
        d => {
            return Err(Error::format(
                meta_path,
                format!("data_type {d} is not read here"),
            ))
        }
    };
    if count > 1 << 31 {
        return Err(Error::format(
            meta_path,
            format!("a chunk of {count} elements"),
        ));
    }
    Ok(one.repeat(count))
}

/// The compressors after an array's serializer (`bytes` or `vlen-bytes`).
fn after_serializer(meta: &Value, meta_path: &std::path::Path) -> Result<Vec<Compressor>> {
    let codecs = meta["codecs"].as_array().cloned().unwrap_or_default();
    match codecs.first().and_then(|c| c["name"].as_str()) {
        Some("bytes" | "vlen-bytes") => {}
        other => {
            return Err(Error::format(
                meta_path,
                format!(
                    "codec {} is not supported here (bytes or vlen-bytes first)",
                    other.unwrap_or("?")
                ),
            ))
        }
    }
    if codecs[0]["configuration"]["endian"]
        .as_str()
        .unwrap_or("little")
        != "little"
    {
        return Err(Error::format(
            meta_path,
            "big-endian arrays are not read here",
        ));
    }
    codecs[1..]
        .iter()
        .map(|c| Compressor::from_metadata(c, meta_path))
        .collect()
}

fn decode_all(compressors: &[Compressor], mut b: Vec<u8>, p: &std::path::Path) -> Result<Vec<u8>> {
    for c in compressors.iter().rev() {
        b = c.decode(&b, p)?;
    }
    Ok(b)
}

/// All items of a 1-D vlen-bytes array (chunks `c/<k>` of `chunk` rows),
/// or the little-endian bytes of a 1-D numeric array.
pub(crate) fn read_1d(dir: &Location, vlen: bool) -> Result<(Vec<Vec<u8>>, Vec<u8>)> {
    let meta = dir.json()?;
    let meta_path = dir.path().join("zarr.json");
    let bad = |m: String| Error::format(&meta_path, m);
    let n = meta["shape"][0]
        .as_u64()
        .ok_or_else(|| bad("no shape".into()))?;
    if n > MAX_OBJECT_ROWS {
        return Err(bad(format!(
            "shape [{n}]: over the {MAX_OBJECT_ROWS} object rows this reader takes"
        )));
    }
    let n = n as usize;
    let chunk = meta["chunk_grid"]["configuration"]["chunk_shape"][0]
        .as_u64()
        .filter(|&c| c > 0)
        .ok_or_else(|| bad("no chunk shape".into()))? as usize;
    let compressors = after_serializer(&meta, &meta_path)?;
    let (mut items, mut flat) = (vec![], vec![]);
    for k in 0..n.div_ceil(chunk) {
        let rel = format!("c/{k}");
        let p = dir.path().join(&rel);
        let raw = match dir.get(&rel)? {
            Some(r) => r,
            // zarr-python writes no chunk holding only the fill value.
            None if !vlen => fill_chunk(&meta, chunk.min(n - k * chunk), &meta_path)?,
            None => vec![],
        };
        let bytes = match raw.is_empty() {
            true => raw,
            false => decode_all(&compressors, raw, &p)?,
        };
        if vlen {
            if bytes.is_empty() {
                // An absent chunk: its rows are empty items.
                items.resize(items.len() + chunk.min(n - k * chunk), vec![]);
                continue;
            }
            items.extend(vlen_items(&bytes, &p)?);
        } else {
            flat.extend(bytes);
        }
    }
    items.truncate(n);
    // The edge chunk is stored whole: rows past the end are padding.
    flat.truncate(n * itemsize(meta["data_type"].as_str().unwrap_or("")).unwrap_or(1));
    Ok((items, flat))
}

/// The first `len` bytes of a dense numeric array chunked along its first
/// axis (object attributes): chunks `c/<k>` (`c/<k>/0` for 2-D), zstd or
/// not; missing chunks are an error.
pub(crate) fn read_dense(dir: &Location, len: usize) -> Result<Vec<u8>> {
    let meta = dir.json()?;
    let meta_path = dir.path().join("zarr.json");
    let bad = |m: String| Error::format(&meta_path, m);
    let shape: Vec<u64> = meta["shape"]
        .as_array()
        .map(|s| s.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let rows = meta["chunk_grid"]["configuration"]["chunk_shape"][0]
        .as_u64()
        .filter(|&c| c > 0)
        .ok_or_else(|| bad("no chunk shape".into()))?;
    let compressors = after_serializer(&meta, &meta_path)?;
    let n = shape.first().copied().unwrap_or(0);
    let mut out = vec![];
    for k in 0..n.div_ceil(rows) {
        let rel = match shape.len() {
            2 => format!("c/{k}/0"),
            _ => format!("c/{k}"),
        };
        let p = dir.path().join(&rel);
        let b = match dir.get(&rel)? {
            Some(raw) => decode_all(&compressors, raw, &p)?,
            // zarr-python writes no chunk holding only the fill value.
            None => {
                let per_row: u64 = shape.iter().skip(1).product();
                fill_chunk(&meta, (rows * per_row) as usize, &meta_path)?
            }
        };
        out.extend(b);
    }
    if out.len() < len {
        return Err(bad(format!(
            "{} bytes of data for {len} expected",
            out.len()
        )));
    }
    out.truncate(len);
    Ok(out)
}

/// The items of a decoded vlen-bytes chunk.
fn vlen_items(bytes: &[u8], p: &std::path::Path) -> Result<Vec<Vec<u8>>> {
    let mut r = Cursor::new(bytes, 0);
    let m = r.u32().map_err(|e| Error::format(p, e))? as usize;
    if m > bytes.len() {
        return Err(Error::format(p, format!("a chunk claims {m} items")));
    }
    (0..m)
        .map(|_| {
            let len = r.u32().map_err(|e| Error::format(p, e))? as usize;
            Ok(r.take(len).map_err(|e| Error::format(p, e))?.to_vec())
        })
        .collect()
}

/// Items `rows` (ascending) of a 1-D vlen-bytes array, reading only the
/// chunks that hold them (an absent chunk's items are empty).
fn read_vlen_rows(dir: &Location, rows: &[usize]) -> Result<Vec<Vec<u8>>> {
    let meta = dir.json()?;
    let meta_path = dir.path().join("zarr.json");
    let chunk = meta["chunk_grid"]["configuration"]["chunk_shape"][0]
        .as_u64()
        .filter(|&c| c > 0)
        .ok_or_else(|| Error::format(&meta_path, "no chunk shape"))? as usize;
    let compressors = after_serializer(&meta, &meta_path)?;
    let mut ks: Vec<usize> = rows.iter().map(|r| r / chunk).collect();
    ks.dedup();
    let chunks: HashMap<usize, Vec<Vec<u8>>> = dir.install(|| {
        ks.par_iter()
            .map(|&k| {
                let rel = format!("c/{k}");
                let p = dir.path().join(&rel);
                let items = match dir.get(&rel)? {
                    Some(raw) if !raw.is_empty() => {
                        vlen_items(&decode_all(&compressors, raw, &p)?, &p)?
                    }
                    _ => vec![],
                };
                Ok((k, items))
            })
            .collect::<Result<_>>()
    })?;
    Ok(rows
        .iter()
        .map(|r| {
            chunks[&(r / chunk)]
                .get(r % chunk)
                .cloned()
                .unwrap_or_default()
        })
        .collect())
}

/// Polylines (or any objects) of a level: vertices object by object.
#[derive(Clone, Debug)]
pub struct Objects {
    pub dims: usize,
    pub dtype: String,
    pub object_ids: Vec<i64>,
    /// Vertex rows of object i: `offsets[i]..offsets[i + 1]`.
    pub offsets: Vec<usize>,
    /// Little-endian coordinates, row-major.
    pub vertices: Vec<u8>,
}

/// Refuses an object index whose layout this reader does not know.
fn known_layout(index: &Location) -> Result<()> {
    let attrs = index.json()?;
    let layout = attrs["attributes"]["layout"]
        .as_str()
        .unwrap_or("vlen_manifests_v2");
    if layout != "vlen_manifests_v2" && layout != "vlen_manifests_v1" {
        return Err(Error::format(
            index.path().join("zarr.json"),
            format!("object index layout {layout} is not known"),
        ));
    }
    Ok(())
}

impl Store {
    /// The object index of `level`: per row its object id and its manifest
    /// blocks (empty for an object absent from the level).
    pub fn manifest_rows(&self, level: u64) -> Result<(Vec<i64>, Vec<Vec<Block>>)> {
        let d = self.dims;
        let index_node = self.loc.join(&level.to_string()).join("object_index");
        let index = index_node.path();
        known_layout(&index_node)?;
        let (manifests, _) = read_1d(&index_node.join("manifests"), true)?;
        let ids: Vec<i64> = if index_node.join("object_ids").exists()? {
            let (_, flat) = read_1d(&index_node.join("object_ids"), false)?;
            flat.chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8")))
                .collect()
        } else {
            (0..manifests.len() as i64).collect()
        };
        if ids.len() != manifests.len() {
            return Err(Error::format(
                index.join("object_ids"),
                format!("{} object ids for {} manifests", ids.len(), manifests.len()),
            ));
        }
        let decoded: Vec<Vec<Block>> = manifests
            .par_iter()
            .enumerate()
            .map(|(i, m)| {
                decode_manifest(m, d).map_err(|e| {
                    Error::format(index.join("manifests"), format!("object row {i}: {e}"))
                })
            })
            .collect::<Result<_>>()?;
        Ok((ids, decoded))
    }

    /// Visits the manifests of `level` a few chunks at a time —
    /// `visit(row, chunk, fragments)` for each block, in row order — so a
    /// pyramid build holds two chunks of manifests, not a level's; returns
    /// the object ids.
    pub(crate) fn visit_manifests(
        &self,
        level: u64,
        mut visit: impl FnMut(usize, &[i64], BlockFragments),
    ) -> Result<Vec<i64>> {
        let index = self.loc.join(&level.to_string()).join("object_index");
        known_layout(&index)?;
        let manifests = index.join("manifests");
        let ids = self.object_rows(level)?;
        let meta = manifests.json()?;
        let n = meta["shape"][0].as_u64().unwrap_or(0);
        if n != ids.len() as u64 {
            return Err(Error::format(
                manifests.path().join("zarr.json"),
                format!("{n} manifests for {} object ids", ids.len()),
            ));
        }
        let chunk = meta["chunk_grid"]["configuration"]["chunk_shape"][0]
            .as_u64()
            .filter(|&c| c > 0)
            .ok_or_else(|| Error::format(manifests.path().join("zarr.json"), "no chunk shape"))?
            as usize;
        // Two chunks at a time (32,768 rows as zarr-vectors writes them).
        let batch = chunk.saturating_mul(2);
        for first in (0..ids.len()).step_by(batch) {
            let rows: Vec<usize> = (first..first.saturating_add(batch).min(ids.len())).collect();
            for (r, m) in rows.iter().zip(read_vlen_rows(&manifests, &rows)?) {
                walk_manifest(&m, self.dims, |c, f| visit(*r, c, f))
                    .map_err(|e| Error::format(manifests.path(), format!("object row {r}: {e}")))?;
            }
        }
        Ok(ids)
    }

    /// The object id of each object index row of `level` (the `object_ids`
    /// table, or the row itself where there is none), without the manifests.
    pub fn object_rows(&self, level: u64) -> Result<Vec<i64>> {
        let index = self.loc.join(&level.to_string()).join("object_index");
        if index.join("object_ids").exists()? {
            let (_, flat) = read_1d(&index.join("object_ids"), false)?;
            return Ok(flat
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8")))
                .collect());
        }
        let n = index.join("manifests").json()?["shape"][0]
            .as_u64()
            .unwrap_or(0)
            .min(MAX_OBJECT_ROWS) as i64;
        Ok((0..n).collect())
    }

    /// The object index rows of `level` whose ids are in `wanted`: their ids
    /// and decoded manifests, in row order. Only the manifest chunks that
    /// hold them are read, and only their manifests decoded.
    pub fn manifests_of(
        &self,
        level: u64,
        wanted: &std::collections::HashSet<i64>,
    ) -> Result<(Vec<i64>, Vec<Vec<Block>>)> {
        let manifests = self
            .loc
            .join(&level.to_string())
            .join("object_index")
            .join("manifests");
        let ids = self.object_rows(level)?;
        let n = manifests.json()?["shape"][0].as_u64().unwrap_or(0);
        if n != ids.len() as u64 {
            return Err(Error::format(
                manifests.path().join("zarr.json"),
                format!("{n} manifests for {} object ids", ids.len()),
            ));
        }
        let rows: Vec<usize> = (0..ids.len())
            .filter(|&r| wanted.contains(&ids[r]))
            .collect();
        let items = read_vlen_rows(&manifests, &rows)?;
        let decoded = items
            .par_iter()
            .zip(&rows)
            .map(|(m, r)| {
                decode_manifest(m, self.dims)
                    .map_err(|e| Error::format(manifests.path(), format!("object row {r}: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok((rows.iter().map(|&r| ids[r]).collect(), decoded))
    }

    /// The objects of `level` in manifest-row order, each its vertices in
    /// order (the fragments of its manifest blocks, concatenated); objects
    /// with an empty manifest (dropped at a sparser level) are skipped.
    pub fn read_objects(&self, level: u64) -> Result<Objects> {
        self.level(level)?;
        let all: std::collections::HashSet<i64> = self.object_rows(level)?.into_iter().collect();
        let (points, object_ids, offsets) = self.read_object_points(level, &all, None, &[])?;
        Ok(Objects {
            dims: self.dims,
            dtype: points.positions.dtype,
            object_ids,
            offsets,
            vertices: points.positions.bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::fragment_index;

    #[test]
    fn fragment_indices_round_trip_and_refuse_corruption() {
        let b = fragment_index(&[3, 0, 2, 5, 0, 0, 1, 0, 4]);
        let f = decode_fragments(&b).unwrap();
        let ranges: Vec<(u64, u64)> = f
            .rows
            .iter()
            .map(|r| match r {
                FragmentRows::Range(s, c) => (*s, *c),
                FragmentRows::List(_) => panic!("ranges only"),
            })
            .collect();
        assert_eq!(ranges[3], (5, 5));
        assert_eq!(ranges[8], (11, 4));
        assert!(decode_fragments(&b[..b.len() - 3]).is_err());
        let mut bad = b.clone();
        bad[0] ^= 1;
        assert!(decode_fragments(&bad).unwrap_err().contains("magic"));
        let mut huge = b.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_fragments(&huge).unwrap_err().contains("claims"));
    }

    #[test]
    fn manifests_decode_every_mode_and_refuse_corruption() {
        let mut m = 3u32.to_le_bytes().to_vec();
        for (c, mode) in [([0i64, -1, 2], 0u8), ([1, 1, 1], 1), ([2, 0, 0], 2)] {
            c.iter().for_each(|v| m.extend(v.to_le_bytes()));
            m.push(mode);
            match mode {
                0 => m.extend(7i64.to_le_bytes()),
                1 => [4i64, 3].iter().for_each(|v| m.extend(v.to_le_bytes())),
                _ => {
                    m.extend(2u32.to_le_bytes());
                    [9i64, 1].iter().for_each(|v| m.extend(v.to_le_bytes()));
                }
            }
        }
        let blocks = decode_manifest(&m, 3).unwrap();
        assert_eq!(blocks[0], (vec![0, -1, 2], vec![7]));
        assert_eq!(blocks[1].1, vec![4, 5, 6]);
        assert_eq!(blocks[2].1, vec![9, 1]);
        assert!(decode_manifest(&m[..m.len() - 1], 3)
            .unwrap_err()
            .contains("truncated"));
        let mut bad = m.clone();
        bad[4 + 24] = 9;
        assert!(decode_manifest(&bad, 3).unwrap_err().contains("mode"));
        assert!(decode_manifest(&u32::MAX.to_le_bytes(), 3)
            .unwrap_err()
            .contains("claims"));
    }
}

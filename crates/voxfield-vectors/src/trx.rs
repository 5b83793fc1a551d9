//! TRX tractograms (tee-ar-ex/trx-spec): a zip archive, or a directory, of
//! little-endian arrays named `name[.width].dtype` beside a `header.json`
//! (`NB_STREAMLINES`, `NB_VERTICES`, `VOXEL_TO_RASMM`, `DIMENSIONS`).
//!
//! `positions.3.<float>` holds the points in RAS+ mm; `offsets.<uint>` the
//! first row of each streamline followed by `NB_VERTICES` (files from before
//! that sentinel are accepted too); `dpv/` per-vertex and `dps/`
//! per-streamline data; `groups/<name>.<uint>` lists of streamline indices.
//! Here dpv become scalars, dps properties and each group a 0/1 property
//! `group_<name>`; per-group data (`dpg/`) is not carried.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use voxfield_core::{Error, Result};

use crate::tracts::{check_lines, reference_grid, Tracts};

fn bad(path: &Path, m: impl Into<String>) -> Error {
    Error::format(path, m.into())
}

/// Bytes per element of a TRX dtype suffix.
fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "int8" | "uint8" => 1,
        "int16" | "uint16" | "float16" => 2,
        "int32" | "uint32" | "float32" => 4,
        "int64" | "uint64" | "float64" => 8,
        _ => return None,
    })
}

/// IEEE half → f64 (TRX allows float16 positions and data).
fn half(bits: u16) -> f64 {
    let sign = if bits >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Little-endian elements of `dtype` as f64.
fn decode(bytes: &[u8], dtype: &str) -> Vec<f64> {
    let size = dtype_size(dtype).expect("checked dtype");
    bytes
        .chunks_exact(size)
        .map(|b| match dtype {
            "int8" => f64::from(b[0] as i8),
            "uint8" => f64::from(b[0]),
            "int16" => f64::from(i16::from_le_bytes([b[0], b[1]])),
            "uint16" => f64::from(u16::from_le_bytes([b[0], b[1]])),
            "float16" => half(u16::from_le_bytes([b[0], b[1]])),
            "int32" => f64::from(i32::from_le_bytes(b.try_into().expect("4"))),
            "uint32" => f64::from(u32::from_le_bytes(b.try_into().expect("4"))),
            "float32" => f64::from(f32::from_le_bytes(b.try_into().expect("4"))),
            "int64" => i64::from_le_bytes(b.try_into().expect("8")) as f64,
            "uint64" => u64::from_le_bytes(b.try_into().expect("8")) as f64,
            _ => f64::from_le_bytes(b.try_into().expect("8")),
        })
        .collect()
}

/// Integer elements (offsets, group members); `None` for a float dtype.
fn decode_index(bytes: &[u8], dtype: &str) -> Option<Vec<u64>> {
    let size = dtype_size(dtype)?;
    let signed = dtype.starts_with("int");
    if !signed && !dtype.starts_with("uint") {
        return None;
    }
    bytes
        .chunks_exact(size)
        .map(|b| {
            let mut w = [0u8; 8];
            w[..size].copy_from_slice(b);
            if signed && b[size - 1] & 0x80 != 0 {
                return None; // negative
            }
            Some(u64::from_le_bytes(w))
        })
        .collect()
}

/// One array file of the archive: folder (`""`, `dpv`, `dps`, `groups`,
/// `dpg/<group>`), name, width and dtype from `name[.width].dtype`.
struct Entry {
    folder: String,
    name: String,
    width: usize,
    dtype: String,
}

fn parse_entry(path: &Path, rel: &str) -> Result<Entry> {
    let (folder, file) = rel.rsplit_once('/').unwrap_or(("", rel));
    let parts: Vec<&str> = file.split('.').collect();
    let (name, width, dtype) = match parts[..] {
        [n, t] => (n, 1, t),
        [n, w, t] => match w.parse::<usize>() {
            Ok(w) if w > 0 => (n, w, t),
            _ => {
                return Err(bad(
                    path,
                    format!("{rel}: width {w:?} is not a positive integer"),
                ))
            }
        },
        _ => return Err(bad(path, format!("{rel}: expected name[.width].dtype"))),
    };
    let dtype = if dtype == "bit" || dtype == "bool" {
        "uint8"
    } else {
        dtype
    };
    if dtype_size(dtype).is_none() {
        return Err(bad(path, format!("{rel}: unknown dtype {dtype:?}")));
    }
    Ok(Entry {
        folder: folder.to_string(),
        name: name.to_string(),
        width,
        dtype: dtype.to_string(),
    })
}

/// The archive's files as (relative name, bytes), read no further than
/// `limit` bytes each so a forged size cannot exhaust memory.
fn read_entries(path: &Path, limit: u64) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut take = |rel: String, r: &mut dyn Read| -> Result<()> {
        let mut v = vec![];
        r.take(limit.saturating_add(1))
            .read_to_end(&mut v)
            .map_err(|e| bad(path, format!("{rel}: {e}")))?;
        if v.len() as u64 > limit {
            return Err(bad(path, format!("{rel} is larger than the header allows")));
        }
        out.insert(rel, v);
        Ok(())
    };
    if path.is_dir() {
        let mut stack = vec![path.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
                let e = e.map_err(|e| Error::io(&dir, e))?;
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let rel = p
                    .strip_prefix(path)
                    .expect("below the root")
                    .to_string_lossy()
                    .replace('\\', "/");
                voxfield_io::safety::regular_input(&p)?;
                let mut f = std::fs::File::open(&p).map_err(|e| Error::io(&p, e))?;
                take(rel, &mut f)?;
            }
        }
        return Ok(out);
    }
    voxfield_io::safety::regular_input(path)?;
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(path, format!("not a TRX zip: {e}")))?;
    for i in 0..zip.len() {
        let mut e = zip
            .by_index(i)
            .map_err(|e| bad(path, format!("zip entry {i}: {e}")))?;
        if e.is_dir() {
            continue;
        }
        let rel = e
            .name()
            .map_err(|err| bad(path, format!("zip entry {i}: {err}")))?
            .trim_start_matches('/')
            .to_string();
        take(rel, &mut e)?;
    }
    Ok(out)
}

fn header_count(path: &Path, h: &serde_json::Value, key: &str) -> Result<u64> {
    h.get(key)
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| {
            bad(
                path,
                format!("header.json: {key} is missing or not a count"),
            )
        })
}

/// Reads a TRX tractogram, zipped (stored or deflated) or a directory.
pub fn read_trx(path: &Path) -> Result<Tracts> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    // No array may exceed the input's size by more than deflate's best
    // ratio (1032:1): bounds what a forged header can make us allocate.
    let limit = if meta.is_dir() {
        u64::MAX
    } else {
        meta.len().saturating_mul(1032)
    };
    let files = read_entries(path, limit)?;
    let header = files
        .get("header.json")
        .ok_or_else(|| bad(path, "no header.json: not a TRX tractogram"))?;
    let h: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| bad(path, format!("header.json: {e}")))?;
    let nl = header_count(path, &h, "NB_STREAMLINES")?;
    let nv = header_count(path, &h, "NB_VERTICES")?;
    let mut t = Tracts {
        offsets: vec![0],
        ..Tracts::default()
    };
    if nl == 0 || nv == 0 {
        return Ok(t);
    }
    // In u128: a forged width (`dpv/x.99999999999999999.float32`) must not overflow.
    let need = |e: &Entry, rows: u64, bytes: &[u8], rel: &str| -> Result<()> {
        let want = rows as u128 * e.width as u128 * dtype_size(&e.dtype).expect("checked") as u128;
        if want == bytes.len() as u128 {
            return Ok(());
        }
        Err(bad(
            path,
            format!(
                "{rel}: {} bytes, but {rows} rows of {} × {} need {want}",
                bytes.len(),
                e.width,
                e.dtype
            ),
        ))
    };
    let (mut positions, mut offsets) = (None, None);
    let mut groups = vec![];
    for (rel, bytes) in &files {
        if rel == "header.json" {
            continue;
        }
        let e = parse_entry(path, rel)?;
        match (e.folder.as_str(), e.name.as_str()) {
            ("", "positions") => {
                if e.width != 3 {
                    return Err(bad(path, format!("{rel}: positions need width 3")));
                }
                need(&e, nv, bytes, rel)?;
                positions = Some(decode(bytes, &e.dtype));
            }
            ("", "offsets") => {
                let rows = bytes.len() as u64 / dtype_size(&e.dtype).expect("checked") as u64;
                let rows = if rows == nl { nl } else { nl + 1 };
                need(&e, rows, bytes, rel)?;
                let o = decode_index(bytes, &e.dtype).ok_or_else(|| {
                    bad(path, format!("{rel}: offsets must be unsigned integers"))
                })?;
                offsets = Some(o);
            }
            ("dpv", _) => {
                need(&e, nv, bytes, rel)?;
                let v = decode(bytes, &e.dtype)
                    .into_iter()
                    .map(|x| x as f32)
                    .collect();
                t.scalars.push((e.name, e.width, v));
            }
            ("dps", _) => {
                need(&e, nl, bytes, rel)?;
                let v = decode(bytes, &e.dtype)
                    .into_iter()
                    .map(|x| x as f32)
                    .collect();
                t.properties.push((e.name, e.width, v));
            }
            ("groups", _) => {
                let members = decode_index(bytes, &e.dtype)
                    .ok_or_else(|| bad(path, format!("{rel}: group members must be integers")))?;
                let mut flag = vec![0f32; nl as usize];
                for m in members {
                    *flag.get_mut(m as usize).ok_or_else(|| {
                        bad(
                            path,
                            format!("{rel}: streamline {m} is past NB_STREAMLINES {nl}"),
                        )
                    })? = 1.0;
                }
                groups.push((format!("group_{}", e.name), 1, flag));
            }
            (f, _) if f == "dpg" || f.starts_with("dpg/") => {}
            _ => return Err(bad(path, format!("{rel} is not part of the TRX layout"))),
        }
    }
    t.properties.extend(groups);
    let positions = positions.ok_or_else(|| bad(path, "no positions.3.<dtype> array"))?;
    let mut offsets = offsets.ok_or_else(|| bad(path, "no offsets.<dtype> array"))?;
    if offsets.len() as u64 == nl {
        offsets.push(nv);
    }
    if offsets[0] != 0 || offsets[nl as usize] != nv || offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err(bad(
            path,
            format!("offsets must rise from 0 to NB_VERTICES ({nv}) with NB_STREAMLINES ({nl}) + 1 entries"),
        ));
    }
    t.positions = positions;
    t.offsets = offsets.into_iter().map(|o| o as usize).collect();
    check_lines(&t.positions, &t.offsets).map_err(|e| bad(path, e.to_string()))?;
    Ok(t)
}

fn array_name(name: &str, width: usize, dtype: &str) -> String {
    if width == 1 {
        format!("{name}.{dtype}")
    } else {
        format!("{name}.{width}.{dtype}")
    }
}

/// Writes streamlines (RAS+ mm) with their scalars (→ `dpv/`) and
/// properties (→ `dps/`) as a stored (uncompressed, memory-mappable) TRX
/// zip whose reference grid is the one `write_trk` writes.
pub fn write_trx(path: &Path, t: &Tracts) -> Result<()> {
    check_lines(&t.positions, &t.offsets)?;
    let (nl, nv) = (t.len(), t.positions.len() / 3);
    for (what, rows, list) in [("scalar", nv, &t.scalars), ("property", nl, &t.properties)] {
        for (name, width, v) in list {
            if name.is_empty()
                || name.contains(['.', '/', '\\'])
                || *width == 0
                || v.len() != rows * width
            {
                return Err(Error::invalid(format!(
                    "{what} {name:?}: a TRX array needs a name without '.' or '/' and {rows} rows of {width}"
                )));
            }
        }
    }
    let (lo, dims) = reference_grid(&t.positions);
    let mut affine = [[0.0f64; 4]; 4];
    for a in 0..3 {
        affine[a][a] = 1.0;
        affine[a][3] = lo[a];
    }
    affine[3][3] = 1.0;
    let header = serde_json::json!({
        "VOXEL_TO_RASMM": affine,
        "DIMENSIONS": dims,
        "NB_STREAMLINES": nl,
        "NB_VERTICES": nv,
    });
    let f32s =
        |v: &mut dyn Iterator<Item = f32>| -> Vec<u8> { v.flat_map(f32::to_le_bytes).collect() };
    let mut files: Vec<(String, Vec<u8>)> =
        vec![("header.json".into(), header.to_string().into_bytes())];
    if nl > 0 && nv > 0 {
        files.push((
            "positions.3.float32".into(),
            f32s(&mut t.positions.iter().map(|&x| x as f32)),
        ));
        let offsets: Vec<u8> = if nv <= u32::MAX as usize {
            t.offsets
                .iter()
                .flat_map(|&o| (o as u32).to_le_bytes())
                .collect()
        } else {
            t.offsets
                .iter()
                .flat_map(|&o| (o as u64).to_le_bytes())
                .collect()
        };
        let dtype = if nv <= u32::MAX as usize {
            "uint32"
        } else {
            "uint64"
        };
        files.push((format!("offsets.{dtype}"), offsets));
        for (folder, list) in [("dpv", &t.scalars), ("dps", &t.properties)] {
            for (name, width, v) in list {
                files.push((
                    format!("{folder}/{}", array_name(name, *width, "float32")),
                    f32s(&mut v.iter().copied()),
                ));
            }
        }
    }
    voxfield_io::npy::write_atomic(path, |w| {
        let mut zip = zip::ZipWriter::new(w);
        for (name, bytes) in &files {
            let o = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .large_file(bytes.len() as u64 >= u32::MAX as u64);
            zip.start_file(name.as_str(), o)
                .map_err(std::io::Error::other)?;
            zip.write_all(bytes)?;
        }
        zip.finish().map_err(std::io::Error::other)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_decode() {
        assert_eq!(half(0x3c00), 1.0);
        assert_eq!(half(0xc000), -2.0);
        assert_eq!(half(0x3555), 0.333251953125);
        assert_eq!(half(0x0001), 2f64.powi(-24));
        assert!(half(0x7c00).is_infinite() && half(0x7e00).is_nan());
    }

    #[test]
    fn round_trip_with_data() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.trx");
        let t = Tracts {
            positions: vec![0., 1., 2., 3., 4., 5., -6., 7.5, 8., 9., 10., 11.],
            offsets: vec![0, 3, 4],
            scalars: vec![("fa".into(), 1, vec![0.1, 0.2, 0.3, 0.4])],
            properties: vec![("rgb".into(), 3, vec![1., 2., 3., 4., 5., 6.])],
        };
        write_trx(&p, &t).unwrap();
        assert_eq!(read_trx(&p).unwrap(), t);
    }
}

//! Tractography files: TrackVis `.trk` and MRtrix `.tck`, read into and
//! written from streamlines in RAS+ millimetres — the space nibabel's
//! `streamlines.load` returns.
//!
//! TRK: a 1000-byte header (`TRACK`, dimensions, voxel sizes, per-point
//! scalar and per-streamline property names, `vox_to_ras`, voxel order,
//! count, version 1 or 2, `hdr_size` 1000, whose byte order gives the
//! file's), then per streamline `i32 m`, m points of (x, y, z, scalars…)
//! as float32 in "voxmm" (voxel-corner) space, then its properties. A point
//! maps to RAS+ mm by `vox_to_ras · (voxmm / voxel_size − ½)`.
//!
//! TCK: a text header (`mrtrix tracks`, `key: value` lines, `file: . N`,
//! `datatype: Float32LE|Float32BE|Float64LE|Float64BE`, `END`), then at
//! byte N triplets of RAS+ mm coordinates, streamlines separated by a NaN
//! triplet and the file ended by an Inf triplet.

use std::io::Write;
use std::path::Path;

use voxfield_core::{Error, Result};

/// Streamlines with their per-point scalars and per-streamline properties.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tracts {
    /// RAS+ mm, rows of 3.
    pub positions: Vec<f64>,
    /// Streamline `i` is rows `offsets[i]..offsets[i + 1]`.
    pub offsets: Vec<usize>,
    /// (name, width, values: width per point).
    pub scalars: Vec<(String, usize, Vec<f32>)>,
    /// (name, width, values: width per streamline).
    pub properties: Vec<(String, usize, Vec<f32>)>,
}

impl Tracts {
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn bad(path: &Path, m: impl Into<String>) -> Error {
    Error::format(path, m.into())
}

fn read_input(path: &Path) -> Result<Vec<u8>> {
    voxfield_io::safety::regular_input(path)?;
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Names of TRK scalar or property slots: nibabel writes `name\0N` for a
/// name spanning N slots. Returns (name, width) groups covering `count`.
fn trk_names(raw: &[u8], count: usize, what: &str) -> Vec<(String, usize)> {
    let mut out = vec![];
    let mut used = 0;
    for slot in raw.chunks_exact(20).take(10) {
        if used >= count {
            break;
        }
        let end = slot.iter().position(|&b| b == 0).unwrap_or(20);
        if end == 0 {
            break;
        }
        let name = String::from_utf8_lossy(&slot[..end]).trim().to_string();
        let width = slot
            .get(end + 1..)
            .and_then(|r| {
                let digits: Vec<u8> = r.iter().copied().take_while(u8::is_ascii_digit).collect();
                std::str::from_utf8(&digits).ok()?.parse::<usize>().ok()
            })
            .filter(|&w| w > 0)
            .unwrap_or(1);
        out.push((name, width));
        used += width;
    }
    if used != count {
        // Unnamed or inconsistent slots: one attribute per slot.
        return (0..count).map(|i| (format!("{what}_{i}"), 1)).collect();
    }
    out
}

/// Axis codes of an affine's columns (nibabel's `aff2axcodes` for RAS labels).
fn axcodes(m: &[[f64; 4]; 4]) -> [u8; 3] {
    let mut out = [b'?'; 3];
    for (col, code) in out.iter_mut().enumerate() {
        let (row, v) = (0..3)
            .map(|r| (r, m[r][col]))
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .expect("three rows");
        *code = match (row, v >= 0.0) {
            (0, true) => b'R',
            (0, false) => b'L',
            (1, true) => b'A',
            (1, false) => b'P',
            (_, true) => b'S',
            (_, false) => b'I',
        };
    }
    out
}

/// Reads a TrackVis `.trk` file (versions 1 and 2, either byte order).
pub fn read_trk(path: &Path) -> Result<Tracts> {
    let b = read_input(path)?;
    if b.len() < 1000 || &b[..5] != b"TRACK" {
        return Err(bad(path, "not a TrackVis file (no TRACK header)"));
    }
    let le = i32::from_le_bytes(b[996..1000].try_into().expect("4")) == 1000;
    if !le && i32::from_be_bytes(b[996..1000].try_into().expect("4")) != 1000 {
        return Err(bad(path, "hdr_size is not 1000 in either byte order"));
    }
    let i16_at = |i: usize| -> i16 {
        let x = b[i..i + 2].try_into().expect("2");
        if le {
            i16::from_le_bytes(x)
        } else {
            i16::from_be_bytes(x)
        }
    };
    let i32_at = |i: usize| -> i32 {
        let x = b[i..i + 4].try_into().expect("4");
        if le {
            i32::from_le_bytes(x)
        } else {
            i32::from_be_bytes(x)
        }
    };
    let f32_at = |i: usize| -> f32 {
        let x = b[i..i + 4].try_into().expect("4");
        if le {
            f32::from_le_bytes(x)
        } else {
            f32::from_be_bytes(x)
        }
    };
    let dims: Vec<i16> = (0..3).map(|k| i16_at(6 + 2 * k)).collect();
    let voxel: Vec<f64> = (0..3).map(|k| f32_at(12 + 4 * k) as f64).collect();
    let n_scalars = i16_at(36);
    let n_props = i16_at(238);
    let version = i32_at(992);
    if !(1..=2).contains(&version) {
        return Err(bad(
            path,
            format!("TrackVis version {version} (1 or 2 are known)"),
        ));
    }
    if !(0..=10).contains(&n_scalars) || !(0..=10).contains(&n_props) {
        return Err(bad(
            path,
            format!("header claims {n_scalars} scalars and {n_props} properties (0 to 10 each)"),
        ));
    }
    if let Some(v) = voxel.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
        return Err(bad(
            path,
            format!("voxel size {v} is not a positive number"),
        ));
    }
    let mut vox_to_ras = [[0.0f64; 4]; 4];
    for (r, row) in vox_to_ras.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = f32_at(440 + 4 * (4 * r + c)) as f64;
        }
    }
    if vox_to_ras[3][3] == 0.0 {
        // Version 1 files may leave it unset: voxmm scaled back to voxels.
        vox_to_ras = [[0.0; 4]; 4];
        for a in 0..3 {
            vox_to_ras[a][a] = voxel[a];
        }
        vox_to_ras[3][3] = 1.0;
    }
    let order: Vec<u8> = b[948..951].iter().map(u8::to_ascii_uppercase).collect();
    if order.iter().all(|&c| c != 0) && order[..] != axcodes(&vox_to_ras)[..] {
        return Err(bad(
            path,
            format!(
                "voxel order {} differs from the orientation of vox_to_ras ({}); reorienting such files is not supported",
                String::from_utf8_lossy(&order),
                String::from_utf8_lossy(&axcodes(&vox_to_ras))
            ),
        ));
    }
    let count = i32_at(988);
    let (ns, np) = (n_scalars as usize, n_props as usize);
    let scalar_names = trk_names(&b[38..238], ns, "scalar");
    let prop_names = trk_names(&b[240..440], np, "property");
    let mut t = Tracts {
        offsets: vec![0],
        ..Default::default()
    };
    let mut scalars: Vec<f32> = vec![];
    let mut props: Vec<f32> = vec![];
    let mut at = 1000;
    while at < b.len() {
        if count > 0 && t.len() == count as usize {
            break;
        }
        if at + 4 > b.len() {
            return Err(bad(
                path,
                format!("truncated: a streamline header at byte {at}"),
            ));
        }
        let m = i32_at(at);
        at += 4;
        let need = (m.max(0) as usize)
            .checked_mul((3 + ns) * 4)
            .and_then(|x| x.checked_add(np * 4));
        if m < 0 || need.is_none_or(|n| at + n > b.len()) {
            return Err(bad(
                path,
                format!(
                    "streamline {} claims {m} points, more than the {} bytes left",
                    t.len(),
                    b.len() - at
                ),
            ));
        }
        for _ in 0..m {
            let mut v = [0.0f64; 3];
            for (a, x) in v.iter_mut().enumerate() {
                *x = f32_at(at + 4 * a) as f64 / voxel[a] - 0.5;
            }
            for r in 0..3 {
                let p = vox_to_ras[r][0] * v[0]
                    + vox_to_ras[r][1] * v[1]
                    + vox_to_ras[r][2] * v[2]
                    + vox_to_ras[r][3];
                t.positions.push(p);
            }
            for k in 0..ns {
                scalars.push(f32_at(at + 12 + 4 * k));
            }
            at += (3 + ns) * 4;
        }
        for k in 0..np {
            props.push(f32_at(at + 4 * k));
        }
        at += np * 4;
        t.offsets.push(t.positions.len() / 3);
    }
    if count > 0 && t.len() != count as usize {
        return Err(bad(
            path,
            format!(
                "the header counts {count} streamlines, the file holds {}",
                t.len()
            ),
        ));
    }
    if let Some(i) = t.positions.iter().position(|v| !v.is_finite()) {
        return Err(bad(
            path,
            format!("point {} has a non-finite coordinate", i / 3),
        ));
    }
    let _ = dims;
    let split = |flat: &[f32], names: &[(String, usize)], per: usize| {
        let rows = flat.len() / per.max(1);
        let mut col = 0;
        names
            .iter()
            .map(|(name, w)| {
                let mut v = Vec::with_capacity(rows * w);
                for r in 0..rows {
                    v.extend_from_slice(&flat[r * per + col..r * per + col + w]);
                }
                col += w;
                (name.clone(), *w, v)
            })
            .collect::<Vec<_>>()
    };
    t.scalars = split(&scalars, &scalar_names, ns);
    t.properties = split(&props, &prop_names, np);
    Ok(t)
}

/// The reference grid written with exported streamlines: 1 mm voxels in
/// RAS order whose corner is the data's lower corner (floored), as many
/// voxels as the data spans.
pub(crate) fn reference_grid(positions: &[f64]) -> ([f64; 3], [i16; 3]) {
    let mut lo = [0.0f64; 3];
    let mut dims = [1i16; 3];
    for a in 0..3 {
        let it = positions.iter().skip(a).step_by(3);
        let l = it.clone().copied().fold(f64::INFINITY, f64::min).floor();
        let h = it.copied().fold(f64::NEG_INFINITY, f64::max);
        if l.is_finite() {
            lo[a] = l;
            dims[a] = ((h - l).ceil() as i64 + 1).clamp(1, i16::MAX as i64) as i16;
        }
    }
    (lo, dims)
}

pub(crate) fn check_lines(positions: &[f64], offsets: &[usize]) -> Result<()> {
    let n = positions.len() / 3;
    if !positions.len().is_multiple_of(3)
        || offsets.first() != Some(&0)
        || offsets.last() != Some(&n)
        || offsets.windows(2).any(|w| w[0] > w[1])
    {
        return Err(Error::invalid(
            "streamlines need rows of 3 coordinates and offsets rising from 0 to their count",
        ));
    }
    if let Some(i) = positions.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(format!(
            "point {} has a non-finite coordinate",
            i / 3
        )));
    }
    Ok(())
}

/// Writes streamlines (RAS+ mm) as a TrackVis version 2 file whose grid
/// (1 mm voxels, RAS order) starts at the data's lower corner.
pub fn write_trk(path: &Path, positions: &[f64], offsets: &[usize]) -> Result<()> {
    check_lines(positions, offsets)?;
    let (lo, dims) = reference_grid(positions);
    let mut h = vec![0u8; 1000];
    h[..6].copy_from_slice(b"TRACK\0");
    for a in 0..3 {
        h[6 + 2 * a..8 + 2 * a].copy_from_slice(&dims[a].to_le_bytes());
        h[12 + 4 * a..16 + 4 * a].copy_from_slice(&1.0f32.to_le_bytes());
    }
    let mut m = [[0.0f32; 4]; 4];
    for a in 0..3 {
        m[a][a] = 1.0;
        m[a][3] = lo[a] as f32;
    }
    m[3][3] = 1.0;
    for (r, row) in m.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            h[440 + 4 * (4 * r + c)..444 + 4 * (4 * r + c)].copy_from_slice(&v.to_le_bytes());
        }
    }
    h[948..951].copy_from_slice(b"RAS");
    let lines = offsets.len() - 1;
    let count = i32::try_from(lines).map_err(|_| Error::invalid("too many streamlines for TRK"))?;
    h[988..992].copy_from_slice(&count.to_le_bytes());
    h[992..996].copy_from_slice(&2i32.to_le_bytes());
    h[996..1000].copy_from_slice(&1000i32.to_le_bytes());
    voxfield_io::npy::write_atomic(path, |w| {
        w.write_all(&h)?;
        for l in 0..lines {
            let (s, e) = (offsets[l], offsets[l + 1]);
            w.write_all(&((e - s) as i32).to_le_bytes())?;
            for r in s..e {
                for a in 0..3 {
                    // RAS mm → voxmm of the grid above: (p − lo) + ½.
                    let v = (positions[r * 3 + a] - lo[a] + 0.5) as f32;
                    w.write_all(&v.to_le_bytes())?;
                }
            }
        }
        Ok(())
    })
}

/// Reads an MRtrix `.tck` file.
pub fn read_tck(path: &Path) -> Result<Tracts> {
    let b = read_input(path)?;
    let end = b
        .windows(4)
        .position(|w| w == b"END\n")
        .ok_or_else(|| bad(path, "no END line ending the header"))?;
    let header = String::from_utf8_lossy(&b[..end]);
    let mut lines = header.lines();
    if lines.next().map(str::trim) != Some("mrtrix tracks") {
        return Err(bad(path, "not an MRtrix tracks file (first line)"));
    }
    let (mut offset, mut dtype, mut count) = (None, None, None);
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "file" => {
                let mut parts = v.split_whitespace();
                if parts.next() != Some(".") {
                    return Err(bad(
                        path,
                        format!("data in another file ({v}) is not supported"),
                    ));
                }
                offset = parts.next().and_then(|o| o.parse::<usize>().ok());
            }
            "datatype" => dtype = Some(v.to_string()),
            "count" => count = v.parse::<usize>().ok(),
            _ => {}
        }
    }
    let offset = offset.ok_or_else(|| bad(path, "no 'file: . OFFSET' line"))?;
    let (size, le) = match dtype.as_deref() {
        Some("Float32LE") => (4, true),
        Some("Float32BE") => (4, false),
        Some("Float64LE") => (8, true),
        Some("Float64BE") => (8, false),
        other => {
            return Err(bad(
                path,
                format!("datatype {other:?} (Float32/64 LE/BE are known)"),
            ))
        }
    };
    if offset < end + 4 || offset > b.len() {
        return Err(bad(
            path,
            format!("data offset {offset} is outside the file"),
        ));
    }
    let value = |i: usize| -> f64 {
        match (size, le) {
            (4, true) => f32::from_le_bytes(b[i..i + 4].try_into().expect("4")) as f64,
            (4, false) => f32::from_be_bytes(b[i..i + 4].try_into().expect("4")) as f64,
            (_, true) => f64::from_le_bytes(b[i..i + 8].try_into().expect("8")),
            (_, false) => f64::from_be_bytes(b[i..i + 8].try_into().expect("8")),
        }
    };
    let mut t = Tracts {
        offsets: vec![0],
        ..Default::default()
    };
    let mut at = offset;
    let mut ended = false;
    while at + 3 * size <= b.len() {
        let p = [value(at), value(at + size), value(at + 2 * size)];
        at += 3 * size;
        if p.iter().all(|v| v.is_infinite()) {
            ended = true;
            break;
        }
        if p.iter().all(|v| v.is_nan()) {
            t.offsets.push(t.positions.len() / 3);
            continue;
        }
        if p.iter().any(|v| !v.is_finite()) {
            return Err(bad(
                path,
                format!("a point at byte {} is not finite", at - 3 * size),
            ));
        }
        t.positions.extend(p);
    }
    if !ended {
        return Err(bad(path, "truncated: no Inf triplet ends the data"));
    }
    if *t.offsets.last().expect("starts at 0") != t.positions.len() / 3 {
        // A final streamline without its NaN separator.
        t.offsets.push(t.positions.len() / 3);
    }
    if let Some(c) = count {
        if c != t.len() {
            return Err(bad(
                path,
                format!(
                    "the header counts {c} streamlines, the file holds {}",
                    t.len()
                ),
            ));
        }
    }
    Ok(t)
}

/// Writes streamlines (RAS+ mm) as an MRtrix `.tck` file (Float32LE).
pub fn write_tck(path: &Path, positions: &[f64], offsets: &[usize]) -> Result<()> {
    check_lines(positions, offsets)?;
    let lines = offsets.len() - 1;
    let mut head =
        format!("mrtrix tracks\ncount: {lines}\ndatatype: Float32LE\ntimestamp: 0\nfile: . ");
    // The offset names the header's own length: pad to a stable width.
    let base = head.len() + "\nEND\n".len() + 10;
    let offset = base.div_ceil(16) * 16;
    head.push_str(&format!("{offset:<10}\nEND\n"));
    let mut hb = head.into_bytes();
    hb.resize(offset, 0);
    voxfield_io::npy::write_atomic(path, |w| {
        w.write_all(&hb)?;
        for l in 0..lines {
            for r in offsets[l]..offsets[l + 1] {
                for a in 0..3 {
                    w.write_all(&(positions[r * 3 + a] as f32).to_le_bytes())?;
                }
            }
            for _ in 0..3 {
                w.write_all(&f32::NAN.to_le_bytes())?;
            }
        }
        for _ in 0..3 {
            w.write_all(&f32::INFINITY.to_le_bytes())?;
        }
        Ok(())
    })
}

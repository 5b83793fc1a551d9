//! ASPRS LAS 1.0–1.4 point clouds (uncompressed), read through a memory
//! map so files larger than memory stream into a store: coordinates are
//! `X · scale + offset` per axis; intensity, classification and, where the
//! point format has them, GPS time and RGB become vertex attributes.
//! Compressed LAZ is refused by name.

use std::ops::Range;
use std::path::Path;

use voxfield_core::{Error, Result};

use crate::ingest::{AttributeSpec, PointInput};

/// An open LAS file.
pub struct LasPoints {
    map: memmap2::Mmap,
    /// Byte offset of the first point record.
    offset: usize,
    record: usize,
    count: usize,
    format: u8,
    scale: [f64; 3],
    shift: [f64; 3],
    pub version: (u8, u8),
}

/// Where a format keeps GPS time and RGB (byte offsets in a record).
fn layout(format: u8) -> (usize, Option<usize>, Option<usize>, usize) {
    // (classification offset, GPS time, RGB, minimum record length)
    match format {
        0 => (15, None, None, 20),
        1 => (15, Some(20), None, 28),
        2 => (15, None, Some(20), 26),
        3 => (15, Some(20), Some(28), 34),
        4 => (15, Some(20), None, 57),
        5 => (15, Some(20), Some(28), 63),
        6 => (16, Some(22), None, 30),
        7 => (16, Some(22), Some(30), 36),
        8 => (16, Some(22), Some(30), 38),
        9 => (16, Some(22), None, 59),
        _ => (16, Some(22), Some(30), 67),
    }
}

impl LasPoints {
    pub fn open(path: &Path) -> Result<LasPoints> {
        let bad = |m: String| Error::format(path, m);
        voxfield_io::safety::regular_input(path)?;
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: read-only map; concurrent truncation is the usual caveat.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        if map.len() < 227 || &map[..4] != b"LASF" {
            return Err(bad("not a LAS file (no LASF signature)".into()));
        }
        let u16_at = |i: usize| u16::from_le_bytes(map[i..i + 2].try_into().expect("2"));
        let u32_at = |i: usize| u32::from_le_bytes(map[i..i + 4].try_into().expect("4"));
        let f64_at = |i: usize| f64::from_le_bytes(map[i..i + 8].try_into().expect("8"));
        let version = (map[24], map[25]);
        if version.0 != 1 || version.1 > 4 {
            return Err(bad(format!(
                "LAS version {}.{} (1.0 to 1.4 are known)",
                version.0, version.1
            )));
        }
        let offset = u32_at(96) as usize;
        let raw_format = map[104];
        if raw_format & 0xC0 != 0 {
            return Err(bad(
                "a compressed (LAZ) point format: decompress it first (e.g. laszip)".into(),
            ));
        }
        let format = raw_format;
        if format > 10 {
            return Err(bad(format!(
                "point data format {format} (0 to 10 are known)"
            )));
        }
        let record = u16_at(105) as usize;
        let min_len = layout(format).3;
        if record < min_len {
            return Err(bad(format!(
                "point records of {record} bytes, format {format} needs at least {min_len}"
            )));
        }
        let legacy = u32_at(107) as usize;
        let count = if version.1 >= 4 && map.len() >= 255 {
            let c = u64::from_le_bytes(map[247..255].try_into().expect("8")) as usize;
            if c == 0 {
                legacy
            } else {
                c
            }
        } else {
            legacy
        };
        let scale = [f64_at(131), f64_at(139), f64_at(147)];
        let shift = [f64_at(155), f64_at(163), f64_at(171)];
        if let Some(s) = scale.iter().find(|s| !(s.is_finite() && **s != 0.0)) {
            return Err(bad(format!(
                "coordinate scale {s} is not a non-zero number"
            )));
        }
        if shift.iter().any(|s| !s.is_finite()) {
            return Err(bad("a coordinate offset is not finite".into()));
        }
        let need = count
            .checked_mul(record)
            .and_then(|b| b.checked_add(offset));
        if offset < 227 || need.is_none_or(|n| n > map.len()) {
            return Err(bad(format!(
                "truncated: {count} records of {record} bytes from byte {offset}, the file holds {}",
                map.len()
            )));
        }
        Ok(LasPoints {
            map,
            offset,
            record,
            count,
            format,
            scale,
            shift,
            version,
        })
    }
}

impl PointInput for LasPoints {
    fn len(&self) -> usize {
        self.count
    }
    fn dims(&self) -> usize {
        3
    }
    fn attributes(&self) -> Vec<AttributeSpec> {
        let (_, gps, rgb, _) = layout(self.format);
        let spec = |name: &str, dtype: &str, width| AttributeSpec {
            name: name.into(),
            dtype: dtype.into(),
            width,
        };
        let mut out = vec![
            spec("intensity", "uint16", 1),
            spec("classification", "uint8", 1),
        ];
        if gps.is_some() {
            out.push(spec("gps_time", "float64", 1));
        }
        if rgb.is_some() {
            out.push(spec("rgb", "uint16", 3));
        }
        out
    }
    fn read(&self, rows: Range<usize>, coords: &mut Vec<f64>, attrs: &mut [Vec<u8>]) -> Result<()> {
        let (class, gps, rgb, _) = layout(self.format);
        let span = (
            self.offset + rows.start * self.record,
            self.offset + rows.end * self.record,
        );
        for r in rows {
            let b = &self.map[self.offset + r * self.record..self.offset + (r + 1) * self.record];
            for a in 0..3 {
                let x = i32::from_le_bytes(b[4 * a..4 * a + 4].try_into().expect("4"));
                coords.push(x as f64 * self.scale[a] + self.shift[a]);
            }
            if attrs.is_empty() {
                continue;
            }
            attrs[0].extend_from_slice(&b[12..14]);
            // Formats 0–5 keep the class in the low 5 bits (flags above).
            attrs[1].push(if self.format < 6 {
                b[class] & 0x1F
            } else {
                b[class]
            });
            let mut k = 2;
            if let Some(g) = gps {
                attrs[k].extend_from_slice(&b[g..g + 8]);
                k += 1;
            }
            if let Some(c) = rgb {
                attrs[k].extend_from_slice(&b[c..c + 6]);
            }
        }
        crate::ingest::release(&self.map, span.0, span.1);
        Ok(())
    }
}

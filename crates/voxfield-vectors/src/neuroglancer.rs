//! Neuroglancer precomputed annotations (`neuroglancer_annotations_v1`, the
//! unsharded form) for viewing a level: points as POINT annotations, polyline
//! segments and graph edges as LINE annotations related to their object id.
//!
//! The spatial index follows the format's recipe: level 0 is one cell over
//! the bounds; each finer level halves the chunk along the axes at least half
//! as long as the longest (keeping cells near-isotropic). At each level every
//! remaining annotation is emitted with probability `min(1, limit / the
//! fullest cell's count)`, decided by a hash of (id, level) so an annotation
//! spanning several cells is emitted at the same level in all of them; the
//! rest go down to the child cells they overlap. Cells list their
//! annotations in hash order, which Neuroglancer takes as a random order.
//! Memory is O(the annotations of the level exported); the unsharded form
//! writes one `by_id` file per annotation, so export a coarse level or a box.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use serde_json::json;
use voxfield_core::{Error, Result};

use crate::write::{publish, temp_beside};

/// Annotation geometry: rows of `dims` coordinates, and for lines the
/// vertex pairs with, where known, the object each belongs to (written as
/// the `object` relationship, so Neuroglancer can filter by object).
pub enum Geometry<'a> {
    Points(&'a [f64]),
    Lines {
        positions: &'a [f64],
        segments: &'a [[usize; 2]],
        objects: Option<&'a [u64]>,
    },
}

/// A numeric property type Neuroglancer knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
}

impl PropertyType {
    fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::I8 => "int8",
            Self::U16 => "uint16",
            Self::I16 => "int16",
            Self::U32 => "uint32",
            Self::I32 => "int32",
            Self::F32 => "float32",
        }
    }
    fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::U16 | Self::I16 => 2,
            _ => 4,
        }
    }
    /// The type a zarr-vectors dtype is shown as (wider types as float32).
    pub fn for_dtype(dtype: &str) -> PropertyType {
        match dtype.trim_start_matches(['<', '|', '>']) {
            "uint8" | "u1" => Self::U8,
            "int8" | "i1" => Self::I8,
            "uint16" | "u2" => Self::U16,
            "int16" | "i2" => Self::I16,
            "uint32" | "u4" => Self::U32,
            "int32" | "i4" => Self::I32,
            _ => Self::F32,
        }
    }
    fn encode(self, v: f64, out: &mut Vec<u8>) {
        match self {
            Self::U8 => out.push(v as u8),
            Self::I8 => out.push(v as i8 as u8),
            Self::U16 => out.extend((v as u16).to_le_bytes()),
            Self::I16 => out.extend((v as i16).to_le_bytes()),
            Self::U32 => out.extend((v as u32).to_le_bytes()),
            Self::I32 => out.extend((v as i32).to_le_bytes()),
            Self::F32 => out.extend((v as f32).to_le_bytes()),
        }
    }
}

/// One value per annotation (per point, or per segment).
pub struct Property {
    pub id: String,
    pub kind: PropertyType,
    pub values: Vec<f64>,
}

/// A property id Neuroglancer accepts (`^[a-z][a-zA-Z0-9_]*$`) made from
/// an attribute name.
pub fn property_id(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => {
            s.replace_range(..1, &c.to_ascii_lowercase().to_string());
            s
        }
        _ => format!("p{s}"),
    }
}

/// What an export wrote.
#[derive(Debug)]
pub struct Summary {
    pub annotations: usize,
    pub levels: usize,
    pub cells: usize,
}

/// splitmix64's first output from state `x`: the per-(annotation, level) draw.
fn mix(x: u64) -> u64 {
    voxfield_core::rng::Rng(x).next_u64()
}

/// Writes the annotations as a new directory `out` (refused if something is
/// there; built beside it and renamed into place). `limit` is the most
/// annotations a spatial cell should show.
pub fn write_annotations(
    out: &Path,
    dims: usize,
    geometry: &Geometry,
    properties: &[Property],
    limit: usize,
) -> Result<Summary> {
    let (positions, n) = match geometry {
        Geometry::Points(p) => (*p, p.len() / dims.max(1)),
        Geometry::Lines {
            positions,
            segments,
            objects,
        } => {
            if objects.is_some_and(|o| o.len() != segments.len()) {
                return Err(Error::invalid("one object id per segment"));
            }
            let rows = positions.len() / dims.max(1);
            if segments.iter().any(|s| s[0] >= rows || s[1] >= rows) {
                return Err(Error::invalid(
                    "a segment names a vertex past the positions",
                ));
            }
            (*positions, segments.len())
        }
    };
    if !(1..=3).contains(&dims) || !positions.len().is_multiple_of(dims) {
        return Err(Error::invalid(format!(
            "positions must be rows of 1 to 3 coordinates (got {dims})"
        )));
    }
    if n == 0 {
        return Err(Error::invalid(
            "nothing to export: the level has no annotations",
        ));
    }
    if limit == 0 {
        return Err(Error::invalid("--limit must be at least 1"));
    }
    if let Some(p) = properties.iter().find(|p| p.values.len() != n) {
        return Err(Error::invalid(format!(
            "property {}: {} values for {n} annotations",
            p.id,
            p.values.len()
        )));
    }
    if positions.iter().any(|v| !v.is_finite()) {
        return Err(Error::invalid("a position is not finite"));
    }
    if std::fs::symlink_metadata(out).is_ok() {
        return Err(Error::invalid(format!(
            "{} already exists; remove it or choose another output",
            out.display()
        )));
    }
    // Properties in encoding order: 4-byte, then 2-byte, then 1-byte types.
    let mut props: Vec<&Property> = properties.iter().collect();
    props.sort_by_key(|p| std::cmp::Reverse(p.kind.size()));
    let corners = |i: usize| -> (Vec<f64>, Vec<f64>) {
        match geometry {
            Geometry::Points(p) => (
                p[i * dims..(i + 1) * dims].to_vec(),
                p[i * dims..(i + 1) * dims].to_vec(),
            ),
            Geometry::Lines {
                positions: p,
                segments,
                ..
            } => {
                let [a, b] = segments[i];
                let (a, b) = (&p[a * dims..(a + 1) * dims], &p[b * dims..(b + 1) * dims]);
                (
                    (0..dims).map(|d| a[d].min(b[d])).collect(),
                    (0..dims).map(|d| a[d].max(b[d])).collect(),
                )
            }
        }
    };
    let encode = |i: usize, out: &mut Vec<u8>| {
        let rows: Vec<usize> = match geometry {
            Geometry::Points(_) => vec![i],
            Geometry::Lines { segments, .. } => segments[i].to_vec(),
        };
        for r in rows {
            for d in 0..dims {
                out.extend((positions[r * dims + d] as f32).to_le_bytes());
            }
        }
        for p in &props {
            p.kind.encode(p.values[i], out);
        }
        out.resize(out.len().next_multiple_of(4), 0);
    };
    let mut lo = vec![f64::INFINITY; dims];
    let mut hi = vec![f64::NEG_INFINITY; dims];
    for r in positions.chunks_exact(dims) {
        for d in 0..dims {
            lo[d] = lo[d].min(r[d] as f32 as f64);
            hi[d] = hi[d].max(r[d] as f32 as f64);
        }
    }
    let tmp = temp_beside(out)?;
    let built = (|| -> Result<Summary> {
        let io = |p: &Path, e: std::io::Error| Error::io(p, e);
        let write_file = |p: &Path, bytes: &[u8]| -> Result<()> {
            let mut f = std::fs::File::create(p).map_err(|e| io(p, e))?;
            f.write_all(bytes).map_err(|e| io(p, e))
        };
        let by_id = tmp.join("by_id");
        std::fs::create_dir(&by_id).map_err(|e| io(&by_id, e))?;
        let mut buf = vec![];
        for i in 0..n {
            buf.clear();
            encode(i, &mut buf);
            if let Geometry::Lines {
                objects: Some(objects),
                ..
            } = geometry
            {
                buf.extend(1u32.to_le_bytes());
                buf.extend(objects[i].to_le_bytes());
            }
            write_file(&by_id.join(i.to_string()), &buf)?;
        }
        let mut relationships = vec![];
        if let Geometry::Lines {
            objects: Some(objects),
            ..
        } = geometry
        {
            let rel = tmp.join("rel_object");
            std::fs::create_dir(&rel).map_err(|e| io(&rel, e))?;
            let mut by_object: HashMap<u64, Vec<usize>> = HashMap::new();
            for (i, &o) in objects.iter().enumerate() {
                by_object.entry(o).or_default().push(i);
            }
            for (o, list) in by_object {
                write_file(&rel.join(o.to_string()), &annotation_list(&list, &encode))?;
            }
            relationships.push(json!({"id": "object", "key": "rel_object"}));
        }
        // The spatial index, coarse to fine.
        let extent: Vec<f64> = (0..dims).map(|d| (hi[d] - lo[d]).max(1e-6)).collect();
        let mut chunk = extent.clone();
        let mut grid = vec![1u64; dims];
        let mut remaining: HashMap<Vec<u64>, Vec<usize>> =
            HashMap::from([(vec![0; dims], (0..n).collect())]);
        let mut spatial = vec![];
        let mut cells = 0;
        for level in 0u64.. {
            if remaining.is_empty() {
                break;
            }
            let most = remaining.values().map(Vec::len).max().unwrap_or(0);
            // The last level allowed emits everything left (e.g. > limit
            // annotations at one position, which no grid can separate).
            let p = if level == 40 {
                1.0
            } else {
                (limit as f64 / most as f64).min(1.0)
            };
            let draw = |i: usize| mix(i as u64 ^ mix(level)) as f64 / u64::MAX as f64;
            let key = format!("spatial{level}");
            let dir = tmp.join(&key);
            std::fs::create_dir(&dir).map_err(|e| io(&dir, e))?;
            // Child grid: halve the axes at least half as long as the longest.
            let longest = chunk.iter().copied().fold(0.0, f64::max);
            let halve: Vec<bool> = chunk.iter().map(|&c| c * 2.0 >= longest).collect();
            let mut next: HashMap<Vec<u64>, Vec<usize>> = HashMap::new();
            for (cell, list) in &remaining {
                let (mut emitted, rest): (Vec<usize>, Vec<usize>) =
                    list.iter().partition(|&&i| draw(i) < p);
                if !emitted.is_empty() {
                    emitted.sort_by_key(|&i| mix(i as u64 ^ 0x5eed));
                    let name: Vec<String> = cell.iter().map(u64::to_string).collect();
                    write_file(
                        &dir.join(name.join("_")),
                        &annotation_list(&emitted, &encode),
                    )?;
                    cells += 1;
                }
                for i in rest {
                    let (a, b) = corners(i);
                    let mut ranges = vec![];
                    for d in 0..dims {
                        let (c0, k) = if halve[d] {
                            (cell[d] * 2, 2)
                        } else {
                            (cell[d], 1)
                        };
                        let size = if halve[d] { chunk[d] / 2.0 } else { chunk[d] };
                        let at = |x: f64| {
                            (((x - lo[d]) / size).floor().max(0.0) as u64).clamp(c0, c0 + k - 1)
                        };
                        ranges.push(at(a[d])..=at(b[d]));
                    }
                    for_each_cell(&ranges, &mut |c| {
                        next.entry(c.to_vec()).or_default().push(i)
                    });
                }
            }
            spatial.push(json!({
                "key": key,
                "grid_shape": grid,
                "chunk_size": chunk,
                "limit": limit,
            }));
            for d in 0..dims {
                if halve[d] {
                    chunk[d] /= 2.0;
                    grid[d] *= 2;
                }
            }
            remaining = next;
        }
        let names = ["x", "y", "z"];
        let dimensions: serde_json::Map<String, serde_json::Value> = (0..dims)
            .map(|d| (names[d].to_string(), json!([1.0, ""])))
            .collect();
        let upper: Vec<f64> = (0..dims).map(|d| lo[d] + extent[d]).collect();
        let info = json!({
            "@type": "neuroglancer_annotations_v1",
            "dimensions": dimensions,
            "lower_bound": lo,
            "upper_bound": upper,
            "annotation_type": if matches!(geometry, Geometry::Points(_)) { "point" } else { "line" },
            "properties": props.iter().map(|p| json!({"id": p.id, "type": p.kind.name()})).collect::<Vec<_>>(),
            "relationships": relationships,
            "by_id": {"key": "by_id"},
            "spatial": spatial,
        });
        write_file(&tmp.join("info"), info.to_string().as_bytes())?;
        Ok(Summary {
            annotations: n,
            levels: spatial.len(),
            cells,
        })
    })();
    match built {
        Ok(s) => publish(&tmp, out, Ok(())).map(|()| s),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// The multiple-annotation encoding: count, the annotations, their ids.
fn annotation_list(list: &[usize], encode: &impl Fn(usize, &mut Vec<u8>)) -> Vec<u8> {
    let mut b = (list.len() as u64).to_le_bytes().to_vec();
    for &i in list {
        encode(i, &mut b);
    }
    for &i in list {
        b.extend((i as u64).to_le_bytes());
    }
    b
}

/// Calls `f` with every cell of the box `ranges` (one range per axis).
fn for_each_cell(ranges: &[std::ops::RangeInclusive<u64>], f: &mut impl FnMut(&[u64])) {
    let mut c: Vec<u64> = ranges.iter().map(|r| *r.start()).collect();
    loop {
        f(&c);
        let mut d = 0;
        loop {
            if d == ranges.len() {
                return;
            }
            if c[d] < *ranges[d].end() {
                c[d] += 1;
                break;
            }
            c[d] = *ranges[d].start();
            d += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_ids_are_what_neuroglancer_accepts() {
        assert_eq!(property_id("Intensity"), "intensity");
        assert_eq!(property_id("2nd value"), "p2nd_value");
        assert_eq!(property_id("gps-time"), "gps_time");
    }

    #[test]
    fn every_point_is_emitted_once_and_cells_respect_the_grid() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a");
        let pts: Vec<f64> = (0..3000)
            .map(|i| ((i * 7919) % 1000) as f64 / 10.0)
            .collect();
        let s = write_annotations(&out, 3, &Geometry::Points(&pts), &[], 50).unwrap();
        assert_eq!(s.annotations, 1000);
        assert!(s.levels > 2, "{s:?}");
        let mut seen = vec![0; 1000];
        for l in 0..s.levels {
            for e in std::fs::read_dir(out.join(format!("spatial{l}"))).unwrap() {
                let b = std::fs::read(e.unwrap().path()).unwrap();
                let k = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
                assert_eq!(b.len(), 8 + k * 12 + k * 8);
                for j in 0..k {
                    let at = 8 + k * 12 + j * 8;
                    seen[u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&c| c == 1));
        assert!(write_annotations(&out, 3, &Geometry::Points(&pts), &[], 50).is_err());
    }
}

//! PLY point files: the `vertex` element of ASCII or binary little-endian
//! PLY (x, y[, z] and any other scalar properties, which become vertex
//! attributes) read in, and points with attributes written out as binary
//! little-endian PLY, atomically.

use std::io::{BufRead, Write};
use std::path::Path;

use voxfield_core::{Error, Result};

/// A point table from a PLY file.
#[derive(Clone, Debug)]
pub struct PlyPoints {
    pub dims: usize,
    /// Coordinates, row-major.
    pub positions: Vec<f64>,
    /// Other scalar vertex properties, as float64 columns.
    pub attributes: Vec<(String, Vec<f64>)>,
}

/// A PLY scalar type: its size and how its little-endian bytes read as f64.
type Scalar = (usize, fn(&[u8]) -> f64);

/// A PLY element: name, count, properties ((type, name), or None for a list).
type Element = (String, u64, Vec<Option<(String, String)>>);

/// Bytes and reader of a PLY scalar type.
fn scalar(t: &str) -> Option<Scalar> {
    Some(match t {
        "char" | "int8" => (1, |b| b[0] as i8 as f64),
        "uchar" | "uint8" => (1, |b| b[0] as f64),
        "short" | "int16" => (2, |b| i16::from_le_bytes([b[0], b[1]]) as f64),
        "ushort" | "uint16" => (2, |b| u16::from_le_bytes([b[0], b[1]]) as f64),
        "int" | "int32" => (4, |b| {
            i32::from_le_bytes(b[..4].try_into().expect("4")) as f64
        }),
        "uint" | "uint32" => (4, |b| {
            u32::from_le_bytes(b[..4].try_into().expect("4")) as f64
        }),
        "float" | "float32" => (4, |b| {
            f32::from_le_bytes(b[..4].try_into().expect("4")) as f64
        }),
        "double" | "float64" => (8, |b| f64::from_le_bytes(b[..8].try_into().expect("8"))),
        _ => return None,
    })
}

/// Vertices PLY files may claim (each at least one byte): a forged count
/// must not allocate more than the file could hold.
fn check_count(path: &Path, n: u64, len: u64) -> Result<usize> {
    if n > len {
        return Err(Error::format(
            path,
            format!("the header claims {n} vertices in a {len}-byte file"),
        ));
    }
    Ok(n as usize)
}

/// Reads the vertex element of a PLY file.
pub fn read_ply(path: &Path) -> Result<PlyPoints> {
    let bad = |m: String| Error::format(path, m);
    voxfield_io::safety::regular_input(path)?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut r = std::io::BufReader::new(file);
    let mut line = String::new();
    let mut header = vec![];
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(|e| Error::io(path, e))? == 0 {
            return Err(bad("the PLY header has no end_header".into()));
        }
        let l = line.trim_end().to_string();
        if header.is_empty() && l != "ply" {
            return Err(bad("not a PLY file (it must start with 'ply')".into()));
        }
        if l == "end_header" {
            break;
        }
        header.push(l);
        if header.len() > 10_000 {
            return Err(bad("the PLY header is implausibly long".into()));
        }
    }
    let mut ascii = false;
    // Elements in order: (name, count, properties (name, type) or None for lists).
    let mut elements: Vec<Element> = vec![];
    for l in &header[1..] {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["format", "ascii", _] => ascii = true,
            ["format", "binary_little_endian", _] => {}
            ["format", f, _] => {
                return Err(bad(format!(
                    "PLY format {f} is not read (ascii or binary_little_endian)"
                )))
            }
            ["element", name, n] => {
                let n = n
                    .parse()
                    .map_err(|_| bad(format!("element {name}: count {n} is not a number")))?;
                elements.push((name.to_string(), n, vec![]));
            }
            ["property", "list", ..] => match elements.last_mut() {
                Some(e) => e.2.push(None),
                None => return Err(bad("a property before any element".into())),
            },
            ["property", t, name] => match elements.last_mut() {
                Some(e) => e.2.push(Some((t.to_string(), name.to_string()))),
                None => return Err(bad("a property before any element".into())),
            },
            ["comment", ..] | ["obj_info", ..] | [] => {}
            _ => return Err(bad(format!("unrecognised PLY header line {l:?}"))),
        }
    }
    let vi = elements
        .iter()
        .position(|e| e.0 == "vertex")
        .ok_or_else(|| bad("no vertex element".into()))?;
    if elements[..vi].iter().any(|e| e.1 > 0) {
        return Err(bad(
            "elements before the vertices are not skipped; put the vertex element first".into(),
        ));
    }
    let props: Vec<(String, String)> = elements[vi]
        .2
        .iter()
        .map(|p| {
            p.clone()
                .ok_or_else(|| bad("list properties on vertices are not read".into()))
        })
        .collect::<Result<_>>()?;
    let col = |n: &str| props.iter().position(|p| p.1 == n);
    let axes: Vec<usize> = ["x", "y", "z"].iter().map_while(|a| col(a)).collect();
    if axes.len() < 2 {
        return Err(bad("vertices need x and y properties".into()));
    }
    let n = check_count(path, elements[vi].1, len)?;
    let types: Vec<Scalar> = props
        .iter()
        .map(|p| scalar(&p.0).ok_or_else(|| bad(format!("property {} has type {}", p.1, p.0))))
        .collect::<Result<_>>()?;
    let mut table = Vec::with_capacity(n * props.len());
    if ascii {
        for i in 0..n {
            line.clear();
            if r.read_line(&mut line).map_err(|e| Error::io(path, e))? == 0 {
                return Err(bad(format!("the file ends after {i} of {n} vertices")));
            }
            let vals: Vec<f64> = line
                .split_whitespace()
                .take(props.len())
                .map(|v| {
                    v.parse()
                        .map_err(|_| bad(format!("vertex {i}: {v:?} is not a number")))
                })
                .collect::<Result<_>>()?;
            if vals.len() != props.len() {
                return Err(bad(format!(
                    "vertex {i} has {} values for {} properties",
                    vals.len(),
                    props.len()
                )));
            }
            table.extend(vals);
        }
    } else {
        let row: usize = types.iter().map(|t| t.0).sum();
        let mut buf = vec![0u8; row];
        for i in 0..n {
            std::io::Read::read_exact(&mut r, &mut buf)
                .map_err(|_| bad(format!("the file ends after {i} of {n} vertices")))?;
            let mut at = 0;
            for (size, f) in &types {
                table.push(f(&buf[at..at + size]));
                at += size;
            }
        }
    }
    let w = props.len();
    let positions = table
        .chunks_exact(w)
        .flat_map(|r| axes.iter().map(move |&a| r[a]))
        .collect();
    let attributes = (0..w)
        .filter(|c| !axes.contains(c))
        .map(|c| {
            (
                props[c].1.clone(),
                table.iter().skip(c).step_by(w).copied().collect(),
            )
        })
        .collect();
    Ok(PlyPoints {
        dims: axes.len(),
        positions,
        attributes,
    })
}

/// Writes points (rows of `dims`) and float64 attribute columns as binary
/// little-endian PLY (coordinates as float), under a temporary name first.
pub fn write_ply(
    path: &Path,
    positions: &[f64],
    dims: usize,
    attributes: &[(String, Vec<f64>)],
) -> Result<()> {
    let n = positions.len() / dims.max(1);
    if let Some((name, _)) = attributes.iter().find(|(_, v)| v.len() != n) {
        return Err(Error::invalid(format!(
            "attribute {name} does not have {n} values"
        )));
    }
    let mut head = format!(
        "ply\nformat binary_little_endian 1.0\ncomment written by voxfield\nelement vertex {n}\n"
    );
    for a in ["x", "y", "z"].iter().take(dims) {
        head.push_str(&format!("property float {a}\n"));
    }
    for (name, _) in attributes {
        if name.contains(char::is_whitespace) || name.is_empty() {
            return Err(Error::invalid(format!(
                "attribute name {name:?} cannot be a PLY property"
            )));
        }
        head.push_str(&format!("property double {name}\n"));
    }
    head.push_str("end_header\n");
    // The project's atomic writer: a temporary file renamed into place; a
    // symlink is followed, a device, FIFO or directory refused.
    voxfield_io::npy::write_atomic(path, |w| {
        w.write_all(head.as_bytes())?;
        for i in 0..n {
            for &x in &positions[i * dims..(i + 1) * dims] {
                w.write_all(&(x as f32).to_le_bytes())?;
            }
            for (_, v) in attributes {
                w.write_all(&v[i].to_le_bytes())?;
            }
        }
        Ok(())
    })
}

//! SWC neuron skeletons (Cannon et al. 1998; the NeuroMorpho.Org form): one
//! line per sample, `id type x y z radius parent`, `#` comments, parent −1
//! for a root. Read as a graph (an edge per sample and its parent) with
//! `radius` and `type` per vertex and one object per tree; written back from
//! a graph that is a forest, samples numbered 1.. depth-first from each root.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use voxfield_core::{Error, Result};

/// The largest SWC read (1 GiB of text).
const MAX_BYTES: u64 = 1 << 30;

/// A skeleton: samples in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Swc {
    /// x, y, z per sample.
    pub positions: Vec<f64>,
    pub radii: Vec<f64>,
    pub types: Vec<i32>,
    /// (parent, child) sample indices.
    pub edges: Vec<[u64; 2]>,
    /// Per sample its tree (0.. in order of the roots).
    pub trees: Vec<i64>,
}

/// Reads an SWC file; a sample naming an absent parent, a duplicate id, a
/// cycle or a malformed line is an error naming the line.
pub fn read_swc(path: &Path) -> Result<Swc> {
    voxfield_io::safety::regular_input(path)?;
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if len > MAX_BYTES {
        return Err(Error::format(
            path,
            format!("{len} bytes: over the 1 GiB an SWC may hold"),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut s = Swc::default();
    let mut ids: HashMap<i64, usize> = HashMap::new();
    let mut parents: Vec<(i64, usize)> = vec![];
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |m: &str| Error::format(path, format!("line {}: {m}", n + 1));
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 {
            return Err(bad("expected 7 fields: id type x y z radius parent"));
        }
        let int = |s: &str| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.fract() == 0.0 && v.abs() <= (1u64 << 53) as f64)
                .map(|v| v as i64)
        };
        let (Some(id), Some(kind), Some(parent)) = (int(f[0]), int(f[1]), int(f[6])) else {
            return Err(bad("id, type and parent must be integers (below 2^53)"));
        };
        if i32::try_from(kind).is_err() {
            return Err(bad(&format!("type {kind} does not fit a 32-bit integer")));
        }
        let num: Vec<f64> = f[2..6]
            .iter()
            .map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("x, y, z and radius must be finite numbers"))?;
        if ids.insert(id, ids.len()).is_some() {
            return Err(bad(&format!("sample id {id} appears twice")));
        }
        s.positions.extend_from_slice(&num[..3]);
        s.radii.push(num[3]);
        s.types.push(kind as i32);
        parents.push((parent, n + 1));
    }
    if ids.is_empty() {
        return Err(Error::format(path, "no samples"));
    }
    let mut parent_of = vec![usize::MAX; parents.len()];
    for (i, &(p, line)) in parents.iter().enumerate() {
        if p < 0 {
            continue;
        }
        let j = *ids.get(&p).ok_or_else(|| {
            Error::format(path, format!("line {line}: parent {p} is not a sample"))
        })?;
        parent_of[i] = j;
        s.edges.push([j as u64, i as u64]);
    }
    // Trees: follow parents to a root (a cycle never reaches one).
    s.trees = vec![-1; parent_of.len()];
    let mut roots = 0i64;
    for i in 0..parent_of.len() {
        let mut path_to_root = vec![];
        let mut at = i;
        while s.trees[at] < 0 && parent_of[at] != usize::MAX {
            path_to_root.push(at);
            at = parent_of[at];
            if path_to_root.len() > parent_of.len() {
                return Err(Error::format(
                    path,
                    format!("line {}: its parents form a cycle", parents[i].1),
                ));
            }
        }
        if s.trees[at] < 0 {
            s.trees[at] = roots;
            roots += 1;
        }
        let t = s.trees[at];
        for k in path_to_root {
            s.trees[k] = t;
        }
    }
    Ok(s)
}

/// Writes a forest as SWC: `edges` over `positions` (rows of 3) must have no
/// cycle; each tree is numbered depth-first from its lowest vertex.
pub fn write_swc(
    path: &Path,
    positions: &[f64],
    edges: &[[u64; 2]],
    radii: Option<&[f64]>,
    types: Option<&[i32]>,
) -> Result<usize> {
    let n = positions.len() / 3;
    let mut adj: Vec<Vec<usize>> = vec![vec![]; n];
    for e in edges {
        let (a, b) = (e[0] as usize, e[1] as usize);
        if a >= n || b >= n {
            return Err(Error::invalid(format!(
                "edge ({a}, {b}) names a vertex past the {n}"
            )));
        }
        if a == b {
            return Err(Error::invalid(format!(
                "vertex {a} links to itself: not an SWC tree"
            )));
        }
        adj[a].push(b);
        adj[b].push(a);
    }
    let mut number = vec![0usize; n];
    let mut lines = Vec::with_capacity(n);
    let mut next = 1usize;
    for root in 0..n {
        if number[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize, usize::MAX)];
        while let Some((v, parent_number, from)) = stack.pop() {
            if number[v] != 0 {
                return Err(Error::invalid(format!(
                    "the graph has a cycle through vertex {v}: SWC holds trees only"
                )));
            }
            number[v] = next;
            lines.push((v, parent_number));
            next += 1;
            let mut seen_from = false;
            for &w in adj[v].iter().rev() {
                if w == from && !seen_from {
                    seen_from = true; // the edge we came by
                    continue;
                }
                stack.push((w, number[v], v));
            }
        }
    }
    voxfield_io::npy::write_atomic(path, |w| {
        writeln!(w, "# SWC written by voxfield: id type x y z radius parent")?;
        for &(v, parent) in &lines {
            let p = &positions[v * 3..v * 3 + 3];
            writeln!(
                w,
                "{} {} {} {} {} {} {}",
                number[v],
                types.map_or(0, |t| t[v]),
                shortest(p[0]),
                shortest(p[1]),
                shortest(p[2]),
                shortest(radii.map_or(1.0, |r| r[v])),
                if parent == 0 { -1 } else { parent as i64 }
            )?;
        }
        Ok(())
    })?;
    Ok(n)
}

/// The shortest text that reads back as `v`: a float32 value (as stores
/// hold them) printed as float32, so 0.3f32 is "0.3", not 0.30000001192….
fn shortest(v: f64) -> String {
    let f = v as f32;
    if f as f64 == v {
        f.to_string()
    } else {
        v.to_string()
    }
}

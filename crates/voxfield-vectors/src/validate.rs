//! `validate`: zarr-vectors 0.9.2's five conformance levels, cumulative —
//! 1 structure (root marker, levels, each level's arrays), 2 metadata
//! (shapes, conventions, bins dividing chunks), 3 consistency (every listed
//! cell decodes, counts agree with the metadata, fragments tile, object
//! manifests and links point at cells, fragments and rows that exist),
//! 4 conformance (geometry against link convention), 5 multiresolution
//! (contiguous levels, counts never growing, bins never shrinking). As
//! zarr-vectors, a failed structure check stops there and failed metadata
//! stops before consistency. Each problem names its level and its array.
//! Works on local and remote stores alike.

use std::collections::HashMap;

use rayon::prelude::*;
use serde_json::Value;
use voxfield_core::{Error, Result};

use crate::cells::CellArray;
use crate::location::Location;
use crate::objects::{decode_fragments, FragmentRows};
use crate::store::{itemsize, Store};

/// What a validation found, in zarr-vectors' `ValidationResult` terms.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The conformance level asked for (1–5).
    pub level: u8,
    pub passed: Vec<String>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    fn pass(&mut self, m: impl Into<String>) {
        self.passed.push(m.into());
    }

    fn warn(&mut self, m: impl Into<String>) {
        self.warnings.push(m.into());
    }

    fn error(&mut self, m: impl Into<String>) {
        self.errors.push(m.into());
    }

    /// The report as zarr-vectors' `summary()` prints it.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "Level {} validation: {}\n  {} passed, {} warnings, {} errors",
            self.level,
            if self.ok() { "PASS" } else { "FAIL" },
            self.passed.len(),
            self.warnings.len(),
            self.errors.len()
        );
        for e in &self.errors {
            s.push_str(&format!("\n  ERROR: {e}"));
        }
        for w in &self.warnings {
            s.push_str(&format!("\n  WARN:  {w}"));
        }
        s
    }
}

/// The most root chunks a level's chunk may span per axis.
const MAX_CHUNK_RATIO: f64 = (1u64 << 20) as f64;

const LINKS: [&str; 3] = [
    "explicit",
    "implicit_sequential",
    "implicit_sequential_with_branches",
];
const OBJECT_INDEX: [&str; 2] = ["standard", "identity"];
const CROSS_CHUNK: [&str; 3] = ["explicit_links", "boundary_deduplication", "both"];

/// Validates the store at `path` (a folder or URL) up to `level` (1–5).
pub fn validate(path: &std::path::Path, level: u8) -> Result<Report> {
    if !(1..=5).contains(&level) {
        return Err(Error::invalid(format!(
            "conformance level must be 1-5, got {level}"
        )));
    }
    let loc = match path.to_str() {
        Some(s) if voxfield_zarr::remote::is_url(s) => Location::open(s)?,
        _ => Location::local(path),
    };
    let mut r = Report {
        level,
        ..Report::default()
    };
    let Some(levels) = structure(&loc, &mut r)? else {
        return Ok(r);
    };
    if level >= 2 {
        let store = match Store::open(path) {
            Ok(s) => s,
            Err(e) => {
                r.error(format!("Cannot read root metadata: {e}"));
                return Ok(r);
            }
        };
        let before = r.errors.len();
        metadata(&store, &levels, &mut r)?;
        if r.errors.len() > before && level >= 3 {
            return Ok(r);
        }
        if level >= 3 {
            for &l in &levels {
                consistency(&store, l, &mut r)?;
            }
        }
        if level >= 4 {
            conformance(&store, &levels, &mut r)?;
        }
        if level >= 5 {
            multiresolution(&store, &levels, &mut r)?;
        }
    }
    Ok(r)
}

/// Level 1; the levels when the structure holds up.
fn structure(loc: &Location, r: &mut Report) -> Result<Option<Vec<u64>>> {
    let root = match loc.try_json() {
        Ok(Some(j)) => j,
        Ok(None) => {
            r.error(format!(
                "Cannot open store: {} has no zarr.json",
                loc.path().display()
            ));
            return Ok(None);
        }
        Err(e) => {
            r.error(format!("Cannot open store: {e}"));
            return Ok(None);
        }
    };
    r.pass("Store root opened");
    if root["attributes"]["zarr_vectors"].is_object() {
        r.pass("Root metadata file found");
    } else {
        r.error("No root metadata found (expected a 'zarr_vectors' block in the root attributes)");
    }
    if root["attributes"]["ome"].is_object() {
        r.pass("RFC 8 'ome' node found");
    } else {
        r.warn("No RFC 8 'ome' node in the root attributes; the store is valid but cannot be resolved as a member of an OME collection");
    }
    let mut levels: Vec<u64> = match loc.children()? {
        Some(names) => names.iter().filter_map(|n| n.parse().ok()).collect(),
        None => {
            let mut v = vec![];
            for l in 0u64..64 {
                if !loc.join(&l.to_string()).exists()? {
                    break;
                }
                v.push(l);
            }
            v
        }
    };
    levels.sort_unstable();
    if levels.is_empty() {
        r.error("No resolution level directories found");
        return Ok(None);
    }
    r.pass(format!("Found {} resolution level(s)", levels.len()));
    for &l in &levels {
        let lv = loc.join(&l.to_string());
        match lv.try_json() {
            Ok(Some(j)) if j["attributes"]["zarr_vectors_level"].is_object() => {
                r.pass(format!("{l}/ has metadata"))
            }
            Ok(_) => r.warn(format!("{l}/ has no metadata file")),
            Err(e) => r.error(format!("{l}/ cannot be opened: {e}")),
        }
        if lv.join("vertices").exists()? {
            r.pass(format!("{l}/vertices/ exists"));
        } else {
            r.error(format!("{l}/vertices/ missing"));
        }
        if lv.join("vertex_fragments").exists()? {
            r.pass(format!("{l}/vertex_fragments/ exists"));
        } else {
            r.warn(format!("{l}/vertex_fragments/ missing"));
        }
    }
    Ok(r.ok().then_some(levels))
}

fn numbers(v: &Value) -> Option<Vec<f64>> {
    v.as_array()?.iter().map(Value::as_f64).collect()
}

/// Level 2.
fn metadata(store: &Store, levels: &[u64], r: &mut Report) -> Result<()> {
    r.pass("Root metadata parsed");
    let zv = &store.attrs;
    let d = store.dims;
    r.pass(format!("SID dimensionality: {d}"));
    for (key, allowed) in [
        ("links_convention", &LINKS[..]),
        ("object_index_convention", &OBJECT_INDEX[..]),
        ("cross_chunk_strategy", &CROSS_CHUNK[..]),
    ] {
        match zv[key].as_str() {
            Some(v) if !allowed.contains(&v) => r.error(format!("Unknown {key}: '{v}'")),
            v => r.pass(format!("{key}: '{}'", v.unwrap_or(""))),
        }
    }
    if store.geometry_types.is_empty() {
        r.warn("No geometry_types specified");
    }
    if let Some(bin) = &store.base_bin_shape {
        if bin.len() != d {
            r.error(format!(
                "base_bin_shape has {} dims, expected {d}",
                bin.len()
            ));
        } else {
            for (i, (c, b)) in store.chunk_shape.iter().zip(bin).enumerate() {
                if b.is_nan() || *b <= 0.0 {
                    r.error(format!("base_bin_shape[{i}]={b}, must be > 0"));
                } else if ((c / b) - (c / b).round()).abs() > 1e-9 {
                    r.error(format!(
                        "chunk_shape[{i}]={c} not integer multiple of base_bin_shape[{i}]={b}"
                    ));
                }
            }
        }
    }
    for &l in levels {
        let lv = store.loc.join(&l.to_string()).json()?;
        let a = &lv["attributes"]["zarr_vectors_level"];
        match &a["vertex_count"] {
            Value::Null => {}
            v if v.as_u64().is_some() => r.pass(format!("{l}: vertex_count={v}")),
            v => r.error(format!("{l}: vertex_count={v} invalid")),
        }
        let chunk = match numbers(&a["chunk_shape"]) {
            None => store.chunk_shape.clone(),
            Some(c) => {
                let whole = c.len() == d
                    && c.iter().zip(&store.chunk_shape).all(|(c, root)| {
                        // A whole multiple, and not absurdly many root chunks.
                        let k = c / root;
                        (1.0..=MAX_CHUNK_RATIO).contains(&k) && (k - k.round()).abs() < 1e-9
                    });
                if !whole {
                    r.error(format!(
                        "{l}: chunk_shape {c:?} is not a positive integer multiple of the root's {:?}",
                        store.chunk_shape
                    ));
                }
                c
            }
        };
        if let Some(bin) = numbers(&a["bin_shape"]) {
            let fits = bin.len() == d
                && bin
                    .iter()
                    .zip(&chunk)
                    .all(|(b, c)| *b > 0.0 && ((c / b) - (c / b).round()).abs() < 1e-9);
            if !fits {
                r.error(format!(
                    "{l}: bin_shape {bin:?} does not tile chunk_shape {chunk:?}"
                ));
            }
        }
    }
    Ok(())
}

/// Per chunk of a level: its row count and fragment count.
type Census = HashMap<Vec<i64>, (usize, usize)>;

/// What checking one chunk found: its rows, NaN/Inf coordinates, its
/// census entry (rows, fragments) when its cells decoded, and the errors.
#[derive(Default)]
struct ChunkCheck {
    rows: usize,
    non_finite: usize,
    census: Option<(usize, usize)>,
    errors: Vec<String>,
}

/// Level 3, one level.
fn consistency(store: &Store, level: u64, r: &mut Report) -> Result<()> {
    let d = store.dims;
    let dir = store.loc.join(&level.to_string());
    let info = store.level(level)?;
    let vertices = match CellArray::open_at(&dir.join("vertices"), d) {
        Ok(v) => v,
        Err(e) => {
            r.error(format!("{level}: vertices cannot be opened: {e}"));
            return Ok(());
        }
    };
    let fragments = CellArray::open_at(&dir.join("vertex_fragments"), d).ok();
    let dtype = vertices.attrs["dtype"]
        .as_str()
        .unwrap_or("float32")
        .to_string();
    let Some(vsize) = itemsize(&dtype).filter(|_| dtype.starts_with("float")) else {
        r.error(format!(
            "{level}: vertex dtype {dtype} is not float32 or float64"
        ));
        return Ok(());
    };
    let row = vsize * d;
    if vertices.nonempty.is_empty() {
        r.warn(format!("{level}: no chunk data"));
        return Ok(());
    }
    let tiles = info.attrs["fragments_tile"].as_bool().unwrap_or(false);
    let points_only = store.geometry_types.iter().all(|g| g == "point_cloud");
    let has_objects = dir.join("object_index").exists()?;
    let bins: usize = match (&info.bin_shape, level, &store.base_bin_shape) {
        (Some(b), _, _) | (None, 0, Some(b)) => info
            .chunk_shape
            .iter()
            .zip(b)
            .map(|(c, b)| (c / b).round().clamp(1.0, u32::MAX as f64) as usize)
            .fold(1usize, usize::saturating_mul),
        _ => 1,
    };
    // Each chunk checked on its own (in parallel: a remote store's cells
    // are fetched together), the findings merged in chunk order.
    let check = |c: &Vec<i64>| -> ChunkCheck {
        let mut k = ChunkCheck::default();
        let v = match vertices.read_cell(c) {
            Ok(Some(v)) => v,
            Ok(None) => {
                k.errors.push(format!(
                    "{level}: chunk {c:?} is listed in nonempty_chunks but {}/vertices has no cell for it",
                    level
                ));
                return k;
            }
            Err(e) => {
                k.errors
                    .push(format!("{level}: chunk {c:?} decode failed: {e}"));
                return k;
            }
        };
        if v.len() % row != 0 {
            k.errors.push(format!(
                "{level}: chunk {c:?} holds {} bytes, not whole rows of {row}",
                v.len()
            ));
            return k;
        }
        let n = v.len() / row;
        k.rows = n;
        k.non_finite = v
            .chunks_exact(vsize)
            .filter(|x| match vsize {
                4 => !f32::from_le_bytes((*x).try_into().expect("4")).is_finite(),
                _ => !f64::from_le_bytes((*x).try_into().expect("8")).is_finite(),
            })
            .count();
        drop(v);
        let f = match &fragments {
            None => None,
            Some(fa) => match fa.read_cell(c) {
                Ok(Some(b)) => match decode_fragments(&b) {
                    Ok(f) => Some(f),
                    Err(e) => {
                        k.errors
                            .push(format!("{level}: chunk {c:?} fragment index: {e}"));
                        None
                    }
                },
                Ok(None) => {
                    k.errors.push(format!(
                        "{level}: chunk {c:?} has vertices but no vertex_fragments cell"
                    ));
                    None
                }
                Err(e) => {
                    k.errors
                        .push(format!("{level}: chunk {c:?} fragment index: {e}"));
                    None
                }
            },
        };
        let frags = f.as_ref().map_or(0, |f| f.rows.len());
        if let Some(f) = &f {
            let mut next = 0u64;
            let mut tiled = true;
            for fr in &f.rows {
                match fr {
                    FragmentRows::Range(s, m) => {
                        tiled &= *s == next;
                        next = s.saturating_add(*m);
                        if next > n as u64 {
                            k.errors.push(format!(
                                "{level}: chunk {c:?} has a fragment past its {n} rows"
                            ));
                            break;
                        }
                    }
                    FragmentRows::List(l) => {
                        tiled = false;
                        if l.iter().any(|&x| x >= n as u64) {
                            k.errors.push(format!(
                                "{level}: chunk {c:?} has a fragment naming a row past its {n}"
                            ));
                        }
                    }
                }
            }
            if tiles && !(tiled && next == n as u64) {
                k.errors.push(format!(
                    "{level}: fragments_tile is set but chunk {c:?} does not tile its buffer"
                ));
            }
            if points_only && !has_objects && bins > 1 && frags > bins {
                k.errors.push(format!(
                    "{level}: chunk {c:?} has {frags} fragments, exceeds bins_per_chunk product {bins}"
                ));
            }
        }
        k.census = Some((n, frags));
        k
    };
    let checks: Vec<ChunkCheck> = store
        .loc
        .install(|| vertices.nonempty.par_iter().map(check).collect());
    let mut census = Census::new();
    let mut total = 0usize;
    let mut non_finite = 0usize;
    for (c, k) in vertices.nonempty.iter().zip(checks) {
        k.errors.into_iter().for_each(|e| r.error(e));
        total += k.rows;
        non_finite += k.non_finite;
        if let Some(entry) = k.census {
            census.insert(c.clone(), entry);
        }
    }
    if non_finite > 0 {
        r.warn(format!("{level}: {non_finite} NaN/Inf coordinates"));
    }
    r.pass(format!(
        "{level}: {} chunks decoded, {total} vertices",
        vertices.nonempty.len()
    ));
    match info.vertex_count {
        Some(n) if n as usize != total => r.error(format!(
            "{level}: metadata vertex_count={n}, actual={total}"
        )),
        Some(_) => r.pass(format!("{level}: vertex_count matches")),
        None => {}
    }
    if has_objects {
        objects(store, level, &census, r);
    }
    links(&dir, level, d, &census, r)?;
    Ok(())
}

/// Checks every manifest reference against the census, walking the
/// manifests a batch at a time (a level's decoded manifests can be larger
/// than memory).
fn objects(store: &Store, level: u64, census: &Census, r: &mut Report) {
    // The first problems (object row, what), and how many there were.
    let mut first: Vec<(usize, String)> = vec![];
    let mut bad = 0usize;
    let visited = store.visit_manifests(level, |row, c, frags| {
        let problem = match census.get(c) {
            None => Some(format!("refs non-existent chunk {c:?}")),
            Some((_, n)) => frags
                .iter()
                .find(|&k| k as usize >= *n)
                .map(|k| format!("refs fragment_idx={k} >= {n} in chunk {c:?}")),
        };
        if let Some(p) = problem {
            bad += 1;
            if first.len() < 20 {
                first.push((row, p));
            }
        }
    });
    let ids = match visited {
        Ok(ids) => ids,
        Err(e) => {
            r.error(format!("{level}: object_index cannot be read: {e}"));
            return;
        }
    };
    for (row, p) in first {
        r.error(format!("{level}: obj {} {p}", ids[row]));
    }
    if bad > 20 {
        r.error(format!(
            "{level}: {} more broken object references",
            bad - 20
        ));
    }
    r.pass(format!(
        "{level}: object_index validated ({} objects)",
        ids.len()
    ));
}

/// An offsets array name: `self`, or endpoints joined by `_`, each of
/// `d` components `0` / `+k` / `-k` joined by `.`.
fn parse_offsets(name: &str, d: usize) -> Option<Vec<Vec<i64>>> {
    if name == "self" {
        return Some(vec![]);
    }
    name.split('_')
        .map(|ep| {
            let c: Vec<i64> = ep
                .split('.')
                .map(|p| p.strip_prefix('+').unwrap_or(p).parse().ok())
                .collect::<Option<_>>()?;
            (c.len() == d).then_some(c)
        })
        .collect()
}

fn links(dir: &Location, level: u64, d: usize, census: &Census, r: &mut Report) -> Result<()> {
    let root = dir.join("links");
    if !root.exists()? {
        return Ok(());
    }
    for delta in root.children()?.unwrap_or_default() {
        let family = root.join(&delta);
        let meta = family.json()?;
        let a = &meta["attributes"];
        let width = a["link_width"].as_u64().unwrap_or(2) as usize;
        let canonical = delta == "0"
            && !a["directed"].as_bool().unwrap_or(false)
            && a["store"].as_str().unwrap_or("canonical") == "canonical";
        let mut records = 0usize;
        let mut bad = 0usize;
        for name in family.children()?.unwrap_or_default() {
            let Some(offsets) = parse_offsets(&name, d) else {
                r.error(format!(
                    "{level}: links[delta={delta}] offsets segment '{name}' malformed"
                ));
                continue;
            };
            if canonical {
                let sign = |o: &Vec<i64>| o.iter().find(|&&x| x != 0).map_or(0, |x| x.signum());
                if offsets.iter().any(|o| sign(o) < 0) {
                    r.error(format!(
                        "{level}: links[delta={delta}] segment '{name}' is lexicographically negative; a canonical family stores each record once, under the positive offset"
                    ));
                }
                if offsets.windows(2).any(|w| w[1] < w[0]) {
                    r.error(format!(
                        "{level}: links[delta={delta}] segment '{name}' offsets are not non-decreasing"
                    ));
                }
            }
            let arr = CellArray::open_at(&family.join(&name), d)?;
            let perm = arr.attrs["has_perm"].as_bool().unwrap_or(false);
            let cols = arr.attrs["link_width"]
                .as_u64()
                .map_or(width, |w| w as usize)
                + perm as usize;
            let intra = offsets.iter().all(|o| o.iter().all(|&x| x == 0)) && delta == "0";
            for src in &arr.nonempty {
                let b = match arr.read_cell(src) {
                    Ok(Some(b)) => b,
                    Ok(None) => {
                        r.error(format!(
                            "{level}: links[delta={delta}]/{name} lists chunk {src:?} but has no cell for it"
                        ));
                        continue;
                    }
                    Err(e) => {
                        r.error(format!("{level}: links[delta={delta}]/{name}: {e}"));
                        continue;
                    }
                };
                let values = if intra {
                    b.chunks_exact(8)
                        .map(|x| i64::from_le_bytes(x.try_into().expect("8")))
                        .collect()
                } else {
                    match crate::graphs::decode_ragged(&b) {
                        Ok(v) => v,
                        Err(e) => {
                            r.error(format!(
                                "{level}: links[delta={delta}]/{name} chunk {src:?}: {e}"
                            ));
                            continue;
                        }
                    }
                };
                if cols == 0 || values.len() % cols != 0 {
                    r.error(format!(
                        "{level}: links[delta={delta}]/{name} chunk {src:?} is not whole records of {cols}"
                    ));
                    continue;
                }
                records += values.len() / cols;
                let Some(&(src_rows, _)) = census.get(src) else {
                    bad += 1;
                    if bad <= 20 {
                        r.error(format!(
                            "{level}: links[delta={delta}] refs non-existent source chunk {src:?}"
                        ));
                    }
                    continue;
                };
                if delta != "0" {
                    continue;
                }
                // Endpoint k sits in chunk src + offsets[k-1]; each names a row there.
                let ends: Vec<Option<usize>> = std::iter::once(Some(src_rows))
                    .chain(offsets.iter().map(|o| {
                        let c: Vec<i64> = src.iter().zip(o).map(|(s, o)| s + o).collect();
                        census.get(&c).map(|x| x.0)
                    }))
                    .collect();
                for rec in values.chunks_exact(cols) {
                    let vis = &rec[perm as usize..];
                    for (k, (&vi, rows)) in vis.iter().zip(&ends).enumerate() {
                        let broken = match rows {
                            None => Some("a chunk with no vertices".to_string()),
                            Some(n) if vi < 0 || vi as usize >= *n => {
                                Some(format!("row {vi} of {n}"))
                            }
                            _ => None,
                        };
                        if let Some(what) = broken {
                            bad += 1;
                            if bad <= 20 {
                                r.error(format!(
                                    "{level}: links[delta=0]/{name} chunk {src:?}: endpoint {k} names {what}"
                                ));
                            }
                        }
                    }
                }
            }
        }
        if bad > 20 {
            r.error(format!(
                "{level}: links[delta={delta}]: {} more broken links",
                bad - 20
            ));
        }
        if let Some(n) = a["num_physical_records"].as_u64() {
            if n as usize != records {
                r.error(format!(
                    "{level}: links[delta={delta}] num_physical_records={n} != {records} rows on disk"
                ));
            }
        }
        r.pass(format!(
            "{level}: links[delta={delta}] validated ({records} records)"
        ));
    }
    Ok(())
}

/// Level 4.
fn conformance(store: &Store, levels: &[u64], r: &mut Report) -> Result<()> {
    let lc = store.attrs["links_convention"].as_str().unwrap_or("");
    for g in &store.geometry_types {
        let need: &[&str] = match g.as_str() {
            "point_cloud" => &[],
            "line" | "polyline" | "streamline" => &["implicit_sequential"],
            "graph" | "mesh" => &["explicit"],
            "skeleton" => &["implicit_sequential_with_branches", "explicit"],
            _ => {
                r.warn(format!("Unknown geometry type: '{g}'"));
                continue;
            }
        };
        if need.is_empty() {
            r.pass(format!("'{g}': no links convention required"));
        } else if need.contains(&lc) {
            r.pass(format!("'{g}': links_convention '{lc}' valid"));
        } else {
            r.error(format!("'{g}' requires links in {need:?}, got '{lc}'"));
        }
    }
    if !levels.contains(&0) {
        r.warn("No level 0 for geometry checks");
        return Ok(());
    }
    let points_only = store.geometry_types.iter().all(|g| g == "point_cloud");
    if points_only && store.loc.join("0").join("links").join("0").exists()? {
        r.warn("Point cloud but links array exists");
    }
    Ok(())
}

/// Level 5.
fn multiresolution(store: &Store, levels: &[u64], r: &mut Report) -> Result<()> {
    if levels.len() <= 1 {
        r.pass("Single resolution level — no pyramid to validate");
        return Ok(());
    }
    let expected: Vec<u64> = (0..levels.len() as u64).collect();
    if levels != expected {
        r.error(format!("Levels {levels:?}, expected {expected:?}"));
    } else {
        r.pass(format!("Levels {levels:?} contiguous"));
    }
    let (mut prev, mut prev_ratio): (Option<u64>, u64) = (None, 1);
    for &l in levels {
        let info = store.level(l)?;
        let n = info.vertex_count.unwrap_or(0);
        if let Some(p) = prev {
            if n > p {
                r.error(format!("{l}: {n} vertices > level {} ({p})", l - 1));
            } else {
                r.pass(format!(
                    "{l}: {n} verts ({:.1}x reduction)",
                    p as f64 / n.max(1) as f64
                ));
            }
        }
        prev = Some(n);
        if let Some(ratio) = info.attrs["bin_ratio"].as_array() {
            let product: u64 = ratio
                .iter()
                .filter_map(Value::as_f64)
                .map(|v| v as u64)
                .product();
            if l > 0 && product < prev_ratio {
                r.error(format!(
                    "{l}: bin_ratio volume {product} < previous level {prev_ratio}"
                ));
            }
            prev_ratio = product;
        }
        let sparsity = info.attrs["object_sparsity"].as_f64().unwrap_or(1.0);
        if !(sparsity > 0.0 && sparsity <= 1.0) {
            r.error(format!("{l}: object_sparsity={sparsity} out of range"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_names_parse_as_zarr_vectors_writes_them() {
        assert_eq!(parse_offsets("0.+1.-2", 3), Some(vec![vec![0, 1, -2]]));
        assert_eq!(
            parse_offsets("0.+1.+1_0.+1.0", 3),
            Some(vec![vec![0, 1, 1], vec![0, 1, 0]])
        );
        assert_eq!(parse_offsets("self", 3), Some(vec![]));
        assert_eq!(parse_offsets("0.1", 3), None);
        assert_eq!(parse_offsets("a.b.c", 3), None);
    }
}

//! neurospatial 0.6.0's environment files: `NAME.json` (schema
//! `Environment-v1`: layout, grid shape, the connectivity graph as networkx
//! node-link data) beside `NAME.npz` (`bin_centers`, `active_mask`,
//! `grid_edges_<axis>`).
//!
//! Grids are written as a `MaskedGrid` layout (the exact edges and active
//! mask, so neurospatial's `from_file` rebuilds the same bins); hexagonal
//! lattices as `Hexagonal` (their active centres as the samples, with
//! `dimension_ranges` fixing rows and columns); tracks as `Graph` with the
//! parameters they were built from. Reading rebuilds the layout (any grid
//! layout from its edges and mask: `RegularGrid`, `MaskedGrid`, `ImageMask`,
//! `ShapelyPolygon`; `Hexagonal` and `Graph` from their parameters) and checks
//! the saved centres and graph against it.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use voxfield_core::{DType, Error, Result};
use voxfield_io::npy;
use voxfield_io::npz::{write_npz, Npz};

use crate::{Environment, Grid, Hex, Layout, Track};

/// The schema neurospatial 0.6.0 writes and reads.
pub const SCHEMA: &str = "Environment-v1";

/// Layouts whose bins are the active cells of a grid.
/// Bytes an `.npy` header may add to its values (numpy pads it to 64 or 4096).
const NPY_HEADER_MAX: u64 = 1 << 16;
/// Bin edges per axis, at most.
const MAX_EDGES: u64 = 1 << 24;

const GRID_LAYOUTS: [&str; 4] = ["RegularGrid", "MaskedGrid", "ImageMask", "ShapelyPolygon"];

/// The `.json` and `.npz` paths of an environment file named with or
/// without either suffix.
pub fn pair(path: &Path) -> (PathBuf, PathBuf) {
    let base = match path.extension().and_then(|e| e.to_str()) {
        Some("json") | Some("npz") => path.with_extension(""),
        _ => path.to_path_buf(),
    };
    let with = |ext: &str| {
        let mut s = base.clone().into_os_string();
        s.push(ext);
        PathBuf::from(s)
    };
    (with(".json"), with(".npz"))
}

/// An npz member: its name and `.npy` bytes.
type Member = (String, Vec<u8>);

fn npy_bytes(descr: &str, shape: &[usize], data: impl Iterator<Item = [u8; 8]>) -> Vec<u8> {
    let mut b = npy::header_bytes(descr, shape);
    data.for_each(|v| b.extend_from_slice(&v));
    b
}

impl Environment {
    /// The JSON metadata neurospatial writes, with the layout's own part.
    fn metadata(&self, layout: Value, regions: Value) -> Value {
        let d = self.n_dims();
        let index = |f: usize| -> Vec<usize> {
            match &self.layout {
                Layout::Grid(g) => g.unflat(f),
                Layout::Hex(h) => vec![f / h.cols, f % h.cols],
                Layout::Track(_) => vec![f],
            }
        };
        let nodes: Vec<Value> = (0..self.n_bins())
            .map(|b| {
                let f = self.bin_to_flat[b];
                json!({"pos": self.center(b), "source_grid_flat_index": f,
                       "original_grid_nd_index": index(f), "id": b})
            })
            .collect();
        let g = &self.graph;
        let mut links = vec![];
        for a in 0..self.n_bins() {
            for k in g.offsets[a]..g.offsets[a + 1] {
                let b = g.nbrs[k] as usize;
                if b <= a {
                    continue;
                }
                let v: Vec<f64> = (0..d)
                    .map(|i| self.center(b)[i] - self.center(a)[i])
                    .collect();
                let mut l = json!({"distance": g.dist[k], "vector": v, "edge_id": links.len(),
                                   "source": a, "target": b});
                if d == 2 {
                    l["angle_2d"] = json!(v[1].atan2(v[0]));
                }
                links.push(l);
            }
        }
        let ranges: Vec<[f64; 2]> = (0..d)
            .map(|i| {
                let xs = self.centers.iter().skip(i).step_by(d);
                let lo = xs.clone().copied().fold(f64::INFINITY, f64::min);
                [lo, xs.copied().fold(f64::NEG_INFINITY, f64::max)]
            })
            .collect();
        let mut meta = json!({
            "schema_version": SCHEMA,
            "library_version": concat!("voxfield ", env!("CARGO_PKG_VERSION")),
            "name": "",
            "n_dims": d,
            "n_bins": self.n_bins(),
            "is_linearized_track": matches!(self.layout, Layout::Track(_)),
            "dimension_ranges": ranges,
            "grid_shape": self.layout.shape(),
            "graph": {"directed": false, "multigraph": false, "graph": {}, "nodes": nodes, "links": links},
            "regions": regions,
        });
        if let Value::Object(extra) = layout {
            meta.as_object_mut().expect("an object").extend(extra);
        }
        meta
    }

    /// The layout's part of the metadata and its arrays (beyond `bin_centers`).
    fn layout_record(&self) -> Result<(Value, Vec<Member>)> {
        let f8 = |name: String, shape: &[usize], v: &[f64]| {
            (
                name,
                npy_bytes("<f8", shape, v.iter().map(|x| x.to_le_bytes())),
            )
        };
        let mask = |shape: &[usize], active: &[bool]| {
            let mut m = npy::header_bytes("|b1", shape);
            m.extend(active.iter().map(|&a| a as u8));
            ("active_mask.npy".to_string(), m)
        };
        Ok(match &self.layout {
            Layout::Grid(grid) => {
                let mut arrays = vec![mask(&grid.shape, &grid.active)];
                for (i, e) in grid.edges.iter().enumerate() {
                    arrays.push(f8(format!("grid_edges_{i}.npy"), &[e.len()], e));
                }
                let record = json!({
                    "layout_type": "MaskedGrid",
                    "layout_parameters": {"active_mask": nest(&grid.shape, &grid.active),
                        "grid_edges": grid.edges, "connect_diagonal_neighbors": self.neighbour_axes > 1},
                    // neurospatial knows 2n or 3^n − 1 neighbours; 18 in 3-D is kept here (its
                    // from_file keeps the saved links as the environment's graph).
                    "voxfield_neighbour_axes": self.neighbour_axes,
                    "dimension_ranges": grid.edges.iter().map(|e| [e[0], e[e.len() - 1]]).collect::<Vec<_>>(),
                });
                (record, arrays)
            }
            Layout::Hex(h) => {
                let positions: Vec<&[f64]> = self.centers.chunks_exact(2).collect();
                let record = json!({
                    "layout_type": "Hexagonal",
                    "layout_parameters": {"hexagon_width": h.width, "positions": positions,
                        "infer_active_bins": true, "bin_count_threshold": 0,
                        "dimension_ranges": h.range()},
                    "dimension_ranges": h.range(),
                });
                (record, vec![mask(&[h.rows, h.cols], &h.active)])
            }
            Layout::Track(t) => {
                let params = t.source.clone().ok_or_else(|| {
                    Error::invalid(
                        "this track was not built from layout parameters; it cannot be written",
                    )
                })?;
                let record = json!({"layout_type": "Graph", "layout_parameters": params});
                let arrays = vec![
                    mask(&[t.active.len()], &t.active),
                    f8("grid_edges_0.npy".to_string(), &[t.edges.len()], &t.edges),
                ];
                (record, arrays)
            }
        })
    }

    /// Writes `PATH.json` and `PATH.npz` (neurospatial 0.6.0's pair), each
    /// under a temporary name first; the `.npz` goes first, so a `.json` is
    /// never newer than its arrays.
    pub fn to_file(&self, path: &Path) -> Result<()> {
        self.to_file_with_regions(path, Value::Array(vec![]))
    }

    /// [`Environment::to_file`] with neurospatial's region records (a JSON
    /// list of `{name, kind, geom, metadata}`) kept in the metadata.
    pub fn to_file_with_regions(&self, path: &Path, regions: Value) -> Result<()> {
        if !regions.is_array() {
            return Err(Error::invalid(
                "regions must be a JSON list of region records",
            ));
        }
        let (json_path, npz_path) = pair(path);
        let (record, arrays) = self.layout_record()?;
        let mut members = vec![(
            "bin_centers.npy".to_string(),
            npy_bytes(
                "<f8",
                &[self.n_bins(), self.n_dims()],
                self.centers.iter().map(|v| v.to_le_bytes()),
            ),
        )];
        members.extend(arrays);
        write_npz(&npz_path, &members)?;
        let text = serde_json::to_string_pretty(&self.metadata(record, regions))
            .map_err(|e| Error::invalid(format!("encoding {}: {e}", json_path.display())))?;
        npy::write_atomic(&json_path, |w| {
            use std::io::Write;
            w.write_all(text.as_bytes())
        })
    }

    /// Reads a neurospatial environment pair written by either library.
    ///
    /// Every array is checked against the layout before it is used (and its
    /// size before it is inflated).
    pub fn from_file(path: &Path) -> Result<Environment> {
        Ok(Self::from_file_with_regions(path)?.0)
    }

    /// [`Environment::from_file`] and the file's region records (a JSON list;
    /// empty when the file has none).
    pub fn from_file_with_regions(path: &Path) -> Result<(Environment, Value)> {
        let (json_path, npz_path) = pair(path);
        // A FIFO or device would block the reads below.
        voxfield_io::safety::regular_input(&json_path)?;
        voxfield_io::safety::regular_input(&npz_path)?;
        let text = std::fs::read_to_string(&json_path).map_err(|e| Error::io(&json_path, e))?;
        let meta: Value = serde_json::from_str(&text)
            .map_err(|e| Error::format(&json_path, format!("not valid JSON: {e}")))?;
        let bad = |m: String| Error::format(&json_path, m);
        let schema = meta["schema_version"].as_str().unwrap_or("(none)");
        if !schema.starts_with("Environment-v1") {
            return Err(bad(format!(
                "schema_version {schema:?}: this reader knows {SCHEMA}"
            )));
        }
        let layout = meta["layout_type"]
            .as_str()
            .ok_or_else(|| bad("no layout_type".into()))?;
        if !GRID_LAYOUTS.contains(&layout) && layout != "Hexagonal" && layout != "Graph" {
            return Err(bad(format!(
                "layout_type {layout:?} is not one voxfield reads ({}, Hexagonal, Graph)",
                GRID_LAYOUTS.join(", ")
            )));
        }
        let dims = meta["n_dims"]
            .as_u64()
            .ok_or_else(|| bad("no n_dims".into()))? as usize;
        let n_bins = meta["n_bins"]
            .as_u64()
            .ok_or_else(|| bad("no n_bins".into()))? as usize;
        let diagonal = meta["layout_parameters"]["connect_diagonal_neighbors"]
            .as_bool()
            .unwrap_or(true);
        let axes = match meta["voxfield_neighbour_axes"].as_u64() {
            Some(k) => k as usize,
            None if diagonal => dims,
            None => 1,
        };
        let npz = Npz::open(&npz_path)?;
        // A member is inflated only when its size fits what the layout needs
        // (`max` bytes of values): a forged archive must not fill memory first.
        let member = |name: &str, max: Option<u64>| -> Result<npy::NpyArray> {
            let file = format!("{name}.npy");
            if let (Some(max), Some(size)) = (max, npz.size(&file)) {
                if size > max.saturating_add(NPY_HEADER_MAX) {
                    return Err(Error::format(
                        &npz_path,
                        format!("{name} holds {size} bytes; the layout needs at most {max} (corrupt or mismatched)"),
                    ));
                }
            }
            let bytes = npz.read(&file)?;
            npy::parse_array(&bytes).map_err(|m| Error::format(&npz_path, format!("{name}: {m}")))
        };
        let params = &meta["layout_parameters"];
        let env = match layout {
            "Hexagonal" => {
                Environment::hexagonal(hex_from(params).map_err(|e| bad(e.to_string()))?)
            }
            "Graph" => {
                Environment::track(Track::from_parameters(params).map_err(|e| bad(e.to_string()))?)
            }
            _ => Self::grid_from(&member, dims, axes, &npz_path),
        }
        .map_err(|e| bad(e.to_string()))?;
        if env.n_bins() != n_bins {
            return Err(bad(format!(
                "n_bins is {n_bins} but the layout rebuilds {} bins",
                env.n_bins()
            )));
        }
        let centers = member("bin_centers", Some((n_bins * dims * 8) as u64))?;
        if let Some(v) = centers.data.iter().find(|v| !v.is_finite()) {
            return Err(Error::format(
                &npz_path,
                format!("bin_centers holds {v}: every centre must be finite"),
            ));
        }
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()));
        if centers.shape != [n_bins, dims]
            || centers
                .data
                .iter()
                .zip(&env.centers)
                .any(|(&a, &b)| !close(a, b))
        {
            return Err(Error::format(
                &npz_path,
                format!("bin_centers differ from the centres of the rebuilt {layout} layout"),
            ));
        }
        env.check_links(&meta["graph"]["links"])
            .map_err(|m| bad(format!("graph: {m}")))?;
        let regions = match &meta["regions"] {
            Value::Null => Value::Array(vec![]),
            r @ Value::Array(_) => r.clone(),
            _ => return Err(bad("regions must be a list of region records".into())),
        };
        Ok((env, regions))
    }

    /// A grid environment from the pair's `grid_edges_<axis>` and `active_mask`.
    fn grid_from(
        member: &dyn Fn(&str, Option<u64>) -> Result<npy::NpyArray>,
        dims: usize,
        axes: usize,
        npz_path: &Path,
    ) -> Result<Environment> {
        let edges: Vec<Vec<f64>> = (0..dims)
            .map(|i| {
                let name = format!("grid_edges_{i}");
                let a = member(&name, Some(MAX_EDGES * 8))?;
                if a.shape.len() != 1 {
                    return Err(Error::format(
                        npz_path,
                        format!(
                            "{name} has shape {:?}; a 1-D array of bin edges is expected",
                            a.shape
                        ),
                    ));
                }
                Ok(a.data)
            })
            .collect::<Result<_>>()?;
        let mut grid = Grid::with_edges(edges, true)
            .map_err(|e| Error::format(npz_path, format!("grid_edges: {e}")))?;
        let cells = grid.shape.iter().map(|&n| n as u64).product::<u64>();
        let mask = member("active_mask", Some(cells))?;
        if mask.dtype != DType::Bool {
            return Err(Error::format(
                npz_path,
                format!("active_mask is {}; a boolean array is expected", mask.dtype),
            ));
        }
        if mask.shape != grid.shape {
            return Err(Error::format(
                npz_path,
                format!(
                    "active_mask has shape {:?}, the edges make {:?}",
                    mask.shape, grid.shape
                ),
            ));
        }
        grid.active = mask.data.iter().map(|&v| v != 0.0).collect();
        Environment::with_neighbour_axes(grid, axes)
            .map_err(|e| Error::format(npz_path, e.to_string()))
    }

    /// Checks saved node-link edges against this environment's graph.
    fn check_links(&self, links: &Value) -> std::result::Result<(), String> {
        let links = links.as_array().ok_or("no links")?;
        let mut saved: Vec<(usize, usize)> = links
            .iter()
            .map(|l| match (l["source"].as_u64(), l["target"].as_u64()) {
                (Some(s), Some(t)) => Ok((s.min(t) as usize, s.max(t) as usize)),
                _ => Err("a link without integer source and target".to_string()),
            })
            .collect::<std::result::Result<_, _>>()?;
        saved.sort_unstable();
        let g = &self.graph;
        let mut ours = vec![];
        for a in 0..self.n_bins() {
            for &b in &g.nbrs[g.offsets[a]..g.offsets[a + 1]] {
                if a < b as usize {
                    ours.push((a, b as usize));
                }
            }
        }
        if saved != ours {
            return Err(format!(
                "{} edges differ from the grid rule's {} (neighbours along up to {} axes); an edited graph is not supported",
                saved.len(),
                ours.len(),
                self.neighbour_axes
            ));
        }
        Ok(())
    }
}

/// A C-order flat mask as nested JSON lists of `shape`.
fn nest(shape: &[usize], flat: &[bool]) -> Value {
    if shape.len() == 1 {
        return json!(flat);
    }
    let step = flat.len() / shape[0].max(1);
    Value::Array(
        (0..shape[0])
            .map(|i| nest(&shape[1..], &flat[i * step..(i + 1) * step]))
            .collect(),
    )
}

/// A hexagonal lattice from 0.6.0's Hexagonal layout parameters.
fn hex_from(params: &Value) -> Result<Hex> {
    let bad = |m: &str| Error::invalid(format!("Hexagonal layout parameters: {m}"));
    let width = params["hexagon_width"]
        .as_f64()
        .ok_or_else(|| bad("no numeric hexagon_width"))?;
    let mut points = vec![];
    if let Some(rows) = params["positions"].as_array() {
        for r in rows {
            let xy = r
                .as_array()
                .filter(|xy| xy.len() == 2)
                .ok_or_else(|| bad("positions must be (x, y) pairs"))?;
            // JSON has no NaN: neurospatial writes null for it.
            points.extend(xy.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)));
        }
    }
    let range = match params["dimension_ranges"].as_array() {
        Some(r) if r.len() == 2 => {
            let pair = |v: &Value| -> Result<[f64; 2]> {
                match v
                    .as_array()
                    .map(|p| p.iter().filter_map(Value::as_f64).collect::<Vec<_>>())
                {
                    Some(p) if p.len() == 2 => Ok([p[0], p[1]]),
                    _ => Err(bad("dimension_ranges must be two (min, max) pairs")),
                }
            };
            Some([pair(&r[0])?, pair(&r[1])?])
        }
        _ => None,
    };
    let infer = params["infer_active_bins"].as_bool().unwrap_or(true) && !points.is_empty();
    let threshold = params["bin_count_threshold"].as_u64().unwrap_or(0) as usize;
    Hex::from_samples(&points, width, infer.then_some(threshold), range)
}

//! Files into stores and stores into files — one door for the CLI's
//! `vectors write` / `vectors read` and Python's `import_file` / `export`:
//! points from .npy and LAS (streamed, larger than memory), PLY and text
//! tables (CSV and the like);
//! streamlines from TrackVis .trk, MRtrix .tck and TRX; skeletons from SWC
//! (a graph with `radius` and `type` per vertex, one object per tree). Out:
//! a selection's vertices as .npy or PLY, polylines as .trk/.tck/.trx, a
//! graph as SWC, any level as Neuroglancer precomputed annotations.

use std::path::Path;

use voxfield_core::work::Watch;
use voxfield_core::{Error, Result};

use crate::neuroglancer::{property_id, write_annotations, Geometry, Property, PropertyType};
use crate::ply::{read_ply, write_ply};
use crate::select::Selection;
use crate::store::{itemsize, Column, Store};
use crate::swc::{read_swc, write_swc};
use crate::tracts::{read_tck, read_trk, write_tck, write_trk, Tracts};
use crate::trx::{read_trx, write_trx};
use crate::write::{Attribute, PointsOptions};
use crate::{
    write_graph, write_points, write_points_watched, write_points_with_objects, write_polylines,
    LasPoints, NpyTable, PointObjects,
};

/// How a file becomes a store.
pub struct ImportOptions {
    /// points, polylines or graph (None: what the file holds).
    pub kind: Option<String>,
    /// Names of an .npy's columns after the coordinates, or the PLY
    /// properties kept (None: all of them).
    pub attributes: Option<Vec<String>>,
    /// Coordinates per row of an .npy.
    pub dims: usize,
    /// The attribute column (or PLY property) holding each point's object
    /// id: the points are written in zarr-vectors' object layout.
    pub object_ids: Option<String>,
    pub layout: PointsOptions,
}

/// What an import wrote.
#[derive(Clone, Debug)]
pub struct Imported {
    /// points, polylines or graph.
    pub kind: &'static str,
    pub vertices: usize,
    /// Polylines, trees or (points) 0.
    pub objects: usize,
    pub chunks: usize,
    /// Cross-chunk stitches (polylines) or edges (graphs).
    pub links: usize,
}

fn extension(p: &Path) -> String {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The kind a file holds, by its extension.
fn kind_of(input: &Path) -> &'static str {
    match extension(input).as_str() {
        "trk" | "tck" | "trx" => "polylines",
        "swc" => "graph",
        _ => "points",
    }
}

/// Writes the file `input` as a new store `out`.
pub fn import_file(input: &Path, out: &Path, o: &ImportOptions, watch: &Watch) -> Result<Imported> {
    voxfield_io::safety::check_not_input(out, &[input])?;
    let holds = kind_of(input);
    let kind = o.kind.as_deref().unwrap_or(holds);
    if !matches!(kind, "points" | "polylines" | "graph") {
        return Err(Error::invalid(format!(
            "kind {kind}: points, polylines or graph"
        )));
    }
    if kind != holds {
        return Err(Error::invalid(format!(
            "kind {kind}: {} holds {holds} (polylines come from .trk, .tck or .trx, graphs from .swc)",
            input.display()
        )));
    }
    let ext = extension(input);
    let text = matches!(
        ext.as_str(),
        "" | "csv" | "tsv" | "txt" | "xyz" | "pts" | "asc" | "dat"
    );
    if o.attributes.is_some() && !text && !matches!(ext.as_str(), "npy" | "ply") {
        return Err(Error::invalid(format!(
            "attribute names apply to .npy and text table columns and PLY properties, not to a .{ext}"
        )));
    }
    if let Some(name) = &o.object_ids {
        if !(text || matches!(ext.as_str(), "npy" | "ply")) {
            return Err(Error::invalid(format!(
                "object ids {name:?} come from a column of an .npy or a text table or a PLY property, not from a .{ext}"
            )));
        }
    }
    match ext.as_str() {
        "trk" | "tck" | "trx" => import_tracts(input, out, &o.layout),
        "swc" => import_swc(input, out, &o.layout),
        "ply" => import_ply(input, out, o),
        "laz" => Err(Error::format(
            input,
            "LAZ is compressed; decompress it to LAS first (e.g. laszip -i points.laz -o points.las)",
        )),
        // Object ids need the whole table (points are sorted by object).
        "npy" if o.object_ids.is_some() => import_table(input, out, o),
        "npy" | "las" => {
            // Streamed through a memory map: the file may be larger than memory.
            let names = o.attributes.clone().unwrap_or_default();
            let table: Box<dyn crate::PointInput> = if ext == "las" {
                Box::new(LasPoints::open(input)?)
            } else {
                Box::new(NpyTable::open(input, o.dims, &names)?)
            };
            let chunks = write_points_watched(out, table.as_ref(), &o.layout, watch)?;
            Ok(Imported {
                kind: "points",
                vertices: table.len(),
                objects: 0,
                chunks,
                links: 0,
            })
        }
        _ if text => import_table(input, out, o),
        _ => Err(Error::invalid(format!(
            "{}: not a format read here (.npy, .las, .ply, .trk, .tck, .trx, .swc, or a text table: \
             .csv, .tsv, .txt, .xyz, .pts, .asc, .dat)",
            input.display()
        ))),
    }
}

/// A text table of points (read whole): `dims` coordinates, then one
/// float64 column per attribute name.
fn import_table(input: &Path, out: &Path, o: &ImportOptions) -> Result<Imported> {
    let names = o.attributes.clone().unwrap_or_default();
    let table = voxfield_io::table::load_table(input)?;
    let d = o.dims;
    if table.cols != d + names.len() {
        return Err(Error::format(
            input,
            format!(
                "{} columns, but {d} coordinates and {} attribute names make {}",
                table.cols,
                names.len(),
                d + names.len()
            ),
        ));
    }
    let n = table.rows();
    let mut coords = Vec::with_capacity(n * d);
    let mut cols: Vec<Vec<u8>> = vec![Vec::with_capacity(n * 8); names.len()];
    for row in table.data.chunks_exact(table.cols) {
        coords.extend_from_slice(&row[..d]);
        for (k, v) in row[d..].iter().enumerate() {
            cols[k].extend(v.to_le_bytes());
        }
    }
    drop(table);
    let attrs: Vec<Attribute> = names
        .iter()
        .zip(&cols)
        .map(|(name, bytes)| Attribute {
            name,
            dtype: "float64",
            width: 1,
            bytes,
        })
        .collect();
    write_table_points(input, out, &coords, d, attrs, o)
}

/// Writes points with float64 attributes — with objects when one of them
/// is named as the object ids (taken out of the attributes).
fn write_table_points(
    input: &Path,
    out: &Path,
    coords: &[f64],
    d: usize,
    mut attrs: Vec<Attribute>,
    o: &ImportOptions,
) -> Result<Imported> {
    let n = coords.len() / d.max(1);
    let Some(name) = &o.object_ids else {
        let chunks = write_points(out, coords, d, &attrs, &o.layout)?;
        return Ok(Imported {
            kind: "points",
            vertices: n,
            objects: 0,
            chunks,
            links: 0,
        });
    };
    let at = attrs.iter().position(|a| a.name == name).ok_or_else(|| {
        Error::invalid(format!(
            "object ids {name:?}: not among the attributes ({})",
            attrs.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let column = attrs.remove(at);
    let ids = column
        .bytes
        .chunks_exact(8)
        .enumerate()
        .map(|(i, b)| {
            let v = f64::from_le_bytes(b.try_into().expect("8"));
            // Exact integers only: an id past 2^53 or with a fraction would round.
            if v.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&v) {
                Ok(v as i64)
            } else {
                Err(Error::format(
                    input,
                    format!("point {i}: object id {v:?} is not a whole number in 0..=2^53"),
                ))
            }
        })
        .collect::<Result<Vec<i64>>>()?;
    let objects = PointObjects {
        ids: &ids,
        attributes: &[],
        groups: &[],
    };
    let s = write_points_with_objects(out, coords, d, &attrs, &objects, &o.layout)?;
    Ok(Imported {
        kind: "points",
        vertices: s.vertices,
        objects: s.objects,
        chunks: s.chunks,
        links: 0,
    })
}

fn import_ply(input: &Path, out: &Path, o: &ImportOptions) -> Result<Imported> {
    voxfield_io::safety::regular_input(input)?;
    let p = read_ply(input)?;
    let wanted: Vec<&(String, Vec<f64>)> = match &o.attributes {
        // Named properties must exist; none named keeps every one.
        Some(names) => names
            .iter()
            .map(|n| {
                p.attributes
                    .iter()
                    .find(|a| &a.0 == n)
                    .ok_or_else(|| Error::format(input, format!("no vertex property {n:?}")))
            })
            .collect::<Result<_>>()?,
        None => p.attributes.iter().collect(),
    };
    let bytes: Vec<Vec<u8>> = wanted
        .iter()
        .map(|a| a.1.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let attrs: Vec<Attribute> = wanted
        .iter()
        .zip(&bytes)
        .map(|(a, b)| Attribute {
            name: &a.0,
            dtype: "float64",
            width: 1,
            bytes: b,
        })
        .collect();
    write_table_points(input, out, &p.positions, p.dims, attrs, o)
}

/// Float32 attributes over `bytes` (one buffer per (name, width, values)).
fn float_attributes<'a>(
    list: &'a [(String, usize, Vec<f32>)],
    bytes: &'a [Vec<u8>],
) -> Vec<Attribute<'a>> {
    list.iter()
        .zip(bytes)
        .map(|(s, b)| Attribute {
            name: &s.0,
            dtype: "float32",
            width: s.1,
            bytes: b,
        })
        .collect()
}

/// Streamlines as a polyline store; TRK scalars and TRX dpv become vertex
/// attributes, properties, dps and groups object attributes (float32).
fn import_tracts(input: &Path, out: &Path, o: &PointsOptions) -> Result<Imported> {
    let tr = match extension(input).as_str() {
        "trk" => read_trk(input)?,
        "trx" => read_trx(input)?,
        _ => read_tck(input)?,
    };
    let bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let sb: Vec<Vec<u8>> = tr.scalars.iter().map(|s| bytes(&s.2)).collect();
    let pb: Vec<Vec<u8>> = tr.properties.iter().map(|s| bytes(&s.2)).collect();
    let (va, oa) = (
        float_attributes(&tr.scalars, &sb),
        float_attributes(&tr.properties, &pb),
    );
    let s = write_polylines(
        out,
        &tr.positions,
        &tr.offsets,
        3,
        &va,
        &oa,
        o,
        "streamline",
    )?;
    Ok(Imported {
        kind: "polylines",
        vertices: s.vertices,
        objects: s.polylines,
        chunks: s.chunks,
        links: s.stitches,
    })
}

/// An SWC skeleton as a graph store: `radius` (float32) and `type` (int32)
/// per vertex, one object per tree.
fn import_swc(input: &Path, out: &Path, o: &PointsOptions) -> Result<Imported> {
    let s = read_swc(input)?;
    let radius: Vec<u8> = s
        .radii
        .iter()
        .flat_map(|r| (*r as f32).to_le_bytes())
        .collect();
    let kind: Vec<u8> = s.types.iter().flat_map(|t| t.to_le_bytes()).collect();
    let attrs = [
        Attribute {
            name: "radius",
            dtype: "float32",
            width: 1,
            bytes: &radius,
        },
        Attribute {
            name: "type",
            dtype: "int32",
            width: 1,
            bytes: &kind,
        },
    ];
    let g = write_graph(
        out,
        &s.positions,
        3,
        &s.edges,
        Some(&s.trees),
        &attrs,
        &[],
        o,
    )?;
    Ok(Imported {
        kind: "graph",
        vertices: g.vertices,
        objects: g.objects,
        chunks: g.chunks,
        links: g.edges,
    })
}

/// What an export wrote.
#[derive(Clone, Debug)]
pub struct Exported {
    /// vertices, polylines, trees or annotations.
    pub what: &'static str,
    pub count: usize,
    pub vertices: usize,
}

/// Writes `level` of `store` to `out`, chosen by its extension: .npy (the
/// selection's coordinates then its attributes as float64 columns), .ply,
/// .trk/.tck/.trx (the polylines with a vertex inside `sel.bbox`), .swc (the
/// graph), NAME.precomputed (Neuroglancer annotations, `cell_limit` per
/// spatial-index cell). Terms a format cannot honour are refused.
pub fn export(
    store: &Store,
    level: u64,
    sel: &Selection,
    out: &Path,
    cell_limit: usize,
) -> Result<Exported> {
    voxfield_io::safety::check_not_input(out, &[&store.path])?;
    let ext = extension(out);
    let only_box = |what: &str| -> Result<()> {
        let extra = [
            ("objects", sel.objects.is_some()),
            ("groups", sel.groups.is_some()),
            ("where", !sel.conditions.is_empty()),
            ("near", sel.near.is_some()),
            ("limit", sel.limit.is_some()),
        ];
        match extra.iter().find(|e| e.1) {
            Some((term, _)) => Err(Error::invalid(format!("{term} does not apply to {what}"))),
            None => Ok(()),
        }
    };
    match ext.as_str() {
        "npy" | "ply" => export_points(store, level, sel, out, ext == "ply"),
        "trk" | "tck" | "trx" => {
            only_box("a streamline file (the box chooses the streamlines)")?;
            export_tracts(store, level, sel.bbox.as_ref(), out)
        }
        "swc" => {
            only_box("an SWC skeleton (it is the whole graph)")?;
            if sel.bbox.is_some() || sel.attributes.as_ref().is_some_and(|a| !a.is_empty()) {
                return Err(Error::invalid(
                    "an SWC export is the whole graph with its radius and type: no box, no attributes",
                ));
            }
            export_swc(store, level, out)
        }
        "precomputed" => {
            only_box("a Neuroglancer export (the box and the attributes choose what it shows)")?;
            export_neuroglancer(store, level, sel, out, cell_limit)
        }
        _ => Err(Error::invalid(format!(
            "{}: expected an .npy, .ply, .trk, .tck, .trx, .swc or .precomputed name",
            out.display()
        ))),
    }
}

/// One (name, values) per component of an attribute column: `name`, or
/// `name_k` for the k-th of several.
pub fn components(c: &Column) -> Vec<(String, Vec<f64>)> {
    let v = c.to_f64();
    (0..c.width)
        .map(|k| {
            let name = match c.width {
                1 => c.name.clone(),
                _ => format!("{}_{k}", c.name),
            };
            (name, v.iter().skip(k).step_by(c.width).copied().collect())
        })
        .collect()
}

fn export_points(
    store: &Store,
    level: u64,
    sel: &Selection,
    out: &Path,
    ply: bool,
) -> Result<Exported> {
    let d = store.dims;
    let p = store.select(level, sel)?.points;
    let n = p.len();
    if ply {
        let attrs: Vec<(String, Vec<f64>)> = p.attributes.iter().flat_map(components).collect();
        write_ply(out, &p.positions.to_f64(), d, &attrs)?;
    } else {
        let cols: Vec<(usize, Vec<f64>)> = std::iter::once(&p.positions)
            .chain(&p.attributes)
            .map(|c| (c.width, c.to_f64()))
            .collect();
        let width: usize = cols.iter().map(|c| c.0).sum();
        let mut table = Vec::with_capacity(n * width);
        for r in 0..n {
            for (w, v) in &cols {
                table.extend_from_slice(&v[r * w..(r + 1) * w]);
            }
        }
        voxfield_io::npy::write_npy(out, &[n, width], &table)?;
    }
    Ok(Exported {
        what: "vertices",
        count: n,
        vertices: n,
    })
}

fn export_tracts(
    s: &Store,
    level: u64,
    bbox: Option<&(Vec<f64>, Vec<f64>)>,
    out: &Path,
) -> Result<Exported> {
    if s.dims != 3 {
        return Err(Error::invalid(format!(
            "streamline files hold 3-D points; this store is {}-D",
            s.dims
        )));
    }
    let o = s.read_objects(level)?;
    let size = itemsize(&o.dtype).unwrap_or(4);
    let all: Vec<f64> = o
        .vertices
        .chunks_exact(size)
        .map(|b| match size {
            4 => f32::from_le_bytes(b.try_into().expect("4")) as f64,
            _ => f64::from_le_bytes(b.try_into().expect("8")),
        })
        .collect();
    let (mut positions, mut offsets) = (vec![], vec![0]);
    for w in o.offsets.windows(2) {
        let line = &all[w[0] * 3..w[1] * 3];
        let inside = bbox.is_none_or(|(lo, hi)| {
            line.chunks_exact(3)
                .any(|p| (0..3).all(|a| p[a] >= lo[a] && p[a] <= hi[a]))
        });
        if inside {
            positions.extend_from_slice(line);
            offsets.push(positions.len() / 3);
        }
    }
    let (lines, vertices) = (offsets.len() - 1, positions.len() / 3);
    match extension(out).as_str() {
        "trk" => write_trk(out, &positions, &offsets)?,
        "trx" => {
            let tracts = Tracts {
                positions,
                offsets,
                ..Tracts::default()
            };
            write_trx(out, &tracts)?
        }
        _ => write_tck(out, &positions, &offsets)?,
    }
    Ok(Exported {
        what: "polylines",
        count: lines,
        vertices,
    })
}

fn export_swc(s: &Store, level: u64, out: &Path) -> Result<Exported> {
    if s.dims != 3 {
        return Err(Error::invalid(format!(
            "SWC holds 3-D samples; this store is {}-D",
            s.dims
        )));
    }
    let g = s.read_graph(level)?;
    let present = s.attribute_names(level)?;
    let names: Vec<String> = ["radius", "type"]
        .iter()
        .filter(|n| present.iter().any(|p| p == *n))
        .map(|n| n.to_string())
        .collect();
    let p = s.read_points(level, None, Some(&names))?;
    let column = |name: &str| p.attributes.iter().find(|c| c.name == name && c.width == 1);
    let radii = column("radius").map(Column::to_f64);
    let types: Option<Vec<i32>> =
        column("type").map(|c| c.to_f64().iter().map(|&t| t as i32).collect());
    let n = write_swc(
        out,
        &g.positions,
        &g.edges,
        radii.as_deref(),
        types.as_deref(),
    )?;
    Ok(Exported {
        what: "samples",
        count: n,
        vertices: n,
    })
}

/// A level as Neuroglancer precomputed annotations: a point cloud's points
/// (inside the box) with their attributes as properties, polylines (with a
/// vertex inside) as line segments related to their object, graph edges
/// (with an end inside) as lines.
fn export_neuroglancer(
    s: &Store,
    level: u64,
    sel: &Selection,
    out: &Path,
    limit: usize,
) -> Result<Exported> {
    let d = s.dims;
    let inside = |p: &[f64]| {
        sel.bbox
            .as_ref()
            .is_none_or(|(lo, hi)| (0..d).all(|a| p[a] >= lo[a] && p[a] <= hi[a]))
    };
    let kind = s
        .geometry_types
        .first()
        .map(String::as_str)
        .unwrap_or("point_cloud");
    let summary = match kind {
        "streamline" | "polyline" | "line" => {
            let o = s.read_objects(level)?;
            let all = Column {
                name: String::new(),
                dtype: o.dtype.clone(),
                width: d,
                bytes: o.vertices,
            }
            .to_f64();
            let (mut segments, mut objects) = (vec![], vec![]);
            for (k, w) in o.offsets.windows(2).enumerate() {
                if !all[w[0] * d..w[1] * d].chunks_exact(d).any(inside) {
                    continue;
                }
                for r in w[0]..w[1].saturating_sub(1) {
                    segments.push([r, r + 1]);
                    objects.push(o.object_ids[k] as u64);
                }
            }
            let g = Geometry::Lines {
                positions: &all,
                segments: &segments,
                objects: Some(&objects),
            };
            write_annotations(out, d, &g, &[], limit)?
        }
        "graph" => {
            let g = s.read_graph(level)?;
            let segments: Vec<[usize; 2]> = g
                .edges
                .iter()
                .map(|e| [e[0] as usize, e[1] as usize])
                .filter(|e| e.iter().any(|&v| inside(&g.positions[v * d..(v + 1) * d])))
                .collect();
            let lines = Geometry::Lines {
                positions: &g.positions,
                segments: &segments,
                objects: None,
            };
            write_annotations(out, d, &lines, &[], limit)?
        }
        _ => {
            let names = match &sel.attributes {
                Some(a) => a.clone(),
                None => s.attribute_names(level)?,
            };
            let bb = sel.bbox.as_ref().map(|(lo, hi)| (&lo[..], &hi[..]));
            let p = s.read_points(level, bb, Some(&names))?;
            let props: Vec<Property> = p
                .attributes
                .iter()
                .flat_map(|c| {
                    components(c).into_iter().map(|(name, values)| Property {
                        id: property_id(&name),
                        kind: PropertyType::for_dtype(&c.dtype),
                        values,
                    })
                })
                .collect();
            write_annotations(
                out,
                d,
                &Geometry::Points(&p.positions.to_f64()),
                &props,
                limit,
            )?
        }
    };
    Ok(Exported {
        what: "annotations",
        count: summary.annotations,
        vertices: summary.annotations,
    })
}

//! `voxfield vectors info | read`: zarr-vectors stores from the command line.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use serde_json::json;
use voxfield::vectors::{
    build_pyramid, itemsize, property_id, read_ply, read_tck, read_trk, read_trx, validate,
    write_annotations, write_ply, write_points, write_points_watched, write_polylines, write_tck,
    write_trk, write_trx, Aggregation, Attribute, Coarsening, Column, Compressor, Condition,
    CrossLevel, Geometry, LasPoints, NpyTable, PointInput, PointsOptions, Property, PropertyType,
    PyramidOptions, Selection, Store, Thinning, Tracts,
};
use voxfield_io::npy;

use crate::args::VectorsCommand;
use crate::points;
use crate::work::{catch_interrupts, exit_if_interrupted, interrupted, progress, reporter, watch};

pub fn run(cmd: VectorsCommand) -> Result<()> {
    match cmd {
        VectorsCommand::Info { store, json } => info(&store, json),
        VectorsCommand::Validate { store, level, json } => check(&store, level, json),
        VectorsCommand::BuildPyramid {
            store,
            factors,
            method,
            thinning,
            seed,
            agg,
            links,
            depth,
        } => {
            let method = match method.as_str() {
                "per_object" => Coarsening::PerObject,
                "cross_object_metanode" => Coarsening::CrossObjectMetanode,
                m => bail!("--method {m}: per_object or cross_object_metanode"),
            };
            let thinning = match thinning.as_str() {
                "random" => Thinning::Random { seed },
                "spatial_coverage" => Thinning::SpatialCoverage { seed },
                t => bail!("--thinning {t}: random or spatial_coverage"),
            };
            let cross_level = match links.as_str() {
                "explicit" => CrossLevel::Explicit,
                "implicit" => CrossLevel::Implicit,
                "none" => CrossLevel::None,
                l => bail!("--links {l}: explicit, implicit or none"),
            };
            let o = PyramidOptions {
                method,
                factors: parse_factors(&factors)?,
                cross_level,
                depth,
                thinning,
                aggregation: agg.as_deref().map(Aggregation::parse).transpose()?,
            };
            build(&store, &o)
        }
        VectorsCommand::Write {
            input,
            out,
            kind,
            chunk,
            bin,
            shard,
            compressor,
            attributes,
            dims,
        } => {
            let o = PointsOptions {
                chunk_shape: chunk,
                bin_shape: bin,
                dtype: "float32".into(),
                shard_shape: shard.map(|s| if s.len() == 1 { vec![s[0]; dims] } else { s }),
                compressor: Compressor::parse(&compressor)?,
            };
            write(
                &input,
                &out,
                kind.as_deref(),
                &o,
                attributes.as_deref(),
                dims,
            )
        }
        VectorsCommand::Read {
            store,
            level,
            bbox,
            attributes,
            out,
            objects,
            groups,
            conditions,
            near,
            limit,
            cell_limit,
        } => {
            let filters = Filters {
                objects,
                groups,
                conditions: conditions
                    .iter()
                    .map(|c| Condition::parse(c))
                    .collect::<voxfield::Result<_>>()?,
                near: match near {
                    None => None,
                    Some(v) if v.len() >= 2 => Some((v[..v.len() - 1].to_vec(), v[v.len() - 1])),
                    Some(_) => bail!("--near: the centre's coordinates, then the radius"),
                },
                limit,
            };
            if out
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("precomputed"))
            {
                filters.refuse(
                    "a Neuroglancer export (--bbox and --attributes choose what it shows)",
                )?;
                export_neuroglancer(
                    &store,
                    level,
                    bbox.as_deref(),
                    attributes.as_deref(),
                    &out,
                    cell_limit,
                )
            } else {
                read(
                    &store,
                    level,
                    bbox.as_deref(),
                    attributes.as_deref(),
                    &out,
                    filters,
                )
            }
        }
    }
}

/// `vectors validate`: the report on stdout; an error exit when it fails.
fn check(path: &Path, level: u8, as_json: bool) -> Result<()> {
    let r = validate(path, level)?;
    if as_json {
        println!(
            "{}",
            json!({"ok": r.ok(), "level": r.level, "passed": r.passed, "warnings": r.warnings,
                "errors": r.errors})
        );
    } else {
        println!("{}", r.summary());
    }
    if !r.ok() {
        bail!(
            "{}: {} problem(s) at conformance level {level}",
            path.display(),
            r.errors.len()
        );
    }
    Ok(())
}

fn info(path: &Path, as_json: bool) -> Result<()> {
    let s = Store::open(path)?;
    let mut levels = vec![];
    for l in s.levels()? {
        let i = s.level(l)?;
        levels.push(
            json!({"level": l, "vertex_count": i.vertex_count, "chunk_shape": i.chunk_shape,
            "bin_shape": i.bin_shape, "coarsening_method": i.coarsening_method,
            "arrays": i.arrays_present, "attributes": s.attribute_names(l)?}),
        );
    }
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"version": s.version, "dims": s.dims,
                "geometry_types": s.geometry_types, "chunk_shape": s.chunk_shape,
                "bounds": s.bounds, "base_bin_shape": s.base_bin_shape, "levels": levels}))?
        );
        return Ok(());
    }
    println!(
        "{}: zarr-vectors {} store, {}-D {}",
        path.display(),
        s.version,
        s.dims,
        s.geometry_types.join(", ")
    );
    println!(
        "  bounds {:?} .. {:?}, chunk {:?}",
        s.bounds[0], s.bounds[1], s.chunk_shape
    );
    for l in &levels {
        println!(
            "  level {}: {} vertices, {} ({}), attributes {}",
            l["level"],
            l["vertex_count"],
            l["coarsening_method"].as_str().unwrap_or("none"),
            joined(&l["arrays"]),
            joined(&l["attributes"])
        );
    }
    Ok(())
}

/// A JSON list of strings, comma-separated.
fn joined(v: &serde_json::Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The selection flags of `vectors read` beyond --bbox.
struct Filters {
    objects: Option<Vec<i64>>,
    groups: Option<Vec<i64>>,
    conditions: Vec<Condition>,
    near: Option<(Vec<f64>, f64)>,
    limit: Option<usize>,
}

impl Filters {
    /// Refuses the flags where they do not apply.
    fn refuse(&self, what: &str) -> Result<()> {
        let given = [
            ("--objects", self.objects.is_some()),
            ("--groups", self.groups.is_some()),
            ("--where", !self.conditions.is_empty()),
            ("--near", self.near.is_some()),
            ("--limit", self.limit.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|g| g.1) {
            bail!("{flag} does not apply to {what}");
        }
        Ok(())
    }
}

fn read(
    path: &Path,
    level: u64,
    bbox: Option<&[f64]>,
    attributes: Option<&[String]>,
    out: &Path,
    filters: Filters,
) -> Result<()> {
    voxfield_io::safety::check_not_input(out, &[path])?;
    let is = |x: &str| out.extension().is_some_and(|e| e.eq_ignore_ascii_case(x));
    let ply = is("ply");
    let tracts = is("trk") || is("tck") || is("trx");
    if !ply && !is("npy") && !tracts {
        bail!(
            "--out {}: expected an .npy, .ply, .trk, .tck, .trx or .precomputed name",
            out.display()
        );
    }
    let t = Instant::now();
    let s = Store::open(path)?;
    let d = s.dims;
    if tracts {
        filters.refuse("a streamline file (--bbox chooses the streamlines)")?;
        return read_tracts(&s, level, bbox, out, t);
    }
    let sel = Selection {
        bbox: parse_bbox(bbox, d)?,
        near: filters.near,
        objects: filters.objects,
        groups: filters.groups,
        conditions: filters.conditions,
        limit: filters.limit,
        attributes: Some(attributes.map(<[String]>::to_vec).unwrap_or_default()),
    };
    let got = s.select(level, &sel)?;
    if got.truncated {
        eprintln!(
            "voxfield: --limit {} cut the selection short",
            sel.limit.unwrap_or(0)
        );
    }
    let p = got.points;
    let n = p.len();
    if ply {
        let attrs: Vec<(String, Vec<f64>)> = p.attributes.iter().flat_map(components).collect();
        write_ply(out, &p.positions.to_f64(), d, &attrs)?;
        eprintln!(
            "voxfield: {n} vertices of level {level} in {:.0} ms -> {}",
            t.elapsed().as_secs_f64() * 1e3,
            out.display()
        );
        return Ok(());
    }
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
    npy::write_npy(out, &[n, width], &table)?;
    eprintln!(
        "voxfield: {n} vertices of level {level}{} in {:.0} ms -> {}",
        if bbox.is_some() {
            " inside the box"
        } else {
            ""
        },
        t.elapsed().as_secs_f64() * 1e3,
        out.display()
    );
    Ok(())
}

/// One (name, values) per component of an attribute column: `name`, or
/// `name_k` for the k-th of several.
fn components(c: &Column) -> Vec<(String, Vec<f64>)> {
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

/// Checks `--bbox` against the store's dimensions: (min corner, max corner).
fn parse_bbox(bbox: Option<&[f64]>, d: usize) -> Result<Option<(Vec<f64>, Vec<f64>)>> {
    match bbox {
        None => Ok(None),
        Some(v) if v.len() == 2 * d && (0..d).all(|a| v[a] <= v[a + d]) => {
            Ok(Some((v[..d].to_vec(), v[d..].to_vec())))
        }
        Some(v) => bail!(
            "--bbox has {} numbers; a {d}-D store needs {} (min corner, then max, min ≤ max)",
            v.len(),
            2 * d
        ),
    }
}

/// A level as Neuroglancer precomputed annotations: a point cloud's points
/// (inside `bbox`) with their attributes as properties, polylines (with a
/// vertex inside) as line segments related to their object, graph edges
/// (with an end inside) as lines.
fn export_neuroglancer(
    path: &Path,
    level: u64,
    bbox: Option<&[f64]>,
    attributes: Option<&[String]>,
    out: &Path,
    limit: usize,
) -> Result<()> {
    let t = Instant::now();
    let s = Store::open(path)?;
    let d = s.dims;
    let b = parse_bbox(bbox, d)?;
    let inside = |p: &[f64]| {
        b.as_ref()
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
            let names = match attributes {
                Some(a) => a.to_vec(),
                None => s.attribute_names(level)?,
            };
            let bb = b.as_ref().map(|(lo, hi)| (&lo[..], &hi[..]));
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
    eprintln!(
        "voxfield: {} annotations of level {level} in {} spatial levels ({} cells) in {:.0} ms -> {}",
        summary.annotations,
        summary.levels,
        summary.cells,
        t.elapsed().as_secs_f64() * 1e3,
        out.display()
    );
    Ok(())
}

/// A level's polylines (those with a vertex inside `bbox`) as a .trk, .tck
/// or .trx.
fn read_tracts(s: &Store, level: u64, bbox: Option<&[f64]>, out: &Path, t: Instant) -> Result<()> {
    if s.dims != 3 {
        bail!(
            "streamline files hold 3-D points; this store is {}-D",
            s.dims
        );
    }
    let bbox = parse_bbox(bbox, 3)?;
    let o = s.read_objects(level)?;
    let size = itemsize(&o.dtype).unwrap_or(4);
    let all: Vec<f64> = o
        .vertices
        .chunks_exact(size)
        .map(|b| {
            if size == 4 {
                f32::from_le_bytes(b.try_into().expect("4")) as f64
            } else {
                f64::from_le_bytes(b.try_into().expect("8"))
            }
        })
        .collect();
    let (mut positions, mut offsets) = (vec![], vec![0]);
    for w in o.offsets.windows(2) {
        let line = &all[w[0] * 3..w[1] * 3];
        let inside = bbox.as_ref().is_none_or(|(lo, hi)| {
            line.chunks_exact(3)
                .any(|p| (0..3).all(|a| p[a] >= lo[a] && p[a] <= hi[a]))
        });
        if inside {
            positions.extend_from_slice(line);
            offsets.push(positions.len() / 3);
        }
    }
    let (lines, vertices) = (offsets.len() - 1, positions.len() / 3);
    let is = |x: &str| out.extension().is_some_and(|e| e.eq_ignore_ascii_case(x));
    if is("trk") {
        write_trk(out, &positions, &offsets)?;
    } else if is("trx") {
        let tracts = Tracts {
            positions,
            offsets,
            ..Tracts::default()
        };
        write_trx(out, &tracts)?;
    } else {
        write_tck(out, &positions, &offsets)?;
    }
    eprintln!(
        "voxfield: {} polylines ({} vertices) of level {level} in {:.0} ms -> {}",
        lines,
        vertices,
        t.elapsed().as_secs_f64() * 1e3,
        out.display()
    );
    Ok(())
}

fn write(
    input: &Path,
    out: &Path,
    kind: Option<&str>,
    o: &PointsOptions,
    attributes: Option<&[String]>,
    dims: usize,
) -> Result<()> {
    voxfield_io::safety::check_not_input(out, &[input])?;
    let is = |x: &str| input.extension().is_some_and(|e| e.eq_ignore_ascii_case(x));
    let tracts = is("trk") || is("tck") || is("trx");
    match (
        kind.unwrap_or(if tracts { "polylines" } else { "points" }),
        tracts,
    ) {
        ("polylines", true) => return write_tracts(input, out, o),
        ("polylines", false) => bail!(
            "--kind polylines: streamlines are read from .trk, .tck or .trx files, not {}",
            input.display()
        ),
        ("points", _) => {}
        (k, _) => bail!("--kind {k}: points or polylines (graphs are read, not written yet)"),
    }
    let t = Instant::now();
    if input
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ply"))
    {
        voxfield_io::safety::regular_input(input)?;
        let p = read_ply(input)?;
        let wanted: Vec<&(String, Vec<f64>)> = match attributes {
            // Named attributes must exist; none named keeps every PLY property.
            Some(names) => names
                .iter()
                .map(|n| {
                    p.attributes.iter().find(|a| &a.0 == n).ok_or_else(|| {
                        anyhow::anyhow!("{}: no vertex property {n:?}", input.display())
                    })
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
        let chunks = write_points(out, &p.positions, p.dims, &attrs, o)?;
        eprintln!(
            "voxfield: wrote {} points in {chunks} chunks in {:.0} ms -> {}",
            p.positions.len() / p.dims,
            t.elapsed().as_secs_f64() * 1e3,
            out.display()
        );
        return Ok(());
    }
    let names = attributes.unwrap_or_default();
    if is("laz") {
        bail!(
            "{}: LAZ is compressed; decompress it to LAS first (e.g. laszip -i {} -o points.las)",
            input.display(),
            input.display()
        );
    }
    if is("npy") || is("las") {
        // Streamed through a memory map: the file may be larger than memory.
        let table: Box<dyn PointInput> = if is("las") {
            Box::new(LasPoints::open(input)?)
        } else {
            Box::new(NpyTable::open(input, dims, names)?)
        };
        let table = table.as_ref();
        catch_interrupts();
        let bar = progress(table.len() as u64, "reading");
        let report = reporter(&bar);
        let written = write_points_watched(out, table, o, &watch(&report));
        bar.finish_and_clear();
        exit_if_interrupted(out);
        let chunks = written?;
        eprintln!(
            "voxfield: wrote {} points in {chunks} chunks in {:.0} ms -> {}",
            table.len(),
            t.elapsed().as_secs_f64() * 1e3,
            out.display()
        );
        return Ok(());
    }
    let table = points::load_table(input)?;
    if table.cols != dims + names.len() {
        bail!(
            "{}: {} columns, but {dims} coordinates and {} attribute names (--attributes) make {}",
            input.display(),
            table.cols,
            names.len(),
            dims + names.len()
        );
    }
    let n = table.rows();
    let mut coords = Vec::with_capacity(n * dims);
    let mut cols: Vec<Vec<u8>> = vec![Vec::with_capacity(n * 8); names.len()];
    for row in table.data.chunks_exact(table.cols) {
        coords.extend_from_slice(&row[..dims]);
        for (k, v) in row[dims..].iter().enumerate() {
            cols[k].extend(v.to_le_bytes());
        }
    }
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
    let chunks = write_points(out, &coords, dims, &attrs, o)?;
    eprintln!(
        "voxfield: wrote {n} points in {chunks} chunks in {:.0} ms -> {}",
        t.elapsed().as_secs_f64() * 1e3,
        out.display()
    );
    Ok(())
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

/// Streamlines from a .trk, .tck or .trx as a polyline store; TRK scalars
/// and TRX dpv become vertex attributes, properties, dps and groups object
/// attributes (float32).
fn write_tracts(input: &Path, out: &Path, o: &PointsOptions) -> Result<()> {
    let t = Instant::now();
    let is = |x: &str| input.extension().is_some_and(|e| e.eq_ignore_ascii_case(x));
    let tr = if is("trk") {
        read_trk(input)?
    } else if is("trx") {
        read_trx(input)?
    } else {
        read_tck(input)?
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
    eprintln!(
        "voxfield: wrote {} streamlines ({} vertices) in {} chunks with {} stitches in {:.0} ms -> {}",
        s.polylines,
        s.vertices,
        s.chunks,
        s.stitches,
        t.elapsed().as_secs_f64() * 1e3,
        out.display()
    );
    Ok(())
}

/// `coarsen:sparsity` pairs (a bare number is `coarsen:1`).
fn parse_factors(factors: &[String]) -> Result<Vec<(f64, f64)>> {
    factors
        .iter()
        .map(|f| {
            let mut parts = f.split(':').map(|p| p.trim().parse::<f64>());
            match (parts.next(), parts.next(), parts.next()) {
                (Some(Ok(c)), None, None) => Ok((c, 1.0)),
                (Some(Ok(c)), Some(Ok(s)), None) => Ok((c, s)),
                _ => bail!("--factors {f}: expected coarsen:sparsity, e.g. 2:1"),
            }
        })
        .collect()
}

fn build(path: &Path, o: &PyramidOptions) -> Result<()> {
    let t = Instant::now();
    catch_interrupts();
    let bar = progress(0, "coarsening");
    let report = reporter(&bar);
    let built = build_pyramid(path, o, &watch(&report));
    bar.finish_and_clear();
    if interrupted() {
        eprintln!(
            "voxfield: interrupted; {} keeps the levels finished so far: run the same command to resume",
            path.display()
        );
        std::process::exit(130);
    }
    let levels = built?;
    for l in &levels {
        if l.objects > 0 {
            println!(
                "level {}: {} vertices, {} objects",
                l.level, l.vertices, l.objects
            );
        } else {
            println!("level {}: {} vertices", l.level, l.vertices);
        }
    }
    eprintln!(
        "voxfield: built {} levels in {:.0} ms -> {}",
        levels.len(),
        t.elapsed().as_secs_f64() * 1e3,
        path.display()
    );
    Ok(())
}

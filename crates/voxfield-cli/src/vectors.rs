//! `voxfield vectors info | read`: zarr-vectors stores from the command line.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use serde_json::json;
use voxfield::vectors::{
    build_pyramid, export, import_file, validate, Aggregation, Coarsening, Compressor, Condition,
    CrossLevel, ImportOptions, PointsOptions, PyramidOptions, Selection, Store, Thinning,
};

use crate::args::VectorsCommand;
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
            object_ids,
            dims,
        } => {
            let opts = ImportOptions {
                kind,
                attributes,
                dims,
                object_ids,
                layout: PointsOptions {
                    chunk_shape: chunk,
                    bin_shape: bin,
                    dtype: "float32".into(),
                    shard_shape: shard.map(|s| if s.len() == 1 { vec![s[0]; dims] } else { s }),
                    compressor: Compressor::parse(&compressor)?,
                },
            };
            write(&input, &out, &opts)
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
            read(
                &store,
                level,
                bbox.as_deref(),
                attributes.as_deref(),
                &out,
                filters,
                cell_limit,
            )
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

fn read(
    path: &Path,
    level: u64,
    bbox: Option<&[f64]>,
    attributes: Option<&[String]>,
    out: &Path,
    filters: Filters,
    cell_limit: usize,
) -> Result<()> {
    let t = Instant::now();
    let s = Store::open(path)?;
    let precomputed = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("precomputed"));
    let sel = Selection {
        bbox: parse_bbox(bbox, s.dims)?,
        near: filters.near,
        objects: filters.objects,
        groups: filters.groups,
        conditions: filters.conditions,
        limit: filters.limit,
        // A Neuroglancer export shows every attribute unless told; a table none.
        attributes: match (attributes, precomputed) {
            (None, true) => None,
            (a, _) => Some(a.map(<[String]>::to_vec).unwrap_or_default()),
        },
    };
    let e = export(&s, level, &sel, out, cell_limit)?;
    let inside = if bbox.is_some() {
        " inside the box"
    } else {
        ""
    };
    let what = match e.what {
        "polylines" => format!("{} polylines ({} vertices)", e.count, e.vertices),
        "annotations" => format!("{} annotations", e.count),
        "samples" => format!("{} SWC samples", e.count),
        _ => format!("{} vertices", e.count),
    };
    eprintln!(
        "voxfield: {what} of level {level}{inside} in {:.0} ms -> {}",
        t.elapsed().as_secs_f64() * 1e3,
        out.display()
    );
    Ok(())
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

fn write(input: &Path, out: &Path, opts: &ImportOptions) -> Result<()> {
    let t = Instant::now();
    catch_interrupts();
    let bar = progress(0, "reading");
    let report = reporter(&bar);
    let done = import_file(input, out, opts, &watch(&report));
    bar.finish_and_clear();
    exit_if_interrupted(out);
    let s = done?;
    let what = match s.kind {
        "polylines" => format!(
            "{} streamlines ({} vertices) in {} chunks with {} stitches",
            s.objects, s.vertices, s.chunks, s.links
        ),
        "graph" => format!(
            "a graph of {} vertices, {} edges and {} trees in {} chunks",
            s.vertices, s.links, s.objects, s.chunks
        ),
        _ => format!("{} points in {} chunks", s.vertices, s.chunks),
    };
    eprintln!(
        "voxfield: wrote {what} in {:.0} ms -> {}",
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

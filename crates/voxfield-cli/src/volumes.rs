//! `voxfield info` and `voxfield convert`: describing and rewriting volumes.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use voxfield::VolumeSource;

use crate::args::{CodecArg, RawArgs};
use crate::work::{catch_interrupts, exit_if_interrupted, progress, reporter, set_threads, watch};

pub(crate) fn open(path: &Path, raw: &RawArgs) -> Result<Box<dyn VolumeSource>> {
    let src = voxfield::open(path, &raw.open_options()?)?;
    for note in &src.info().notes {
        eprintln!("voxfield: note: {note}");
    }
    Ok(src)
}

pub(crate) fn info(path: &Path, raw: &RawArgs, json: bool) -> Result<()> {
    if voxfield::is_rbf_model(path) {
        return crate::rbf::info(path, json);
    }
    if voxfield::is_neural_model(path) {
        return crate::neural::info(path, json);
    }
    if raw.shape.is_none() {
        if let Some(entries) = voxfield::list_container(path)? {
            return list(path, &entries, json);
        }
    }
    let src = open(path, raw)?;
    let i = src.info();
    let affine = i.affine.map(|a| a.rows());
    let spacing: Vec<f64> = i
        .affine
        .map(|a| {
            (3 - i.axes.spatial_dims()..3)
                .map(|r| (0..3).map(|c| a.linear[c][r].powi(2)).sum::<f64>().sqrt())
                .collect()
        })
        .unwrap_or_default();
    let axes: Vec<serde_json::Value> = i
        .axes
        .axes
        .iter()
        .enumerate()
        .map(|(k, a)| {
            let spatial = i.axes.spatial.contains(&k);
            serde_json::json!({"name": a.name, "type": a.kind.name(), "unit": a.unit, "length": a.len,
                "index": (!spatial).then_some(i.axes.index[k])})
        })
        .collect();
    if json {
        let v = serde_json::json!({
            "axes": axes, "spatial_dims": i.axes.spatial_dims(), "spacing": spacing,
            "path": i.path, "format": i.format, "shape": i.shape, "dtype": i.dtype.name(),
            "endian": format!("{:?}", i.endian).to_lowercase(), "chunk_shape": i.chunk_shape,
            "affine": affine, "bytes_on_disk": src.disk_usage(),
            "value_scale": i.value_scale.map(|(m, q)| serde_json::json!({"slope": m, "intercept": q})),
            "notes": i.notes,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("path:          {}", i.path.display());
    println!("format:        {}", i.format);
    if !i.axes.is_plain() {
        let names: Vec<String> = i
            .axes
            .axes
            .iter()
            .map(|a| match &a.unit {
                Some(u) => format!("{} ({}, {} {u})", a.name, a.len, a.kind.name()),
                None => format!("{} ({}, {})", a.name, a.len, a.kind.name()),
            })
            .collect();
        println!("array axes:    {}", names.join(", "));
        println!("selected:      {}", i.axes.describe());
    }
    println!("shape:         {:?}", i.shape);
    if !spacing.is_empty() {
        println!("spacing:       {spacing:?} (world units per voxel, spatial axes)");
    }
    println!("dtype:         {} ({:?} endian)", i.dtype, i.endian);
    println!("chunk shape:   {:?}", i.chunk_shape);
    println!("bytes on disk: {}", src.disk_usage());
    if let Some((m, q)) = i.value_scale {
        println!("value scale:   {m} * stored + {q}");
    }
    match affine {
        Some(rows) => {
            println!("affine (index -> world):");
            for r in rows {
                println!(
                    "  [{:>12.6} {:>12.6} {:>12.6} {:>12.6}]",
                    r[0], r[1], r[2], r[3]
                );
            }
        }
        None => println!("affine:        none (index space)"),
    }
    Ok(())
}

/// OME-Zarr pyramid options when the destination is `*.ome.zarr` or levels are given.
pub(crate) fn pyramid_options(
    dst: &Path,
    levels: Option<&str>,
    downsample: &str,
) -> Result<Option<voxfield::PyramidOptions>> {
    let ome = dst
        .to_string_lossy()
        .to_ascii_lowercase()
        .trim_end_matches('/')
        .ends_with(".ome.zarr");
    let levels = match levels {
        None | Some("auto") => None,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n >= 1 => Some(n),
            _ => bail!("--levels {n}: give a number of levels ≥ 1, or auto"),
        },
    };
    let downsample: voxfield::Downsample = downsample.parse()?;
    Ok((ome || levels.is_some()).then_some(voxfield::PyramidOptions { levels, downsample }))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn convert(
    path: &Path,
    raw: &RawArgs,
    dst: &Path,
    pyramid: Option<voxfield::PyramidOptions>,
    chunks: [usize; 3],
    codec: CodecArg,
    level: i32,
    shard: Option<usize>,
    threads: Option<usize>,
) -> Result<()> {
    set_threads(threads)?;
    voxfield_io::safety::check_not_input(dst, &[path])?;
    let src = open(path, raw)?;
    let opts = voxfield::ZarrWriteOptions {
        chunks,
        codec: match codec {
            CodecArg::Zstd => voxfield::ZarrCodec::Zstd,
            CodecArg::Blosc => voxfield::ZarrCodec::Blosc,
            CodecArg::Gzip => voxfield::ZarrCodec::Gzip,
        },
        level,
        shard,
    };
    if shard == Some(0) {
        bail!("--shard 0: give the number of chunks per shard along each axis (≥ 1)");
    }
    catch_interrupts();
    let bar = progress(0, "converting (chunks)");
    let t = Instant::now();
    let report = reporter(&bar);
    let watch = watch(&report);
    let result = match pyramid {
        Some(p) => voxfield::write_ome_zarr(src.as_ref(), dst, &opts, &p, &watch).map(|shapes| {
            eprintln!(
                "voxfield: OME-Zarr 0.5 image with {} levels: {}",
                shapes.len(),
                shapes
                    .iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }),
        None => voxfield::write_zarr(src.as_ref(), dst, &opts, &watch),
    };
    bar.finish_and_clear();
    exit_if_interrupted(dst);
    result?;
    let i = src.info();
    eprintln!(
        "voxfield: wrote {} ({:?} {}, chunks {:?}, {:?} level {level}) in {:.1} s",
        dst.display(),
        i.shape,
        i.dtype,
        chunks,
        codec,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(crate) fn list(path: &Path, entries: &[voxfield::Entry], json: bool) -> Result<()> {
    if json {
        let items: Vec<_> = entries
            .iter()
            .map(|e| serde_json::json!({"path": e.path, "shape": e.shape, "dtype": e.dtype}))
            .collect();
        let v = serde_json::json!({"path": path, "container": true, "arrays": items});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{} is a container with {} arrays:",
        path.display(),
        entries.len()
    );
    for e in entries {
        println!(
            "  {:<30} {:?} {}",
            crate::printable(&e.path),
            e.shape,
            e.dtype
        );
    }
    Ok(())
}

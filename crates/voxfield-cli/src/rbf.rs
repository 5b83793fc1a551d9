//! `voxfield rbf fit | eval | grid`, and models as fields for `info`, `sample`, `slice`.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use voxfield::rbf::{file, FitOptions, GridVolume, RbfModel};
use voxfield_io::npy;

use crate::args::{PictureArgs, RbfCommand};
use crate::work::{
    catch_interrupts, exit_if_interrupted, interrupted, progress, reporter, set_threads, watch,
};
use crate::{picture, points};

pub fn run(cmd: RbfCommand) -> Result<()> {
    match cmd {
        RbfCommand::Fit {
            points,
            out,
            columns,
            dim,
            kernel,
            degree,
            points_per_cell,
            overlap,
            smoothing,
            shape,
            ramp,
            duplicates,
            threads,
        } => {
            set_threads(threads)?;
            let opts = FitOptions {
                kernel: kernel.parse()?,
                degree,
                smoothing,
                shape,
                points_per_cell,
                overlap,
                ramp: ramp.parse()?,
                duplicates: duplicates.parse()?,
                ..Default::default()
            };
            fit(&points, &out, columns.as_deref(), dim, &opts)
        }
        RbfCommand::Eval {
            model,
            points,
            out,
            gradient,
            threads,
        } => {
            set_threads(threads)?;
            eval(&model, &points, &out, gradient.as_deref())
        }
        RbfCommand::Grid {
            model,
            bounds,
            shape,
            out,
            channel,
            picture,
            threads,
        } => {
            set_threads(threads)?;
            grid(&model, bounds.as_deref(), &shape, &out, channel, &picture)
        }
    }
}

fn fit(
    path: &Path,
    out: &Path,
    columns: Option<&[String]>,
    dim: Option<usize>,
    opts: &FitOptions,
) -> Result<()> {
    let t0 = Instant::now();
    catch_interrupts();
    voxfield_io::safety::check_not_input(out, &[path])?;
    let table = points::load_table(path)?;
    let (data, width) = match columns {
        Some(c) => (table.select(path, c)?, c.len()),
        None => (table.data, table.cols),
    };
    let dim = dim.unwrap_or(width.saturating_sub(1));
    if width < 2 || dim == 0 || dim >= width {
        bail!(
            "{}: {width} column(s) cannot hold {dim}-D coordinates and at least one value; \
             expected x, y[, z], value (pick them with --columns, split with --dim)",
            path.display()
        );
    }
    let channels = width - dim;
    let n = data.len() / width;
    let (mut pts, mut vals) = (
        Vec::with_capacity(n * dim),
        Vec::with_capacity(n * channels),
    );
    for row in data.chunks_exact(width) {
        pts.extend_from_slice(&row[..dim]);
        vals.extend_from_slice(&row[dim..]);
    }
    drop(data);
    let loaded = t0.elapsed().as_secs_f64();
    let bar = progress(0, "fitting (cells)");
    let report = reporter(&bar);
    let t = Instant::now();
    let fitted = voxfield::rbf::fit(&pts, dim, &vals, channels, opts, &watch(&report));
    bar.finish_and_clear();
    exit_if_interrupted(out);
    let model = fitted.with_context(|| format!("fitting {}", path.display()))?;
    let fit_s = t.elapsed().as_secs_f64();
    let i = &model.info;
    if i.merged_duplicates > 0 {
        eprintln!(
            "voxfield: warning: merged {} duplicate point(s) of {} (mean value kept; --duplicates reject refuses them)",
            i.merged_duplicates,
            path.display()
        );
    }
    model.save(out)?;
    eprintln!(
        "voxfield: fitted {} {}-D points ({} channel(s)) with {} (degree {}) in {} cells \
         (mean {} points, largest {}, {} grown) in {fit_s:.2} s (+{loaded:.2} s loading) -> {}",
        i.points,
        dim,
        channels,
        i.kernel,
        i.degree,
        i.cells,
        i.cell_points / i.cells.max(1),
        i.largest_cell,
        i.grown_cells,
        out.display()
    );
    Ok(())
}

fn eval(model_path: &Path, points_path: &Path, out: &Path, gradient: Option<&Path>) -> Result<()> {
    voxfield_io::safety::check_not_input(out, &[model_path, points_path])?;
    if let Some(g) = gradient {
        voxfield_io::safety::check_not_input(g, &[model_path, points_path, out])?;
    }
    let model = RbfModel::load(model_path)?;
    let (dim, c) = (model.dim(), model.channels());
    let pts = points::load_cols(points_path, dim)?;
    let n = pts.len() / dim;
    let mut vals = vec![0.0; n * c];
    let bar = progress(n as u64, "evaluating");
    let t = Instant::now();
    model.eval_points(&pts, &mut vals, &|done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    let shape: Vec<usize> = if c == 1 { vec![n] } else { vec![n, c] };
    npy::write_npy(out, &shape, &vals)?;
    if let Some(g) = gradient {
        let mut grad = vec![0.0; n * dim];
        model.eval_gradients(&pts, 0, &mut grad)?;
        npy::write_npy(g, &[n, dim], &grad)?;
    }
    eprintln!(
        "voxfield: evaluated {} at {n} points in {:.1} ms -> {}",
        model_path.display(),
        secs * 1e3,
        out.display()
    );
    Ok(())
}

fn grid(
    model_path: &Path,
    bounds: Option<&[f64]>,
    shape: &[usize],
    out: &Path,
    channel: usize,
    pic: &PictureArgs,
) -> Result<()> {
    voxfield_io::safety::check_not_input(out, &[model_path])?;
    pic.check_for(out).map_err(anyhow::Error::msg)?;
    let model = RbfModel::load(model_path)?;
    let dim = model.dim();
    if shape.len() != dim || shape.contains(&0) {
        bail!("--shape needs {dim} positive sizes for this {dim}-D model, got {shape:?}");
    }
    if channel >= model.channels() {
        bail!(
            "--channel {channel}: the model has {} channel(s)",
            model.channels()
        );
    }
    let (lo, hi): (Vec<f64>, Vec<f64>) = match bounds {
        Some(b) if b.len() == 2 * dim => (
            b.iter().step_by(2).copied().collect(),
            b.iter().skip(1).step_by(2).copied().collect(),
        ),
        Some(b) => bail!(
            "--bounds needs {} numbers (LO,HI per axis), got {}",
            2 * dim,
            b.len()
        ),
        None => (model.info.bbox_lo.clone(), model.info.bbox_hi.clone()),
    };
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let Some(total) = shape.iter().try_fold(1usize, |a, &n| a.checked_mul(n)) else {
        bail!("--shape {shape:?} is too large to address");
    };
    // Ctrl-C stops between slabs/chunks; the temporary output is removed.
    catch_interrupts();
    let stop = || voxfield::Error::invalid("interrupted");
    let t = Instant::now();
    let result = write_grid(
        &model,
        &lo,
        &hi,
        shape,
        out,
        ext.as_deref(),
        channel,
        pic,
        &interrupted,
        &stop,
    );
    exit_if_interrupted(out);
    result?;
    eprintln!(
        "voxfield: evaluated {} on a {shape:?} grid ({total} nodes) in {:.2} s -> {}",
        model_path.display(),
        t.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_grid(
    model: &RbfModel,
    lo: &[f64],
    hi: &[f64],
    shape: &[usize],
    out: &Path,
    ext: Option<&str>,
    channel: usize,
    pic: &PictureArgs,
    interrupted: &dyn Fn() -> bool,
    stop: &dyn Fn() -> voxfield::Error,
) -> Result<()> {
    let dim = model.dim();
    let total: usize = shape.iter().product(); // checked by the caller
    match ext {
        Some("npy") => {
            let c = model.channels();
            let bar = progress(shape[0] as u64, "evaluating (rows)");
            let mut dims = shape.to_vec();
            if c > 1 {
                dims.push(c);
            }
            npy::write_atomic(out, |w| {
                w.write_all(&npy::header_bytes("<f8", &dims))?;
                let mut buf = Vec::new();
                model
                    .eval_grid(lo, hi, shape, &mut |_, vals| {
                        if interrupted() {
                            return Err(stop());
                        }
                        buf.clear();
                        for v in vals {
                            buf.extend_from_slice(&v.to_le_bytes());
                        }
                        w.write_all(&buf).map_err(|e| voxfield::Error::io(out, e))?;
                        bar.inc((vals.len() / c / (total / shape[0])) as u64);
                        Ok(())
                    })
                    .map_err(std::io::Error::other)
            })?;
            bar.finish_and_clear();
        }
        Some("png") => {
            if dim != 2 {
                bail!(
                    "--out {}: a PNG needs a 2-D model (use .npy or .zarr, or `voxfield slice`)",
                    out.display()
                );
            }
            let (nx, ny) = (shape[0], shape[1]);
            if total > voxfield_io::safety::MAX_PNG_PIXELS {
                bail!(
                    "--shape {nx},{ny}: a PNG of {total} pixels is over the {} allowed; write .npy (streamed) instead",
                    voxfield_io::safety::MAX_PNG_PIXELS
                );
            }
            let c = model.channels();
            let mut img = vec![f32::NAN; nx * ny];
            model.eval_grid(lo, hi, shape, &mut |r0, vals| {
                if interrupted() {
                    return Err(stop());
                }
                for (k, v) in vals.chunks_exact(c).enumerate() {
                    let (ix, iy) = (r0 + k / ny, k % ny);
                    // Map view: x to the right, y up.
                    img[(ny - 1 - iy) * nx + ix] = v[channel] as f32;
                }
                Ok(())
            })?;
            let window = pic
                .window
                .or_else(|| picture::auto_window(&img))
                .unwrap_or([0.0, 1.0]);
            picture::write_png(out, &img, nx, ny, window, pic.colormap())?;
        }
        Some("zarr") => {
            let vol = GridVolume::new(model, channel, lo, hi, shape)?;
            let chunks = [0, 1, 2].map(|a| vol_chunk(shape.get(a).copied().unwrap_or(1), dim));
            let bar = progress(0, "evaluating (chunks)");
            let report = reporter(&bar);
            voxfield::write_zarr(
                &vol,
                out,
                &voxfield::ZarrWriteOptions {
                    chunks,
                    codec: voxfield::ZarrCodec::Zstd,
                    level: 3,
                    shard: None,
                },
                &watch(&report),
            )?;
            bar.finish_and_clear();
        }
        _ => bail!(
            "--out {}: expected a .npy, .png or .zarr name",
            out.display()
        ),
    }
    Ok(())
}

/// Chunk edge for Zarr grids: 64³ in 3-D, 256² in 2-D.
fn vol_chunk(n: usize, dim: usize) -> usize {
    n.min(if dim == 3 { 64 } else { 256 })
}

/// `voxfield info MODEL.vxr`.
pub fn info(path: &Path, json: bool) -> Result<()> {
    let i = file::read_info(path)?;
    if json {
        let mut v = serde_json::to_value(&i)?;
        v["path"] = serde_json::json!(path);
        v["format"] = serde_json::json!("vxr");
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!("path:          {}", path.display());
    println!("format:        vxr (voxfield RBF model, {bytes} bytes)");
    println!("dimensions:    {} ({} value channel(s))", i.dim, i.channels);
    println!(
        "kernel:        {} (degree {}, smoothing {}{})",
        i.kernel,
        i.degree,
        i.smoothing,
        i.shape.map(|s| format!(", shape {s}")).unwrap_or_default()
    );
    println!(
        "points:        {} ({} given, {} duplicates merged)",
        i.points, i.input_points, i.merged_duplicates
    );
    println!("bounds:        {:?} to {:?}", i.bbox_lo, i.bbox_hi);
    println!("values:        {:?} to {:?}", i.value_min, i.value_max);
    println!(
        "cells:         {} on a {:?} grid of domains (~{} points each), overlap {}, {:?} ramps; mean {} points per cell, largest {}, {} grown",
        i.cells,
        &i.grid.count[..i.dim],
        i.points_per_cell,
        i.overlap,
        i.ramp,
        i.cell_points / i.cells.max(1),
        i.largest_cell,
        i.grown_cells
    );
    Ok(())
}

//! `voxfield compress` and `voxfield decompress`: neural models of volumes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};
use voxfield::neural::{CompressOptions, MetaOptions, NeuralModel, NeuralVolume};
use voxfield::{DType, VolumeSource};
use voxfield_io::npy;

use crate::work::{catch_interrupts, exit_if_interrupted, interrupted, progress, reporter, watch};

/// `voxfield info M.vxn`: the header (after the checksum is verified).
pub fn info(path: &Path, json: bool) -> Result<()> {
    let h = NeuralModel::read_header(path)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&h)?);
        return Ok(());
    }
    println!("path:          {}", path.display());
    println!("format:        voxfield neural model (.vxn)");
    println!("shape:         {}  dtype: {}", h["shape"], h["dtype"]);
    println!("value range:   {} .. {}", h["lo"], h["hi"]);
    println!("encoding:      {}", h["encoding"]);
    println!("mlp:           {}", h["mlp"]);
    println!("parameters:    {} ({})", h["params"], h["storage"]);
    println!("training:      {}", h["training"]);
    Ok(())
}

pub fn compress(
    path: &Path,
    src: &dyn VolumeSource,
    out: &Path,
    opts: &CompressOptions,
) -> Result<()> {
    voxfield_io::safety::check_not_input(out, &[path])?;
    // Refuse a FIFO, device or directory before training, not after.
    voxfield_io::safety::output_target(out)?;
    let info = src.info();
    let native = voxfield::neural::native_bytes(info);
    catch_interrupts();
    let bar = progress(0, "training");
    let t = Instant::now();
    let report = reporter(&bar);
    let result = voxfield::neural::compress(src, opts, &watch(&report));
    bar.finish_and_clear();
    exit_if_interrupted(out);
    let model = result?;
    model.save(out)?;
    let bytes = std::fs::metadata(out)?.len();
    let tables = match &model.quant {
        Some(q) => format!("tables quantised in steps of {:.3e}", q.step),
        None => "f16".to_string(),
    };
    eprintln!(
        "voxfield: compressed {} ({:?} {}) to {} ({} parameters, {tables}, {bytes} bytes): ratio {:.1}, \
         PSNR ≈ {:.2} dB (training estimate, before quantisation; `voxfield compare` measures), {} epochs in {:.1} s",
        path.display(),
        info.shape,
        info.dtype,
        out.display(),
        model.net.n_params(),
        native as f64 / bytes as f64,
        model.record["psnr_estimate_db"].as_f64().unwrap_or(f64::NAN),
        model.record["epochs"],
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `voxfield compress meta-train`: a Reptile initialisation written to `out`.
pub fn meta_train(volumes: &[PathBuf], out: &Path, opts: &MetaOptions) -> Result<()> {
    let inputs: Vec<&Path> = volumes.iter().map(PathBuf::as_path).collect();
    voxfield_io::safety::check_not_input(out, &inputs)?;
    voxfield_io::safety::output_target(out)?;
    let srcs = volumes
        .iter()
        .map(|p| voxfield::open(p, &Default::default()))
        .collect::<voxfield::Result<Vec<_>>>()?;
    let refs: Vec<&dyn VolumeSource> = srcs.iter().map(|s| s.as_ref()).collect();
    catch_interrupts();
    let bar = progress(opts.meta_steps as u64, "meta-training (outer steps)");
    let t = Instant::now();
    let report = reporter(&bar);
    let result = voxfield::neural::meta_train(&refs, opts, &watch(&report));
    bar.finish_and_clear();
    exit_if_interrupted(out);
    let model = result?;
    model.save(out)?;
    eprintln!(
        "voxfield: Reptile initialisation over {} volumes ({} outer × {} inner steps, {} parameters) written to {} in {:.1} s",
        volumes.len(),
        opts.meta_steps,
        opts.inner_steps,
        model.net.n_params(),
        out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Decodes a model to `.npy`, `.nii[.gz]` or `.zarr`/`.ome.zarr` (by the output's
/// name), a band of ≤ 2^20 voxels or one chunk at a time.
pub fn decompress(model_path: &Path, out: &Path, dtype: &str) -> Result<()> {
    let name = out.to_string_lossy().to_ascii_lowercase();
    let nifti = name.ends_with(".nii") || name.ends_with(".nii.gz");
    let zarr = name.trim_end_matches('/').ends_with(".zarr");
    if !(nifti || zarr || name.ends_with(".npy")) {
        bail!(
            "--out {}: decompress writes .npy, .nii, .nii.gz or .zarr",
            out.display()
        );
    }
    voxfield_io::safety::check_not_input(out, &[model_path])?;
    voxfield_io::safety::output_target(out)?;
    let model = NeuralModel::load(model_path)?;
    let dt = match dtype {
        "source" => model.dtype.parse::<DType>()?,
        "f32" | "float32" => DType::F32,
        o => bail!("--dtype {o}: expected source or f32"),
    };
    let s = model.shape;
    if !zarr {
        // A header can claim any shape (its checksum only proves it was written so).
        let bytes = s
            .iter()
            .fold(dt.size() as u64, |a, &n| a.saturating_mul(n as u64));
        voxfield_io::safety::check_free_space(out, bytes)?;
    }
    let t = Instant::now();
    catch_interrupts();
    let result = if zarr {
        let vol = NeuralVolume::new(model, model_path)?.with_dtype(dt);
        let bar = progress(0, "decoding (chunks)");
        let report = reporter(&bar);
        let opts = voxfield::ZarrWriteOptions {
            chunks: [64; 3],
            level: 3,
            ..Default::default()
        };
        let r = voxfield::write_zarr(&vol, out, &opts, &watch(&report));
        bar.finish_and_clear();
        r
    } else {
        let head = if nifti {
            voxfield_io::nifti::header_bytes(s, dt, model.affine.as_ref())?
        } else {
            npy::header_bytes(npy::descr(dt), &s)
        };
        let gz = name.ends_with(".gz");
        let vol = NeuralVolume::new(model, model_path)?.with_dtype(dt);
        npy::write_atomic(out, |w| {
            if gz {
                let mut z = flate2::write::GzEncoder::new(w, flate2::Compression::new(6));
                z.write_all(&head)?;
                write_slabs(&mut z, &vol, nifti)?;
                z.finish().map(|_| ())
            } else {
                w.write_all(&head)?;
                write_slabs(w, &vol, nifti)
            }
        })
    };
    exit_if_interrupted(out);
    result?;
    eprintln!(
        "voxfield: decoded {} to {} ({s:?} {dt}) in {:.1} s",
        model_path.display(),
        out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes the decoded voxels, little-endian: C order (`.npy`, the last axis
/// fastest) or Fortran order (NIfTI, the first axis fastest). Boxes of at most
/// 2^22 voxels are decoded by whole rows (along the last axis, the coherent
/// decoder) and transposed for Fortran order, so memory stays bounded whatever
/// the shape.
fn write_slabs(w: &mut impl Write, vol: &NeuralVolume, fortran: bool) -> std::io::Result<()> {
    const BOX: usize = 1 << 22;
    let s = vol.info().shape;
    let e = vol.info().dtype.size();
    // The box steps along the slowest output axis (`slow`) and the middle one.
    let (slow, size) = if fortran {
        let kz = (BOX / (s[0] * s[1]).max(1)).clamp(1, s[2]);
        let nj = if kz > 1 {
            s[1]
        } else {
            (BOX / s[0].max(1)).clamp(1, s[1])
        };
        (2, [s[0], nj, kz])
    } else {
        (0, [1, (BOX / s[2].max(1)).clamp(1, s[1]), s[2]])
    };
    let mut native = vec![0u8; size.iter().product::<usize>() * e];
    let mut bytes = vec![0u8; native.len()];
    let bar = progress(s[slow] as u64, "decoding");
    for p in (0..s[slow]).step_by(size[slow]) {
        for j0 in (0..s[1]).step_by(size[1]) {
            if interrupted() {
                return Err(std::io::Error::other("interrupted"));
            }
            let mut b = size;
            b[1] = b[1].min(s[1] - j0);
            b[slow] = b[slow].min(s[slow] - p);
            let start = if fortran { [0, j0, p] } else { [p, j0, 0] };
            let n = b.iter().product::<usize>() * e;
            vol.read_box_native(start, b, &mut native[..n])
                .map_err(std::io::Error::other)?;
            let out = if fortran {
                // (i, j, k) in C order → k, j, i with i fastest.
                let mut m = 0;
                for k in 0..b[2] {
                    for j in 0..b[1] {
                        for i in 0..b[0] {
                            let from = ((i * b[1] + j) * b[2] + k) * e;
                            bytes[m..m + e].copy_from_slice(&native[from..from + e]);
                            m += e;
                        }
                    }
                }
                &mut bytes[..n]
            } else {
                &mut native[..n]
            };
            if cfg!(target_endian = "big") {
                out.chunks_exact_mut(e).for_each(|v| v.reverse());
            }
            w.write_all(out)?;
        }
        bar.inc(size[slow].min(s[slow] - p) as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

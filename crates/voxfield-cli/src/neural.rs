//! `voxfield compress` and `voxfield decompress`: neural models of volumes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{bail, Result};
use voxfield::neural::{CompressOptions, MetaOptions, NeuralModel};
use voxfield_core::{DType, VolumeSource};
use voxfield_io::npy;

use crate::work::{catch_interrupts, exit_if_interrupted, progress, INTERRUPTED};

/// Whether `path` names a neural model (by extension or magic).
pub fn is_model(path: &Path) -> bool {
    voxfield::is_neural_model(path)
}

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
    let info = src.info();
    let native = voxfield::neural::native_bytes(info);
    catch_interrupts();
    let bar = progress(0, "training");
    let t = Instant::now();
    let report = |p: voxfield::neural::Progress| {
        bar.set_length(p.total);
        bar.set_position(p.done);
        let rate = (p.epoch as u64 * p.total + p.done) as f64 / t.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "epoch {} · {:.1} dB · {:.2} M samples/s",
            p.epoch + 1,
            p.psnr,
            rate / 1e6
        ));
    };
    let result = voxfield::neural::compress(src, opts, &report, &INTERRUPTED);
    bar.finish_and_clear();
    exit_if_interrupted(out);
    let model = result?;
    model.save(out)?;
    let bytes = std::fs::metadata(out)?.len();
    eprintln!(
        "voxfield: compressed {} ({:?} {}) to {} ({} parameters, {bytes} bytes): ratio {:.1}, PSNR ≈ {:.2} dB \
         (training estimate; `voxfield compare` measures), {} epochs in {:.1} s",
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
    let srcs = volumes
        .iter()
        .map(|p| voxfield::open(p, &Default::default()))
        .collect::<voxfield_core::Result<Vec<_>>>()?;
    let refs: Vec<&dyn VolumeSource> = srcs.iter().map(|s| s.as_ref()).collect();
    catch_interrupts();
    let bar = progress(opts.meta_steps as u64, "meta-training (outer steps)");
    let t = Instant::now();
    let result = voxfield::neural::meta_train(
        &refs,
        opts,
        &|done, _| bar.set_position(done as u64),
        &INTERRUPTED,
    );
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
    let model = NeuralModel::load(model_path)?;
    let dt = match dtype {
        "source" => model.dtype.parse::<DType>()?,
        "f32" | "float32" => DType::F32,
        o => bail!("--dtype {o}: expected source or f32"),
    };
    let s = model.shape;
    let t = Instant::now();
    catch_interrupts();
    let result = if zarr {
        let vol = voxfield::neural::NeuralVolume::new(model, model_path)?.with_dtype(dt);
        let bar = progress(0, "decoding (chunks)");
        let report = |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        };
        let opts = voxfield::ZarrWriteOptions {
            chunks: [64; 3],
            level: 3,
            ..Default::default()
        };
        let r = voxfield::write_zarr(&vol, out, &opts, &report, &INTERRUPTED);
        bar.finish_and_clear();
        r
    } else {
        let head = if nifti {
            voxfield_io::nifti::header_bytes(s, dt, model.affine.as_ref())?
        } else {
            npy::header_bytes(npy::descr(dt), &s)
        };
        let gz = name.ends_with(".gz");
        npy::write_atomic(out, |w| {
            if gz {
                let mut z = flate2::write::GzEncoder::new(w, flate2::Compression::new(6));
                z.write_all(&head)?;
                write_slabs(&mut z, &model, dt, nifti)?;
                z.finish().map(|_| ())
            } else {
                w.write_all(&head)?;
                write_slabs(w, &model, dt, nifti)
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

/// Writes the decoded voxels, little-endian, one plane at a time: planes of the
/// first axis with the last fastest (C order, `.npy`), or planes of the last
/// axis with the first fastest (Fortran order, NIfTI).
fn write_slabs(
    w: &mut impl Write,
    model: &NeuralModel,
    dt: DType,
    fortran: bool,
) -> std::io::Result<()> {
    let s = model.shape;
    let (planes, rows) = if fortran { (s[2], s[0]) } else { (s[0], s[2]) };
    let n = s.iter().product::<usize>() / planes.max(1);
    // Memory: one band of at most 2^20 voxels of a plane, whatever its size.
    let band = n.min(1 << 20);
    let mut vals = vec![0.0f64; band];
    let mut pts = vec![[0.0f64; 3]; band];
    let mut bytes = vec![0u8; band * dt.size()];
    let field = voxfield::neural::NeuralField {
        model,
        to_index: None,
    };
    let bar = progress(planes as u64, "decoding (planes)");
    for p in 0..planes {
        for from in (0..n).step_by(band) {
            if INTERRUPTED.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("interrupted"));
            }
            let len = band.min(n - from);
            for (m, q) in (from..).zip(&mut pts[..len]) {
                let (fast, slow) = ((m % rows) as f64, (m / rows) as f64);
                *q = if fortran {
                    [fast, slow, p as f64]
                } else {
                    [p as f64, slow, fast]
                };
            }
            voxfield_core::Field::sample_block(&field, &pts[..len], &mut vals[..len])
                .map_err(std::io::Error::other)?;
            let out = &mut bytes[..len * dt.size()];
            for (v, b) in vals.iter().zip(out.chunks_exact_mut(dt.size())) {
                voxfield_core::voxel::store_f64(*v, dt, b);
                if cfg!(target_endian = "big") {
                    b.reverse();
                }
            }
            w.write_all(out)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

//! `voxfield compress` and `voxfield decompress`: neural models of volumes.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{bail, Result};
use voxfield::neural::{CompressOptions, NeuralModel};
use voxfield_core::{DType, VolumeSource};
use voxfield_io::npy;

use crate::work::{catch_interrupts, progress, INTERRUPTED};

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
    let native: u64 =
        info.shape.iter().map(|&n| n as u64).product::<u64>() * info.dtype.size() as u64;
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
    if INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("voxfield: interrupted; {} was not written", out.display());
        std::process::exit(130);
    }
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

/// Decodes a model to an `.npy`, one slab of rows at a time (memory: one slab).
pub fn decompress(model_path: &Path, out: &Path, dtype: &str) -> Result<()> {
    if !out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
    {
        bail!(
            "--out {}: decompress writes .npy (then `voxfield convert` for Zarr)",
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
    let descr = match dt {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::U8 => "|u1",
        DType::I8 => "|i1",
        DType::U16 => "<u2",
        DType::I16 => "<i2",
        DType::U32 => "<u4",
        DType::I32 => "<i4",
        DType::U64 => "<u8",
        DType::I64 => "<i8",
        DType::Bool => "|b1",
    };
    catch_interrupts();
    let bar = progress(s[0] as u64, "decoding (slabs)");
    let result = npy::write_atomic(out, |w| {
        w.write_all(&npy::header_bytes(descr, &s))?;
        let mut vals = vec![0.0f64; s[1] * s[2]];
        let mut pts = vec![[0.0f64; 3]; s[1] * s[2]];
        let mut bytes = vec![0u8; s[1] * s[2] * dt.size()];
        let field = voxfield::neural::NeuralField {
            model: &model,
            to_index: None,
        };
        for i in 0..s[0] {
            if INTERRUPTED.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("interrupted"));
            }
            for (n, p) in pts.iter_mut().enumerate() {
                *p = [i as f64, (n / s[2]) as f64, (n % s[2]) as f64];
            }
            voxfield_core::Field::sample_block(&field, &pts, &mut vals)
                .map_err(std::io::Error::other)?;
            for (v, b) in vals.iter().zip(bytes.chunks_exact_mut(dt.size())) {
                voxfield_core::voxel::store_f64(*v, dt, b);
                if cfg!(target_endian = "big") {
                    b.reverse();
                }
            }
            w.write_all(&bytes)?;
            bar.inc(1);
        }
        Ok(())
    });
    bar.finish_and_clear();
    if INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("voxfield: interrupted; {} was not written", out.display());
        std::process::exit(130);
    }
    result?;
    eprintln!(
        "voxfield: decoded {} to {} ({s:?} {dt}) in {:.1} s",
        model_path.display(),
        out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

//! The verbs' dispatcher: each subcommand goes to its module; `compress` and `compare` here.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use voxfield::VolumeSource;

use crate::args::{Cli, Command, CompressArgs, CompressCommand};
use crate::demo::demo;
use crate::sample::sample;
use crate::slice::slice;
use crate::volumes::{convert, info, open, pyramid_options};
use crate::work::set_threads;

pub fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Command::Convert {
            source,
            dst,
            levels,
            downsample,
            chunks,
            codec,
            level,
            shard,
            threads,
        } => {
            let pyramid = pyramid_options(&dst, levels.as_deref(), &downsample)?;
            convert(
                &source.path,
                &source.raw,
                &dst,
                pyramid,
                chunks,
                codec,
                level,
                shard,
                threads,
            )
        }
        Command::Info {
            source,
            json,
            dtype,
        } => info(&source.path, &source.raw.with_dtype_alias(dtype), json),
        Command::Sample {
            source,
            points,
            out,
            all_index,
            sampling,
        } => sample(
            &source.path,
            &source.raw,
            &points,
            &out,
            all_index.as_deref(),
            &sampling,
        ),
        Command::Slice {
            source,
            plane,
            out,
            sampling,
            picture,
        } => slice(&source.path, &source.raw, &plane, &out, &sampling, &picture),
        Command::Rbf { cmd } => crate::rbf::run(cmd),
        Command::Render(args) => crate::render::render(&args),
        Command::Serve(args) => crate::serve::serve(&args),
        Command::Env { cmd } => crate::environment::run(cmd),
        Command::Vectors { cmd } => crate::vectors::run(cmd),
        Command::Compare { a, b, json } => {
            let (sa, sb) = (
                voxfield::open(&a, &Default::default())?,
                voxfield::open(&b, &Default::default())?,
            );
            crate::work::catch_interrupts();
            let bar = crate::work::progress(0, "comparing (planes)");
            let report = crate::work::reporter(&bar);
            let c = voxfield::compare(sa.as_ref(), sb.as_ref(), &crate::work::watch(&report));
            bar.finish_and_clear();
            if crate::work::interrupted() {
                eprintln!("voxfield: interrupted");
                std::process::exit(130);
            }
            let c = c?;
            if json {
                let v = serde_json::json!({"a": a, "b": b, "psnr_db": c.psnr, "rmse": c.rmse,
                    "max_abs_error": c.max_abs, "ssim": c.ssim, "range": c.range,
                    "gradient_mse": c.gradient_mse});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("PSNR:          {:.3} dB (range {})", c.psnr, c.range);
                println!("RMSE:          {}", c.rmse);
                println!("max abs error: {}", c.max_abs);
                println!("SSIM:          {:.5}", c.ssim);
                println!(
                    "gradient MSE:  {:.6e} (numpy.gradient of both, per voxel)",
                    c.gradient_mse
                );
            }
            Ok(())
        }
        Command::Decompress {
            model,
            out,
            dtype,
            threads,
        } => {
            set_threads(threads)?;
            crate::neural::decompress(&model, &out, &dtype)
        }
        Command::Demo {
            source,
            out,
            phantom_size,
            pixels,
            train_seconds,
            threads,
            dtype,
        } => {
            let raw = source.raw.with_dtype_alias(dtype);
            demo(
                source.path.as_deref(),
                &raw,
                &out,
                phantom_size,
                pixels,
                train_seconds,
                threads,
            )
        }
        Command::Compress {
            meta:
                Some(CompressCommand::MetaTrain {
                    volumes,
                    out,
                    inner_steps,
                    meta_steps,
                    meta_lr,
                    log2_table,
                    levels,
                    width,
                    batch,
                    seed,
                    threads,
                }),
            ..
        } => meta_train(
            &volumes,
            &out,
            voxfield::neural::Sizes {
                log2_table,
                levels,
                width,
            },
            (batch, seed, threads),
            (inner_steps, meta_steps, meta_lr),
        ),
        Command::Compress { meta: None, args } => compress(args),
    }
}

/// `voxfield compress SRC -o OUT`.
fn compress(args: CompressArgs) -> Result<()> {
    let CompressArgs {
        path,
        raw,
        out,
        ratio,
        epochs,
        target_psnr,
        time_limit,
        log2_table,
        levels,
        width,
        bits,
        finetune_epochs,
        loss,
        grad_loss,
        rate_weight,
        steps,
        batch,
        memory_mb,
        seed,
        threads,
        deterministic,
        init,
    } = args;
    let (Some(path), Some(out)) = (path, out) else {
        bail!("compress: give the volume (or .vxr model) to compress and -o MODEL.vxn, or `compress meta-train VOL... -o INIT.vxn`");
    };
    let source = crate::args::SourceArgs { path, raw };
    {
        {
            if deterministic && time_limit.is_some() {
                bail!("--deterministic with --time-limit: where a time limit stops training depends on the machine's speed; give --epochs or --target-psnr");
            }
            set_threads(threads)?;
            let rbf = match voxfield::is_rbf_model(&source.path) {
                true => Some(voxfield::rbf::RbfModel::load(&source.path)?),
                false => None,
            };
            let src: Box<dyn VolumeSource + '_> = match &rbf {
                Some(m) => Box::new(rbf_grid(m, &source)?),
                None => open(&source.path, &source.raw)?,
            };
            let opts = voxfield::neural::CompressOptions {
                epochs,
                target_psnr,
                time_limit,
                batch,
                seed,
                budget: memory_mb.saturating_mul(1 << 20),
                bits,
                loss,
                grad_loss,
                rate_weight,
                steps,
                finetune: finetune_epochs,
                ..Default::default()
            };
            let native = voxfield::neural::native_bytes(src.info());
            let init = match init {
                Some(p) => Some(voxfield::neural::NeuralModel::load(&p)?.net),
                None => None,
            };
            let sizes = voxfield::neural::Sizes {
                log2_table,
                levels,
                width,
            };
            let opts = opts.for_request(src.info().shape, native, ratio, sizes, init)?;
            if let (Some(r), None) = (ratio, &opts.init) {
                eprintln!(
                    "voxfield: --ratio {r}: {} levels, tables of 2^{}, MLP width {} (≤ {} bytes)",
                    opts.levels,
                    opts.log2_table,
                    opts.width,
                    opts.max_bytes.unwrap_or(0)
                );
            }
            crate::neural::compress(&source.path, src.as_ref(), &out, &opts)
        }
    }
}

/// `voxfield compress meta-train VOL... -o OUT`.
fn meta_train(
    volumes: &[PathBuf],
    out: &Path,
    sizes: voxfield::neural::Sizes,
    (batch, seed, threads): (Option<usize>, u64, Option<usize>),
    (inner_steps, meta_steps, meta_lr): (usize, usize, f32),
) -> Result<()> {
    set_threads(threads)?;
    let opts = voxfield::neural::MetaOptions::for_request(
        sizes,
        batch,
        seed,
        inner_steps,
        meta_steps,
        meta_lr,
    );
    crate::neural::meta_train(volumes, out, &opts)
}

/// An RBF model sampled on the grid `--shape` over its samples' bounding box,
/// as a volume to train on (its affine maps indices to the model's coordinates).
fn rbf_grid<'a>(
    model: &'a voxfield::rbf::RbfModel,
    source: &crate::args::SourceArgs,
) -> Result<voxfield::rbf::GridVolume<'a>> {
    let dim = model.dim();
    let Some(shape) = source.raw.shape else {
        bail!(
            "{}: an RBF model has no voxels; give --shape X,Y,Z, the grid to sample it on \
             (over its samples' bounding box)",
            source.path.display()
        );
    };
    if shape[dim..].iter().any(|&n| n != 1) {
        bail!("--shape {shape:?}: this {dim}-D model takes {dim} sizes (then 1s)");
    }
    let (lo, hi) = (&model.info.bbox_lo, &model.info.bbox_hi);
    Ok(
        voxfield::rbf::GridVolume::new(model, 0, lo, hi, &shape[..dim])?
            .with_world(&source.path)?,
    )
}

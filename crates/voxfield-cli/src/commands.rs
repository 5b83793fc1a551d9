//! The verbs. Each opens its source, builds a field, evaluates, and writes its
//! result through a temporary name renamed into place.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use voxfield::ChunkCache;
use voxfield::{evaluate, evaluate_plane, OutElem, Plane, PointList, Reduce};
use voxfield::{DType, Field, VolumeSource};
use voxfield_io::{npy, NpyElement};

use crate::args::{
    Cli, CodecArg, Colormap, Command, PictureArgs, PlaneArgs, RawArgs, SamplingArgs,
};
use crate::work::{catch_interrupts, exit_if_interrupted, progress, set_threads, INTERRUPTED};
use crate::{phantom, points, render};

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
        Command::Env { cmd } => crate::environment::run(cmd),
        Command::Vectors { cmd } => crate::vectors::run(cmd),
        Command::Compress {
            source,
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
            batch,
            memory_mb,
            seed,
            threads,
            deterministic,
            init,
        } => {
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
        Command::MetaTrain {
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
        } => {
            set_threads(threads)?;
            let sizes = voxfield::neural::Sizes {
                log2_table,
                levels,
                width,
            };
            let opts = voxfield::neural::MetaOptions::for_request(
                sizes,
                batch,
                seed,
                inner_steps,
                meta_steps,
                meta_lr,
            );
            crate::neural::meta_train(&volumes, &out, &opts)
        }
        Command::Compare { a, b, json } => {
            let (sa, sb) = (
                voxfield::open(&a, &Default::default())?,
                voxfield::open(&b, &Default::default())?,
            );
            let c = voxfield::compare(sa.as_ref(), sb.as_ref())?;
            if json {
                let v = serde_json::json!({"a": a, "b": b, "psnr_db": c.psnr, "rmse": c.rmse,
                    "max_abs_error": c.max_abs, "ssim": c.ssim, "range": c.range});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("PSNR:          {:.3} dB (range {})", c.psnr, c.range);
                println!("RMSE:          {}", c.rmse);
                println!("max abs error: {}", c.max_abs);
                println!("SSIM:          {:.5}", c.ssim);
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
                threads,
            )
        }
    }
}

fn open(path: &Path, raw: &RawArgs) -> Result<Box<dyn VolumeSource>> {
    let src = voxfield::open(path, &raw.open_options()?)?;
    for note in &src.info().notes {
        eprintln!("voxfield: note: {note}");
    }
    Ok(src)
}

/// What `sample` and `slice` read: whatever the path is (a volume, a neural
/// model, an RBF model: the facade decides), or a coarser level of a multiscale
/// image chosen for the output's pixel spacing.
enum Source {
    Opened(voxfield::Source),
    /// A level other than 0; positions in level-0 index space are mapped by
    /// `index_to_level` (the level's index→level-0-index affine), world ones by
    /// the level's own affine (None).
    Level {
        src: Box<dyn VolumeSource>,
        index_to_level: Option<voxfield::Affine>,
    },
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

impl Source {
    fn open(path: &Path, raw: &RawArgs) -> Result<Source> {
        let src = voxfield::Source::open(path, &raw.open_options()?)?;
        if let Some(v) = src.volume() {
            for note in &v.info().notes {
                eprintln!("voxfield: note: {note}");
            }
        }
        Ok(Source::Opened(src))
    }

    fn kind(&self) -> &'static str {
        match self {
            Source::Opened(src) => src.kind(),
            Source::Level { .. } => "volume",
        }
    }

    fn is_rbf(&self) -> bool {
        matches!(self, Source::Opened(voxfield::Source::Rbf { .. }))
    }

    /// The field to sample, as the facade resolves it: options that do not
    /// apply to this kind of field are refused there.
    fn field(&self, s: &SamplingArgs) -> Result<Box<dyn Field + '_>> {
        let cache = ChunkCache::new(s.cache_mb.saturating_mul(1 << 20));
        let opts = s.options();
        Ok(match self {
            Source::Opened(src) => src.field(&opts, &cache, 0)?,
            // Positions are level-0 indices (mapped to this level's) or world ones.
            Source::Level {
                src,
                index_to_level,
            } => voxfield::field(
                src.as_ref(),
                &voxfield::FieldOptions {
                    world: true,
                    affine: *index_to_level,
                    ..opts
                },
                &cache,
            )?,
        })
    }

    /// How many coordinates a position takes (3, or 2 and 1 for lower-dimensional
    /// images and models).
    fn dims(&self) -> usize {
        match self {
            Source::Opened(src) => src.dims(),
            Source::Level { src, .. } => src.info().axes.spatial_dims(),
        }
    }

    /// Positions of `dims()` coordinates as 3-D ones: an image's padded view axes
    /// come first; a model reads its leading coordinates.
    fn lift(&self, pts: &[f64]) -> Vec<f64> {
        let d = self.dims();
        if d == 3 {
            return pts.to_vec();
        }
        if !self.is_rbf() {
            return voxfield::lift_points(d, pts);
        }
        pts.chunks_exact(d)
            .flat_map(|p| (0..3).map(move |a| p.get(a).copied().unwrap_or(0.0)))
            .collect()
    }

    /// Points of `dims()` columns, as 3-D positions (a model also takes 3 columns
    /// and reads the leading ones).
    fn load_points(&self, path: &Path) -> Result<Vec<f64>> {
        let t = points::load_table(path)?;
        let d = self.dims();
        if t.rows() > 0 && t.cols != d && !(self.is_rbf() && t.cols == 3) {
            bail!(
                "{}: points must have shape (N, {d}) for this {d}-D source, got {} columns",
                path.display(),
                t.cols
            );
        }
        Ok(if t.cols == 3 {
            t.data
        } else {
            self.lift(&t.data)
        })
    }

    /// A plane or step vector given with `dims()` components, as 3-D.
    fn lift_vec(&self, what: &str, v: &[f64]) -> Result<[f64; 3]> {
        let d = self.dims();
        if self.is_rbf() && v.len() == 3 {
            return Ok([v[0], v[1], v[2]]);
        }
        if v.len() != d {
            bail!(
                "--{what} has {} components; this {}-D source takes {d}",
                v.len(),
                d
            );
        }
        let l = self.lift(v);
        Ok([l[0], l[1], l[2]])
    }

    fn output_dtype(&self, s: &SamplingArgs) -> Result<DType> {
        match self {
            Source::Opened(voxfield::Source::Rbf { .. }) => match s.dtype.as_str() {
                "f32" | "float32" => Ok(DType::F32),
                "f64" | "float64" => Ok(DType::F64),
                o => bail!("--dtype '{o}': an RBF model is written as f32 or f64"),
            },
            Source::Opened(voxfield::Source::Volume(src)) | Source::Level { src, .. } => {
                // A model fills nothing: only a volume's NaN fill needs a float output.
                let fills = src.model_kind().is_none();
                output_dtype(s, src.as_ref(), fills)
            }
        }
    }
}

/// For a multiscale OME-Zarr image and no pinned level: the coarsest level whose
/// voxel spacing is at most the plane's pixel spacing (`--scale-level auto`), said
/// on stderr. Other sources are returned as they are.
fn auto_level(
    source: Source,
    path: &Path,
    raw: &RawArgs,
    plane: &Plane,
    s: &SamplingArgs,
) -> Result<Source> {
    let Source::Opened(voxfield::Source::Volume(src0)) = &source else {
        return Ok(source);
    };
    let pinned =
        matches!(raw.scale_level, Some(crate::args::ScaleLevel::Level(_))) || raw.spacing.is_some();
    let multiscale = src0
        .info()
        .notes
        .iter()
        .any(|n| n.starts_with("OME-Zarr image with"));
    if pinned || !multiscale || s.affine.is_some() {
        return Ok(source);
    }
    let a0 = src0.info().affine.unwrap_or(voxfield::Affine::IDENTITY);
    let world_len = |v: [f64; 3]| {
        let w = if s.world { v } else { a0.apply_vector(v) };
        w.iter().map(|x| x * x).sum::<f64>().sqrt()
    };
    let want = world_len(plane.u).min(world_len(plane.v));
    let mut opts = raw.open_options()?;
    opts.level = voxfield::ZarrOptions::Spacing(want);
    let src = voxfield::open(path, &opts)?;
    let ak = src.info().affine.unwrap_or(voxfield::Affine::IDENTITY);
    if ak == a0 {
        return Ok(source);
    }
    for note in &src.info().notes {
        eprintln!("voxfield: note: {note} (auto: pixel spacing {want:.4} world units)");
    }
    let index_to_level = (!s.world)
        .then(|| a0.inverse().map(|inv| inv.after(&ak)))
        .transpose()?;
    Ok(Source::Level {
        src,
        index_to_level,
    })
}

/// The element type results are written in; `fills` when points outside take the fill value.
fn output_dtype(s: &SamplingArgs, src: &dyn VolumeSource, fills: bool) -> Result<DType> {
    let dt = match s.dtype.as_str() {
        "f32" | "float32" => DType::F32,
        "f64" | "float64" => DType::F64,
        "source" => src.info().dtype,
        o => bail!("--dtype '{o}': expected f32, f64 or source"),
    };
    if fills && !dt.is_float() && s.options().fill().is_nan() {
        bail!("--cval nan cannot be stored as {dt}: pass a number with --cval (for example --cval 0) or use --dtype f32");
    }
    Ok(dt)
}

macro_rules! with_out {
    ($dt:expr, |$O:ident| $body:expr) => {
        match $dt {
            DType::Bool => {
                type $O = bool;
                $body
            }
            DType::U8 => {
                type $O = u8;
                $body
            }
            DType::I8 => {
                type $O = i8;
                $body
            }
            DType::U16 => {
                type $O = u16;
                $body
            }
            DType::I16 => {
                type $O = i16;
                $body
            }
            DType::U32 => {
                type $O = u32;
                $body
            }
            DType::I32 => {
                type $O = i32;
                $body
            }
            DType::U64 => {
                type $O = u64;
                $body
            }
            DType::I64 => {
                type $O = i64;
                $body
            }
            DType::F32 => {
                type $O = f32;
                $body
            }
            DType::F64 => {
                type $O = f64;
                $body
            }
        }
    };
}

fn info(path: &Path, raw: &RawArgs, json: bool) -> Result<()> {
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
            "affine": affine, "bytes_on_disk": i.bytes_on_disk,
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
    println!("bytes on disk: {}", i.bytes_on_disk);
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
fn pyramid_options(
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
fn convert(
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
    let report = |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let result = match pyramid {
        Some(p) => voxfield::write_ome_zarr(src.as_ref(), dst, &opts, &p, &report, &INTERRUPTED)
            .map(|shapes| {
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
        None => voxfield::write_zarr(src.as_ref(), dst, &opts, &report, &INTERRUPTED),
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

fn list(path: &Path, entries: &[voxfield::Entry], json: bool) -> Result<()> {
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
        println!("  {:<30} {:?} {}", e.path, e.shape, e.dtype);
    }
    Ok(())
}

fn sample(
    path: &Path,
    raw: &RawArgs,
    points_path: &Path,
    out: &Path,
    all_index: Option<&str>,
    s: &SamplingArgs,
) -> Result<()> {
    set_threads(s.threads)?;
    let t0 = Instant::now();
    let mut raw = raw.clone();
    if let Some(name) = all_index {
        // The axis swept need not be chosen: open at its index 0.
        let req = raw.index.get_or_insert_with(Default::default);
        if req.positional.is_empty() && !req.named.iter().any(|(n, _)| n == name) {
            req.named.push((name.to_string(), 0));
        }
    }
    let raw = &raw;
    voxfield_io::safety::check_not_input(out, &[path, points_path])?;
    let source = Source::open(path, raw)?;
    let dt = source.output_dtype(s)?;
    let pts = source.load_points(points_path)?;
    let n = pts.len() / 3;
    let t1 = Instant::now();
    match (all_index, &source) {
        (None, _) => {
            let f = source.field(s)?;
            with_out!(dt, |O| {
                let vals = sample_points::<O>(f.as_ref(), &pts)?;
                npy::write_npy(out, &[n], &vals)?;
            })
        }
        (Some(name), Source::Opened(voxfield::Source::Volume(src))) => {
            let axes = &src.info().axes;
            let a = axes
                .axes
                .iter()
                .position(|x| x.name == name)
                .filter(|a| !axes.spatial.contains(a))
                .with_context(|| {
                    format!(
                        "--all-index {name}: no non-spatial axis of that name ({})",
                        axes.describe()
                    )
                })?;
            let len = axes.axes[a].len;
            let mut opts = raw.open_options()?;
            with_out!(dt, |O| {
                let mut all = Vec::with_capacity(len * n);
                for i in 0..len {
                    opts.index = index_at(axes, a, i);
                    let one = voxfield::open(path, &opts)?;
                    let cache = ChunkCache::new(s.cache_mb.saturating_mul(1 << 20));
                    let f = voxfield::field(one.as_ref(), &s.options(), &cache)?;
                    all.extend(sample_points::<O>(f.as_ref(), &pts)?);
                }
                npy::write_npy(out, &[len, n], &all)?;
            })
        }
        (Some(_), _) => {
            bail!("--all-index applies to N-D volumes, not to an RBF model")
        }
    }
    eprintln!(
        "voxfield: sampled {n} points of {} ({}) in {:.1} ms ({:.1} ms with loading) -> {}",
        path.display(),
        s.options().describe(source.kind()),
        t1.elapsed().as_secs_f64() * 1e3,
        t0.elapsed().as_secs_f64() * 1e3,
        out.display()
    );
    Ok(())
}

/// The index request that selects `axes`' current indices with axis `a` at `i`.
fn index_at(axes: &voxfield::Axes, a: usize, i: usize) -> voxfield::IndexRequest {
    voxfield::IndexRequest {
        named: axes
            .others()
            .map(|b| {
                (
                    axes.axes[b].name.clone(),
                    if b == a { i } else { axes.index[b] },
                )
            })
            .collect(),
        positional: vec![],
    }
}

fn sample_points<O: OutElem + NpyElement>(f: &dyn Field, pts: &[f64]) -> Result<Vec<O>> {
    const CHUNK: usize = 1 << 20;
    let n = pts.len() / 3;
    let mut vals = vec![O::default(); n];
    let bar = progress(n as u64, "sampling");
    for (c, o) in vals.chunks_mut(CHUNK).enumerate() {
        let p = &pts[3 * c * CHUNK..3 * (c * CHUNK + o.len())];
        evaluate(f, &PointList::new(p)?, o)?;
        bar.inc(o.len() as u64);
    }
    bar.finish_and_clear();
    Ok(vals)
}

/// Rows of `plane` evaluated per band: about 256k pixels, a multiple of 16.
fn band_rows(plane: &Plane) -> usize {
    ((1 << 18) / plane.nu.max(1)).clamp(16, 4096) / 16 * 16
}

/// Streams a plane (or slab) to an .npy band by band: memory is one band,
/// whatever the output's size; Ctrl-C stops between bands (no file is left).
fn write_plane_npy<O: OutElem + NpyElement>(
    f: &dyn Field,
    plane: &Plane,
    depths: &[f64],
    reduce: Reduce,
    out: &Path,
) -> Result<()> {
    use std::io::Write;
    catch_interrupts();
    let rows = band_rows(plane);
    let bar = progress(plane.nv as u64, "slicing (rows)");
    let mut band_vals: Vec<O> = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    let result = npy::write_atomic(out, |w| {
        w.write_all(&npy::header_bytes(O::DESCR, &[plane.nv, plane.nu]))?;
        for r0 in (0..plane.nv).step_by(rows) {
            if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(std::io::Error::other("interrupted"));
            }
            let band = plane.tile(0, r0, plane.nu, rows.min(plane.nv - r0));
            band_vals.clear();
            band_vals.resize(band.nu * band.nv, O::default());
            evaluate_plane(f, &band, depths, reduce, &mut band_vals)
                .map_err(std::io::Error::other)?;
            bytes.clear();
            for &v in &band_vals {
                v.write_le(&mut bytes);
            }
            w.write_all(&bytes)?;
            bar.inc(band.nv as u64);
        }
        Ok(())
    });
    bar.finish_and_clear();
    exit_if_interrupted(out);
    Ok(result?)
}

/// Evaluates a plane (or slab) in bands of rows, so long work shows progress.
fn plane_values<O: OutElem>(
    f: &dyn Field,
    plane: &Plane,
    depths: &[f64],
    reduce: Reduce,
) -> Result<Vec<O>> {
    let rows = band_rows(plane);
    let mut vals = vec![O::default(); plane.nu * plane.nv];
    let bar = progress(plane.nv as u64, "slicing (rows)");
    for (b, o) in vals.chunks_mut(rows * plane.nu).enumerate() {
        let band = plane.tile(0, b * rows, plane.nu, o.len() / plane.nu);
        evaluate_plane(f, &band, depths, reduce, o)?;
        bar.inc(band.nv as u64);
    }
    bar.finish_and_clear();
    Ok(vals)
}

fn is_png(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"))
}

fn slice(
    path: &Path,
    raw: &RawArgs,
    pa: &PlaneArgs,
    out: &Path,
    s: &SamplingArgs,
    pic: &PictureArgs,
) -> Result<()> {
    set_threads(s.threads)?;
    let is_npy = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if !is_png(out) && !is_npy {
        bail!("--out {}: expected a .png or .npy file name", out.display());
    }
    voxfield_io::safety::check_not_input(out, &[path])?;
    let source = Source::open(path, raw)?;
    let plane = Plane::new(
        source.lift_vec("origin", &pa.origin.0)?,
        source.lift_vec("u", &pa.u.0)?,
        source.lift_vec("v", &pa.v.0)?,
        pa.size[0],
        pa.size[1],
    )?;
    let source = auto_level(source, path, raw, &plane, s)?;
    let depths = if pa.thickness > 0.0 {
        if source.dims() < 3 {
            bail!(
                "--thickness: a slab needs a 3-D source; this one is {}-D",
                source.dims()
            );
        }
        Plane::slab_offsets(pa.thickness, pa.step)?
    } else if pa.thickness < 0.0 || pa.thickness.is_nan() {
        bail!(
            "--thickness {} must be ≥ 0 (0: a plain plane)",
            pa.thickness
        );
    } else {
        vec![0.0]
    };
    let f = source.field(s)?;
    let dt = if is_png(out) {
        None
    } else {
        Some(source.output_dtype(s)?)
    };
    let t = Instant::now();
    let pixels = plane
        .nu
        .checked_mul(plane.nv)
        .filter(|&n| n <= isize::MAX as usize / 8);
    let Some(pixels) = pixels else {
        bail!("--size {}x{} is too large to address", plane.nu, plane.nv);
    };
    if is_png(out) {
        if pixels > voxfield_io::safety::MAX_PNG_PIXELS {
            bail!(
                "--size {}x{}: a PNG of {pixels} pixels is over the {} allowed; write .npy (streamed) instead",
                plane.nu,
                plane.nv,
                voxfield_io::safety::MAX_PNG_PIXELS
            );
        }
        let vals = plane_values::<f32>(f.as_ref(), &plane, &depths, pa.reduce.into())?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        write_picture(out, &vals, &plane, pic)?;
        report_slice(path, &plane, depths.len(), ms, out);
    } else {
        let dt = dt.expect("set for .npy output");
        with_out!(dt, |O| {
            write_plane_npy::<O>(f.as_ref(), &plane, &depths, pa.reduce.into(), out)?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            report_slice(path, &plane, depths.len(), ms, out);
        });
    }
    Ok(())
}

fn write_picture(out: &Path, vals: &[f32], plane: &Plane, pic: &PictureArgs) -> Result<()> {
    let window = match pic.window.or_else(|| render::auto_window(vals)) {
        Some(w) => w,
        None => {
            eprintln!(
                "voxfield: warning: every pixel is outside the volume (NaN); the picture is black"
            );
            [0.0, 1.0]
        }
    };
    render::write_png(out, vals, plane.nu, plane.nv, window, pic.colormap)
}

fn report_slice(path: &Path, plane: &Plane, depth: usize, ms: f64, out: &Path) {
    let what = if depth > 1 {
        format!("{depth}-sample slab")
    } else {
        "plane".into()
    };
    eprintln!(
        "voxfield: sampled a {}x{} oblique {what} of {} in {ms:.1} ms -> {}",
        plane.nu,
        plane.nv,
        path.display(),
        out.display()
    );
}

/// Rotation matrix for angles (degrees) about axes 0, 1, 2, applied in that order.
fn rotation(deg: [f64; 3]) -> [[f64; 3]; 3] {
    let [a, b, c] = deg.map(f64::to_radians);
    let rx = [
        [1.0, 0.0, 0.0],
        [0.0, a.cos(), -a.sin()],
        [0.0, a.sin(), a.cos()],
    ];
    let ry = [
        [b.cos(), 0.0, b.sin()],
        [0.0, 1.0, 0.0],
        [-b.sin(), 0.0, b.cos()],
    ];
    let rz = [
        [c.cos(), -c.sin(), 0.0],
        [c.sin(), c.cos(), 0.0],
        [0.0, 0.0, 1.0],
    ];
    let mul = |p: [[f64; 3]; 3], q: [[f64; 3]; 3]| {
        let mut r = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                r[i][j] = (0..3).map(|k| p[i][k] * q[k][j]).sum();
            }
        }
        r
    };
    mul(rz, mul(ry, rx))
}

/// An n×n oblique plane through the centre of `shape`, rotated by (30°, −45°, 5°),
/// a little wider than the longest axis (index space).
pub fn central_oblique_plane(shape: [usize; 3], n: usize) -> Result<Plane> {
    let r = rotation([30.0, -45.0, 5.0]);
    let col = |j: usize| [r[0][j], r[1][j], r[2][j]];
    let extent = *shape.iter().max().expect("3 axes") as f64 * 1.1;
    let step = extent / n as f64;
    let (u, v) = (col(2).map(|x| x * step), col(1).map(|x| x * step));
    let centre = shape.map(|s| (s as f64 - 1.0) / 2.0);
    let h = (n as f64 - 1.0) / 2.0;
    let origin = [0, 1, 2].map(|a| centre[a] - h * u[a] - h * v[a]);
    Ok(Plane::new(origin, u, v, n, n)?)
}

fn demo(
    path: Option<&Path>,
    raw: &RawArgs,
    out: &Path,
    size: usize,
    pixels: usize,
    threads: Option<usize>,
) -> Result<()> {
    set_threads(threads)?;
    if !is_png(out) {
        bail!("--out {}: the demo writes a .png picture", out.display());
    }
    let tmp;
    let (path, made) = match path {
        Some(p) => (p.to_path_buf(), None),
        None => {
            tmp = tempfile::tempdir().context("creating a temporary directory")?;
            let p: PathBuf = tmp.path().join("shepp_logan.npy");
            let t = Instant::now();
            phantom::write(&p, size)?;
            (p, Some(t.elapsed()))
        }
    };
    if let Some(t) = made {
        println!(
            "generated a {size}³ uint8 3-D Shepp–Logan phantom ({:.1} MiB) in {:.0} ms",
            (size * size * size) as f64 / (1 << 20) as f64,
            t.as_secs_f64() * 1e3
        );
    }
    let t = Instant::now();
    let src = open(&path, raw)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let i = src.info();
    println!(
        "opened {} ({} {:?} {}, memory-mapped) in {open_ms:.2} ms",
        if made.is_some() {
            "the phantom".to_string()
        } else {
            path.display().to_string()
        },
        i.format,
        i.shape,
        i.dtype
    );
    let plane = central_oblique_plane(i.shape, pixels)?;
    let cache = ChunkCache::new(ChunkCache::DEFAULT_BYTES);
    let f = voxfield::field(src.as_ref(), &voxfield::FieldOptions::default(), &cache)?;
    let t = Instant::now();
    let vals = plane_values::<f32>(f.as_ref(), &plane, &[0.0], Reduce::Mean)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let pic = PictureArgs {
        window: None,
        colormap: Colormap::Gray,
    };
    write_picture(out, &vals, &plane, &pic)?;
    let inside = vals.iter().filter(|v| !v.is_nan()).count();
    println!(
        "sampled a {pixels}x{pixels} oblique plane through the centre (rotated 30°, -45°, 5°; trilinear, \
         scipy 'constant' edges) in {ms:.1} ms on {} threads: {inside} of {} pixels inside the volume",
        rayon::current_num_threads(),
        vals.len()
    );
    println!("wrote {}", out.display());
    Ok(())
}

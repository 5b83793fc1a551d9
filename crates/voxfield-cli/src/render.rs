//! `voxfield render`: pictures of any field by CPU ray casting.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use voxfield::render::{self, CameraSpec, Frame, Mode, Rendered, Request, SceneOptions, Transfer};

use crate::args::RenderArgs;
use crate::field_source::{auto_level_for, Source};
use crate::work::{catch_interrupts, exit_if_interrupted, progress, reporter, set_threads, watch};

/// The kinds of output file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Png,
    Gif,
    Npy,
}

fn output_kind(out: &Path) -> Result<FileKind> {
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("png" | "apng") => Ok(FileKind::Png),
        Some("npy") => Ok(FileKind::Npy),
        Some("gif") => Ok(FileKind::Gif),
        _ => bail!(
            "--out {}: expected a .png, .apng, .gif or .npy file name",
            out.display()
        ),
    }
}

pub(crate) fn render(a: &RenderArgs) -> Result<()> {
    set_threads(a.threads)?;
    let path = &a.source.path;
    let kind = output_kind(&a.out)?;
    voxfield_io::safety::check_not_input(&a.out, &[path])?;
    // Everything the flags say is checked before the source is opened.
    let req = request(a, kind)?;
    req.check()?;
    let opts = SceneOptions {
        world: a.world,
        direct: a.direct,
        memory_budget: a.memory_mb.map(|m| m.saturating_mul(1 << 20)),
        rbf_grid: a.rbf_grid,
    };

    let source = Source::open(path, &a.source.raw)?;
    let source = pick_level(source, a, &req.camera)?;
    catch_interrupts();
    let bar = progress(0, "rendering");
    let report = reporter(&bar);
    let w = watch(&report);
    let t = Instant::now();
    let rendered = match &source {
        Source::Opened(s) => render::render(s, &opts, &req, &w),
        Source::Level {
            src,
            index_to_level,
        } => {
            let to_lattice = match index_to_level {
                Some(m) => m.inverse()?,
                None => src
                    .info()
                    .affine
                    .unwrap_or(voxfield::Affine::IDENTITY)
                    .inverse()?,
            };
            render::render_volume(src.as_ref(), Some(to_lattice), &opts, &req, &w)
        }
    };
    bar.finish_and_clear();
    exit_if_interrupted(&a.out);
    let (Rendered { transfer, frames }, how) = rendered?;
    let frame_s: f64 = frames.iter().map(|f| f.seconds).sum();
    let read_s = (t.elapsed().as_secs_f64() - frame_s).max(0.0);
    source.warn_after_reading();
    let picture = req.picture(&transfer);
    match kind {
        FileKind::Png => voxfield_io::npy::write_atomic(&a.out, |f| {
            picture
                .write_png(f, &frames, 1000 / 25)
                .map_err(std::io::Error::other)
        })?,
        FileKind::Gif => voxfield_io::npy::write_atomic(&a.out, |f| {
            picture
                .write_gif(f, &frames, 1000 / 25)
                .map_err(std::io::Error::other)
        })?,
        FileKind::Npy => write_npy(&a.out, &frames)?,
    }
    report_render(a, &how, req.mode, &transfer, &frames, read_s);
    Ok(())
}

/// The request the flags state.
fn request(a: &RenderArgs, kind: FileKind) -> Result<Request> {
    Ok(Request {
        mode: Mode::parse(&a.mode, a.iso)?,
        camera: CameraSpec {
            view: a.view.parse().context("--view")?,
            azimuth: a.azimuth,
            elevation: a.elevation,
            roll: a.roll,
            projection: a.projection.parse().context("--projection")?,
            fov: a.fov,
            zoom: a.zoom,
            size: a.size,
        },
        window: a.window,
        colormap: a
            .colormap
            .as_deref()
            .map(str::parse)
            .transpose()
            .context("--colormap")?,
        opacity: a
            .opacity
            .as_deref()
            .map(str::parse)
            .transpose()
            .context("--opacity")?,
        step: a.step,
        shading: a.shading,
        frames: a.frames.unwrap_or(1),
        background: a
            .background
            .as_deref()
            .map(str::parse)
            .transpose()
            .context("--background")?,
        output: match kind {
            FileKind::Npy => render::Output::Values,
            FileKind::Png | FileKind::Gif => render::Output::Picture,
        },
    })
}

/// A multiscale image is read at the level whose voxels match the pixels
/// (unless a level is pinned); an exact axis view needs level 0.
fn pick_level(source: Source, a: &RenderArgs, spec: &CameraSpec) -> Result<Source> {
    if a.direct || !matches!(&source, Source::Opened(voxfield::Source::Volume(_))) {
        return Ok(source);
    }
    let Source::Opened(voxfield::Source::Volume(src)) = &source else {
        unreachable!()
    };
    let s = render::pixel_spacing(src.info(), spec, a.world)?;
    auto_level_for(
        source,
        &a.source.path,
        &a.source.raw,
        [[s, 0.0, 0.0], [0.0, s, 0.0]],
        a.world,
    )
}

/// float32 frames: (H,W) or (H,W,4); (N,...) for several.
fn write_npy(out: &Path, frames: &[Frame]) -> Result<()> {
    use std::io::Write;
    let f = &frames[0];
    let mut shape = vec![f.height, f.width];
    if f.channels > 1 {
        shape.push(f.channels);
    }
    if frames.len() > 1 {
        shape.insert(0, frames.len());
    }
    voxfield_io::npy::write_atomic(out, |w| {
        w.write_all(&voxfield_io::npy::header_bytes("<f4", &shape))?;
        for f in frames {
            let bytes: Vec<u8> = f.pixels.iter().flat_map(|v| v.to_le_bytes()).collect();
            w.write_all(&bytes)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn report_render(
    a: &RenderArgs,
    how: &str,
    mode: Mode,
    tf: &Transfer,
    frames: &[Frame],
    read_s: f64,
) {
    let mut st = voxfield::render::Stats::default();
    for f in frames {
        st.add(&f.stats);
    }
    let ms: Vec<f64> = frames.iter().map(|f| f.seconds * 1e3).collect();
    let f = &frames[0];
    let positions = st.samples + st.skipped;
    let skipped_pct = if positions > 0 {
        100.0 * st.skipped as f64 / positions as f64
    } else {
        0.0
    };
    let [lo, hi] = tf.window();
    if a.json {
        let j = serde_json::json!({
            "source": a.source.path.display().to_string(),
            "out": a.out.display().to_string(),
            "mode": mode.to_string(),
            "view": a.view, "azimuth": a.azimuth, "elevation": a.elevation, "roll": a.roll,
            "width": f.width, "height": f.height, "frames": frames.len(),
            "window": [lo, hi], "step": tf.step(),
            "read": how, "read_seconds": read_s,
            "frame_ms": ms,
            "rays": st.rays, "rays_hit": st.rays_hit, "samples": st.samples,
            "skipped": st.skipped, "terminated": st.terminated,
        });
        println!("{j}");
    }
    let timing = if ms.len() == 1 {
        format!("{:.1} ms", ms[0])
    } else {
        let mut sorted = ms.clone();
        sorted.sort_by(f64::total_cmp);
        format!(
            "{} frames, first {:.1} ms, median {:.1} ms",
            ms.len(),
            ms[0],
            sorted[ms.len() / 2]
        )
    };
    eprintln!(
        "voxfield: rendered {mode} of {} ({how}, read in {read_s:.2} s): view {}{}, {}x{} px, window {lo},{hi}, \
         step {}; {} samples taken, {} skipped in empty cells ({skipped_pct:.0}%), {} rays stopped early; {timing} -> {}",
        a.source.path.display(),
        a.view,
        if a.azimuth != 0.0 || a.elevation != 0.0 || a.roll != 0.0 {
            format!(" azimuth {} elevation {} roll {}", a.azimuth, a.elevation, a.roll)
        } else {
            String::new()
        },
        f.width,
        f.height,
        tf.step(),
        st.samples,
        st.skipped,
        st.terminated,
        a.out.display()
    );
}

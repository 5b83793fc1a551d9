//! `voxfield demo`: every engine on built-in synthetic data (or a volume given),
//! as one gallery PNG of titled, timed panels (and each panel on its own).

mod gallery;
mod panels;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use voxfield::ChunkCache;
use voxfield::{Plane, Reduce};

use crate::args::RawArgs;
use crate::phantom;
use crate::slice::{is_png, plane_values};
use crate::volumes::open;
use crate::work::set_threads;

/// Rotation matrix for angles (degrees) about axes 0, 1, 2, applied in that order.
pub(crate) fn rotation(deg: [f64; 3]) -> [[f64; 3]; 3] {
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
pub(crate) fn central_oblique_plane(shape: [usize; 3], n: usize) -> Result<Plane> {
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

pub(crate) fn demo(
    path: Option<&Path>,
    raw: &RawArgs,
    out: &Path,
    size: usize,
    pixels: usize,
    train_seconds: f64,
    threads: Option<usize>,
) -> Result<()> {
    set_threads(threads)?;
    if !is_png(out) {
        bail!("--out {}: the demo writes a .png picture", out.display());
    }
    if !(16..=2048).contains(&pixels) {
        bail!("--pixels {pixels}: give 16 to 2048 (the edge of each panel)");
    }
    if !(train_seconds.is_finite() && (0.1..=600.0).contains(&train_seconds)) {
        bail!("--train-seconds {train_seconds}: give 0.1 to 600");
    }
    voxfield_io::safety::check_not_input(out, &path.into_iter().collect::<Vec<_>>())?;
    let started = Instant::now();
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let (path, made) = match path {
        Some(p) => (p.to_path_buf(), None),
        None => {
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
        "opened {} ({} {:?} {}) in {open_ms:.2} ms",
        if made.is_some() {
            "the phantom".to_string()
        } else {
            path.display().to_string()
        },
        i.format,
        i.shape,
        i.dtype
    );
    let mut gallery = vec![slice_panel(src.as_ref(), pixels)?];
    if i.axes.spatial_dims() == 3 {
        let (dvr, window) = panels::dvr(src.as_ref(), pixels)?;
        gallery.push(dvr);
        // The neural model learns a small phantom (or the given volume) in seconds.
        let small = tmp.path().join("small.npy");
        let learn = match made {
            Some(_) => {
                phantom::write(&small, 64)?;
                open(&small, &RawArgs::plain())?
            }
            None => open(&path, raw)?,
        };
        let window = if made.is_some() {
            [40.0, 255.0]
        } else {
            window
        };
        gallery.push(panels::neural(
            learn.as_ref(),
            window,
            train_seconds,
            pixels,
        )?);
    } else {
        println!(
            "(a {}-D image: the DVR and neural panels need 3 spatial axes)",
            i.axes.spatial_dims()
        );
    }
    gallery.push(panels::rbf_terrain(pixels)?);
    gallery.push(panels::rate_map(pixels)?);
    gallery.push(panels::pyramid(tmp.path(), pixels)?);
    for p in &gallery {
        println!("{}: {} ({})", p.name, p.title, p.timing);
        let own = out.with_file_name(format!(
            "{}-{}.png",
            out.file_stem().unwrap_or_default().to_string_lossy(),
            p.name
        ));
        gallery::write_rgb(&own, &p.rgb, p.side, p.side)?;
    }
    let (img, w, h) = gallery::compose(&gallery, 3);
    gallery::write_rgb(out, &img, w, h)?;
    println!(
        "wrote {} ({w}x{h}, {} panels, each also as {}-NAME.png) in {:.1} s on {} threads",
        out.display(),
        gallery.len(),
        out.file_stem().unwrap_or_default().to_string_lossy(),
        started.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    Ok(())
}

/// An oblique plane through the centre, trilinear, grey.
fn slice_panel(src: &dyn voxfield::VolumeSource, pixels: usize) -> Result<gallery::Panel> {
    let plane = central_oblique_plane(src.info().shape, pixels)?;
    let cache = ChunkCache::new(ChunkCache::DEFAULT_BYTES);
    let f = voxfield::field(src, &voxfield::FieldOptions::default(), &cache)?;
    let t = Instant::now();
    let vals = plane_values::<f32>(f.as_ref(), &plane, &[0.0], Reduce::Mean)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let [lo, hi] = crate::picture::auto_window(&vals).unwrap_or([0.0, 1.0]);
    let rgb = vals
        .iter()
        .map(|&v| {
            let g = if v.is_nan() {
                0.0
            } else {
                ((v as f64 - lo) / (hi - lo)).clamp(0.0, 1.0)
            };
            [(g * 255.0).round() as u8; 3]
        })
        .collect();
    let inside = vals.iter().filter(|v| !v.is_nan()).count();
    println!(
        "sampled a {pixels}x{pixels} oblique plane through the centre (rotated 30°, -45°, 5°; trilinear, \
         scipy 'constant' edges) in {ms:.1} ms on {} threads: {inside} of {} pixels inside the volume",
        rayon::current_num_threads(),
        vals.len()
    );
    Ok(gallery::Panel {
        name: "slice",
        title: "oblique slice, trilinear".into(),
        timing: format!("{pixels}x{pixels} px in {ms:.1} ms"),
        rgb,
        side: pixels,
    })
}

//! `voxfield demo`: an oblique slice through a built-in phantom (or a volume given).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use voxfield::ChunkCache;
use voxfield::{Plane, Reduce};

use crate::args::{Colormap, PictureArgs, RawArgs};
use crate::phantom;
use crate::slice::{is_png, plane_values, write_picture};
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

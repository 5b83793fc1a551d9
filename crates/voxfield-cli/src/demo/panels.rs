//! One panel per engine for the demo gallery, each on built-in synthetic data
//! and timed: a slice and a DVR of the phantom, a neural model rendered
//! directly, an RBF terrain, a place cell's rate map, a vector pyramid.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use voxfield::render::{self, CameraSpec, Colormap, Mode, Request, SceneOptions};
use voxfield::{VolumeSource, Watch};

use super::gallery::Panel;

/// Seconds since `t`, for titles.
fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// A rendered request as panel pixels over black.
fn rendered_pixels(scene: &render::Scene, req: &Request) -> Result<Vec<[u8; 3]>> {
    let r = req.render(scene, &Watch::none())?;
    let (ct, px) = req.picture(&r.transfer).pixels(&r.frames[0]);
    let n = ct.samples();
    Ok(px
        .chunks_exact(n)
        .map(|p| {
            if n == 1 {
                [p[0]; 3]
            } else {
                [p[0], p[1], p[2]]
            }
        })
        .collect())
}

fn orbit(mode: Mode, colormap: Colormap, window: [f64; 2], side: usize) -> Request {
    Request {
        mode,
        camera: CameraSpec {
            azimuth: 35.0,
            elevation: 25.0,
            size: Some([side, side]),
            ..Default::default()
        },
        window: Some(window),
        colormap: Some(colormap),
        ..Default::default()
    }
}

/// Direct volume rendering of `src` (its lattice read once), shaded; and the
/// value range it found.
pub(crate) fn dvr(src: &dyn VolumeSource, side: usize) -> Result<(Panel, [f64; 2])> {
    let t = Instant::now();
    let prepared = render::volume_scene(src, None, &SceneOptions::default(), &Watch::none())?;
    let range = prepared.scene.value_range().unwrap_or([0.0, 1.0]);
    let mut req = orbit(Mode::Dvr, Colormap::Magma, range, side);
    req.opacity = Some("0:0,0.26:0,0.3:0.3,0.36:0,0.95:0,1:0.02".parse()?);
    req.shading = true;
    let rgb = rendered_pixels(&prepared.scene, &req)?;
    let panel = Panel {
        name: "dvr",
        title: "DVR, shaded (ray casting)".into(),
        timing: format!("read + render {:.2} s", secs(t)),
        rgb,
        side,
    };
    Ok((panel, range))
}

/// A small neural model of `src` trained for a few seconds, rendered by
/// evaluating its network at every sample; PSNR and ratio in the title.
pub(crate) fn neural(
    src: &dyn VolumeSource,
    window: [f64; 2],
    seconds: f64,
    side: usize,
) -> Result<Panel> {
    use voxfield::neural;
    let t = Instant::now();
    let info = src.info();
    let base = neural::CompressOptions {
        epochs: 200,
        time_limit: Some(seconds),
        ..Default::default()
    };
    // Ratio 12 where the volume is large enough for it; a tiny volume gets the
    // smallest default model.
    let opts =
        neural::for_ratio(&base, info.shape, neural::native_bytes(info), 12.0).unwrap_or(base);
    let model = neural::compress(src, &opts, &Watch::none())?;
    let trained = secs(t);
    let bytes = model.to_bytes()?.len() as f64;
    let vol = neural::NeuralVolume::new(model, &info.path)?;
    let psnr = voxfield::compare(src, &vol, &Watch::none())?.psnr;
    let t = Instant::now();
    let opts = SceneOptions {
        direct: true,
        ..Default::default()
    };
    let scene = render::volume_scene(&vol, None, &opts, &Watch::none())?.scene;
    let mut req = orbit(Mode::Dvr, Colormap::Viridis, window, side);
    req.opacity = Some("0:0,0.6:0,1:0.25".parse()?);
    let rgb = rendered_pixels(&scene, &req)?;
    Ok(Panel {
        name: "neural",
        title: format!(
            "neural {:.0}x, {psnr:.1} dB, direct DVR",
            neural::native_bytes(info) as f64 / bytes
        ),
        timing: format!("trained {trained:.1} s, rendered {:.2} s", secs(t)),
        rgb,
        side,
    })
}

/// A terrain height field: ridges and hills over [0, 1]².
fn terrain(x: f64, y: f64) -> f64 {
    let hill =
        |cx: f64, cy: f64, s: f64| (-((x - cx).powi(2) + (y - cy).powi(2)) / (2.0 * s * s)).exp();
    0.6 * hill(0.3, 0.35, 0.16)
        + 0.45 * hill(0.72, 0.65, 0.12)
        + 0.25 * hill(0.6, 0.2, 0.07)
        + 0.08 * (9.0 * x + 4.0 * y).sin() * (7.0 * y).cos()
}

/// An RBF fit of scattered terrain samples, shown as shaded relief.
pub(crate) fn rbf_terrain(side: usize) -> Result<Panel> {
    let n = 1500;
    let mut rng = voxfield::Rng(7);
    let pts: Vec<f64> = (0..2 * n).map(|_| rng.unit()).collect();
    let vals: Vec<f64> = pts.chunks_exact(2).map(|p| terrain(p[0], p[1])).collect();
    let t = Instant::now();
    let model = voxfield::rbf::fit(&pts, 2, &vals, 1, &Default::default(), &Watch::none())?;
    let mut h = vec![0.0; side * side];
    model.eval_grid(&[0.0, 0.0], &[1.0, 1.0], &[side, side], &mut |r0, v| {
        h[r0 * side..r0 * side + v.len()].copy_from_slice(v);
        Ok(())
    })?;
    let fit_eval = secs(t);
    let (lo, hi) = h
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let at = |i: usize, j: usize| h[i.min(side - 1) * side + j.min(side - 1)];
    let light = [-0.5f64, -0.5, 0.707];
    let mut rgb = vec![[0u8; 3]; side * side];
    for i in 0..side {
        for j in 0..side {
            // Relief: the surface normal (vertical exaggeration 3) against a light from the top left.
            let dx = (at(i, j + 1) - at(i, j.saturating_sub(1))) * side as f64 * 1.5;
            let dy = (at(i + 1, j) - at(i.saturating_sub(1), j)) * side as f64 * 1.5;
            let nrm = (dx * dx + dy * dy + 1.0).sqrt();
            let shade = ((-dx * light[1] - dy * light[0] + light[2]) / nrm).clamp(0.0, 1.0);
            let c = Colormap::Cividis.rgb8(((at(i, j) - lo) / (hi - lo)) as f32);
            rgb[i * side + j] = c.map(|x| (x as f64 * (0.35 + 0.65 * shade)) as u8);
        }
    }
    for p in pts.chunks_exact(2).take(400) {
        let (i, j) = (
            (p[0] * (side - 1) as f64) as usize,
            (p[1] * (side - 1) as f64) as usize,
        );
        rgb[i * side + j] = [255, 255, 255];
    }
    Ok(Panel {
        name: "rbf",
        title: format!("RBF terrain from {n} samples"),
        timing: format!("fit + {side}x{side} grid {fit_eval:.2} s"),
        rgb,
        side,
    })
}

/// A simulated animal in a 100×100 cm arena and a place cell's smoothed rate map.
pub(crate) fn rate_map(side: usize) -> Result<Panel> {
    use voxfield::env::{Environment, Grid, Kde, OccupancyOptions, Shaping};
    let mut rng = voxfield::Rng(11);
    let (hz, minutes) = (30.0, 15.0);
    let n = (hz * 60.0 * minutes) as usize;
    let (mut x, mut y, mut heading) = (50.0f64, 50.0f64, 0.0f64);
    let (mut times, mut pos, mut spikes) =
        (Vec::with_capacity(n), Vec::with_capacity(2 * n), Vec::new());
    for k in 0..n {
        let t = k as f64 / hz;
        heading += (rng.unit() - 0.5) * 0.6;
        let (nx, ny) = (x + 0.8 * heading.cos(), y + 0.8 * heading.sin());
        if !(1.0..99.0).contains(&nx) || !(1.0..99.0).contains(&ny) {
            heading += std::f64::consts::PI * (0.5 + rng.unit());
        } else {
            (x, y) = (nx, ny);
        }
        times.push(t);
        pos.extend([x, y]);
        let rate =
            18.0 * (-((x - 66.0).powi(2) + (y - 38.0).powi(2)) / (2.0 * 9.0f64.powi(2))).exp();
        if rng.unit() < rate / hz {
            spikes.push(t + rng.unit() / hz);
        }
    }
    let t = Instant::now();
    let grid = Grid::from_samples(&pos, 2, &[2.5], None, Shaping::default())?;
    let env = Environment::new(grid, true)?;
    let (counts, occ) = env.spike_counts(
        &[spikes.as_slice()],
        &times,
        &pos,
        &OccupancyOptions::default(),
    )?;
    let rates = env.kde_rates(Kde::Diffusion, &counts, &occ, 5.0, 0.0)?;
    let took = secs(t);
    let peak = rates
        .iter()
        .copied()
        .filter(|r| r.is_finite())
        .fold(0.0, f64::max);
    let mut rgb = vec![[0u8; 3]; side * side];
    let scale = side as f64 / 100.0;
    let half = (1.25 * scale).ceil() as isize;
    for (b, c) in env.centers.chunks_exact(2).enumerate() {
        let colour = Colormap::Viridis.rgb8((rates[b] / peak) as f32);
        let (ci, cj) = (((100.0 - c[1]) * scale) as isize, (c[0] * scale) as isize);
        for i in ci - half..ci + half {
            for j in cj - half..cj + half {
                if (0..side as isize).contains(&i) && (0..side as isize).contains(&j) {
                    rgb[i as usize * side + j as usize] = colour;
                }
            }
        }
    }
    Ok(Panel {
        name: "rate_map",
        title: format!("place cell: {} spikes, peak {peak:.0} Hz", spikes.len()),
        timing: format!("{minutes:.0} min tracked; map {took:.2} s"),
        rgb,
        side,
    })
}

/// Clustered points in a zarr-vectors store, its pyramid, and three levels side by side.
pub(crate) fn pyramid(dir: &Path, side: usize) -> Result<Panel> {
    use voxfield::vectors::{self, PointsOptions, PyramidOptions};
    let mut rng = voxfield::Rng(5);
    let n = 120_000;
    let centres: Vec<[f64; 2]> = (0..12)
        .map(|_| [rng.unit() * 80.0 + 10.0, rng.unit() * 80.0 + 10.0])
        .collect();
    let mut pts = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let c = centres[(rng.unit() * 12.0) as usize % 12];
        let (r, a) = (
            (-2.0 * rng.unit().max(1e-12).ln()).sqrt() * 5.0,
            rng.unit() * std::f64::consts::TAU,
        );
        pts.extend([
            (c[0] + r * a.cos()).clamp(0.0, 100.0),
            (c[1] + r * a.sin()).clamp(0.0, 100.0),
        ]);
    }
    let store = dir.join("points.zarr");
    let t = Instant::now();
    let o = PointsOptions {
        chunk_shape: Some(vec![25.0, 25.0]),
        bin_shape: Some(vec![1.0, 1.0]),
        dtype: "float32".into(),
        shard_shape: None,
        compressor: None,
    };
    vectors::write_points(&store, &pts, 2, &[], &o)?;
    let p = PyramidOptions {
        method: Default::default(),
        factors: vec![(2.0, 4.0), (4.0, 16.0)],
        cross_level: vectors::CrossLevel::None,
        depth: 1,
        thinning: vectors::Thinning::Random { seed: 1 },
        aggregation: None,
    };
    vectors::build_pyramid(&store, &p, &Watch::none())?;
    let took = secs(t);
    let s = vectors::Store::open(&store)?;
    let mut rgb = vec![[0u8; 3]; side * side];
    let third = side / 3;
    let mut counts = vec![];
    for (l, level) in s.levels()?.into_iter().take(3).enumerate() {
        let v = s
            .read_points(level, None, Some(&[][..]))?
            .positions
            .to_f64();
        counts.push(v.len() / 2);
        let colour = Colormap::Plasma.rgb8(0.25 + 0.3 * l as f32);
        for q in v.chunks_exact(2) {
            let (i, j) = (
                ((100.0 - q[1]) / 100.0 * (side - 1) as f64) as usize,
                (q[0] / 100.0 * (third - 2) as f64) as usize,
            );
            rgb[i.min(side - 1) * side + l * third + j.min(third - 2)] = colour;
        }
    }
    let shown: Vec<String> = counts.iter().map(|c| c.to_string()).collect();
    Ok(Panel {
        name: "pyramid",
        title: format!("points: {}", shown.join(" / ")),
        timing: format!("store + pyramid {took:.2} s"),
        rgb,
        side,
    })
}

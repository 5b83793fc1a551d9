//! The front door: a field made ready to render (its lattice, or the field
//! itself for direct evaluation) and one call that makes a frame of it.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use rayon::prelude::*;
use voxfield_core::work::Watch;
use voxfield_core::{Affine, Error, Field, Result};

use crate::camera::{norm, scale, Bounds, Camera, CameraSpec};
use crate::composite::{Composite, Dvr, Extreme, Iso, Light, Mean};
use crate::lattice::Lattice;
use crate::march::{march_direct, march_lattice, Direct, Ray, Stats};
use crate::transfer::Transfer;

type V3 = [f64; 3];

/// What a ray computes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Mode {
    /// Direct volume rendering: emission–absorption through the transfer function.
    #[default]
    Dvr,
    /// Maximum intensity projection.
    Mip,
    /// Minimum intensity projection.
    Minip,
    /// Mean along the ray.
    Mean,
    /// The first crossing of this level, shaded.
    Iso(f64),
}

impl Mode {
    /// Pixels are one value (mip, minip, mean) rather than RGBA.
    pub fn is_scalar(&self) -> bool {
        matches!(self, Mode::Mip | Mode::Minip | Mode::Mean)
    }

    /// `dvr`, `mip`, `minip`, `mean`, or `iso` with its level.
    pub fn parse(name: &str, iso: Option<f64>) -> Result<Mode> {
        let mode = match name {
            "dvr" => Mode::Dvr,
            "mip" => Mode::Mip,
            "minip" => Mode::Minip,
            "mean" => Mode::Mean,
            "iso" => match iso {
                Some(v) if v.is_finite() => return Ok(Mode::Iso(v)),
                Some(v) => {
                    return Err(Error::invalid(format!(
                        "iso level {v}: not a finite number"
                    )))
                }
                None => return Err(Error::invalid("mode iso needs an iso level (--iso V)")),
            },
            _ => {
                return Err(Error::invalid(format!(
                    "mode '{name}': expected dvr, mip, minip, mean or iso"
                )))
            }
        };
        if iso.is_some() {
            return Err(Error::invalid(format!(
                "an iso level does not apply to mode {name} (it is for mode iso)"
            )));
        }
        Ok(mode)
    }
}

impl FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Mode::parse(s, None)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Dvr => f.write_str("dvr"),
            Mode::Mip => f.write_str("mip"),
            Mode::Minip => f.write_str("minip"),
            Mode::Mean => f.write_str("mean"),
            Mode::Iso(v) => write!(f, "iso {v}"),
        }
    }
}

/// A rendered picture: `channels` values per pixel, rows top to bottom. Scalar
/// modes give one value (NaN where a ray met nothing); dvr and iso give
/// premultiplied RGBA in [0, 1] with no background.
#[derive(Clone, Debug)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub pixels: Vec<f32>,
    pub stats: Stats,
    pub seconds: f64,
}

/// Pixels a frame may have (8192²): its buffer is allocated up front.
pub const MAX_PIXELS: usize = 1 << 26;

/// Sample positions a frame may walk through a lattice (minutes of work).
pub const MAX_POSITIONS: u64 = 1 << 36;
/// Sample positions a frame may evaluate directly (a neural network takes
/// about 15 M per second on 2 cores: some minutes).
pub const MAX_DIRECT_POSITIONS: u64 = 1 << 32;

enum Sampler<'a> {
    Lattice(Lattice),
    Direct(Direct<'a>),
}

/// A field ready to render, over the index box of its lattice.
pub struct Scene<'a> {
    sampler: Sampler<'a>,
    shape: [usize; 3],
    /// Camera space → lattice index space (None: the same space).
    to_lattice: Option<Affine>,
}

impl Scene<'static> {
    /// Renders from `lattice` (trilinear between voxel centres, with
    /// empty-space skipping); the camera works in the space `to_lattice`
    /// maps from (None: the lattice's index space).
    pub fn new(lattice: Lattice, to_lattice: Option<Affine>) -> Scene<'static> {
        Scene {
            shape: lattice.shape(),
            sampler: Sampler::Lattice(lattice),
            to_lattice,
        }
    }
}

impl<'a> Scene<'a> {
    /// Renders by evaluating `field` at every sample (no lattice, no skipping),
    /// over the box `[0, shape - 1]` whose positions `to_field` maps to the field's.
    pub fn direct(
        field: Box<dyn Field + 'a>,
        shape: [usize; 3],
        to_lattice: Option<Affine>,
        to_field: Option<Affine>,
    ) -> Result<Scene<'a>> {
        if shape.contains(&0) {
            return Err(Error::invalid(format!(
                "the field has an empty axis (shape {shape:?}): nothing to render"
            )));
        }
        let hi = Bounds { shape }.hi();
        let direct = Direct {
            field,
            to_field,
            failed: Default::default(),
            hi,
        };
        Ok(Scene {
            sampler: Sampler::Direct(direct),
            shape,
            to_lattice,
        })
    }

    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    pub fn lattice(&self) -> Option<&Lattice> {
        match &self.sampler {
            Sampler::Lattice(l) => Some(l),
            Sampler::Direct(_) => None,
        }
    }

    /// The finite value range: exact for a lattice; for a direct field,
    /// estimated from a grid of at most 9 points per axis (at most 729 reads
    /// of a chunked volume, whatever its size).
    pub fn value_range(&self) -> Option<[f64; 2]> {
        let d = match &self.sampler {
            Sampler::Lattice(l) => return l.value_range(),
            Sampler::Direct(d) => d,
        };
        let n = self.shape.map(|n| n.min(9));
        let at = |a: usize, i: usize| {
            if n[a] == 1 {
                0.0
            } else {
                i as f64 * (self.shape[a] - 1) as f64 / (n[a] - 1) as f64
            }
        };
        let mut pts = Vec::with_capacity(n.iter().product());
        for i in 0..n[0] {
            for j in 0..n[1] {
                for k in 0..n[2] {
                    pts.push([at(0, i), at(1, j), at(2, k)]);
                }
            }
        }
        let mut vals = vec![0f64; pts.len()];
        d.eval(&pts, &mut vals).ok()?;
        let finite = vals.iter().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        (lo <= hi).then_some([lo, hi])
    }

    /// The lattice box's corners in camera space.
    pub fn corners(&self) -> Result<[V3; 8]> {
        let c = Bounds { shape: self.shape }.corners();
        Ok(match &self.to_lattice {
            None => c,
            Some(m) => {
                let inv = m.inverse()?;
                c.map(|p| inv.apply(p))
            }
        })
    }

    /// Frames `spec` on this field.
    pub fn camera(&self, spec: &CameraSpec) -> Result<Camera> {
        let exact_shape = self.to_lattice.is_none().then_some(self.shape);
        Camera::frame(spec, &self.corners()?, exact_shape)
    }

    /// Renders one frame. Rows go in parallel (rayon's current pool); `watch`
    /// hears rows done and stops the frame between rows.
    pub fn render(&self, cam: &Camera, mode: Mode, tf: &Transfer, watch: &Watch) -> Result<Frame> {
        let start = Instant::now();
        let channels = if mode.is_scalar() { 1 } else { 4 };
        let pixels = cam
            .width
            .checked_mul(cam.height)
            .filter(|&n| n <= MAX_PIXELS);
        let Some(n) = pixels else {
            return Err(Error::invalid(format!(
                "a {}x{} picture is over the {MAX_PIXELS} pixels a frame may have",
                cam.width, cam.height
            )));
        };
        self.check_work(n, tf.step())?;
        let mut out = Vec::new();
        out.try_reserve_exact(n * channels).map_err(|_| {
            Error::invalid(format!(
                "cannot allocate a {}x{} picture",
                cam.width, cam.height
            ))
        })?;
        out.resize(n * channels, 0f32);
        // DVR: which macro cells and super cells this transfer function
        // makes wholly transparent (one pass over their ranges per frame).
        let (transparent, supers) = match (&self.sampler, mode) {
            (Sampler::Lattice(l), Mode::Dvr) => (
                transparent_flags(tf, l.cell_ranges()),
                transparent_flags(tf, l.super_ranges()),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        let view_light = Light {
            towards: scale(cam.dir, -1.0 / norm(cam.dir)),
            to_camera: self.to_lattice.map(|m| {
                let l = m.linear;
                [0, 1, 2].map(|r| [l[0][r], l[1][r], l[2][r]])
            }),
        };
        // DVR: rays march only through the box of cells the transfer function
        // does not make transparent (samples outside it add nothing).
        let active = match &self.sampler {
            Sampler::Lattice(l) if mode == Mode::Dvr => Some(l.cell_box(|c| !transparent[c])),
            _ => None,
        };
        let ctx = Ctx {
            scene: self,
            cam,
            tf,
            transparent: &transparent,
            supers: &supers,
            skip: mode != Mode::Mean,
            active,
        };
        let stats = match mode {
            Mode::Mip => ctx.rows(&mut out, 1, watch, Extreme::<true>::new)?,
            Mode::Minip => ctx.rows(&mut out, 1, watch, Extreme::<false>::new)?,
            Mode::Mean => ctx.rows(&mut out, 1, watch, Mean::default)?,
            Mode::Dvr => ctx.rows(&mut out, 4, watch, || Dvr::new(tf, view_light))?,
            Mode::Iso(level) => ctx.rows(&mut out, 4, watch, || {
                Iso::new(tf, view_light, level as f32)
            })?,
        };
        if let Sampler::Direct(d) = &self.sampler {
            if let Some(e) = d.failed.get() {
                return Err(Error::invalid(e.clone()));
            }
        }
        Ok(Frame {
            width: cam.width,
            height: cam.height,
            channels,
            pixels: out,
            stats,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Refuses a frame whose rays would take more sample positions than a
    /// frame may (`pixels` rays across the box's diagonal at `step`): a field
    /// evaluated directly costs every one of them, so the bound is lower there.
    pub fn check_work(&self, pixels: usize, step: f64) -> Result<()> {
        let diagonal = norm(Bounds { shape: self.shape }.hi()) + 1.0;
        let positions = pixels as f64 * (diagonal / step).ceil();
        let (limit, what) = match self.sampler {
            Sampler::Lattice(_) => (MAX_POSITIONS, "lattice"),
            Sampler::Direct(_) => (MAX_DIRECT_POSITIONS, "direct evaluation"),
        };
        if positions > limit as f64 {
            return Err(Error::invalid(format!(
                "a frame of {pixels} rays through {:?} voxels at step {step} takes up to {positions:.3e} \
                 samples, over the {limit:.1e} allowed for {what}: raise the step, lower the size, or \
                 render a coarser level",
                self.shape
            )));
        }
        Ok(())
    }

    /// A camera-space point in lattice space.
    fn map_point(&self, p: V3) -> V3 {
        match &self.to_lattice {
            None => p,
            Some(m) => m.apply(p),
        }
    }

    /// A camera-space direction as a unit lattice direction, and the lattice
    /// length of one camera unit along it.
    fn map_dir(&self, d: V3) -> (V3, f64) {
        let v = match &self.to_lattice {
            None => return (d, 1.0),
            Some(m) => m.apply_vector(d),
        };
        let n = norm(v);
        (scale(v, 1.0 / n), n)
    }
}

/// Which of the value ranges (mins, maxs) `tf` makes wholly transparent.
fn transparent_flags(tf: &Transfer, (mins, maxs): (&[f32], &[f32])) -> Vec<bool> {
    mins.par_iter()
        .zip(maxs)
        .map(|(&mn, &mx)| tf.transparent(mn, mx))
        .collect()
}

struct Ctx<'s, 'a> {
    scene: &'s Scene<'a>,
    cam: &'s Camera,
    tf: &'s Transfer,
    transparent: &'s [bool],
    supers: &'s [bool],
    /// The lattice box (lo, hi corners) outside which no sample counts;
    /// `Some(None)`: nothing counts anywhere.
    active: Option<Option<(V3, V3)>>,
    skip: bool,
}

impl Ctx<'_, '_> {
    /// Renders every row into `out` with composites from `make`.
    fn rows<C: Composite, M: Fn() -> C + Sync>(
        &self,
        out: &mut [f32],
        channels: usize,
        watch: &Watch,
        make: M,
    ) -> Result<Stats> {
        let total = Mutex::new(Stats::default());
        let done = AtomicU64::new(0);
        let w = self.cam.width;
        out.par_chunks_mut(w * channels)
            .enumerate()
            .try_for_each(|(r, row)| -> Result<()> {
                watch.check()?;
                let mut stats = Stats::default();
                for (c, px) in row.chunks_exact_mut(channels).enumerate() {
                    let mut acc = make();
                    self.ray(r, c, &mut acc, &mut stats)?;
                    acc.finish(px);
                }
                total.lock().expect("stats lock").add(&stats);
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                watch.report("rendering (rows)", d, self.cam.height as u64);
                Ok(())
            })?;
        Ok(total.into_inner().expect("stats lock"))
    }

    fn ray<C: Composite>(&self, r: usize, c: usize, acc: &mut C, stats: &mut Stats) -> Result<()> {
        stats.rays += 1;
        let (o, d, from_origin) = self.cam.ray(r, c);
        let (o, (d, _)) = (self.scene.map_point(o), self.scene.map_dir(d));
        let hi = Bounds {
            shape: self.scene.shape,
        }
        .hi();
        let step = self.tf.step();
        let Some(ray) = Ray::clip(o, d, hi, from_origin, step) else {
            return Ok(());
        };
        stats.rays_hit += 1;
        let range = match self.active {
            None => 0..ray.count,
            Some(None) => 0..0,
            Some(Some((lo, hi))) => ray.samples_within(lo, hi, step),
        };
        stats.skipped += (ray.count - range.len()) as u64;
        match &self.scene.sampler {
            Sampler::Lattice(l) => {
                march_lattice(
                    l,
                    &ray,
                    range,
                    step,
                    self.transparent,
                    self.supers,
                    self.skip,
                    acc,
                    stats,
                );
                Ok(())
            }
            Sampler::Direct(f) => march_direct(f, &ray, step, acc, stats),
        }
    }
}

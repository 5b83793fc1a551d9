//! Marching one ray: clipped to the lattice box, samples at a fixed step from
//! the entry point (so an axis ray lands on every voxel centre), macro cells
//! skipped when the composite allows, stopped when it is done.

use voxfield_core::{Affine, Field, Result};

use crate::composite::{Composite, Probe};
use crate::lattice::{trilinear, Lattice};

type V3 = [f64; 3];

/// Counters a frame reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub rays: u64,
    /// Rays that met the field's box.
    pub rays_hit: u64,
    pub samples: u64,
    /// Sample positions passed over in empty (skippable) macro cells.
    pub skipped: u64,
    /// Rays stopped early (opaque, or their isosurface found).
    pub terminated: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.rays += o.rays;
        self.rays_hit += o.rays_hit;
        self.samples += o.samples;
        self.skipped += o.skipped;
        self.terminated += o.terminated;
    }
}

/// A ray in lattice space with its samples: `o + (t0 + k step) d`, `k < count`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ray {
    pub o: V3,
    pub d: V3,
    pub t0: f64,
    pub count: usize,
}

impl Ray {
    /// Clips `o + t d` (unit `d`) to the box `[0, hi]`; perspective rays start
    /// at `t = 0`. None when the ray misses.
    pub(crate) fn clip(o: V3, d: V3, hi: V3, from_origin: bool, step: f64) -> Option<Ray> {
        let (mut lo_t, mut hi_t) = (f64::NEG_INFINITY, f64::INFINITY);
        // A ray along a face (turned by a multiple of 90°, with rounding left
        // in its origin and direction) is inside, not clipped to a sliver.
        const EPS: f64 = 1e-9;
        for a in 0..3 {
            if d[a].abs() < 1e-12 {
                if o[a] < -EPS || o[a] > hi[a] + EPS {
                    return None;
                }
                continue;
            }
            let (t1, t2) = ((0.0 - o[a]) / d[a], (hi[a] - o[a]) / d[a]);
            lo_t = lo_t.max(t1.min(t2));
            hi_t = hi_t.min(t1.max(t2));
        }
        if from_origin {
            lo_t = lo_t.max(0.0);
        }
        if lo_t.is_nan() || hi_t.is_nan() || lo_t > hi_t || !lo_t.is_finite() {
            return None;
        }
        let count = ((hi_t - lo_t) / step * (1.0 + 1e-12) + 1e-9).floor() as usize + 1;
        Some(Ray {
            o,
            d,
            t0: lo_t,
            count,
        })
    }

    /// The sample indices whose positions lie in the box `[lo, hi]` (empty
    /// when the ray misses it).
    pub(crate) fn samples_within(&self, lo: V3, hi: V3, step: f64) -> std::ops::Range<usize> {
        let (mut a, mut b) = (0.0f64, (self.count - 1) as f64 * step);
        for i in 0..3 {
            let o = self.o[i] + self.t0 * self.d[i];
            if self.d[i].abs() < 1e-12 {
                if o < lo[i] || o > hi[i] {
                    return 0..0;
                }
                continue;
            }
            let (t1, t2) = ((lo[i] - o) / self.d[i], (hi[i] - o) / self.d[i]);
            a = a.max(t1.min(t2));
            b = b.min(t1.max(t2));
        }
        if a > b {
            return 0..0;
        }
        // Whole samples inside, widened by one on each side against rounding.
        let first = ((a / step).floor() as usize).saturating_sub(1);
        let last = ((b / step).ceil() as usize + 1).min(self.count - 1);
        first..last + 1
    }

    #[inline]
    pub(crate) fn at(&self, k: usize, step: f64) -> V3 {
        let t = self.t0 + k as f64 * step;
        [
            self.o[0] + t * self.d[0],
            self.o[1] + t * self.d[1],
            self.o[2] + t * self.d[2],
        ]
    }
}

/// Marches `ray` through the lattice; `transparent` (per cell, DVR) or the
/// composite's own rule decides skips when `skip` is on.
pub(crate) fn march_lattice<C: Composite>(
    lat: &Lattice,
    ray: &Ray,
    range: std::ops::Range<usize>,
    step: f64,
    transparent: &[bool],
    supers: &[bool],
    skip: bool,
    acc: &mut C,
    stats: &mut Stats,
) {
    if range.is_empty() {
        return;
    }
    if !skip {
        for k in range {
            let p = ray.at(k, step);
            stats.samples += 1;
            if !acc.add(lat.sample(p), p, lat) {
                stats.terminated += 1;
                return;
            }
        }
        return;
    }
    // Macro cells in ray order (a 3-D DDA from the entry point): each cell is
    // decided once, and a skipped cell costs a few additions, not a sample; a
    // skippable super cell is left in one jump (the walk restarts after it).
    let per_step = 1.0 / step;
    let (mut k, count) = (range.start, range.end);
    let mut base = k;
    let mut cells = lat.walk(ray.at(k, step), ray.d);
    while k < count {
        let s = cells.super_index();
        let (smin, smax) = lat.super_range(s);
        if acc.skips(smin, smax, supers.get(s).copied().unwrap_or(false)) {
            let next = (base + ceil_index(cells.super_exit() * per_step)).clamp(k + 1, count);
            stats.skipped += (next - k) as u64;
            k = next;
            if k < count {
                base = k;
                cells = lat.walk(ray.at(k, step), ray.d);
            }
            continue;
        }
        let (c, exit) = cells.current();
        // The first sample at or past the exit belongs to the next cell.
        let end = if exit.is_finite() {
            (base + ceil_index(exit * per_step)).clamp(k, count)
        } else {
            count
        };
        let (mn, mx) = lat.cell_range(c);
        if acc.skips(mn, mx, transparent.get(c).copied().unwrap_or(false)) {
            stats.skipped += (end - k) as u64;
            k = end;
        } else {
            // Inside one cell: local coordinates in its brick, clamped to it
            // (a boundary sample reads the same voxels from either side).
            let (brick, origin, lim) = lat.brick(c);
            while k < end {
                let p = ray.at(k, step);
                let l = [
                    ((p[0] - origin[0]) as f32).clamp(0.0, lim[0]),
                    ((p[1] - origin[1]) as f32).clamp(0.0, lim[1]),
                    ((p[2] - origin[2]) as f32).clamp(0.0, lim[2]),
                ];
                stats.samples += 1;
                if !acc.add(trilinear(brick, l), p, lat) {
                    stats.terminated += 1;
                    return;
                }
                k += 1;
            }
        }
        cells.advance();
    }
}

/// `ceil(q)` for `q >= 0` as an index (without libm's `ceil` call).
#[inline]
fn ceil_index(q: f64) -> usize {
    let i = q.max(0.0) as usize;
    if (i as f64) < q {
        i + 1
    } else {
        i
    }
}

/// A field evaluated directly (no lattice): positions map to the field's
/// coordinates by `to_field`.
pub(crate) struct Direct<'a> {
    pub field: Box<dyn Field + 'a>,
    pub to_field: Option<Affine>,
    /// The first error a probe met (probes cannot return one); the frame fails with it.
    pub failed: std::sync::OnceLock<String>,
    /// The box's upper corner (lattice index space).
    pub hi: V3,
}

impl Direct<'_> {
    pub(crate) fn eval(&self, pts: &[V3], out: &mut [f64]) -> Result<()> {
        match &self.to_field {
            None => self.field.sample_block(pts, out),
            Some(a) => {
                let mapped: Vec<V3> = pts.iter().map(|p| a.apply(*p)).collect();
                self.field.sample_block(&mapped, out)
            }
        }
    }
}

/// A probe over a direct field; an evaluation error is kept in `failed`.
impl Probe for Direct<'_> {
    fn value(&self, p: V3) -> f32 {
        let mut v = [0f64];
        match self.eval(&[p], &mut v) {
            Ok(()) => v[0] as f32,
            Err(e) => {
                let _ = self.failed.set(e.to_string());
                f32::NAN
            }
        }
    }
    fn gradient(&self, p: V3) -> V3 {
        let pts: Vec<V3> = (0..6)
            .map(|i| {
                let mut q = p;
                q[i / 2] += if i % 2 == 0 { 0.5 } else { -0.5 };
                q
            })
            .collect();
        let mut v = [0f64; 6];
        if let Err(e) = self.eval(&pts, &mut v) {
            let _ = self.failed.set(e.to_string());
            return [0.0; 3];
        }
        [v[0] - v[1], v[2] - v[3], v[4] - v[5]]
    }
}

/// Samples per field call along a direct ray.
const SEGMENT: usize = 256;

/// Marches `ray` evaluating the field directly, a segment per call.
pub(crate) fn march_direct<C: Composite>(
    field: &Direct,
    ray: &Ray,
    step: f64,
    acc: &mut C,
    stats: &mut Stats,
) -> Result<()> {
    let mut pts = Vec::with_capacity(SEGMENT);
    let mut vals = vec![0f64; SEGMENT];
    for k0 in (0..ray.count).step_by(SEGMENT) {
        pts.clear();
        // Rounding can leave a grazing ray's sample a hair outside the box,
        // where a field gives its fill value: keep samples inside, as the lattice does.
        pts.extend((k0..ray.count.min(k0 + SEGMENT)).map(|k| {
            let p = ray.at(k, step);
            [0, 1, 2].map(|a| p[a].clamp(0.0, field.hi[a]))
        }));
        field.eval(&pts, &mut vals[..pts.len()])?;
        for (p, v) in pts.iter().zip(&vals) {
            stats.samples += 1;
            if !acc.add(*v as f32, *p, field) {
                stats.terminated += 1;
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_rays_land_on_every_centre() {
        let hi = [4.0, 6.0, 9.0];
        let r = Ray::clip([2.0, 3.0, 4.5], [0.0, 0.0, 1.0], hi, false, 1.0).unwrap();
        assert_eq!(r.count, 10);
        assert_eq!(r.at(0, 1.0), [2.0, 3.0, 0.0]);
        assert_eq!(r.at(9, 1.0), [2.0, 3.0, 9.0]);
        let r = Ray::clip([2.0, 3.0, 4.5], [0.0, 0.0, -1.0], hi, false, 1.0).unwrap();
        assert_eq!((r.count, r.at(0, 1.0)[2], r.at(9, 1.0)[2]), (10, 9.0, 0.0));
        assert!(Ray::clip([5.0, 3.0, 4.5], [0.0, 0.0, 1.0], hi, false, 1.0).is_none());
        // A point-sized box still gives its one sample.
        let r = Ray::clip([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0; 3], false, 1.0).unwrap();
        assert_eq!(r.count, 1);
    }
}

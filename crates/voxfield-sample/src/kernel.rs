//! The interpolation kernel, monomorphised over the voxel type `V` and the tap
//! count `K` (1 nearest, 2 linear, 4 cubic). Points whose taps all lie inside the
//! volume take a branch-free fast path; their cache lines are prefetched a block
//! ahead so that many independent gathers are in flight at once (random points in
//! big volumes are bound by memory latency, not arithmetic). Everything else
//! (edges, NaN, outside) takes the general path that applies the edge mode.
//!
//! A tap whose weight is exactly zero is never read. Otherwise results equal scipy's
//! to rounding; the difference shows only where scipy multiplies a NaN neighbour
//! or a NaN fill value by 0 (it then returns NaN on exact grid nodes).

use voxfield_core::voxel::Voxel;
use voxfield_core::Affine;

use crate::edge::{map_coordinate, tap_index};
use crate::Mode;

/// Everything the kernel needs, resolved once per call.
pub(crate) struct Kernel {
    pub base: *const u8,
    pub shape: [usize; 3],
    pub strides: [isize; 3],
    pub mode: Mode,
    pub cval: f64,
    pub scale: Option<(f64, f64)>,
    pub to_index: Option<Affine>,
}

// SAFETY: the pointer refers to an immutable mapping that outlives the kernel
// (guaranteed by the borrow in `VolumeField`).
unsafe impl Send for Kernel {}
unsafe impl Sync for Kernel {}

const BLOCK: usize = 64;

/// Interpolation weights for fractional offset `t` in `[0, 1)`.
#[inline(always)]
fn weights<const K: usize>(t: f64) -> [f64; K] {
    let mut w = [0.0; K];
    match K {
        1 => w[0] = 1.0,
        2 => {
            w[0] = 1.0 - t;
            w[1] = t;
        }
        _ => {
            // Catmull-Rom
            let t2 = t * t;
            let t3 = t2 * t;
            w[0] = 0.5 * (-t3 + 2.0 * t2 - t);
            w[1] = 0.5 * (3.0 * t3 - 5.0 * t2 + 2.0);
            w[2] = 0.5 * (-3.0 * t3 + 4.0 * t2 + t);
            w[3] = 0.5 * (t3 - t2);
        }
    }
    w
}

/// First tap index and fraction for coordinate `c` (scipy's filter start).
#[inline(always)]
fn start_and_frac<const K: usize>(c: f64) -> (f64, f64) {
    if K == 1 {
        ((c + 0.5).floor(), 0.0)
    } else {
        let f = c.floor();
        (f - (K / 2 - 1) as f64, c - f)
    }
}

impl Kernel {
    /// Maps a position to index space. World positions that land within
    /// `EDGE_SNAP` voxels of the volume's faces are snapped onto them: a voxel
    /// centre on the border mapped through an affine and back must stay inside
    /// despite rounding (index-space positions are taken exactly as given).
    #[inline(always)]
    fn to_index(&self, p: &[f64; 3]) -> [f64; 3] {
        const EDGE_SNAP: f64 = 1e-9;
        match &self.to_index {
            Some(a) => {
                let mut x = a.apply(*p);
                for ax in 0..3 {
                    let last = (self.shape[ax] - 1) as f64;
                    if x[ax].abs() < EDGE_SNAP {
                        x[ax] = 0.0;
                    } else if (x[ax] - last).abs() < EDGE_SNAP {
                        x[ax] = last;
                    }
                }
                x
            }
            None => *p,
        }
    }

    /// Byte offset of the first tap and per-axis fractions, when every tap is inside.
    #[inline(always)]
    fn fast_taps<const K: usize>(&self, x: &[f64; 3]) -> Option<(isize, [f64; 3])> {
        let mut off = 0isize;
        let mut frac = [0.0; 3];
        for a in 0..3 {
            let c = x[a];
            let last = (self.shape[a] - 1) as f64;
            // Interior test on the coordinate itself (NaN fails it): the mode only
            // matters outside, and every tap of an interior point is in range.
            let inside = match K {
                1 => c >= 0.0 && c <= last,
                2 => c >= 0.0 && c < last,
                _ => c >= 1.0 && c < last - 1.0,
            };
            if !inside {
                return None;
            }
            // c ≥ 0 here, so truncation is floor (and avoids a libm call on
            // targets without SSE4.1 rounding).
            let (s, t) = if K == 1 {
                ((c + 0.5) as isize, 0.0)
            } else {
                let i = c as isize;
                (i - (K / 2 - 1) as isize, c - i as f64)
            };
            off += s * self.strides[a];
            frac[a] = t;
        }
        Some((off, frac))
    }

    #[inline(always)]
    fn prefetch<const K: usize>(&self, off: isize) {
        #[cfg(target_arch = "x86_64")]
        for a in 0..K {
            for b in 0..K {
                let row = off + a as isize * self.strides[0] + b as isize * self.strides[1];
                // SAFETY: prefetch never faults; the address is inside the mapping anyway.
                unsafe {
                    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                    _mm_prefetch::<_MM_HINT_T0>(self.base.offset(row) as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(
                        self.base.offset(row + (K - 1) as isize * self.strides[2]) as *const i8,
                    );
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = off;
    }

    #[inline(always)]
    fn gather_fast<V: Voxel, const K: usize>(&self, off: isize, frac: [f64; 3]) -> f64 {
        let w0 = weights::<K>(frac[0]);
        let w1 = weights::<K>(frac[1]);
        let w2 = weights::<K>(frac[2]);
        let mut t = 0.0;
        for a in 0..K {
            for b in 0..K {
                let wab = w0[a] * w1[b];
                let row = off + a as isize * self.strides[0] + b as isize * self.strides[1];
                for c in 0..K {
                    let w = wab * w2[c];
                    // SAFETY: fast_taps checked that every tap is inside the volume.
                    let v =
                        unsafe { V::load(self.base.offset(row + c as isize * self.strides[2])) };
                    // Branch-free: a zero-weight tap contributes exactly 0, even if NaN.
                    t += if w != 0.0 { v * w } else { 0.0 };
                }
            }
        }
        match self.scale {
            Some((m, q)) => t * m + q,
            None => t,
        }
    }

    /// The general path: edge modes, outside points, non-finite coordinates.
    fn sample_general<V: Voxel, const K: usize>(&self, x: &[f64; 3]) -> f64 {
        let mut taps = [[None; K]; 3];
        let mut w = [[0.0; K]; 3];
        for a in 0..3 {
            let n = self.shape[a];
            let Some(c) = map_coordinate(x[a], n, self.mode) else {
                return self.cval;
            };
            let (s, t) = start_and_frac::<K>(c);
            w[a] = weights::<K>(t);
            let s = s as isize;
            for i in 0..K {
                taps[a][i] = tap_index(s + i as isize, n, self.mode);
            }
        }
        let mut t = 0.0;
        for a in 0..K {
            for b in 0..K {
                for c in 0..K {
                    let w = [w[0][a], w[1][b], w[2][c]];
                    if w.contains(&0.0) {
                        continue;
                    }
                    let v = match (taps[0][a], taps[1][b], taps[2][c]) {
                        (Some(i), Some(j), Some(k)) => {
                            let off = i as isize * self.strides[0]
                                + j as isize * self.strides[1]
                                + k as isize * self.strides[2];
                            // SAFETY: tap_index returns indices inside the shape.
                            let raw = unsafe { V::load(self.base.offset(off)) };
                            match self.scale {
                                Some((m, q)) => raw * m + q,
                                None => raw,
                            }
                        }
                        _ => self.cval,
                    };
                    t += v * w[0] * w[1] * w[2];
                }
            }
        }
        t
    }

    /// Samples `points` into `out` (same length).
    pub(crate) fn sample<V: Voxel, const K: usize>(&self, points: &[[f64; 3]], out: &mut [f64]) {
        debug_assert_eq!(points.len(), out.len());
        let mut idx = [[0.0; 3]; BLOCK];
        let mut fast = [None; BLOCK];
        let mut last = isize::MIN;
        for (pts, out) in points.chunks(BLOCK).zip(out.chunks_mut(BLOCK)) {
            for (i, p) in pts.iter().enumerate() {
                idx[i] = self.to_index(p);
                fast[i] = self.fast_taps::<K>(&idx[i]);
                if let Some((off, _)) = fast[i] {
                    // Coherent requests (planes, grids) touch the lines the previous
                    // point touched; prefetch only on a jump.
                    if off.abs_diff(last) > 4096 {
                        self.prefetch::<K>(off);
                    }
                    last = off;
                }
            }
            for (i, o) in out.iter_mut().enumerate() {
                *o = match fast[i] {
                    Some((off, frac)) => self.gather_fast::<V, K>(off, frac),
                    None => self.sample_general::<V, K>(&idx[i]),
                };
            }
        }
    }
}

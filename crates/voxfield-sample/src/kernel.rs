//! The interpolation kernel, monomorphised over the voxel type `V` and the tap
//! count `K` (1 nearest, 2 linear, 4 local cubic or cubic B-spline, K = order + 1
//! for B-splines of order 2 to 5 evaluated on prefiltered coefficients). Points whose taps all lie inside the
//! volume take a branch-free fast path; their cache lines are prefetched a block
//! ahead so that many independent gathers are in flight at once (random points in
//! big volumes are bound by memory latency, not arithmetic). Everything else
//! (edges, NaN, outside) takes the general path that applies the edge mode.
//!
//! A tap whose weight is exactly zero is never read. Otherwise results equal scipy's
//! to rounding; the difference shows only where scipy multiplies a NaN neighbour
//! or a NaN fill value by 0 (it then returns NaN on exact grid nodes).

use voxfield_core::field::PlaneRow;
use voxfield_core::voxel::Voxel;
use voxfield_core::Affine;

use crate::edge::{map_coordinate, tap_index};
use crate::linear::{LinearBlock, LANES};
use crate::Mode;

/// A strided voxel buffer: a whole memory-mapped volume or one decoded chunk.
#[derive(Clone, Copy)]
pub(crate) struct Strided {
    pub base: *const u8,
    pub shape: [usize; 3],
    pub strides: [isize; 3],
}

// SAFETY: the pointer refers to immutable memory that outlives every use (a
// mapping borrowed by `VolumeField`, or a chunk held by an `Arc` during the call).
unsafe impl Send for Strided {}
unsafe impl Sync for Strided {}

impl Strided {
    /// Reads voxel `idx`, which must be inside `shape`.
    #[inline(always)]
    pub fn load<V: Voxel>(&self, idx: [usize; 3]) -> f64 {
        let off = (0..3)
            .map(|a| idx[a] as isize * self.strides[a])
            .sum::<isize>();
        // SAFETY: callers pass indices inside the shape.
        unsafe { V::load(self.base.offset(off)) }
    }
}

/// The sampling rule, resolved once per request.
pub(crate) struct Kernel {
    /// The whole volume's shape (edge modes apply to it).
    pub shape: [usize; 3],
    pub mode: Mode,
    pub cval: f64,
    pub scale: Option<(f64, f64)>,
    pub to_index: Option<Affine>,
    /// B-spline weights (K = 4 is then the cubic B-spline, not Catmull-Rom).
    pub spline: bool,
    /// Added to index coordinates on the `pad_axes`: the padding in front of
    /// prefiltered coefficients.
    pub shift: f64,
    pub pad_axes: [bool; 3],
}

const BLOCK: usize = LANES;

/// Interpolation weights for offset `t` from the middle tap (`[0, 1)` for even K,
/// `[-0.5, 0.5)` for odd K).
#[inline(always)]
fn weights<const K: usize>(t: f64, spline: bool) -> [f64; K] {
    let mut w = [0.0; K];
    match K {
        1 => w[0] = 1.0,
        2 => {
            w[0] = 1.0 - t;
            w[1] = t;
        }
        _ if spline => bspline_weights(t, &mut w),
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

/// The B-spline of degree K−1 at the K taps around offset `t`: the uniform
/// B-spline basis (Unser 1999), `w[i] = β(t + K/2 − 1 − i)` for even K and
/// `β(t + (K−1)/2 − i)` for odd K; the last weight closes the partition of unity.
#[inline(always)]
fn bspline_weights<const K: usize>(t: f64, w: &mut [f64; K]) {
    match K {
        3 => {
            w[1] = 0.75 - t * t;
            let y = 0.5 - t;
            w[0] = 0.5 * y * y;
        }
        4 => {
            let (y, z) = (t, 1.0 - t);
            w[1] = (y * y * (y - 2.0) * 3.0 + 4.0) / 6.0;
            w[2] = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0;
            w[0] = z * z * z / 6.0;
        }
        5 => {
            let t2 = t * t;
            w[2] = t2 * (t2 * 0.25 - 0.625) + 115.0 / 192.0;
            let y = 1.0 + t;
            w[1] = y * (y * (y * (5.0 - y) / 6.0 - 1.25) + 5.0 / 24.0) + 55.0 / 96.0;
            let z = 1.0 - t;
            w[3] = z * (z * (z * (5.0 - z) / 6.0 - 1.25) + 5.0 / 24.0) + 55.0 / 96.0;
            let y = 0.5 - t;
            let y2 = y * y;
            w[0] = y2 * y2 / 24.0;
        }
        6 => {
            let (y, z) = (t, 1.0 - t);
            let y2 = y * y;
            w[2] = y2 * (y2 * (0.25 - y / 12.0) - 0.5) + 0.55;
            let z2 = z * z;
            w[3] = z2 * (z2 * (0.25 - z / 12.0) - 0.5) + 0.55;
            let y = y + 1.0;
            w[1] = y * (y * (y * (y * (y / 24.0 - 0.375) + 1.25) - 1.75) + 0.625) + 0.425;
            let z = z + 1.0;
            w[4] = z * (z * (z * (z * (z / 24.0 - 0.375) + 1.25) - 1.75) + 0.625) + 0.425;
            let y = 1.0 - t;
            let y2 = y * y;
            w[0] = y * y2 * y2 / 120.0;
        }
        _ => unreachable!("B-splines have 3 to 6 taps"),
    }
    w[K - 1] = 1.0 - w[..K - 1].iter().sum::<f64>();
}

/// First tap index and offset for coordinate `c` (scipy's filter start): odd K
/// centre on the nearest node, even K start below the floor.
#[inline(always)]
fn start_and_frac<const K: usize>(c: f64) -> (f64, f64) {
    if K % 2 == 1 {
        let r = (c + 0.5).floor();
        (r - (K / 2) as f64, c - r)
    } else {
        let f = c.floor();
        (f - (K / 2 - 1) as f64, c - f)
    }
}

impl Kernel {
    /// The rule for a volume of `shape`: an identity `world_to_index` is dropped so
    /// index-space requests skip the affine entirely.
    pub(crate) fn new(
        shape: [usize; 3],
        opts: &crate::SampleOptions,
        scale: Option<(f64, f64)>,
        world_to_index: Option<Affine>,
    ) -> Self {
        Kernel {
            shape,
            mode: opts.mode,
            cval: opts.cval,
            scale,
            to_index: world_to_index.filter(|a| !a.is_identity()),
            spline: matches!(opts.method, crate::Method::Spline { .. }),
            shift: 0.0,
            pad_axes: [false; 3],
        }
    }

    /// Maps a position to index space. World positions that land within
    /// `EDGE_SNAP` voxels of the volume's faces are snapped onto them: a voxel
    /// centre on the border mapped through an affine and back must stay inside
    /// despite rounding (index-space positions are taken exactly as given).
    #[inline(always)]
    pub(crate) fn to_index(&self, p: &[f64; 3]) -> [f64; 3] {
        let mut x = self.to_index_unshifted(p);
        if self.shift != 0.0 {
            for a in 0..3 {
                if self.pad_axes[a] {
                    x[a] += self.shift;
                }
            }
        }
        x
    }

    #[inline(always)]
    fn to_index_unshifted(&self, p: &[f64; 3]) -> [f64; 3] {
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
    fn fast_taps<const K: usize>(g: &Strided, x: &[f64; 3]) -> Option<(isize, [f64; 3])> {
        let mut off = 0isize;
        let mut frac = [0.0; 3];
        for a in 0..3 {
            let c = x[a];
            let last = (g.shape[a] - 1) as f64;
            // Interior test on the coordinate itself (NaN fails it): the mode only
            // matters outside, and every tap of an interior point is in range.
            let inside = match K {
                1 => c >= 0.0 && c <= last,
                2 => c >= 0.0 && c < last,
                4 => c >= 1.0 && c < last - 1.0,
                _ => c >= 0.0 && c <= last,
            };
            if !inside {
                return None;
            }
            // c ≥ 0 here, so truncation is floor (and avoids a libm call on
            // targets without SSE4.1 rounding). c is finite and below the
            // volume's side, so the conversion needs no saturation.
            // SAFETY: 0 ≤ c ≤ last < 2^53, so c and c + 0.5 fit an isize.
            let trunc = |x: f64| unsafe { x.to_int_unchecked::<isize>() };
            let (s, t) = match K {
                1 => (trunc(c + 0.5), 0.0),
                _ if K % 2 == 1 => {
                    let r = trunc(c + 0.5);
                    (r - (K / 2) as isize, c - r as f64)
                }
                _ => {
                    let i = trunc(c);
                    (i - (K / 2 - 1) as isize, c - i as f64)
                }
            };
            if K > 4 || K == 3 {
                // Wider B-splines: check the taps themselves.
                if s < 0 || s + K as isize > g.shape[a] as isize {
                    return None;
                }
            }
            off += s * g.strides[a];
            frac[a] = t;
        }
        Some((off, frac))
    }

    #[inline(always)]
    fn gather_fast<V: Voxel, const K: usize>(
        &self,
        g: &Strided,
        off: isize,
        frac: [f64; 3],
    ) -> f64 {
        let w0 = weights::<K>(frac[0], self.spline);
        let w1 = weights::<K>(frac[1], self.spline);
        let w2 = weights::<K>(frac[2], self.spline);
        let mut t = 0.0;
        for a in 0..K {
            for b in 0..K {
                let wab = w0[a] * w1[b];
                let row = off + a as isize * g.strides[0] + b as isize * g.strides[1];
                for c in 0..K {
                    let w = wab * w2[c];
                    // SAFETY: fast_taps checked that every tap is inside the buffer.
                    let v = unsafe { V::load(g.base.offset(row + c as isize * g.strides[2])) };
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
    /// `load` reads a voxel of the whole volume by global index.
    fn sample_general<const K: usize>(
        &self,
        x: &[f64; 3],
        load: &impl Fn([usize; 3]) -> f64,
    ) -> f64 {
        // Constant mode: a point outside the volume on any axis (or NaN) is the
        // fill value, whatever its taps; decided before any weight is made.
        if self.mode == Mode::Constant
            && (0..3).any(|a| !(x[a] >= 0.0 && x[a] <= (self.shape[a] - 1) as f64))
        {
            return self.cval;
        }
        let mut taps = [[None; K]; 3];
        let mut w = [[0.0; K]; 3];
        // scipy maps the taps of a `wrap`-mode B-spline by mirroring (its mapped
        // coordinate stays wrapped).
        let tap_mode = match (self.spline, self.mode) {
            (true, Mode::Wrap) => Mode::Mirror,
            (_, m) => m,
        };
        for a in 0..3 {
            let n = self.shape[a];
            // scipy leaves a `nearest` B-spline's coordinate as it is (its taps clamp).
            let c = match (self.spline, self.mode) {
                (true, Mode::Nearest) if x[a].is_finite() => Some(x[a]),
                _ => map_coordinate(x[a], n, self.mode),
            };
            let Some(c) = c else {
                return self.cval;
            };
            let (s, t) = start_and_frac::<K>(c);
            w[a] = weights::<K>(t, self.spline);
            let s = s as isize;
            for i in 0..K {
                taps[a][i] = tap_index(s + i as isize, n, tap_mode);
            }
        }
        let mut t = 0.0;
        for a in 0..K {
            for b in 0..K {
                for c in 0..K {
                    // Same product order as the fast path, so both paths agree bit for bit.
                    let wt = (w[0][a] * w[1][b]) * w[2][c];
                    if wt == 0.0 {
                        continue;
                    }
                    let v = match (taps[0][a], taps[1][b], taps[2][c]) {
                        (Some(i), Some(j), Some(k)) => {
                            let raw = load([i, j, k]);
                            match self.scale {
                                Some((m, q)) => raw * m + q,
                                None => raw,
                            }
                        }
                        _ => self.cval,
                    };
                    t += v * wt;
                }
            }
        }
        t
    }

    /// Samples `points` into `out` (same length). `grid` holds the voxels from
    /// global index `origin` on (the whole volume, or one chunk); points whose taps
    /// all lie in `grid` take the fast path, the others go through `load`, which
    /// reads any voxel of the volume. `transform` maps positions to index space
    /// first (positions are already indices when false).
    pub(crate) fn sample<V: Voxel, const K: usize>(
        &self,
        grid: &Strided,
        origin: [usize; 3],
        transform: bool,
        points: &[[f64; 3]],
        out: &mut [f64],
        load: &impl Fn([usize; 3]) -> f64,
    ) {
        debug_assert_eq!(points.len(), out.len());
        if K == 2 {
            return self.sample_linear::<V>(grid, origin, transform, points, out, load);
        }
        let shift = origin.map(|o| o as f64);
        let mut idx = [[0.0; 3]; BLOCK];
        let mut fast = [None; BLOCK];
        let mut last = isize::MIN;
        for (pts, out) in points.chunks(BLOCK).zip(out.chunks_mut(BLOCK)) {
            for (i, p) in pts.iter().enumerate() {
                idx[i] = if transform { self.to_index(p) } else { *p };
                let local = [
                    idx[i][0] - shift[0],
                    idx[i][1] - shift[1],
                    idx[i][2] - shift[2],
                ];
                fast[i] = Self::fast_taps::<K>(grid, &local);
                if let Some((off, _)) = fast[i] {
                    // Coherent requests (planes, grids) touch the lines the previous
                    // point touched; prefetch only on a jump.
                    if off.abs_diff(last) > 4096 {
                        prefetch_taps::<K>(grid, off);
                    }
                    last = off;
                }
            }
            for (i, o) in out.iter_mut().enumerate() {
                *o = match fast[i] {
                    Some((off, frac)) => self.gather_fast::<V, K>(grid, off, frac),
                    None => self.sample_general::<K>(&idx[i], load),
                };
            }
        }
    }

    /// [`Kernel::sample`] for linear interpolation: blocks of interior points go
    /// through the vectorised [`LinearBlock`], the rest through the general path.
    fn sample_linear<V: Voxel>(
        &self,
        grid: &Strided,
        origin: [usize; 3],
        transform: bool,
        points: &[[f64; 3]],
        out: &mut [f64],
        load: &impl Fn([usize; 3]) -> f64,
    ) {
        let shift = origin.map(|o| o as f64);
        LinearBlock::with(|blk| {
            for (pts, out) in points.chunks(LANES).zip(out.chunks_mut(LANES)) {
                let n = pts.len();
                for (i, p) in pts.iter().enumerate() {
                    let x = if transform { self.to_index(p) } else { *p };
                    for a in 0..3 {
                        blk.x[a][i] = x[a] - shift[a];
                    }
                }
                for x in &mut blk.x {
                    x[n..].fill(f64::NAN);
                }
                blk.interpolate::<V>(grid, n, out);
                for (i, o) in out.iter_mut().enumerate() {
                    if !blk.inside[i] {
                        let p = &pts[i];
                        let x = if transform { self.to_index(p) } else { *p };
                        *o = self.sample_general::<2>(&x, load);
                    } else if let Some((m, q)) = self.scale {
                        *o = *o * m + q;
                    }
                }
            }
        })
    }

    /// Samples a plane row (positions made from the row: no list of them).
    /// Linear interpolation in index space makes them in the vectorised block;
    /// otherwise they go through [`Kernel::sample`] block by block.
    pub(crate) fn sample_row<V: Voxel, const K: usize>(
        &self,
        grid: &Strided,
        row: &PlaneRow,
        out: &mut [f64],
        load: &impl Fn([usize; 3]) -> f64,
    ) {
        if K != 2 || !self.is_index_space() {
            return row.blocks(out, |pts, o| {
                self.sample::<V, K>(grid, [0; 3], true, pts, o, load);
            });
        }
        LinearBlock::with(|blk| {
            for (b, o) in out.chunks_mut(LANES).enumerate() {
                blk.interpolate_row::<V>(grid, row, b * LANES, o);
                for (i, o) in o.iter_mut().enumerate() {
                    if !blk.inside[i] {
                        *o = self
                            .sample_general::<2>(&[blk.x[0][i], blk.x[1][i], blk.x[2][i]], load);
                    } else if let Some((m, q)) = self.scale {
                        *o = *o * m + q;
                    }
                }
            }
        })
    }

    /// Positions are taken as indices exactly as given (no affine, no padding shift).
    fn is_index_space(&self) -> bool {
        self.to_index.is_none() && self.shift == 0.0
    }

    /// Samples every point through `load` alone (sparse volumes: no buffer to
    /// take a fast path on; every tap is an O(1) lookup).
    pub(crate) fn sample_lookup<const K: usize>(
        &self,
        points: &[[f64; 3]],
        out: &mut [f64],
        load: &impl Fn([usize; 3]) -> f64,
    ) {
        for (p, o) in points.iter().zip(out) {
            *o = self.sample_general::<K>(&self.to_index(p), load);
        }
    }

    /// The chunk-grid cell holding the first tap of index-space position `x`,
    /// clamped into the grid (None for non-finite positions).
    #[inline]
    pub(crate) fn first_tap<const K: usize>(&self, x: &[f64; 3]) -> Option<[usize; 3]> {
        let mut t = [0usize; 3];
        for a in 0..3 {
            if !x[a].is_finite() {
                return None;
            }
            let (s, _) = start_and_frac::<K>(x[a]);
            t[a] = s.clamp(0.0, (self.shape[a] - 1) as f64) as usize;
        }
        Some(t)
    }
}

/// Requests the cache lines of the K×K×K taps from byte offset `off`.
#[inline(always)]
pub(crate) fn prefetch_taps<const K: usize>(g: &Strided, off: isize) {
    #[cfg(target_arch = "x86_64")]
    for a in 0..K {
        for b in 0..K {
            let row = off + a as isize * g.strides[0] + b as isize * g.strides[1];
            // SAFETY: prefetch never faults; the address is inside the buffer anyway.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(g.base.offset(row) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(
                    g.base.offset(row + (K - 1) as isize * g.strides[2]) as *const i8
                );
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = off;
}

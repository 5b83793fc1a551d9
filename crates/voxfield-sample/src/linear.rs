//! Trilinear interpolation of a block of interior points, laid out so the
//! compiler vectorises it across points (structure of arrays: per-axis
//! positions, offsets and fractions, then the eight taps, then one weighted
//! sum per point). Only the eight loads stay scalar. On x86-64 an AVX-512 or
//! AVX2 copy is chosen at run time; without FMA, so every product and sum rounds exactly as
//! the scalar kernel's (and scipy's) do: same operations, same order.

use voxfield_core::field::PlaneRow;
use voxfield_core::voxel::Voxel;

use crate::kernel::Strided;

/// `unsafe fn $name`: `run_any` compiled with `$features` enabled (callers
/// check the CPU has them).
macro_rules! vector_copy {
    ($name:ident, $features:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<V: Voxel>(
            &mut self,
            g: &Strided,
            row: Option<(&PlaneRow, usize)>,
            n: usize,
            out: &mut [f64],
        ) {
            self.run_any::<V>(g, row, n, out)
        }
    };
}

/// Points per block (the kernel's block).
pub(crate) const LANES: usize = 64;

/// Per-point scratch of one block.
pub(crate) struct LinearBlock {
    /// Index-space positions, by axis (relative to the buffer's origin).
    pub x: [[f64; LANES]; 3],
    /// Every tap of the point lies inside the buffer.
    pub inside: [bool; LANES],
    off: [isize; LANES],
    frac: [[f64; LANES]; 3],
    taps: [[f64; LANES]; 8],
}

impl LinearBlock {
    /// Runs `f` with this thread's block (made once per thread: a block is
    /// 8 KiB, and rows and point blocks are sampled many times a second).
    pub(crate) fn with<R>(f: impl FnOnce(&mut LinearBlock) -> R) -> R {
        thread_local! {
            static BLOCK: std::cell::RefCell<Box<LinearBlock>> =
                std::cell::RefCell::new(Box::new(LinearBlock::new()));
        }
        BLOCK.with(|b| f(&mut b.borrow_mut()))
    }

    fn new() -> Self {
        LinearBlock {
            x: [[0.0; LANES]; 3],
            inside: [false; LANES],
            off: [0; LANES],
            frac: [[0.0; LANES]; 3],
            taps: [[0.0; LANES]; 8],
        }
    }

    /// Interpolates the first `n` points of `x` into `out`; points not
    /// `inside` are left for the caller (their `out` is untouched).
    pub(crate) fn interpolate<V: Voxel>(&mut self, g: &Strided, n: usize, out: &mut [f64]) {
        self.run::<V>(g, None, n, out)
    }

    /// As [`LinearBlock::interpolate`] at positions `k0..k0 + n` of an
    /// index-space `row`, made here (in the vector copy) instead of read.
    pub(crate) fn interpolate_row<V: Voxel>(
        &mut self,
        g: &Strided,
        row: &PlaneRow,
        k0: usize,
        out: &mut [f64],
    ) {
        self.run::<V>(g, Some((row, k0)), out.len(), out)
    }

    fn run<V: Voxel>(
        &mut self,
        g: &Strided,
        row: Option<(&PlaneRow, usize)>,
        n: usize,
        out: &mut [f64],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512dq")
                && std::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: the CPU has these (checked just above).
                return unsafe { self.run_avx512::<V>(g, row, n, out) };
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { self.run_avx2::<V>(g, row, n, out) };
            }
        }
        self.run_any::<V>(g, row, n, out)
    }

    // The same body compiled for wider vectors: AVX-512 adds 64-bit products
    // and float-to-integer conversions of whole vectors.
    vector_copy!(run_avx512, "avx512f,avx512dq,avx512vl");
    vector_copy!(run_avx2, "avx2");

    #[inline(always)]
    fn run_any<V: Voxel>(
        &mut self,
        g: &Strided,
        row: Option<(&PlaneRow, usize)>,
        n: usize,
        out: &mut [f64],
    ) {
        if let Some((row, k0)) = row {
            self.fill_row(row, k0, n);
        }
        self.locate(g);
        self.prefetch(g, n);
        for i in 0..n {
            if self.inside[i] {
                self.gather::<V>(g, i);
            }
        }
        self.combine(n, out);
    }

    /// Lanes `0..n` at positions `k0..k0 + n` of `row` (the row's own sums, in
    /// its order), the others NaN (outside).
    #[inline(always)]
    fn fill_row(&mut self, row: &PlaneRow, k0: usize, n: usize) {
        let j = row.j as f64;
        for a in 0..3 {
            let (o, u, jv) = (row.origin[a], row.u[a], j * row.v[a]);
            let x = &mut self.x[a];
            for (k, x) in x[..n].iter_mut().enumerate() {
                let i = (row.i0 + k0 + k) as f64;
                *x = o + i * u + jv;
            }
            if let Some(s) = row.shift {
                x[..n].iter_mut().for_each(|x| *x += s[a]);
            }
            x[n..].fill(f64::NAN);
        }
    }

    /// Interior test, first-tap offsets and fractions of every lane.
    #[inline(always)]
    fn locate(&mut self, g: &Strided) {
        self.off = [0; LANES];
        self.inside = [true; LANES];
        for a in 0..3 {
            let last = (g.shape[a] - 1) as f64;
            let stride = g.strides[a];
            for i in 0..LANES {
                let c = self.x[a][i];
                // NaN fails the test; the mode only matters outside.
                let ok = c >= 0.0 && c < last;
                let c = if ok { c } else { 0.0 };
                // SAFETY: 0 ≤ c < last < 2^53.
                let f = unsafe { c.to_int_unchecked::<isize>() };
                self.inside[i] &= ok;
                self.off[i] += f * stride;
                self.frac[a][i] = c - f as f64;
            }
        }
    }

    /// Random points in a big volume are bound by memory latency: the lines of
    /// every lane that jumps away from the previous one are requested before
    /// any is read (coherent requests, planes and grids, skip this).
    #[inline(always)]
    fn prefetch(&self, g: &Strided, n: usize) {
        let mut last = isize::MIN;
        for i in 0..n {
            if self.inside[i] && self.off[i].abs_diff(last) > 4096 {
                crate::kernel::prefetch_taps::<2>(g, self.off[i]);
                last = self.off[i];
            }
        }
    }

    /// The eight taps of lane `i` (its taps are inside the buffer).
    #[inline(always)]
    fn gather<V: Voxel>(&mut self, g: &Strided, i: usize) {
        let [s0, s1, s2] = g.strides;
        let base = self.off[i];
        for a in 0..2 {
            for b in 0..2 {
                let row = base + a as isize * s0 + b as isize * s1;
                for c in 0..2 {
                    // SAFETY: `locate` found every tap of this lane inside.
                    self.taps[(a * 2 + b) * 2 + c][i] =
                        unsafe { V::load(g.base.offset(row + c as isize * s2)) };
                }
            }
        }
    }

    /// `Σ v·((w0·w1)·w2)` over the taps in the scalar kernel's order; a zero
    /// weight contributes exactly 0 even when its tap is NaN. Every lane is
    /// computed (a fixed count vectorises); only interior ones are kept.
    #[inline(always)]
    fn combine(&self, n: usize, out: &mut [f64]) {
        let mut res = [0.0; LANES];
        for (i, r) in res.iter_mut().enumerate() {
            let (f0, f1, f2) = (self.frac[0][i], self.frac[1][i], self.frac[2][i]);
            let w0 = [1.0 - f0, f0];
            let w1 = [1.0 - f1, f1];
            let w2 = [1.0 - f2, f2];
            let mut t = 0.0;
            for a in 0..2 {
                for b in 0..2 {
                    let wab = w0[a] * w1[b];
                    for c in 0..2 {
                        let wt = wab * w2[c];
                        let v = self.taps[(a * 2 + b) * 2 + c][i];
                        t += if wt != 0.0 { v * wt } else { 0.0 };
                    }
                }
            }
            *r = t;
        }
        for i in 0..n {
            if self.inside[i] {
                out[i] = res[i];
            }
        }
    }
}

//! One cell's local interpolant s(x) = Σ λ_j φ(‖u − u_j‖) + p(u), in local
//! coordinates u = (x − centre)/scale so every cell's system is well scaled.

use faer::linalg::solvers::{Solve, SolveCore};
use faer::sparse::{SparseColMat, Triplet};
use faer::{Mat, Side};
use voxfield_core::{Error, Result};

use crate::blend::CellBox;
use crate::kernel::Scaled;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{__m256d, __m512d};

/// Number of polynomial terms of `degree` in `dim` dimensions (−1 → 0, 0 → 1, 1 → dim+1).
pub fn poly_terms(dim: usize, degree: i32) -> usize {
    match degree {
        d if d < 0 => 0,
        0 => 1,
        _ => dim + 1,
    }
}

#[inline(always)]
fn poly_row(dim: usize, terms: usize, u: &[f64], out: &mut [f64]) {
    if terms > 0 {
        out[0] = 1.0;
    }
    if terms > 1 {
        out[1..=dim].copy_from_slice(&u[..dim]);
    }
}

/// A solved cell: where it blends, its centres and coefficients.
#[derive(Clone, Debug)]
pub struct Cell {
    pub bounds: CellBox,
    pub centre: [f64; 3],
    pub scale: f64,
    /// The kernel in local units.
    pub kernel: Scaled,
    /// Centres in local coordinates, axis-major (`dim` rows of `len` values).
    pub centres: Vec<f64>,
    /// RBF coefficients, channel-major (`channels` rows of `len`).
    pub lambda: Vec<f64>,
    /// Polynomial coefficients, channel-major (`channels` rows of `terms`).
    pub poly: Vec<f64>,
    pub terms: usize,
    /// Spatial hash of the centres for compact kernels (bucket size = support).
    pub buckets: Option<Buckets>,
    /// The box was enlarged beyond the overlap to hold enough points.
    pub grown: bool,
}

/// What a cell solve needs besides its points.
pub struct SolveSpec {
    pub dim: usize,
    pub channels: usize,
    pub kernel: Scaled,
    pub terms: usize,
    /// Smoothing already in local units.
    pub smoothing: f64,
}

impl Cell {
    /// Number of centres.
    pub fn len(&self, dim: usize) -> usize {
        self.centres.len() / dim
    }

    /// Solves the cell's system for `points` (world, n×dim) and `values`
    /// (n×channels). `index` names the cell in errors.
    pub fn solve(
        index: usize,
        bounds: CellBox,
        spec: &SolveSpec,
        points: &[f64],
        values: &[f64],
    ) -> Result<Cell> {
        let dim = spec.dim;
        let m = points.len() / dim;
        let c = spec.channels;
        let mut centre = [0.0; 3];
        for a in 0..dim {
            centre[a] = 0.5 * (bounds.lo[a] + bounds.hi[a]);
        }
        let scale = bounds.scale(dim);
        let mut centres = vec![0.0; dim * m];
        for i in 0..m {
            for a in 0..dim {
                centres[a * m + i] = (points[i * dim + a] - centre[a]) / scale;
            }
        }
        let terms = spec.terms;
        // Right-hand sides: the values, then zeros for the polynomial conditions.
        let mut rhs = Mat::<f64>::zeros(m + terms, c);
        for i in 0..m {
            for k in 0..c {
                rhs[(i, k)] = values[i * c + k];
            }
        }
        let kernel = spec.kernel;
        let sol = if kernel.kernel.is_compact() {
            solve_sparse(dim, m, &centres, spec, rhs)
        } else {
            solve_dense(dim, m, &centres, spec, rhs)
        }
        .ok_or_else(|| {
            Error::invalid(format!(
                "cell {index} ({m} points): the RBF system is singular (duplicate or \
                 degenerate points, or too few for the polynomial); try smoothing > 0"
            ))
        })?;
        let mut lambda = vec![0.0; c * m];
        let mut poly = vec![0.0; c * terms];
        for k in 0..c {
            for i in 0..m {
                lambda[k * m + i] = sol[(i, k)];
            }
            for t in 0..terms {
                poly[k * terms + t] = sol[(m + t, k)];
            }
        }
        let buckets = kernel
            .kernel
            .is_compact()
            .then(|| Buckets::new(dim, m, &centres, 1.0 / kernel.shape));
        Ok(Cell {
            bounds,
            centre,
            scale,
            kernel,
            centres,
            lambda,
            poly,
            terms,
            buckets,
            grown: false,
        })
    }

    /// Local coordinates of a world point.
    #[inline(always)]
    pub fn local(&self, dim: usize, x: &[f64]) -> [f64; 3] {
        let mut u = [0.0; 3];
        for a in 0..dim {
            u[a] = (x[a] - self.centre[a]) / self.scale;
        }
        u
    }

    /// Adds s(x) for every channel to `out`, times `w`.
    #[inline]
    pub fn eval_into(&self, dim: usize, x: &[f64], w: f64, out: &mut [f64]) {
        let u = self.local(dim, x);
        let m = self.centres.len() / dim;
        for (k, o) in out.iter_mut().enumerate() {
            let lam = &self.lambda[k * m..(k + 1) * m];
            let mut s = match &self.buckets {
                Some(b) => b.sum(dim, &self.centres, &u, |j, r2| {
                    lam[j] * self.kernel.phi_r2(r2)
                }),
                None => dense_sum(dim, &self.centres, lam, &u, self.kernel),
            };
            if self.terms > 0 {
                let p = &self.poly[k * self.terms..(k + 1) * self.terms];
                s += p[0];
                for a in 0..dim.min(self.terms - 1) {
                    s += p[1 + a] * u[a];
                }
            }
            *o += w * s;
        }
    }

    /// s(x) and its gradient (world units) for one channel.
    pub fn eval_grad(&self, dim: usize, x: &[f64], k: usize) -> (f64, [f64; 3]) {
        let u = self.local(dim, x);
        let m = self.centres.len() / dim;
        let lam = &self.lambda[k * m..(k + 1) * m];
        let mut s = 0.0;
        let mut g = [0.0; 3];
        let mut add = |j: usize, r2: f64| {
            s += lam[j] * self.kernel.phi_r2(r2);
            let d = lam[j] * self.kernel.dphi_over_r(r2);
            for a in 0..dim {
                g[a] += d * (u[a] - self.centres[a * m + j]);
            }
            0.0
        };
        match &self.buckets {
            Some(b) => {
                b.sum(dim, &self.centres, &u, &mut add);
            }
            None => {
                for j in 0..m {
                    let mut r2 = 0.0;
                    for a in 0..dim {
                        let d = u[a] - self.centres[a * m + j];
                        r2 += d * d;
                    }
                    add(j, r2);
                }
            }
        }
        if self.terms > 0 {
            let p = &self.poly[k * self.terms..(k + 1) * self.terms];
            s += p[0];
            for a in 0..dim.min(self.terms - 1) {
                s += p[1 + a] * u[a];
                g[a] += p[1 + a];
            }
        }
        for v in &mut g[..dim] {
            *v /= self.scale;
        }
        (s, g)
    }
}

/// Σ λ_j φ(‖u − u_j‖) over all centres. The loop is written in lanes so it
/// vectorises (the kernels, TPS's logarithm included, are branch-free), and is
/// compiled twice: for the baseline target and, chosen at run time, for AVX2.
/// No FMA contraction, so both give bit-identical results.
#[inline]
fn dense_sum(dim: usize, centres: &[f64], lam: &[f64], u: &[f64; 3], k: Scaled) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { dense_sum_avx512(dim, centres, lam, u, k) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { dense_sum_avx2(dim, centres, lam, u, k) };
        }
    }
    dense_sum_any(dim, centres, lam, u, k)
}

/// φ(r²) in place (bit-identical on every path, like `dense_sum`).
fn phi_fill(k: Scaled, r2s: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { phi_fill_avx512(k, r2s) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { phi_fill_avx2(k, r2s) };
        }
    }
    r2s.iter_mut().for_each(|r| *r = k.phi_r2(*r));
}

/// TPS and cubic with x86 SIMD intrinsics (AVX2: 4 lanes per register, AVX-512:
/// 8): the same operations in the same order as `lanes` (16 lanes, summed in
/// lane order), so every path gives bit-identical results.
macro_rules! simd_sum {
    ($name:ident, $fill:ident, $feat:literal, $w:literal, $V:ty, $set1:ident, $zero:ident, $load:ident, $store:ident,
     $add:ident, $sub:ident, $mul:ident, $div:ident, $sqrt:ident, $to_i:ident, $to_d:ident, $or:ident,
     $and:ident, $set1i:ident, $srli:ident, $select_gt:expr, $phi:ident) => {
        /// φ(r²) for TPS (`tps`) or cubic on a register: the branch-free
        /// logarithm of `kernel::ln` and `kernel::atanh_series`, operation for operation.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feat)]
        #[inline]
        fn $phi(tps: bool, r2: $V) -> $V {
            use std::arch::x86_64::*;
            let c = |v: f64| -> $V { $set1(v) };
            if !tps {
                return $mul(r2, $sqrt(r2));
            }
            let one = c(1.0);
            let bits = $to_i(r2);
            let mant = $to_d($or(
                $and(bits, $set1i(0x000f_ffff_ffff_ffff)),
                $set1i(0x3ff0_0000_0000_0000),
            ));
            let expo = $sub(
                $sub(
                    $to_d($or($set1i(0x4330_0000_0000_0000), $srli::<52>(bits))),
                    c(4_503_599_627_370_496.0),
                ),
                c(1023.0),
            );
            let sel: fn($V, $V, $V, $V) -> $V = $select_gt;
            let sq2 = c(std::f64::consts::SQRT_2);
            let mm = sel(mant, sq2, $mul(mant, c(0.5)), mant);
            let kk = sel(mant, sq2, $add(expo, one), expo);
            let z = $div($sub(mm, one), $add(mm, one));
            let z2 = $mul(z, z);
            // kernel::atanh_series, operation for operation.
            let lin = |a: f64, b: f64| $add(c(a), $mul(z2, c(b)));
            let w2 = $mul(z2, z2);
            let w4 = $mul(w2, w2);
            let w8 = $mul(w4, w4);
            let (q0, q1) = (lin(1.0, 1.0 / 3.0), lin(1.0 / 5.0, 1.0 / 7.0));
            let (q2, q3) = (lin(1.0 / 9.0, 1.0 / 11.0), lin(1.0 / 13.0, 1.0 / 15.0));
            let q4 = lin(1.0 / 17.0, 1.0 / 19.0);
            let r0 = $add(q0, $mul(w2, q1));
            let r1 = $add(q2, $mul(w2, q3));
            let p = $add($add(r0, $mul(w4, r1)), $mul(w8, q4));
            let ln = $add(
                $mul($mul(c(2.0), z), p),
                $mul(kk, c(std::f64::consts::LN_2)),
            );
            $mul($mul(c(0.5), r2), ln)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feat)]
        unsafe fn $name(dim: usize, centres: &[f64], lam: &[f64], u: &[f64; 3], k: Scaled) -> f64 {
            use crate::kernel::Kernel;
            use std::arch::x86_64::*;
            let tps = match k.kernel {
                Kernel::ThinPlate => true,
                Kernel::Cubic => false,
                _ => return dense_sum_any(dim, centres, lam, u, k),
            };
            let m = lam.len();
            let full = m - m % 16;
            let ua = [$set1(u[0]), $set1(u[1]), $set1(u[2])];
            let phi = |r2: $V| -> $V { $phi(tps, r2) };
            let mut acc = [$zero(); 16 / $w];
            for j in (0..full).step_by(16) {
                for (h, acc) in acc.iter_mut().enumerate() {
                    let jj = j + $w * h;
                    let mut r2 = $zero();
                    for a in 0..dim {
                        // SAFETY: jj + $w <= full <= m, and axis a holds m centres.
                        let x = unsafe { $load(centres.as_ptr().add(a * m + jj)) };
                        let d = $sub(ua[a], x);
                        r2 = $add(r2, $mul(d, d));
                    }
                    // SAFETY: as above, for the coefficients.
                    let l = unsafe { $load(lam.as_ptr().add(jj)) };
                    *acc = $add(*acc, $mul(l, phi(r2)));
                }
            }
            let mut lanes = [0.0f64; 16];
            for (h, a) in acc.iter().enumerate() {
                // SAFETY: `lanes` holds 16 doubles.
                unsafe { $store(lanes.as_mut_ptr().add($w * h), *a) };
            }
            let mut tail = 0.0;
            for j in full..m {
                let mut r2 = 0.0;
                for a in 0..dim {
                    let d = u[a] - centres[a * m + j];
                    r2 += d * d;
                }
                tail += lam[j]
                    * if tps {
                        0.5 * r2 * crate::kernel::ln(r2)
                    } else {
                        r2 * r2.sqrt()
                    };
            }
            let mut s = 0.0;
            for v in lanes {
                s += v;
            }
            s + tail
        }

        /// φ(r²) in place over `r2`, for TPS and cubic (other kernels: scalar).
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feat)]
        unsafe fn $fill(k: Scaled, r2s: &mut [f64]) {
            use crate::kernel::Kernel;
            use std::arch::x86_64::*;
            let tps = match k.kernel {
                Kernel::ThinPlate => true,
                Kernel::Cubic => false,
                _ => return r2s.iter_mut().for_each(|r| *r = k.phi_r2(*r)),
            };
            let phi = |r2: $V| -> $V { $phi(tps, r2) };
            let full = r2s.len() - r2s.len() % $w;
            for j in (0..full).step_by($w) {
                // SAFETY: j + $w <= full <= r2s.len().
                unsafe {
                    let p = r2s.as_mut_ptr().add(j);
                    $store(p, phi($load(p)));
                }
            }
            for r in &mut r2s[full..] {
                *r = k.phi_r2(*r);
            }
        }
    };
}

simd_sum!(
    dense_sum_avx2,
    phi_fill_avx2,
    "avx2",
    4,
    __m256d,
    _mm256_set1_pd,
    _mm256_setzero_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_add_pd,
    _mm256_sub_pd,
    _mm256_mul_pd,
    _mm256_div_pd,
    _mm256_sqrt_pd,
    _mm256_castpd_si256,
    _mm256_castsi256_pd,
    _mm256_or_si256,
    _mm256_and_si256,
    _mm256_set1_epi64x,
    _mm256_srli_epi64,
    |a, b, x, y| _mm256_blendv_pd(y, x, _mm256_cmp_pd::<_CMP_GT_OQ>(a, b)),
    phi_avx2
);
simd_sum!(
    dense_sum_avx512,
    phi_fill_avx512,
    "avx512f",
    8,
    __m512d,
    _mm512_set1_pd,
    _mm512_setzero_pd,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_add_pd,
    _mm512_sub_pd,
    _mm512_mul_pd,
    _mm512_div_pd,
    _mm512_sqrt_pd,
    _mm512_castpd_si512,
    _mm512_castsi512_pd,
    _mm512_or_si512,
    _mm512_and_si512,
    _mm512_set1_epi64,
    _mm512_srli_epi64,
    |a, b, x, y| _mm512_mask_blend_pd(_mm512_cmp_pd_mask::<_CMP_GT_OQ>(a, b), y, x),
    phi_avx512
);

#[inline(always)]
fn dense_sum_any(dim: usize, centres: &[f64], lam: &[f64], u: &[f64; 3], k: Scaled) -> f64 {
    use crate::kernel::Kernel;
    let m = lam.len();
    let c = |a: usize| &centres[a * m..(a + 1) * m];
    macro_rules! per_dim {
        ($phi:expr) => {
            match dim {
                1 => lanes([c(0)], lam, [u[0]], $phi),
                2 => lanes([c(0), c(1)], lam, [u[0], u[1]], $phi),
                _ => lanes([c(0), c(1), c(2)], lam, [u[0], u[1], u[2]], $phi),
            }
        };
    }
    match k.kernel {
        Kernel::ThinPlate => per_dim!(|r2: f64| 0.5 * r2 * crate::kernel::ln(r2)),
        Kernel::Cubic => per_dim!(|r2: f64| r2 * r2.sqrt()),
        _ => per_dim!(|r2: f64| k.phi_r2(r2)),
    }
}

#[inline(always)]
fn lanes<const D: usize>(
    xs: [&[f64]; D],
    lam: &[f64],
    u: [f64; D],
    phi: impl Fn(f64) -> f64 + Copy,
) -> f64 {
    const L: usize = 16;
    let m = lam.len();
    let r2 = |j: usize| -> f64 {
        let mut r = 0.0;
        for a in 0..D {
            let d = u[a] - xs[a][j];
            r += d * d;
        }
        r
    };
    let mut acc = [0.0f64; L];
    let full = m - m % L;
    for j in (0..full).step_by(L) {
        let mut d = [0.0f64; L];
        for l in 0..L {
            d[l] = r2(j + l);
        }
        for l in 0..L {
            acc[l] += lam[j + l] * phi(d[l]);
        }
    }
    let mut tail = 0.0;
    for j in full..m {
        tail += lam[j] * phi(r2(j));
    }
    let mut s = 0.0;
    for v in acc {
        s += v;
    }
    s + tail
}

/// Builds A (+ smoothing) and the polynomial block, factors, solves all channels.
fn solve_dense(
    dim: usize,
    m: usize,
    centres: &[f64],
    spec: &SolveSpec,
    mut rhs: Mat<f64>,
) -> Option<Mat<f64>> {
    let t = spec.terms;
    let mut a = assemble(dim, m, centres, spec);
    let mut p = Mat::<f64>::zeros(m, t);
    let mut pr = [0.0; 4];
    let mut u = [0.0; 3];
    for j in 0..m {
        for ax in 0..dim {
            u[ax] = centres[ax * m + j];
        }
        poly_row(dim, t, &u, &mut pr);
        for q in 0..t {
            p[(j, q)] = pr[q];
        }
    }
    if t == 0 {
        if let Ok(llt) = a.llt(Side::Lower) {
            llt.solve_in_place(rhs.as_mut());
            return finite(rhs);
        }
    } else {
        if let Some(sol) = solve_null_space(&mut a, &p, &rhs) {
            return Some(sol);
        }
        // The null-space method overwrote `a`; the fallback assembles it again.
    }
    solve_dense_lu(dim, m, centres, spec, p, rhs)
}

/// Fallback (not positive definite on the polynomial's null space: duplicate
/// points, or a kernel/shape that is numerically indefinite): LU of the full
/// saddle-point system.
fn solve_dense_lu(
    dim: usize,
    m: usize,
    centres: &[f64],
    spec: &SolveSpec,
    p: Mat<f64>,
    mut rhs: Mat<f64>,
) -> Option<Mat<f64>> {
    let t = p.ncols();
    let a = assemble(dim, m, centres, spec);
    let n = m + t;
    let mut full = Mat::<f64>::zeros(n, n);
    full.as_mut()
        .submatrix_mut(0, 0, m, m)
        .copy_from(a.as_ref());
    full.as_mut()
        .submatrix_mut(0, m, m, t)
        .copy_from(p.as_ref());
    full.as_mut()
        .submatrix_mut(m, 0, t, m)
        .copy_from(p.transpose());
    full.partial_piv_lu().solve_in_place(rhs.as_mut());
    finite(rhs)
}

/// The kernel matrix A (+ smoothing on the diagonal), built by whole columns
/// (contiguous) so the kernel runs vectorised.
fn assemble(dim: usize, m: usize, centres: &[f64], spec: &SolveSpec) -> Mat<f64> {
    let mut a = Mat::<f64>::zeros(m, m);
    for j in 0..m {
        let col = a
            .col_mut(j)
            .try_as_col_major_mut()
            .expect("owned columns are contiguous")
            .as_slice_mut();
        for ax in 0..dim {
            let xs = &centres[ax * m..(ax + 1) * m];
            let cj = xs[j];
            for (r, &x) in col.iter_mut().zip(xs) {
                let d = x - cj;
                *r += d * d;
            }
        }
        phi_fill(spec.kernel, col);
        col[j] += spec.smoothing;
    }
    a
}

/// The saddle-point system [A P; Pᵀ 0][λ; a] = [f; 0] by the null-space method:
/// with P = Q [R; 0] (Householder, t reflectors), λ = Q₂ μ where
/// (Q₂ᵀ A Q₂) μ = Q₂ᵀ f is positive definite for (conditionally) positive
/// definite kernels, so one Cholesky (⅓m³) replaces an LU (⅔m³); then R a =
/// Q₁ᵀ (f − A λ).
/// `a` is overwritten (with QᵀAQ).
fn solve_null_space(a: &mut Mat<f64>, p: &Mat<f64>, f: &Mat<f64>) -> Option<Mat<f64>> {
    let (m, t, c) = (a.nrows(), p.ncols(), f.ncols());
    if m <= t {
        return None;
    }
    let mut r = p.clone();
    let mut g = f.subrows(0, m).to_owned();
    let mut refl: Vec<(Vec<f64>, f64)> = Vec::with_capacity(t);
    for k in 0..t {
        // Householder reflector H = I − β v vᵀ zeroing r[k+1.., k].
        let norm = (k..m).map(|i| r[(i, k)] * r[(i, k)]).sum::<f64>().sqrt();
        if norm == 0.0 {
            return None;
        }
        let alpha = if r[(k, k)] > 0.0 { -norm } else { norm };
        let mut v = vec![0.0; m];
        v[k] = r[(k, k)] - alpha;
        for i in k + 1..m {
            v[i] = r[(i, k)];
        }
        let vv: f64 = v[k..].iter().map(|x| x * x).sum();
        if vv == 0.0 {
            return None;
        }
        let beta = 2.0 / vv;
        for q in k..t {
            let d: f64 = (k..m).map(|i| v[i] * r[(i, q)]).sum();
            for i in k..m {
                r[(i, q)] -= beta * d * v[i];
            }
        }
        for q in 0..c {
            let d: f64 = (k..m).map(|i| v[i] * g[(i, q)]).sum();
            for i in k..m {
                g[(i, q)] -= beta * d * v[i];
            }
        }
        refl.push((v, beta));
    }
    // QᵀAQ in one pass with the compact WY form Q = H₀…H_{t−1} = I − V T Vᵀ:
    // with W = A V, M = Tᵀ (VᵀW) T (symmetric) and Z = W T − ½ V M,
    // QᵀAQ = A − V Zᵀ − Z Vᵀ (one rank-2t update, a GEMM).
    let vm = Mat::<f64>::from_fn(m, t, |i, k| refl[k].0[i]);
    let mut tt = Mat::<f64>::zeros(t, t);
    for k in 0..t {
        tt[(k, k)] = refl[k].1;
        if k > 0 {
            let vtv = vm.subcols(0, k).transpose() * vm.col(k);
            let col = tt.submatrix(0, 0, k, k) * &vtv;
            for i in 0..k {
                tt[(i, k)] = -refl[k].1 * col[i];
            }
        }
    }
    let w = &*a * &vm;
    let mmat = tt.transpose() * (vm.transpose() * &w) * &tt;
    let z = &w * &tt - &vm * &mmat * faer::Scale(0.5);
    let mut lhs = Mat::<f64>::zeros(m, 2 * t);
    lhs.as_mut().subcols_mut(0, t).copy_from(vm.as_ref());
    lhs.as_mut().subcols_mut(t, t).copy_from(z.as_ref());
    let mut rhs = Mat::<f64>::zeros(2 * t, m);
    rhs.as_mut().subrows_mut(0, t).copy_from(z.transpose());
    rhs.as_mut().subrows_mut(t, t).copy_from(vm.transpose());
    faer::linalg::matmul::matmul(
        a.as_mut(),
        faer::Accum::Add,
        lhs.as_ref(),
        rhs.as_ref(),
        -1.0,
        faer::Par::Seq,
    );
    let llt = a.submatrix(t, t, m - t, m - t).llt(Side::Lower).ok()?;
    let mut mu = g.subrows(t, m - t).to_owned();
    llt.solve_in_place(mu.as_mut());
    // Polynomial coefficients: R a = g₁ − (QᵀAQ)₁₂ μ (back substitution, t ≤ 4).
    let top = g.subrows(0, t) - a.submatrix(0, t, t, m - t) * &mu;
    let mut out = Mat::<f64>::zeros(m + t, c);
    for q in 0..c {
        for i in (0..t).rev() {
            let mut v = top[(i, q)];
            for j in i + 1..t {
                v -= r[(i, j)] * out[(m + j, q)];
            }
            out[(m + i, q)] = v / r[(i, i)];
        }
        // λ = Q [0; μ] = H₀ … H_{t−1} [0; μ].
        let mut lam = vec![0.0; m];
        for i in t..m {
            lam[i] = mu[(i - t, q)];
        }
        for (v, beta) in refl.iter().rev() {
            let d: f64 = v.iter().zip(&lam).map(|(a, b)| a * b).sum();
            for (l, vi) in lam.iter_mut().zip(v) {
                *l -= beta * d * vi;
            }
        }
        for i in 0..m {
            out[(i, q)] = lam[i];
        }
    }
    finite(out)
}

/// Sparse Cholesky of the compactly supported A; the polynomial block through
/// its Schur complement (one factorisation, channels and polynomial columns as
/// right-hand sides).
fn solve_sparse(
    dim: usize,
    m: usize,
    centres: &[f64],
    spec: &SolveSpec,
    rhs: Mat<f64>,
) -> Option<Mat<f64>> {
    let k = spec.kernel;
    let support = 1.0 / k.shape;
    let buckets = Buckets::new(dim, m, centres, support);
    let mut trip = Vec::with_capacity(m * 24);
    let mut u = [0.0; 3];
    for j in 0..m {
        for ax in 0..dim {
            u[ax] = centres[ax * m + j];
        }
        buckets.visit(dim, centres, &u, |i, r2| {
            if i > j {
                trip.push(Triplet::new(i, j, k.phi_r2(r2)));
            }
        });
        trip.push(Triplet::new(j, j, k.phi_r2(0.0) + spec.smoothing));
    }
    let a = SparseColMat::<usize, f64>::try_new_from_triplets(m, m, &trip).ok()?;
    drop(trip);
    let llt = a.sp_cholesky(Side::Lower).ok()?;
    let c = rhs.ncols();
    let t = spec.terms;
    // Columns: the channels, then the polynomial basis P.
    let mut y = Mat::<f64>::zeros(m, c + t);
    let mut pr = [0.0; 4];
    for i in 0..m {
        for q in 0..c {
            y[(i, q)] = rhs[(i, q)];
        }
        for ax in 0..dim {
            u[ax] = centres[ax * m + i];
        }
        poly_row(dim, t, &u, &mut pr);
        for q in 0..t {
            y[(i, c + q)] = pr[q];
        }
    }
    let p = y.subcols(c, t).to_owned();
    llt.solve_in_place_with_conj(faer::Conj::No, y.as_mut());
    let mut out = Mat::<f64>::zeros(m + t, c);
    if t == 0 {
        out.as_mut().copy_from(y.as_ref());
        return finite(out);
    }
    // S = Pᵀ A⁻¹ P, b = Pᵀ A⁻¹ f; a = S⁻¹ b; λ = A⁻¹ f − A⁻¹ P a.
    let s = p.transpose() * y.subcols(c, t);
    let mut coef = p.transpose() * y.subcols(0, c);
    s.partial_piv_lu().solve_in_place(coef.as_mut());
    let lam = y.subcols(0, c) - y.subcols(c, t) * &coef;
    out.as_mut().subrows_mut(0, m).copy_from(lam.as_ref());
    out.as_mut().subrows_mut(m, t).copy_from(coef.as_ref());
    finite(out)
}

fn finite(m: Mat<f64>) -> Option<Mat<f64>> {
    let ok = (0..m.ncols()).all(|j| (0..m.nrows()).all(|i| m[(i, j)].is_finite()));
    ok.then_some(m)
}

/// A uniform hash grid over a cell's centres with buckets the size of the
/// kernel's support, so a point's neighbours within the support lie in its
/// own and the adjacent buckets (a kd-tree radius query for fixed radius).
#[derive(Clone, Debug)]
pub struct Buckets {
    lo: [f64; 3],
    inv: f64,
    n: [usize; 3],
    /// Bucket start offsets into `order` (CSR).
    start: Vec<u32>,
    order: Vec<u32>,
    r2max: f64,
}

impl Buckets {
    pub fn new(dim: usize, m: usize, centres: &[f64], support: f64) -> Buckets {
        let mut lo = [0.0; 3];
        let mut n = [1usize; 3];
        for a in 0..dim {
            let xs = &centres[a * m..(a + 1) * m];
            let (mn, mx) = xs
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            lo[a] = if m > 0 { mn } else { 0.0 };
            n[a] = if m > 0 {
                (((mx - mn) / support).floor() as usize + 1).min(1 << 10)
            } else {
                1
            };
        }
        let inv = 1.0 / support;
        let nb: usize = n.iter().product();
        let bucket = |i: usize| -> usize {
            let mut id = 0;
            for a in 0..dim {
                let c = (((centres[a * m + i] - lo[a]) * inv) as usize).min(n[a] - 1);
                id = id * n[a] + c;
            }
            id
        };
        let mut start = vec![0u32; nb + 1];
        let ids: Vec<usize> = (0..m).map(bucket).collect();
        for &b in &ids {
            start[b + 1] += 1;
        }
        for b in 0..nb {
            start[b + 1] += start[b];
        }
        let mut fill = start.clone();
        let mut order = vec![0u32; m];
        for (i, &b) in ids.iter().enumerate() {
            order[fill[b] as usize] = i as u32;
            fill[b] += 1;
        }
        Buckets {
            lo,
            inv,
            n,
            start,
            order,
            r2max: support * support,
        }
    }

    /// Calls `f(j, r²)` for every centre j within the support of `u`.
    #[inline]
    pub fn visit(&self, dim: usize, centres: &[f64], u: &[f64; 3], mut f: impl FnMut(usize, f64)) {
        let m = self.order.len();
        let mut lo = [0usize; 3];
        let mut hi = [0usize; 3];
        for a in 0..dim {
            let c = ((u[a] - self.lo[a]) * self.inv).floor();
            let c = c.clamp(-1.0, self.n[a] as f64) as i64;
            lo[a] = (c - 1).max(0) as usize;
            hi[a] = ((c + 1).max(0) as usize).min(self.n[a] - 1);
            if c + 1 < 0 || c > self.n[a] as i64 {
                return;
            }
        }
        let mut idx = [0usize; 3];
        idx[..dim].copy_from_slice(&lo[..dim]);
        loop {
            let mut id = 0;
            for a in 0..dim {
                id = id * self.n[a] + idx[a];
            }
            for &j in &self.order[self.start[id] as usize..self.start[id + 1] as usize] {
                let j = j as usize;
                let mut r2 = 0.0;
                for a in 0..dim {
                    let d = u[a] - centres[a * m + j];
                    r2 += d * d;
                }
                if r2 < self.r2max {
                    f(j, r2);
                }
            }
            // Next bucket in the neighbourhood (odometer over the axes).
            let mut a = dim;
            loop {
                if a == 0 {
                    return;
                }
                a -= 1;
                if idx[a] < hi[a] {
                    idx[a] += 1;
                    break;
                }
                idx[a] = lo[a];
            }
        }
    }

    /// Σ f(j, r²) over the centres within the support of `u`.
    #[inline]
    pub fn sum(
        &self,
        dim: usize,
        centres: &[f64],
        u: &[f64; 3],
        mut f: impl FnMut(usize, f64) -> f64,
    ) -> f64 {
        let mut s = 0.0;
        self.visit(dim, centres, u, |j, r2| s += f(j, r2));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Kernel;

    #[test]
    fn vector_and_scalar_kernel_fills_are_bit_identical() {
        for kernel in [Kernel::ThinPlate, Kernel::Cubic, Kernel::Multiquadric] {
            let k = Scaled { kernel, shape: 0.7 };
            let r2: Vec<f64> = (0..203)
                .map(|i| (i as f64 * 0.37).sin().abs() * 3.0)
                .collect();
            let mut fast = r2.clone();
            phi_fill(k, &mut fast);
            for (f, r) in fast.iter().zip(&r2) {
                assert_eq!(f.to_bits(), k.phi_r2(*r).to_bits(), "{kernel} at r2 = {r}");
            }
        }
    }

    #[test]
    fn vector_and_scalar_sums_are_bit_identical() {
        let mut s = 7u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        for dim in 1..=3 {
            for m in [0, 5, 8, 13, 64, 203] {
                let centres: Vec<f64> = (0..dim * m).map(|_| next()).collect();
                let lam: Vec<f64> = (0..m).map(|_| next()).collect();
                for kernel in [Kernel::ThinPlate, Kernel::Cubic, Kernel::Gaussian] {
                    let k = Scaled { kernel, shape: 1.5 };
                    for _ in 0..20 {
                        let u = [next(), next(), next()];
                        let a = dense_sum(dim, &centres, &lam, &u, k);
                        let b = dense_sum_any(dim, &centres, &lam, &u, k);
                        assert_eq!(a.to_bits(), b.to_bits(), "{kernel} dim {dim} m {m}");
                        #[cfg(target_arch = "x86_64")]
                        if std::arch::is_x86_feature_detected!("avx2") {
                            // SAFETY: AVX2 is available.
                            let c = unsafe { dense_sum_avx2(dim, &centres, &lam, &u, k) };
                            assert_eq!(c.to_bits(), b.to_bits(), "avx2 {kernel} dim {dim} m {m}");
                        }
                    }
                }
            }
        }
    }
}

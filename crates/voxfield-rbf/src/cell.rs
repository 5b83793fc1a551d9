//! One cell's local interpolant s(x) = Σ λ_j φ(‖u − u_j‖) + p(u), in local
//! coordinates u = (x − centre)/scale so every cell's system is well scaled.

use faer::linalg::solvers::{Solve, SolveCore};
use faer::sparse::{SparseColMat, Triplet};
use faer::{Mat, Side};
use voxfield_core::{Error, Result};

use crate::blend::CellBox;
use crate::kernel::Scaled;

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
        let mut scale = 0.0f64;
        for a in 0..dim {
            centre[a] = 0.5 * (bounds.lo[a] + bounds.hi[a]);
            scale = scale.max(0.5 * (bounds.hi[a] - bounds.lo[a]));
        }
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
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { dense_sum_avx2(dim, centres, lam, u, k) };
    }
    dense_sum_any(dim, centres, lam, u, k)
}

/// TPS and cubic with AVX2 intrinsics: the same operations in the same order
/// as `lanes` (8 lanes, summed in lane order), so results are bit-identical.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dense_sum_avx2(dim: usize, centres: &[f64], lam: &[f64], u: &[f64; 3], k: Scaled) -> f64 {
    use crate::kernel::Kernel;
    use std::arch::x86_64::*;
    let tps = match k.kernel {
        Kernel::ThinPlate => true,
        Kernel::Cubic => false,
        _ => return dense_sum_any(dim, centres, lam, u, k),
    };
    let m = lam.len();
    let full = m - m % 8;
    let ua = [
        _mm256_set1_pd(u[0]),
        _mm256_set1_pd(u[1]),
        _mm256_set1_pd(u[2]),
    ];
    let phi = |r2: __m256d| -> __m256d {
        if !tps {
            return _mm256_mul_pd(r2, _mm256_sqrt_pd(r2));
        }
        let one = _mm256_set1_pd(1.0);
        let bits = _mm256_castpd_si256(r2);
        let mant = _mm256_castsi256_pd(_mm256_or_si256(
            _mm256_and_si256(bits, _mm256_set1_epi64x(0x000f_ffff_ffff_ffff)),
            _mm256_set1_epi64x(0x3ff0_0000_0000_0000),
        ));
        let expo = _mm256_sub_pd(
            _mm256_sub_pd(
                _mm256_castsi256_pd(_mm256_or_si256(
                    _mm256_set1_epi64x(0x4330_0000_0000_0000),
                    _mm256_srli_epi64(bits, 52),
                )),
                _mm256_set1_pd(4_503_599_627_370_496.0),
            ),
            _mm256_set1_pd(1023.0),
        );
        let big = _mm256_cmp_pd(mant, _mm256_set1_pd(std::f64::consts::SQRT_2), _CMP_GT_OQ);
        let mm = _mm256_blendv_pd(mant, _mm256_mul_pd(mant, _mm256_set1_pd(0.5)), big);
        let kk = _mm256_blendv_pd(expo, _mm256_add_pd(expo, one), big);
        let z = _mm256_div_pd(_mm256_sub_pd(mm, one), _mm256_add_pd(mm, one));
        let z2 = _mm256_mul_pd(z, z);
        let mut p = _mm256_set1_pd(1.0 / 19.0);
        for c in [17.0, 15.0, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0, 1.0] {
            p = _mm256_add_pd(_mm256_mul_pd(p, z2), _mm256_set1_pd(1.0 / c));
        }
        let ln = _mm256_add_pd(
            _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(2.0), z), p),
            _mm256_mul_pd(kk, _mm256_set1_pd(std::f64::consts::LN_2)),
        );
        _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(0.5), r2), ln)
    };
    let mut acc = [_mm256_setzero_pd(); 2];
    for j in (0..full).step_by(8) {
        for (h, acc) in acc.iter_mut().enumerate() {
            let jj = j + 4 * h;
            let mut r2 = _mm256_setzero_pd();
            for a in 0..dim {
                // SAFETY: jj + 3 < full <= m, and axis a holds m centres.
                let c = unsafe { _mm256_loadu_pd(centres.as_ptr().add(a * m + jj)) };
                let d = _mm256_sub_pd(ua[a], c);
                r2 = _mm256_add_pd(r2, _mm256_mul_pd(d, d));
            }
            // SAFETY: as above, for the coefficients.
            let l = unsafe { _mm256_loadu_pd(lam.as_ptr().add(jj)) };
            *acc = _mm256_add_pd(*acc, _mm256_mul_pd(l, phi(r2)));
        }
    }
    let mut lanes = [0.0f64; 8];
    // SAFETY: `lanes` holds 8 doubles.
    unsafe {
        _mm256_storeu_pd(lanes.as_mut_ptr(), acc[0]);
        _mm256_storeu_pd(lanes.as_mut_ptr().add(4), acc[1]);
    }
    let phi1 = |r2: f64| {
        if tps {
            0.5 * r2 * crate::kernel::ln(r2)
        } else {
            r2 * r2.sqrt()
        }
    };
    let mut tail = 0.0;
    for j in full..m {
        let mut r2 = 0.0;
        for a in 0..dim {
            let d = u[a] - centres[a * m + j];
            r2 += d * d;
        }
        tail += lam[j] * phi1(r2);
    }
    let mut s = 0.0;
    for v in lanes {
        s += v;
    }
    s + tail
}

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
    const L: usize = 8;
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
    let n = m + t;
    let k = spec.kernel;
    let mut a = Mat::<f64>::zeros(n, n);
    let mut pr = [0.0; 4];
    let mut u = [0.0; 3];
    for j in 0..m {
        for i in j..m {
            let mut r2 = 0.0;
            for ax in 0..dim {
                let d = centres[ax * m + i] - centres[ax * m + j];
                r2 += d * d;
            }
            let v = k.phi_r2(r2);
            a[(i, j)] = v;
            a[(j, i)] = v;
        }
        a[(j, j)] += spec.smoothing;
        for ax in 0..dim {
            u[ax] = centres[ax * m + j];
        }
        poly_row(dim, t, &u, &mut pr);
        for q in 0..t {
            a[(m + q, j)] = pr[q];
            a[(j, m + q)] = pr[q];
        }
    }
    if t == 0 {
        if let Ok(llt) = a.llt(Side::Lower) {
            llt.solve_in_place(rhs.as_mut());
            return finite(rhs);
        }
    }
    let lu = a.partial_piv_lu();
    lu.solve_in_place(rhs.as_mut());
    finite(rhs)
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
                    }
                }
            }
        }
    }
}

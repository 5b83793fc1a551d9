//! Per-cell linear solves: dense kernels by the null-space method (QR of the
//! polynomial block, then Cholesky; LU as a fallback), compactly supported
//! kernels by sparse Cholesky (faer).

use faer::linalg::solvers::{Solve, SolveCore};
use faer::sparse::{SparseColMat, Triplet};
use faer::{Mat, Side};

use crate::buckets::Buckets;
use crate::kernel::Scaled;
use crate::sums::phi_fill;

/// What a cell solve needs besides its points.
pub struct SolveSpec {
    pub dim: usize,
    pub channels: usize,
    pub kernel: Scaled,
    pub terms: usize,
    /// Smoothing already in local units.
    pub smoothing: f64,
}

/// The polynomial terms (1, u) of `u`, the first `terms` of them, into `out`.
#[inline(always)]
pub(crate) fn poly_row(dim: usize, terms: usize, u: &[f64], out: &mut [f64]) {
    if terms > 0 {
        out[0] = 1.0;
    }
    if terms > 1 {
        out[1..=dim].copy_from_slice(&u[..dim]);
    }
}

/// Builds A (+ smoothing) and the polynomial block, factors, solves all channels.
pub(crate) fn solve_dense(
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
pub(crate) fn solve_sparse(
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

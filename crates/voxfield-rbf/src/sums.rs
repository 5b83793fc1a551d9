//! Kernel sums Σ λ_j φ(‖u − u_j‖) over a cell's centres and kernel matrix fills:
//! one body per instruction set (AVX-512, AVX2, scalar), bit-identical results.

use crate::kernel::Scaled;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{__m256d, __m512d};

/// Σ λ_j φ(‖u − u_j‖) over all centres. The loop is written in lanes so it
/// vectorises (the kernels, TPS's logarithm included, are branch-free), and is
/// compiled twice: for the baseline target and, chosen at run time, for AVX2.
/// No FMA contraction, so both give bit-identical results.
#[inline]
pub(crate) fn dense_sum(dim: usize, centres: &[f64], lam: &[f64], u: &[f64; 3], k: Scaled) -> f64 {
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
pub(crate) fn phi_fill(k: Scaled, r2s: &mut [f64]) {
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

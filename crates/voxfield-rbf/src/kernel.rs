//! Radial kernels φ(r), with the sign conventions of scipy's `RBFInterpolator`
//! (so every kernel is positive definite or conditionally positive definite of
//! the order its minimum polynomial degree covers).

use std::fmt;
use std::str::FromStr;

use voxfield_core::{Error, Result};

/// A radial basis function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Wendland φ₃,₁ = (1−t)⁴₊(4t+1), t = r/α: C2, positive definite for d ≤ 3, compact.
    WendlandC2,
    /// Wendland φ₃,₂ = (1−t)⁶₊(35t²+18t+3)/3: C4, positive definite for d ≤ 3, compact.
    WendlandC4,
    /// Thin-plate spline r² ln r: conditionally positive definite of order 2.
    ThinPlate,
    /// r³: conditionally positive definite of order 2.
    Cubic,
    /// exp(−(εr)²): positive definite.
    Gaussian,
    /// −√(1+(εr)²): conditionally positive definite of order 1.
    Multiquadric,
}

impl Kernel {
    pub const ALL: [Kernel; 6] = [
        Kernel::WendlandC2,
        Kernel::WendlandC4,
        Kernel::ThinPlate,
        Kernel::Cubic,
        Kernel::Gaussian,
        Kernel::Multiquadric,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kernel::WendlandC2 => "wendland-c2",
            Kernel::WendlandC4 => "wendland-c4",
            Kernel::ThinPlate => "tps",
            Kernel::Cubic => "cubic",
            Kernel::Gaussian => "gaussian",
            Kernel::Multiquadric => "mq",
        }
    }

    /// Compactly supported: the matrix is sparse and solved by sparse Cholesky.
    pub fn is_compact(self) -> bool {
        matches!(self, Kernel::WendlandC2 | Kernel::WendlandC4)
    }

    /// The lowest polynomial degree that makes the system solvable (−1 = none).
    pub fn min_degree(self) -> i32 {
        match self {
            Kernel::ThinPlate | Kernel::Cubic => 1,
            Kernel::Multiquadric => 0,
            _ => -1,
        }
    }

    /// The degree used when the caller gives none: linear for all kernels, so
    /// linear trends are reproduced exactly.
    pub fn default_degree(self) -> i32 {
        1
    }

    /// Whether the kernel takes a shape parameter (ε or support radius α).
    pub fn has_shape(self) -> bool {
        !matches!(self, Kernel::ThinPlate | Kernel::Cubic)
    }

    /// The power k with φ(s·r) = s^k·φ(r) + (a polynomial the degree-1 term absorbs),
    /// for kernels without a shape parameter; scales smoothing into local units.
    pub fn homogeneity(self) -> i32 {
        match self {
            Kernel::ThinPlate => 2,
            Kernel::Cubic => 3,
            _ => 0,
        }
    }

    /// Checks the kernel is valid in `dim` dimensions.
    pub fn check_dim(self, dim: usize) -> Result<()> {
        if self.is_compact() && dim > 3 {
            return Err(Error::invalid(format!(
                "kernel {self} is positive definite only in 1 to 3 dimensions, not {dim}"
            )));
        }
        if !(1..=3).contains(&dim) {
            return Err(Error::invalid(format!(
                "points must have 1, 2 or 3 coordinates, got {dim}"
            )));
        }
        Ok(())
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kernel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "wendland-c2" | "wendland" => Kernel::WendlandC2,
            "wendland-c4" => Kernel::WendlandC4,
            "tps" | "thin-plate-spline" | "thin-plate" => Kernel::ThinPlate,
            "cubic" => Kernel::Cubic,
            "gaussian" => Kernel::Gaussian,
            "mq" | "multiquadric" => Kernel::Multiquadric,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown kernel {s:?}; choose one of wendland-c2, wendland-c4, tps, cubic, gaussian, mq"
                )))
            }
        })
    }
}

/// A kernel with its shape parameter in a cell's local units: `shape` is ε for
/// Gaussian and multiquadric, 1/α (inverse support radius) for Wendland.
#[derive(Clone, Copy, Debug)]
pub struct Scaled {
    pub kernel: Kernel,
    pub shape: f64,
}

impl Scaled {
    /// φ as a function of the squared distance (no square root for TPS/Gaussian).
    #[inline(always)]
    pub fn phi_r2(&self, r2: f64) -> f64 {
        let e = self.shape;
        match self.kernel {
            Kernel::ThinPlate => 0.5 * r2 * ln(r2),
            Kernel::Cubic => r2 * r2.sqrt(),
            Kernel::Gaussian => (-(e * e) * r2).exp(),
            Kernel::Multiquadric => -(1.0 + e * e * r2).sqrt(),
            Kernel::WendlandC2 => {
                let t = (r2.sqrt() * e).min(1.0);
                let u = 1.0 - t;
                let u2 = u * u;
                u2 * u2 * (4.0 * t + 1.0)
            }
            Kernel::WendlandC4 => {
                let t = (r2.sqrt() * e).min(1.0);
                let u = 1.0 - t;
                let u3 = u * u * u;
                u3 * u3 * (t * (35.0 * t + 18.0) + 3.0) * (1.0 / 3.0)
            }
        }
    }

    /// φ'(r)/r as a function of r², for gradients (0 at r = 0, where φ'(0) = 0).
    #[inline(always)]
    pub fn dphi_over_r(&self, r2: f64) -> f64 {
        if r2 == 0.0 {
            return 0.0;
        }
        let e = self.shape;
        match self.kernel {
            Kernel::ThinPlate => ln(r2) + 1.0,
            Kernel::Cubic => 3.0 * r2.sqrt(),
            Kernel::Gaussian => -2.0 * e * e * (-(e * e) * r2).exp(),
            Kernel::Multiquadric => -(e * e) / (1.0 + e * e * r2).sqrt(),
            Kernel::WendlandC2 => {
                let t = (r2.sqrt() * e).min(1.0);
                let u = 1.0 - t;
                -20.0 * e * e * u * u * u
            }
            Kernel::WendlandC4 => {
                let t = (r2.sqrt() * e).min(1.0);
                let u = 1.0 - t;
                let u5 = u * u * u * u * u;
                -56.0 / 3.0 * e * e * u5 * (5.0 * t + 1.0)
            }
        }
    }
}

/// Natural logarithm for x ≥ 0 written without branches so loops over it
/// vectorise (std's `ln` is a libm call); ln(0) gives about −744, which the
/// caller multiplies by 0. Relative error ≤ 2e-16 for normal x.
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    const SQRT2: f64 = std::f64::consts::SQRT_2;
    let bits = x.to_bits();
    let mant = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    // The exponent as a float through the 2^52 trick (no int→float conversion).
    let expo =
        f64::from_bits(0x4330_0000_0000_0000 | (bits >> 52)) - 4_503_599_627_370_496.0 - 1023.0;
    let big = mant > SQRT2;
    let m = if big { mant * 0.5 } else { mant };
    let k = if big { expo + 1.0 } else { expo };
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    // 2·atanh(z) = 2z·Σ z^{2i}/(2i+1), |z| ≤ 0.1716, so ten terms reach 1e-17.
    // Estrin's scheme: a shallow dependency chain, so vector loops overlap well.
    let p = atanh_series(z2);
    2.0 * z * p + k * std::f64::consts::LN_2
}

/// Σ_{i<10} w^i/(2i+1) by Estrin's scheme (shared with the AVX2 path, which
/// repeats these exact operations).
#[inline(always)]
pub fn atanh_series(w: f64) -> f64 {
    let w2 = w * w;
    let w4 = w2 * w2;
    let w8 = w4 * w4;
    let q0 = 1.0 + w * (1.0 / 3.0);
    let q1 = 1.0 / 5.0 + w * (1.0 / 7.0);
    let q2 = 1.0 / 9.0 + w * (1.0 / 11.0);
    let q3 = 1.0 / 13.0 + w * (1.0 / 15.0);
    let q4 = 1.0 / 17.0 + w * (1.0 / 19.0);
    let r0 = q0 + w2 * q1;
    let r1 = q2 + w2 * q3;
    (r0 + w4 * r1) + w8 * q4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_ln_matches_std() {
        let mut worst = 0.0f64;
        let mut x = 1e-300;
        while x < 1e300 {
            for f in [1.0, 1.1, 1.41, 1.4143, 1.7, 1.999] {
                let v = x * f;
                let err = (ln(v) - v.ln()).abs() / v.ln().abs().max(1.0);
                worst = worst.max(err);
            }
            x *= 3.7;
        }
        assert!(worst < 4e-16, "worst relative error {worst}");
        assert_eq!(ln(1.0), 0.0);
        assert!((0.5 * 0.0 * ln(0.0)) == 0.0);
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for kernel in Kernel::ALL {
            let k = Scaled { kernel, shape: 1.3 };
            for r in [0.05, 0.3, 0.6, 0.9] {
                let h = 1e-6;
                let fd = (k.phi_r2((r + h) * (r + h)) - k.phi_r2((r - h) * (r - h))) / (2.0 * h);
                let an = k.dphi_over_r(r * r) * r;
                assert!(
                    (fd - an).abs() < 1e-6 * (1.0 + an.abs()),
                    "{kernel} r={r}: {fd} vs {an}"
                );
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for k in Kernel::ALL {
            assert_eq!(k.name().parse::<Kernel>().unwrap(), k);
        }
        assert!("quintic".parse::<Kernel>().is_err());
    }
}

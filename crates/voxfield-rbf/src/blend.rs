//! The regular grid of domains and the blending weights of the cells built on it.
//!
//! A cell is a domain enlarged by δ on every side. Along one axis its weight
//! rises over [L−δ, L+δ] and falls over [R−δ, R+δ]; two neighbours' ramps over
//! the same band sum to exactly 1 because S(t) + S(1−t) = 1 for every ramp S.
//! The tensor product over axes is then a partition of unity (bilinear /
//! trilinear in corners). Ramps are switched off on faces on the outer boundary,
//! so the fit extrapolates instead of fading to 0. Evaluation still divides by
//! the weight sum, which keeps grown cells (non-uniform δ) continuous too.

use serde::{Deserialize, Serialize};

/// Shape of the blending ramp across an overlap band.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ramp {
    /// t: the blend is only C0 at the ramp ends.
    Linear,
    /// t²(3−2t): C1 (the default).
    Smooth,
    /// 6t⁵−15t⁴+10t³: C2.
    Quintic,
}

impl Ramp {
    #[inline(always)]
    pub fn eval(self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match self {
            Ramp::Linear => t,
            Ramp::Smooth => t * t * (3.0 - 2.0 * t),
            Ramp::Quintic => t * t * t * (t * (6.0 * t - 15.0) + 10.0),
        }
    }

    /// dS/dt (0 outside [0, 1]).
    #[inline(always)]
    pub fn deriv(self, t: f64) -> f64 {
        if !(0.0..=1.0).contains(&t) {
            return 0.0;
        }
        match self {
            Ramp::Linear => 1.0,
            Ramp::Smooth => 6.0 * t * (1.0 - t),
            Ramp::Quintic => 30.0 * t * t * (t - 1.0) * (t - 1.0),
        }
    }
}

/// The regular grid of domains tiling the points' bounding box.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainGrid {
    pub dim: usize,
    pub lo: [f64; 3],
    /// Domain size per axis.
    pub size: [f64; 3],
    pub count: [usize; 3],
}

/// `(Π ext / n)^(1/d)` computed through logarithms (exact scale whatever the units).
pub fn geometric_side(ext: &[f64], n: f64) -> f64 {
    let logs: f64 = ext.iter().map(|e| e.max(f64::MIN_POSITIVE).ln()).sum();
    ((logs - n.ln()) / ext.len() as f64).exp()
}

impl DomainGrid {
    /// About `target` domains over the box [lo, hi], as cubic as the extents allow.
    pub fn new(dim: usize, lo: [f64; 3], hi: [f64; 3], target: usize) -> DomainGrid {
        let ext: Vec<f64> = (0..dim).map(|a| hi[a] - lo[a]).collect();
        // The side of a cube of volume vol/target, computed in logs: extents of
        // 1e-300 or 1e200 neither underflow nor overflow.
        let h = geometric_side(&ext, target.max(1) as f64);
        let mut size = [1.0; 3];
        let mut count = [1; 3];
        for a in 0..dim {
            count[a] = ((ext[a] / h).round() as usize).clamp(1, 1 << 20);
            size[a] = ext[a] / count[a] as f64;
        }
        DomainGrid {
            dim,
            lo,
            size,
            count,
        }
    }

    pub fn len(&self) -> usize {
        self.count[..self.dim].iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The domain index along each axis holding `x` (clamped: outside points
    /// belong to the nearest boundary domain).
    #[inline(always)]
    pub fn coords_of(&self, x: &[f64]) -> [usize; 3] {
        let mut c = [0; 3];
        for a in 0..self.dim {
            let t = ((x[a] - self.lo[a]) / self.size[a]).floor();
            c[a] = if t >= 0.0 {
                (t as usize).min(self.count[a] - 1)
            } else {
                0
            };
        }
        c
    }

    #[inline(always)]
    pub fn id(&self, c: [usize; 3]) -> usize {
        let mut id = 0;
        for a in 0..self.dim {
            id = id * self.count[a] + c[a];
        }
        id
    }

    pub fn coords(&self, mut id: usize) -> [usize; 3] {
        let mut c = [0; 3];
        for a in (0..self.dim).rev() {
            c[a] = id % self.count[a];
            id /= self.count[a];
        }
        c
    }

    /// The lower corner of a domain.
    pub fn corner(&self, c: [usize; 3]) -> [f64; 3] {
        let mut p = [0.0; 3];
        for a in 0..self.dim {
            p[a] = self.lo[a] + c[a] as f64 * self.size[a];
        }
        p
    }

    /// The range of domain indices per axis a box [lo, hi] touches.
    pub fn range_of(&self, lo: &[f64; 3], hi: &[f64; 3]) -> ([usize; 3], [usize; 3]) {
        let a = self.coords_of(lo);
        let b = self.coords_of(hi);
        (a, b)
    }
}

/// A cell's box and its blending ramps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellBox {
    pub lo: [f64; 3],
    pub hi: [f64; 3],
    /// Ramp width per axis (2δ).
    pub width: [f64; 3],
    /// Faces on the outer boundary: no ramp, weight 1 beyond.
    pub open_lo: [bool; 3],
    pub open_hi: [bool; 3],
}

impl CellBox {
    /// Half the longest side: a cell's local coordinates are (x − centre) / scale.
    pub fn scale(&self, dim: usize) -> f64 {
        (0..dim)
            .map(|a| 0.5 * (self.hi[a] - self.lo[a]))
            .fold(0.0, f64::max)
    }

    /// Whether `x` lies in the closed box (outer faces unbounded).
    pub fn contains(&self, dim: usize, x: &[f64]) -> bool {
        (0..dim).all(|a| {
            (self.open_lo[a] || x[a] >= self.lo[a]) && (self.open_hi[a] || x[a] <= self.hi[a])
        })
    }

    /// The blending weight at `x` (0 outside the box).
    #[inline(always)]
    pub fn weight(&self, dim: usize, ramp: Ramp, x: &[f64]) -> f64 {
        let mut w = 1.0;
        for a in 0..dim {
            if !self.open_lo[a] {
                w *= ramp.eval((x[a] - self.lo[a]) / self.width[a]);
            }
            if !self.open_hi[a] {
                w *= ramp.eval((self.hi[a] - x[a]) / self.width[a]);
            }
        }
        w
    }

    /// The weight and its gradient at `x`.
    pub fn weight_grad(&self, dim: usize, ramp: Ramp, x: &[f64]) -> (f64, [f64; 3]) {
        let mut f = [1.0; 3];
        let mut df = [0.0; 3];
        for a in 0..dim {
            let (mut v, mut d) = (1.0, 0.0);
            if !self.open_lo[a] {
                let t = (x[a] - self.lo[a]) / self.width[a];
                let (s, ds) = (ramp.eval(t), ramp.deriv(t) / self.width[a]);
                d = d * s + v * ds;
                v *= s;
            }
            if !self.open_hi[a] {
                let t = (self.hi[a] - x[a]) / self.width[a];
                let (s, ds) = (ramp.eval(t), -ramp.deriv(t) / self.width[a]);
                d = d * s + v * ds;
                v *= s;
            }
            f[a] = v;
            df[a] = d;
        }
        let w: f64 = f[..dim].iter().product();
        let mut g = [0.0; 3];
        for a in 0..dim {
            g[a] = df[a] * (0..dim).filter(|&b| b != a).map(|b| f[b]).product::<f64>();
        }
        (w, g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_are_complementary() {
        for r in [Ramp::Linear, Ramp::Smooth, Ramp::Quintic] {
            for i in 0..=100 {
                let t = i as f64 / 100.0;
                assert!((r.eval(t) + r.eval(1.0 - t) - 1.0).abs() < 4e-15);
            }
            assert_eq!(r.eval(-0.5), 0.0);
            assert_eq!(r.eval(1.5), 1.0);
        }
    }

    #[test]
    fn grid_is_roughly_cubic_and_clamps() {
        let g = DomainGrid::new(2, [0.0, 0.0, 0.0], [4.0, 1.0, 0.0], 100);
        assert_eq!(g.count[..2], [20, 5]);
        assert_eq!(g.coords_of(&[-1.0, 0.5]), [0, 2, 0]);
        assert_eq!(g.coords_of(&[4.0, 1.0]), [19, 4, 0]);
        let id = g.id([3, 4, 0]);
        assert_eq!(g.coords(id), [3, 4, 0]);
    }
}

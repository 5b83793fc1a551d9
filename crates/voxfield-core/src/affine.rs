use crate::{Error, Result};

/// A 4×4 homogeneous map from index space (array axis order) to world space.
/// Stored as the 3×3 linear part and a translation; the last row is always 0 0 0 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    pub linear: [[f64; 3]; 3],
    pub translation: [f64; 3],
}

impl Default for Affine {
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl Affine {
    pub const IDENTITY: Affine = Affine {
        linear: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        translation: [0.0; 3],
    };

    /// Builds from a row-major 4×4 matrix, checking that it is finite, affine and invertible.
    pub fn from_rows(m: [[f64; 4]; 4]) -> Result<Self> {
        if m.iter().flatten().any(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "affine has a non-finite entry: {m:?}"
            )));
        }
        if m[3] != [0.0, 0.0, 0.0, 1.0] {
            return Err(Error::invalid(format!(
                "affine's last row must be 0,0,0,1, got {:?}",
                m[3]
            )));
        }
        let a = Affine {
            linear: [
                [m[0][0], m[0][1], m[0][2]],
                [m[1][0], m[1][1], m[1][2]],
                [m[2][0], m[2][1], m[2][2]],
            ],
            translation: [m[0][3], m[1][3], m[2][3]],
        };
        a.inverse()?;
        Ok(a)
    }

    /// Parses 16 (row-major 4×4) or 12 (top 3×4) comma-separated numbers.
    pub fn parse(s: &str) -> Result<Self> {
        let v: Vec<f64> = s
            .split(',')
            .map(|t| t.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::invalid(format!("affine '{s}': {e}")))?;
        let mut m = [[0.0; 4]; 4];
        match v.len() {
            12 | 16 => {
                for (i, x) in v.iter().enumerate() {
                    m[i / 4][i % 4] = *x;
                }
                if v.len() == 12 {
                    m[3] = [0.0, 0.0, 0.0, 1.0];
                }
            }
            n => {
                return Err(Error::invalid(format!(
                    "affine needs 16 (or 12) comma-separated numbers, got {n}"
                )))
            }
        }
        Self::from_rows(m)
    }

    /// A diagonal scaling plus offset (spacing and origin along the array axes).
    pub fn from_spacing_origin(spacing: [f64; 3], origin: [f64; 3]) -> Self {
        Affine {
            linear: [
                [spacing[0], 0.0, 0.0],
                [0.0, spacing[1], 0.0],
                [0.0, 0.0, spacing[2]],
            ],
            translation: origin,
        }
    }

    pub fn rows(&self) -> [[f64; 4]; 4] {
        let l = &self.linear;
        let t = &self.translation;
        [
            [l[0][0], l[0][1], l[0][2], t[0]],
            [l[1][0], l[1][1], l[1][2], t[1]],
            [l[2][0], l[2][1], l[2][2], t[2]],
            [0.0, 0.0, 0.0, 1.0],
        ]
    }

    #[inline]
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let l = &self.linear;
        let t = &self.translation;
        [
            l[0][0] * p[0] + l[0][1] * p[1] + l[0][2] * p[2] + t[0],
            l[1][0] * p[0] + l[1][1] * p[1] + l[1][2] * p[2] + t[1],
            l[2][0] * p[0] + l[2][1] * p[1] + l[2][2] * p[2] + t[2],
        ]
    }

    /// Applies only the linear part (for direction vectors).
    #[inline]
    pub fn apply_vector(&self, v: [f64; 3]) -> [f64; 3] {
        let l = &self.linear;
        [
            l[0][0] * v[0] + l[0][1] * v[1] + l[0][2] * v[2],
            l[1][0] * v[0] + l[1][1] * v[1] + l[1][2] * v[2],
            l[2][0] * v[0] + l[2][1] * v[1] + l[2][2] * v[2],
        ]
    }

    /// The map `x ↦ self(inner(x))`.
    pub fn after(&self, inner: &Affine) -> Affine {
        let mut linear = [[0.0; 3]; 3];
        for r in 0..3 {
            for c in 0..3 {
                linear[r][c] = (0..3).map(|k| self.linear[r][k] * inner.linear[k][c]).sum();
            }
        }
        Affine {
            linear,
            translation: self.apply(inner.translation),
        }
    }

    pub fn is_identity(&self) -> bool {
        *self == Self::IDENTITY
    }

    pub fn inverse(&self) -> Result<Affine> {
        let m = &self.linear;
        let c00 = m[1][1] * m[2][2] - m[1][2] * m[2][1];
        let c01 = m[1][2] * m[2][0] - m[1][0] * m[2][2];
        let c02 = m[1][0] * m[2][1] - m[1][1] * m[2][0];
        let det = m[0][0] * c00 + m[0][1] * c01 + m[0][2] * c02;
        let scale = m.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
        if !det.is_finite() || det.abs() <= 1e-12 * scale.powi(3) || scale == 0.0 {
            return Err(Error::invalid(format!(
                "affine is singular (determinant {det:e}); it cannot map world to index space"
            )));
        }
        let inv = [
            [
                c00 / det,
                (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det,
                (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det,
            ],
            [
                c01 / det,
                (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det,
                (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det,
            ],
            [
                c02 / det,
                (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det,
                (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det,
            ],
        ];
        let mut out = Affine {
            linear: inv,
            translation: [0.0; 3],
        };
        let t = out.apply_vector(self.translation);
        out.translation = [-t[0], -t[1], -t[2]];
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_round_trips() {
        let a = Affine::from_rows([
            [0.0, -2.0, 0.1, 10.0],
            [1.5, 0.0, 0.0, -3.0],
            [0.2, 0.0, 3.0, 7.0],
            [0.0, 0.0, 0.0, 1.0],
        ])
        .unwrap();
        let inv = a.inverse().unwrap();
        let p = [1.25, -7.5, 3.0];
        let q = inv.apply(a.apply(p));
        for i in 0..3 {
            assert!((p[i] - q[i]).abs() < 1e-12, "{p:?} vs {q:?}");
        }
    }

    #[test]
    fn rejects_nan_and_singular() {
        let mut m = Affine::IDENTITY.rows();
        m[1][2] = f64::NAN;
        assert!(Affine::from_rows(m)
            .unwrap_err()
            .to_string()
            .contains("non-finite"));
        let mut m = Affine::IDENTITY.rows();
        m[2] = [0.0, 0.0, 0.0, 1.0];
        assert!(Affine::from_rows(m)
            .unwrap_err()
            .to_string()
            .contains("singular"));
        assert!(Affine::parse("1,2,3").is_err());
    }
}

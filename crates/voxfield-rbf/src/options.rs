//! How to fit: the options of an RBF fit and their checks (shared by the
//! census, the plan of the cells and the fit itself).

use serde::{Deserialize, Serialize};
use voxfield_core::{Error, Result};

use crate::blend::Ramp;
use crate::cell::poly_terms;
use crate::kernel::Kernel;

/// What to do with points that share exactly the same coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Duplicates {
    /// Keep one point with the mean of their values (reported in the model info).
    Merge,
    /// Refuse the input, naming the first pair.
    Reject,
}

impl std::str::FromStr for Duplicates {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "merge" => Ok(Duplicates::Merge),
            "reject" => Ok(Duplicates::Reject),
            _ => Err(Error::invalid(format!(
                "unknown duplicates policy {s:?}; choose merge or reject"
            ))),
        }
    }
}

impl std::str::FromStr for Ramp {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "linear" => Ok(Ramp::Linear),
            "smooth" | "smoothstep" => Ok(Ramp::Smooth),
            "quintic" => Ok(Ramp::Quintic),
            _ => Err(Error::invalid(format!(
                "unknown ramp {s:?}; choose smooth, linear or quintic"
            ))),
        }
    }
}

/// How to fit. `Default` is thin-plate spline + linear polynomial, ~200 points
/// per domain, overlap 0.25, smoothstep blending.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub kernel: Kernel,
    /// Polynomial degree −1 (none), 0 or 1; `None` = the kernel's default (1).
    pub degree: Option<i32>,
    /// Added to the diagonal (scipy's `smoothing`); 0 interpolates.
    pub smoothing: f64,
    /// ε for gaussian and mq, the support radius α for wendland (world units);
    /// `None` = from the point density.
    pub shape: Option<f64>,
    /// Target points per domain; `None` = 200 for dense kernels (300 is ~1.6× slower
    /// and ~1.6× more accurate on smooth data), 3000 for wendland.
    pub points_per_cell: Option<usize>,
    /// Overlap δ as a fraction of the domain size, in (0, 0.5].
    pub overlap: f64,
    pub ramp: Ramp,
    pub duplicates: Duplicates,
    /// Cells holding fewer points grow until they hold this many; `None` = max(20, 3·(polynomial terms)).
    pub min_points: Option<usize>,
    /// Largest cell solved; a domain whose cell holds more (clustered points) is
    /// split in halves until its cells fit. `None` = 8 × the expected cell size,
    /// 1000 to 8192 (a 512 MiB matrix), for dense kernels; 200,000 for wendland.
    pub max_points: Option<usize>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            kernel: Kernel::ThinPlate,
            degree: None,
            smoothing: 0.0,
            shape: None,
            points_per_cell: None,
            overlap: 0.25,
            ramp: Ramp::Smooth,
            duplicates: Duplicates::Merge,
            min_points: None,
            max_points: None,
        }
    }
}

impl FitOptions {
    /// Checks the options for `dim`-D points with `channels` values: (the
    /// polynomial degree, its number of terms).
    pub fn check(&self, dim: usize, channels: usize) -> Result<(i32, usize)> {
        let kernel = self.kernel;
        kernel.check_dim(dim)?;
        if channels == 0 {
            return Err(Error::invalid("values need at least one channel"));
        }
        let degree = self.degree.unwrap_or(kernel.default_degree());
        if !(-1..=1).contains(&degree) {
            return Err(Error::invalid(format!(
                "degree must be -1, 0 or 1, not {degree}"
            )));
        }
        if degree < kernel.min_degree() {
            return Err(Error::invalid(format!(
                "kernel {kernel} is only conditionally positive definite: it needs degree >= {}, not {degree}",
                kernel.min_degree()
            )));
        }
        if !(self.overlap > 0.0 && self.overlap <= 0.5) {
            return Err(Error::invalid(format!(
                "overlap must be in (0, 0.5] (a fraction of the domain size), not {}",
                self.overlap
            )));
        }
        if !(self.smoothing >= 0.0 && self.smoothing.is_finite()) {
            return Err(Error::invalid(format!(
                "smoothing must be finite and >= 0, not {}",
                self.smoothing
            )));
        }
        if let Some(s) = self.shape {
            if !(s > 0.0 && s.is_finite()) {
                return Err(Error::invalid(format!(
                    "shape parameter must be finite and > 0, not {s}"
                )));
            }
        }
        let terms = poly_terms(dim, degree);
        if let Some(p) = self.points_per_cell {
            if p <= terms {
                return Err(Error::invalid(format!(
                    "points per cell must exceed the {terms} polynomial terms of degree {degree} in {dim}-D, not {p}"
                )));
            }
        }
        Ok((degree, terms))
    }
}

use std::fmt;
use std::str::FromStr;

use voxfield_core::Error;

/// Interpolation method. `Cubic` is local Catmull-Rom (no global prefilter), so it
/// stays lazy; it interpolates the samples and reproduces quadratics. `Spline` is
/// scipy's B-spline of order 2 to 5: with `prefilter` the samples are first turned
/// into spline coefficients (per chunk, with a halo; see `spline`), as
/// `map_coordinates(order=…)` does; without it the values are used as coefficients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Method {
    Nearest,
    #[default]
    Linear,
    Cubic,
    Spline {
        order: u8,
        prefilter: bool,
    },
}

impl Method {
    /// Taps per axis.
    pub fn taps(self) -> usize {
        match self {
            Method::Nearest => 1,
            Method::Linear => 2,
            Method::Cubic => 4,
            Method::Spline { order, .. } => order as usize + 1,
        }
    }
}

/// Edge handling, exactly as `scipy.ndimage.map_coordinates`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Outside `[0, n-1]` on any axis → `cval`; no interpolation beyond the edge.
    #[default]
    Constant,
    /// The volume is padded with `cval`, and interpolation blends towards it.
    GridConstant,
    /// Coordinates are clamped to the edge.
    Nearest,
    /// Half-sample symmetric: `d c b a | a b c d | d c b a`.
    Reflect,
    /// Whole-sample symmetric: `d c b | a b c d | c b a`.
    Mirror,
    /// scipy's `wrap` (period n−1, kept for compatibility).
    Wrap,
}

/// How a `VolumeField` samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleOptions {
    pub method: Method,
    pub mode: Mode,
    /// Value for positions outside (per `mode`) and for NaN/inf positions.
    pub cval: f64,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            method: Method::Linear,
            mode: Mode::Constant,
            cval: f64::NAN,
        }
    }
}

impl FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "nearest" | "0" => Ok(Method::Nearest),
            "linear" | "1" => Ok(Method::Linear),
            "cubic" => Ok(Method::Cubic),
            o => {
                let order = o
                    .strip_prefix("spline")
                    .unwrap_or(o)
                    .parse::<u8>()
                    .ok()
                    .filter(|k| (2..=5).contains(k));
                match order {
                    Some(order) => Ok(Method::Spline {
                        order,
                        prefilter: true,
                    }),
                    None => Err(Error::invalid(format!(
                        "unknown method '{o}' (expected nearest, linear, cubic (local Catmull-Rom), \
                         or a B-spline order 2 to 5 as spline2..spline5 or 2..5)"
                    ))),
                }
            }
        }
    }
}

impl FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "constant" => Ok(Mode::Constant),
            "grid-constant" => Ok(Mode::GridConstant),
            "nearest" => Ok(Mode::Nearest),
            "reflect" => Ok(Mode::Reflect),
            "mirror" => Ok(Mode::Mirror),
            "wrap" => Ok(Mode::Wrap),
            o => Err(Error::invalid(format!(
                "unknown mode '{o}' (expected constant, grid-constant, nearest, reflect, mirror or wrap)"
            ))),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Nearest => "nearest",
            Method::Linear => "linear",
            Method::Cubic => "cubic",
            Method::Spline {
                order,
                prefilter: true,
            } => return write!(f, "spline{order}"),
            Method::Spline {
                order,
                prefilter: false,
            } => return write!(f, "spline{order} (no prefilter)"),
        })
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Constant => "constant",
            Mode::GridConstant => "grid-constant",
            Mode::Nearest => "nearest",
            Mode::Reflect => "reflect",
            Mode::Mirror => "mirror",
            Mode::Wrap => "wrap",
        })
    }
}

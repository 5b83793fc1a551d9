//! Lazy sampling of any voxel volume as a continuous field.
//!
//! * `VolumeField` turns a zero-copy volume view into a [`Field`]: nearest, linear
//!   or local cubic (Catmull-Rom) interpolation with `scipy.ndimage.map_coordinates`
//!   edge modes, optionally through a world→index affine.
//! * `evaluate`, `evaluate_plane` and friends drive any `Field` over point lists,
//!   oblique planes, rectilinear grids and slabs without materialising coordinates,
//!   in parallel (rayon's current pool) with bounded per-thread scratch.

/// Runs `$body` with the const `$k` set to the method's taps per axis (1 to 6).
macro_rules! with_taps {
    ($method:expr, |$k:ident| $body:expr) => {
        match $method.taps() {
            1 => {
                const $k: usize = 1;
                $body
            }
            2 => {
                const $k: usize = 2;
                $body
            }
            3 => {
                const $k: usize = 3;
                $body
            }
            4 => {
                const $k: usize = 4;
                $body
            }
            5 => {
                const $k: usize = 5;
                $body
            }
            _ => {
                const $k: usize = 6;
                $body
            }
        }
    };
}

/// Fields sample values as coefficients; a prefiltered B-spline goes through
/// `spline::SplineCoefficients` (the facade's `field` does that).
fn check_unfiltered(method: Method) -> voxfield_core::Result<()> {
    if let Method::Spline {
        prefilter: true, ..
    } = method
    {
        return Err(voxfield_core::Error::invalid(
            "a prefiltered B-spline samples spline coefficients: build the field with voxfield::field \
             (or wrap the source in SplineCoefficients)",
        ));
    }
    Ok(())
}

mod chunked;
mod edge;
mod evaluate;
mod kernel;
mod linear;
mod options;
mod output;
mod positions;
mod sparse;
pub mod spline;
mod volume_field;

pub use chunked::ChunkedField;
pub use evaluate::{evaluate, evaluate_plane, Reduce};
pub use options::{Method, Mode, SampleOptions};
pub use output::OutElem;
pub use positions::{Grid, Plane, PointList, Positions};
pub use sparse::SparseField;
pub use volume_field::VolumeField;
pub use voxfield_core::Field;

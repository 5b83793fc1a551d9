//! Scattered-data RBF interpolation of millions of points by space subdivision
//! (Smolik & Skala 2018): a regular grid of domains, each enlarged into an
//! overlapping cell solved independently and in parallel, blended with a
//! partition of unity so the result is continuous and passes through every
//! sample.
//!
//! ```
//! use voxfield_rbf::{fit, FitOptions};
//! // z = x + 2y at 400 scattered points, fitted and evaluated at one point.
//! let pts: Vec<f64> = (0..400).flat_map(|i| [(i % 20) as f64 + 0.1 * (i % 7) as f64, (i / 20) as f64]).collect();
//! let vals: Vec<f64> = pts.chunks(2).map(|p| p[0] + 2.0 * p[1]).collect();
//! let model = fit(&pts, 2, &vals, 1, &FitOptions::default(), &voxfield_core::work::Watch::none()).unwrap();
//! let mut out = [0.0];
//! model.eval_one(&[3.3, 4.4], &mut out);
//! assert!((out[0] - (3.3 + 8.8)).abs() < 1e-9);
//! ```

pub mod blend;
pub mod buckets;
pub mod cell;
pub mod census;
pub mod eval;
pub mod file;
pub mod grid;
pub mod kernel;
pub mod model;
pub mod options;
pub mod parts;
mod solve;
pub mod subdivide;
mod sums;

pub use blend::Ramp;
pub use census::{Census, Spread};
pub use eval::RbfField;
pub use grid::GridVolume;
pub use kernel::Kernel;
pub use model::{assemble, fit, Duplicates, FitOptions, ModelInfo, RbfModel, DEFAULT_GRID_NODES};
pub use subdivide::{Plan, Solved};

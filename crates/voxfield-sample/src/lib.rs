//! Lazy sampling of any voxel volume as a continuous field.
//!
//! * `VolumeField` turns a zero-copy volume view into a [`Field`]: nearest, linear
//!   or local cubic (Catmull-Rom) interpolation with `scipy.ndimage.map_coordinates`
//!   edge modes, optionally through a world→index affine.
//! * `evaluate`, `evaluate_plane` and friends drive any `Field` over point lists,
//!   oblique planes, rectilinear grids and slabs without materialising coordinates,
//!   in parallel (rayon's current pool) with bounded per-thread scratch.

mod chunked;
mod edge;
mod evaluate;
mod kernel;
mod options;
mod output;
mod positions;
mod sparse;
mod volume_field;

pub use chunked::ChunkedField;
pub use evaluate::{evaluate, evaluate_plane, Reduce};
pub use options::{Method, Mode, SampleOptions};
pub use output::OutElem;
pub use positions::{Grid, Plane, PointList, Positions};
pub use sparse::SparseField;
pub use volume_field::VolumeField;
pub use voxfield_core::Field;

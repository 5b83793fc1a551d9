//! voxfield-render: pictures of any field on the CPU, by ray casting.
//!
//! A [`Scene`] holds what rays march through: the field's values at voxel
//! centres (a [`Lattice`], read once in chunk order, with a min/max macro-cell
//! grid for empty-space skipping) or the field itself for direct evaluation.
//! [`Scene::render`] makes a [`Frame`] for a [`Camera`], a [`Mode`] (DVR, MIP,
//! MinIP, mean, isosurface) and a [`Transfer`] function; [`image`] writes
//! frames as PNG, animated PNG or `.npy`. This crate knows fields and voxel
//! sources only, never storage formats.

mod camera;
mod colormap;
mod composite;
pub mod image;
mod lattice;
mod march;
mod project;
mod request;
mod scene;
mod transfer;

pub use camera::{other_axes, AxisView, Bounds, Camera, CameraSpec, Projection, MAX_SIDE};
pub use colormap::Colormap;
pub use composite::OPAQUE;
pub use image::{Background, Picture};
pub use lattice::{FieldLattice, Lattice, LatticeSource, VolumeLattice, CELL};
pub use march::Stats;
pub use project::project_axis;
pub use request::{Output, Rendered, Request, MAX_FRAMES};
pub use scene::{Frame, Mode, Scene, MAX_PIXELS};
pub use transfer::{Opacity, Transfer};

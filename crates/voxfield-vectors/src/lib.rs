//! Multi-resolution vector pyramids (issue 12): zarr-vectors 0.9.x stores —
//! points, polylines and graphs kept per spatial chunk in a Zarr v3 group,
//! with coarser levels beside level 0 — read here level by level, whole or
//! by bounding box, without the Python library.
//!
//! The format (zarr-vectors 0.9.2, see `../shared/reference`): the root
//! group's `zarr_vectors` attributes hold the version (≥ 0.9.0), the level-0
//! `chunk_shape`, `bounds` and geometry; each level is a child group named by
//! an integer; per-chunk arrays (`vertices`, `vertex_attributes/<name>`,
//! `vertex_fragments`) are Zarr v3 `variable_length_bytes` arrays of one item
//! per chunk cell, listed by the `nonempty_chunks` attribute with absolute
//! chunk keys and shifted by `chunk_grid_origin`.

pub mod cells;
pub mod codecs;
pub mod convert;
pub mod graphs;
pub mod ingest;
pub mod las;
mod lineage;
mod links;
pub mod location;
mod manifests;
pub mod neuroglancer;
pub mod objects;
pub mod ply;
pub mod point_objects;
pub mod polylines;
pub mod pyramid;
pub mod select;
pub mod spill;
pub mod store;
pub mod swc;
pub mod tracts;
pub mod trx;
pub mod validate;
pub mod write;

pub use codecs::Compressor;
pub use convert::{export, import_file, Exported, ImportOptions, Imported};
pub use graphs::{write_graph, Graph, GraphSummary};
pub use ingest::{
    write_points, write_points_coords, write_points_from, write_points_watched, AttributeSpec,
    Coords, NpyTable, PointInput, SliceInput,
};
pub use las::LasPoints;
pub use objects::Objects;
pub use point_objects::{write_points_with_objects, ObjectsSummary, PointObjects};
pub use polylines::{write_polylines, LinesSummary};
pub use pyramid::{
    build_pyramid, Aggregation, CrossLevel, LevelSummary, Method as Coarsening, PyramidOptions,
    Thinning, Watch,
};
pub use select::{Condition, Op, Selected, Selection};
pub use store::{LevelInfo, Points, Store};
pub use validate::{validate, Report};
pub use write::{Attribute, PointsOptions};

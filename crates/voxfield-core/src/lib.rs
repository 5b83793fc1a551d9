//! voxfield's shared vocabulary. No I/O lives here: only the types every engine and
//! source agrees on (dtypes, affines, volume layouts, the `Field` and `VolumeSource`
//! traits and the error type).

pub mod affine;
pub mod axes;
pub mod cache;
pub mod dot;
pub mod dtype;
pub mod error;
pub mod field;
pub mod group;
pub mod le;
pub mod memory;
pub mod odometer;
pub mod rng;
pub mod volume;
pub mod voxel;
pub mod work;

pub use affine::Affine;
pub use axes::{lift_points, Axes, Axis, AxisKind, IndexRequest};
pub use cache::{ChunkCache, ChunkKey};
pub use dtype::{DType, Endian};
pub use error::{Error, Result};
pub use field::Field;
pub use volume::{
    check_chunk, chunk_bytes, chunk_grid, volume_shape, ArrayEntry, ContiguousView, SparseVoxels,
    VolumeInfo, VolumeSource, MAX_DECODED_CHUNK,
};

/// The first bytes of a `.vxr` fitted RBF model, so every reader can recognise one.
pub const VXR_MAGIC: [u8; 8] = *b"\x89VXR\r\n\x1a\n";

//! Zarr v2/v3 arrays (blosc, zstd, gzip, sharding) and OME-Zarr multiscale images
//! on the local filesystem or behind an `http(s)://` / `s3://` URL, read chunk by
//! chunk through `zarrs`, and the Zarr v3
//! writer behind `voxfield convert`.
//!
//! Paths: `store.zarr` (an array, or an OME-Zarr image), or `store.zarr/group/array`.
//! Sharded arrays are read by inner chunk, so a sample never decodes a whole shard.

pub mod blosc;
mod bounded;
mod ome;
mod pyramid;
mod read;
pub mod remote;
mod write;

pub use pyramid::{write_ome_zarr, Downsample, PyramidOptions};
pub use read::{
    is_plain_group, is_plain_remote_group, list_container, list_container_url, open, open_url,
    ZarrOptions, ZarrVolume,
};
pub use write::{check_chunks, write_zarr, Codec, WriteOptions, MAX_CHUNK_BYTES};

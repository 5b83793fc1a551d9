//! Local volume sources, all opened in O(1): the header is parsed and the data is
//! memory-mapped, never read or cast. gzip payloads (`.nii.gz`, NRRD `gzip`) cannot be
//! mapped; they are decompressed once to an unlinked temporary file, which is mapped
//! instead (page cache, not private memory), and the source's notes say so.

mod mapped;
pub mod nifti;
pub mod npy;
pub mod npz;
pub mod nrrd;
mod open;
pub mod raw;
pub mod safety;
pub mod sparse;
pub mod table;

pub use mapped::MappedVolume;
pub use npy::{write_npy, NpyElement};
pub use open::{open, Format, OpenOptions};
pub use raw::RawOptions;
pub use sparse::SparseVolume;

//! h5py's default files index chunks with a version-1 B-tree, libver="latest"
//! ones with a fixed array; both are read directly and give the same values.

use std::path::{Path, PathBuf};

use voxfield_core::VolumeSource;
use voxfield_hdf5::{open_chunked, H5ChunkedVolume};

fn fx(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/chunked")
        .join(p)
}

fn chunked(p: &str) -> H5ChunkedVolume {
    open_chunked(&fx(p), &Default::default()).unwrap()
}

#[test]
fn default_files_use_the_btree_latest_ones_the_fixed_array() {
    for ds in [
        "/chunked/gzip",
        "/chunked/lzf",
        "/chunked/shuffle_lzf",
        "/chunked/raw_chunk",
        "/holes",
    ] {
        assert_eq!(
            chunked(&format!("volumes.h5:{ds}")).index_kind(),
            "v1 B-tree",
            "{ds}"
        );
    }
    let latest = chunked("latest.h5:/vol");
    assert_eq!(latest.index_kind(), "fixed array");
    // Same values either way.
    let direct = chunked("volumes.h5:/chunked/gzip");
    let (mut a, mut b) = (vec![0.0; 13 * 9 * 7], vec![0.0; 13 * 9 * 7]);
    direct.read_box([0; 3], [13, 9, 7], &mut a).unwrap();
    latest.read_box([0; 3], [13, 9, 7], &mut b).unwrap();
    assert_eq!(a, b);
}

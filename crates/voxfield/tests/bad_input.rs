//! Bad chunked and sparse input: each gives a clear error naming the file and the
//! problem (the chunk, the filter, the dataset), never a panic.

use std::path::{Path, PathBuf};

use voxfield::{
    evaluate, field, open, ChunkCache, FieldOptions, OpenOptions, PointList, VolumeSource,
};

fn fx(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/chunked")
        .join(p)
}

fn open_err(p: &Path) -> String {
    match open(p, &OpenOptions::default()) {
        Ok(_) => panic!("{} opened", p.display()),
        Err(e) => e.to_string(),
    }
}

/// Samples the whole volume's grid nodes and returns the error.
fn sample_err(src: &dyn VolumeSource) -> String {
    let s = src.info().shape;
    let mut pts = vec![];
    for i in 0..s[0] {
        for j in 0..s[1] {
            for k in 0..s[2] {
                pts.extend([i as f64, j as f64, k as f64]);
            }
        }
    }
    let cache = ChunkCache::new(1 << 20);
    let f = match field(src, &FieldOptions::default(), &cache) {
        Ok(f) => f,
        Err(e) => return e.to_string(),
    };
    let mut out = vec![0f32; pts.len() / 3];
    evaluate(f.as_ref(), &PointList::new(&pts).unwrap(), &mut out)
        .expect_err("sampling should fail")
        .to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

#[test]
fn zarr_bad_metadata_groups_and_corrupt_chunks() {
    let e = open_err(&fx("bad_json.zarr"));
    assert!(e.contains("zarr.json") && e.contains("invalid"), "{e}");
    let e = open_err(&fx("group.zarr"));
    assert!(e.contains("group") && e.contains("scans/ct"), "{e}");
    let img = voxfield::open(&fx("group.zarr/notes2d"), &Default::default()).unwrap();
    assert_eq!(img.info().axes.spatial_dims(), 2);
    let e = open_err(&fx("group.zarr/missing"));
    assert!(e.contains("missing"), "{e}");
    // A corrupt chunk: the error names it.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("v3.zarr");
    copy_dir(&fx("v3_zstd.zarr"), &store);
    std::fs::write(store.join("c/1/2/3"), b"definitely not zstd").unwrap();
    let src = open(&store, &OpenOptions::default()).unwrap();
    let e = sample_err(src.as_ref());
    assert!(e.contains("[1, 2, 3]") && e.contains("v3.zarr"), "{e}");
}

#[test]
fn sparse_archives_that_are_wrong() {
    let e = open_err(&fx("not_sparse.npz"));
    assert!(
        e.contains("not a sparse COO archive") && e.contains("not_sparse.npz"),
        "{e}"
    );
    let src = open(&fx("out_of_shape.npz"), &OpenOptions::default()).unwrap();
    let e = sample_err(src.as_ref());
    assert!(
        e.contains("outside the shape") && e.contains("out_of_shape.npz"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.npz");
    std::fs::write(&junk, b"PK\x03\x04 not really a zip").unwrap();
    assert!(open_err(&junk).contains("not a valid .npz"));
}

#[test]
fn hdf5_missing_flat_unsupported_and_truncated() {
    let h5 = fx("volumes.h5");
    let p = |ds: &str| PathBuf::from(format!("{}:{ds}", h5.display()));
    let e = open_err(&p("/nope"));
    assert!(
        e.contains("no dataset '/nope'") && e.contains("/chunked/gzip"),
        "{e}"
    );
    // A 2-D dataset is an image: it opens with two spatial axes.
    let flat = voxfield::open(&p("/flat"), &Default::default()).unwrap();
    assert_eq!(flat.info().axes.spatial_dims(), 2);
    // Plugin filters (written by hdf5plugin) decode to the same values as the plain copy.
    let read = |ds: &str| {
        let v = voxfield::open(&p(ds), &Default::default()).unwrap();
        let s = v.info().shape;
        let mut out = vec![0.0; s.iter().product()];
        v.read_box([0; 3], s, &mut out).unwrap();
        out
    };
    let plain = read("/contiguous");
    assert_eq!(read("/blosc"), plain);
    assert_eq!(read("/bzip2"), plain);
    assert!(open_err(&h5).contains("name a dataset"));
    // Truncated file: the chunks past the cut cannot be read, and the error says which.
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.h5");
    let bytes = std::fs::read(&h5).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 4]).unwrap();
    let cutp = PathBuf::from(format!("{}:/chunked/gzip", cut.display()));
    match open(&cutp, &OpenOptions::default()) {
        Err(e) => assert!(e.to_string().contains("cut.h5"), "{e}"),
        Ok(src) => {
            let e = sample_err(src.as_ref());
            assert!(e.contains("chunk") && e.contains("cut.h5"), "{e}");
        }
    }
}

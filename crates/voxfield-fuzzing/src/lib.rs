//! One harness per parser: the bytes a fuzzer made are written where a user's
//! file would be and opened through the same door a user's file goes through
//! (`voxfield::Source::open`, the environment and vector readers); whatever
//! opens is then read and sampled a little. An error is a good outcome; a
//! panic, an abort or a hang is a bug. The AFL targets in `fuzz/` and the
//! corpus replay test (`tests/replay.rs`) call [`exercise`].

use std::path::Path;

use voxfield::{ChunkCache, FieldOptions, OpenOptions, Source};

/// The targets, each a parser (or a family of them) and the file it reads.
pub const TARGETS: &[&str] = &[
    "npy",
    "nifti",
    "nrrd",
    "sparse-npz",
    "hdf5",
    "zarr",
    "vxn",
    "vxr",
    "env",
    "ply",
    "las",
    "trk",
    "tck",
    "trx",
    "vectors",
];

/// Runs `data` through `target`'s parser (see [`TARGETS`]): the parser's
/// error, if any (the fuzzer only looks for panics, aborts and hangs).
pub fn exercise(target: &str, data: &[u8]) -> voxfield::Result<()> {
    let dir = tempfile::tempdir().map_err(|e| voxfield::Error::io(std::env::temp_dir(), e))?;
    let d = dir.path();
    match target {
        "npy" => volume(&put(d, "f.npy", data)),
        "nifti" => volume(&put(d, "f.nii", data)),
        "nrrd" => volume(&put(d, "f.nrrd", data)),
        "sparse-npz" => volume(&put(d, "f.npz", data)),
        "vxn" => volume(&put(d, "f.vxn", data)),
        "vxr" => volume(&put(d, "f.vxr", data)),
        "hdf5" => hdf5(&put(d, "f.h5", data)),
        "zarr" => zarr(d, data),
        "env" => env(d, data),
        "ply" => voxfield::vectors::read_ply(&put(d, "f.ply", data)).map(drop),
        "las" => las(&put(d, "f.las", data)),
        "trk" => voxfield::vectors::read_trk(&put(d, "f.trk", data)).map(drop),
        "tck" => voxfield::vectors::read_tck(&put(d, "f.tck", data)).map(drop),
        "trx" => voxfield::vectors::read_trx(&put(d, "f.trx", data)).map(drop),
        "vectors" => vectors(d, data),
        t => panic!("unknown fuzz target {t:?}; targets: {TARGETS:?}"),
    }
}

fn put(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("writing to a temporary directory");
    p
}

/// Splits `data` into a prefix given by its first four bytes (little-endian
/// length) and the rest: a metadata file and a payload in one input.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    let n = data
        .get(..4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let rest = data.get(4..).unwrap_or_default();
    rest.split_at(n.min(rest.len()))
}

/// Opens a volume or model, reads a box of it and samples it at a few points.
fn volume(path: &Path) -> voxfield::Result<()> {
    let src = Source::open(path, &OpenOptions::default())?;
    if let Source::Volume(v) = &src {
        let shape = v.info().shape;
        let size = shape.map(|n| n.min(16));
        let mut out = vec![0.0; size.iter().product()];
        v.read_box([0; 3], size, &mut out)?;
    }
    let cache = ChunkCache::new(8 << 20);
    let field = src.field(&FieldOptions::default(), &cache, 1)?;
    let pts: Vec<[f64; 3]> = vec![
        [0.0; 3],
        [0.5, 1.5, 2.5],
        [1e9, -1e9, 3.0],
        [f64::NAN, 0.0, 0.0],
    ];
    let mut out = vec![0.0; pts.len()];
    field.sample_block(&pts, &mut out)
}

/// Every dataset of an HDF5 file (the first few), each as a volume.
fn hdf5(path: &Path) -> voxfield::Result<()> {
    let entries = voxfield::list_container(path)?.unwrap_or_default();
    // Every dataset is tried; the first error is the result.
    let mut first = Ok(());
    for e in entries.iter().take(4) {
        let r = volume(&std::path::PathBuf::from(format!(
            "{}:/{}",
            path.display(),
            e.path
        )));
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// `data` as a Zarr v3 array: its `zarr.json`, then the bytes of chunk (0, 0, 0).
fn zarr(dir: &Path, data: &[u8]) -> voxfield::Result<()> {
    let (meta, chunk) = split(data);
    let store = dir.join("a.zarr");
    let c = store.join("c/0/0");
    std::fs::create_dir_all(&c).map_err(|e| voxfield::Error::io(&c, e))?;
    put(&store, "zarr.json", meta);
    put(&c, "0", chunk);
    volume(&store)
}

/// `data` as a neurospatial environment pair: the JSON, then the `.npz`.
fn env(dir: &Path, data: &[u8]) -> voxfield::Result<()> {
    let (json, npz) = split(data);
    put(dir, "e.json", json);
    put(dir, "e.npz", npz);
    let e = voxfield::env::Environment::from_file(&dir.join("e"))?;
    let _ = e.bins_at(&vec![0.0; e.n_dims()]);
    Ok(())
}

/// The files of a zarr-vectors store the `vectors` harness can replace: its
/// first input byte picks one (modulo the count), the rest is its content.
pub const VECTORS_FILES: [&str; 6] = [
    "zarr.json",
    "0/zarr.json",
    "0/vertices/zarr.json",
    "0/vertices/c/0/0/0",
    "0/vertex_fragments/zarr.json",
    "0/vertex_fragments/c/0/0/0",
];

/// A small valid zarr-vectors store (40 points, 8 chunks) written to `store`.
pub fn vectors_template(store: &Path) -> voxfield::Result<()> {
    let pts: Vec<f64> = (0..40)
        .flat_map(|i| {
            [
                (i * 7 % 10) as f64 + 0.5,
                (i * 3 % 10) as f64 + 0.5,
                (i * 5 % 10) as f64 + 0.5,
            ]
        })
        .collect();
    let o = voxfield::vectors::PointsOptions {
        chunk_shape: Some(vec![5.0; 3]),
        bin_shape: None,
        dtype: "float32".into(),
        shard_shape: None,
        compressor: None,
    };
    voxfield::vectors::write_points(store, &pts, 3, &[], &o).map(drop)
}

/// A zarr-vectors store with one file replaced by the input, read level by
/// level, whole and inside a box.
fn vectors(dir: &Path, data: &[u8]) -> voxfield::Result<()> {
    let store = dir.join("v.zarr");
    vectors_template(&store)?;
    let (pick, body) = data.split_first().unwrap_or((&0, &[]));
    let file = store.join(VECTORS_FILES[*pick as usize % VECTORS_FILES.len()]);
    std::fs::write(&file, body).map_err(|e| voxfield::Error::io(&file, e))?;
    let s = voxfield::vectors::Store::open(&store)?;
    for level in s.levels()? {
        s.level(level)?;
        s.read_points(level, None, None)?;
        s.read_points(level, Some((&[1.0; 3], &[6.0; 3])), None)?;
    }
    Ok(())
}

fn las(path: &Path) -> voxfield::Result<()> {
    use voxfield::vectors::PointInput;
    let p = voxfield::vectors::LasPoints::open(path)?;
    let n = p.len().min(64);
    let mut coords = vec![];
    let mut attrs = vec![vec![]; p.attributes().len()];
    p.read(0..n, &mut coords, &mut attrs)
}

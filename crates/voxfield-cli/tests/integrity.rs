//! Issue 22's crash and silent-success classes: each input a hostile probe found
//! is now refused with a message naming the file or the option, exit status 1,
//! nothing written.

use std::path::{Path, PathBuf};

use voxfield_io::npy;

mod common;
use common::{run, s};

fn dir() -> (tempfile::TempDir, impl Fn(&str) -> PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().to_path_buf();
    (d, move |n: &str| root.join(n))
}

/// A failed command: exit 1, no panic, the message holds every `needle`, `out` absent.
fn refused(args: &[&str], needles: &[&str], out: &Path) {
    let (code, err) = run(args);
    assert_eq!(code, 1, "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err} (wanted {n:?})");
    }
    assert!(!out.exists(), "{args:?} left {}", out.display());
}

#[test]
fn vector_writes_refuse_bins_that_do_not_tile_the_chunk_and_absurd_shards() {
    let (_d, p) = dir();
    let pts: Vec<f64> = (0..30).map(|i| (i % 10) as f64 * 0.9).collect();
    npy::write_npy(&p("pts.npy"), &[10, 3], &pts).unwrap();
    let out = p("o.zarrvectors");
    let (i, o) = (p("pts.npy"), out.clone());
    // 10 / 3 bins: this panicked (index out of bounds in ingest.rs).
    let args = [
        "vectors",
        "write",
        s(&i),
        "-o",
        s(&o),
        "--chunk",
        "10,10,10",
        "--bin",
        "3,3,3",
    ];
    refused(&args, &["whole number of bins"], &out);
    // 4096³ chunk cells per shard: a 1 TiB shard index for 10 points.
    let args = [
        "vectors",
        "write",
        s(&i),
        "-o",
        s(&o),
        "--shard",
        "4096,4096,4096",
    ];
    refused(
        &args,
        &["shard shape", "choose a smaller shard shape"],
        &out,
    );
    // The same store with sane shapes is written.
    let args = [
        "vectors",
        "write",
        s(&i),
        "-o",
        s(&o),
        "--chunk",
        "9,9,9",
        "--bin",
        "3,3,3",
    ];
    assert_eq!(run(&args).0, 0);
}

#[test]
fn compress_refuses_a_time_limit_that_is_not_positive() {
    let (_d, p) = dir();
    let v: Vec<f32> = (0..6 * 7 * 8).map(|i| (i % 13) as f32).collect();
    npy::write_npy(&p("v.npy"), &[6, 7, 8], &v).unwrap();
    let (i, o) = (p("v.npy"), p("m.vxn"));
    for t in ["0", "-5", "nan", "inf"] {
        let flag = format!("--time-limit={t}");
        refused(
            &["compress", s(&i), "-o", s(&o), "--epochs", "1", &flag],
            &["time limit", "positive number of seconds"],
            &o,
        );
    }
}

#[test]
fn a_zero_or_huge_forged_shape_is_refused_before_any_conversion() {
    let (_d, p) = dir();
    // A .npy header claiming 2^62 voxels over 8 bytes of data.
    let mut b = npy::header_bytes("<f8", &[1 << 20, 1 << 21, 1 << 21]);
    b.extend_from_slice(&[0u8; 8]);
    std::fs::write(p("huge.npy"), &b).unwrap();
    let (i, o) = (p("huge.npy"), p("out.zarr"));
    let (code, err) = run(&["convert", s(&i), s(&o)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("huge.npy"), "{err}");
    assert!(!o.exists());
}

#[test]
fn a_zarr_array_claiming_2_to_the_90_bytes_is_refused_by_every_verb() {
    let (_d, p) = dir();
    let store = p("forged.zarr");
    std::fs::create_dir(&store).unwrap();
    let meta = r#"{"zarr_format": 3, "node_type": "array", "shape": [1073741824, 1073741824, 1073741824],
        "data_type": "uint8", "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [64, 64, 64]}},
        "chunk_key_encoding": {"name": "default"}, "fill_value": 0,
        "codecs": [{"name": "bytes"}]}"#;
    std::fs::write(store.join("zarr.json"), meta).unwrap();
    let out = p("out.zarr");
    let (z, o) = (store.clone(), out.clone());
    refused(
        &["convert", s(&z), s(&o)],
        &["forged.zarr", "2^56 bytes"],
        &out,
    );
    let m = p("m.vxn");
    refused(
        &["compress", s(&z), "-o", s(&m)],
        &["forged.zarr", "2^56 bytes"],
        &m,
    );
    refused(&["info", s(&z)], &["forged.zarr", "2^56 bytes"], &out);
}

#[test]
fn outputs_are_local_paths_and_file_urls_are_local_inputs() {
    let (_d, p) = dir();
    let v: Vec<f32> = (0..4 * 5 * 6).map(|i| i as f32).collect();
    npy::write_npy(&p("v.npy"), &[4, 5, 6], &v).unwrap();
    let i = p("v.npy");
    // This wrote a folder named "http:" beside the working directory.
    let cwd = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_voxfield"))
        .args(["convert", s(&i), "http://example.invalid/x.zarr"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("http:// URL") && err.contains("local paths"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
    npy::write_npy(&p("q.npy"), &[2, 3], &[1.0f64, 1.0, 1.0, 2.0, 2.0, 2.0]).unwrap();
    let q = p("q.npy");
    let (code, err) = run(&[
        "sample",
        s(&i),
        "--points",
        s(&q),
        "--out",
        "s3://bucket/o.npy",
    ]);
    assert!(code == 1 && err.contains("s3:// URL"), "{err}");
    // file:// names a local file.
    let url = format!("file://{}", i.display());
    let (code, err) = run(&["info", &url]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn rbf_values_that_overflow_the_solve_name_the_cause() {
    let (_d, p) = dir();
    let rows: Vec<f64> = (0..50)
        .flat_map(|i| {
            let (x, y) = ((i % 7) as f64 + 0.1 * i as f64, (i / 7) as f64);
            [x, y, 1.7e308 * (x * 0.7 + y).sin()]
        })
        .collect();
    npy::write_npy(&p("p.npy"), &[50, 3], &rows).unwrap();
    let (i, o) = (p("p.npy"), p("m.vxr"));
    let (code, err) = run(&["rbf", "fit", s(&i), "-o", s(&o)]);
    // It fits, or it names the overflow: never "singular" (the wrong cause).
    assert!(
        code == 0 || (code == 1 && err.contains("overflowed") && !o.exists()),
        "{err}"
    );
    assert!(!err.contains("singular"), "{err}");
}

#[test]
fn a_missing_attribute_is_named_with_the_ones_the_store_has() {
    let (_d, p) = dir();
    let rows: Vec<f64> = (0..40).map(|i| (i % 9) as f64).collect();
    npy::write_npy(&p("pts.npy"), &[10, 4], &rows).unwrap();
    let (i, st, o) = (p("pts.npy"), p("s.zarrvectors"), p("o.npy"));
    let args = [
        "vectors",
        "write",
        s(&i),
        "-o",
        s(&st),
        "--attributes",
        "height",
    ];
    assert_eq!(run(&args).0, 0);
    refused(
        &[
            "vectors",
            "read",
            s(&st),
            "-o",
            s(&o),
            "--attributes",
            "nope",
        ],
        &[
            "no vertex attribute 'nope'",
            "it has: height",
            "s.zarrvectors",
        ],
        &o,
    );
}

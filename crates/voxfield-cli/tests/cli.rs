//! End-to-end tests of the `voxfield` binary: the exact command forms scripts rely on,
//! results against scipy's golden values, and bad input (clear message, exit code).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use voxfield_io::npy;

fn fx(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(p)
}

fn voxfield(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voxfield"))
        .args(args)
        .output()
        .expect("run voxfield")
}

fn ok(args: &[&str]) -> Output {
    let o = voxfield(args);
    assert!(
        o.status.success(),
        "voxfield {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Runs a command that must fail with `code`, returning its stderr.
fn fails(args: &[&str], code: i32) -> String {
    let o = voxfield(args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(code), "voxfield {args:?}: {err}");
    assert!(
        !err.contains("panicked"),
        "voxfield {args:?} panicked: {err}"
    );
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn info_json_describes_a_nifti_file() {
    let o = ok(&["info", s(&fx("nifti/sform.nii.gz")), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format"], "nifti");
    assert_eq!(v["shape"], serde_json::json!([4, 5, 3]));
    assert_eq!(v["dtype"], "int16");
    assert_eq!(v["chunk_shape"], serde_json::json!([4, 5, 3]));
    assert_eq!(v["affine"][0][3], 10.0);
    assert!(v["bytes_on_disk"].as_u64().unwrap() > 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains("decompressed"));
    let text = ok(&["info", s(&fx("nrrd/raw.nrrd"))]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("affine (index -> world)"));
}

#[test]
fn sample_matches_scipy_from_npy_and_csv_points() {
    let dir = tempfile::tempdir().unwrap();
    let pts = fx("golden/points_5x7x3.npy");
    let vol = fx("golden/vol_5x7x3_float64.npy");
    let exp = npy::read_array(&fx("golden/expected_5x7x3_float64.npy")).unwrap();
    let n = exp.data.len() / 12;
    // modes: constant=0, reflect=3; orders: nearest=0, linear=1
    for (mode, m, method, o) in [
        ("constant", 0, "linear", 1),
        ("reflect", 3, "nearest", 0),
        ("mirror", 4, "linear", 1),
    ] {
        let out = dir.path().join(format!("{mode}.npy"));
        ok(&[
            "sample",
            s(&vol),
            "--points",
            s(&pts),
            "--out",
            s(&out),
            "--method",
            method,
            "--mode",
            mode,
            "--cval",
            "-7.5",
            "--dtype",
            "f64",
        ]);
        let got = npy::read_array(&out).unwrap();
        assert_eq!(got.shape, vec![n]);
        let want = &exp.data[(m * 2 + o) * n..(m * 2 + o + 1) * n];
        for (g, w) in got.data.iter().zip(want) {
            assert!(
                (g - w).abs() <= 1e-9 * (1.0 + w.abs()),
                "{mode}: {g} vs {w}"
            );
        }
    }
    // The same points as CSV (with a header), default f32 output.
    let p = npy::read_array(&pts).unwrap().data;
    let mut csv = String::from("x,y,z\n");
    for r in p.chunks(3) {
        csv += &format!("{:?},{:?},{:?}\n", r[0], r[1], r[2]);
    }
    let csv_path = dir.path().join("pts.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let out = dir.path().join("csv.npy");
    ok(&[
        "sample",
        s(&vol),
        "--points",
        s(&csv_path),
        "--out",
        s(&out),
        "--cval=-7.5",
    ]);
    let got = npy::read_array(&out).unwrap();
    assert_eq!(got.dtype, voxfield::DType::F32);
    for (g, w) in got.data.iter().zip(&exp.data[n..2 * n]) {
        assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
    }
}

#[test]
fn sample_source_dtype_rounds_and_refuses_nan_cval() {
    let dir = tempfile::tempdir().unwrap();
    let vol = fx("golden/vol_5x7x3_uint8.npy");
    let pts = fx("golden/points_5x7x3.npy");
    let out = dir.path().join("u8.npy");
    let e = fails(
        &[
            "sample",
            s(&vol),
            "--points",
            s(&pts),
            "--out",
            s(&out),
            "--dtype",
            "source",
        ],
        1,
    );
    assert!(e.contains("--cval"), "{e}");
    ok(&[
        "sample",
        s(&vol),
        "--points",
        s(&pts),
        "--out",
        s(&out),
        "--dtype",
        "source",
        "--cval",
        "0",
    ]);
    let got = npy::read_array(&out).unwrap();
    assert_eq!(got.dtype, voxfield::DType::U8);
    let exp = npy::read_array(&fx("golden/expected_5x7x3_uint8.npy")).unwrap();
    // constant mode with cval -7.5 there, 0 here: compare inside points only.
    let n = got.data.len();
    for (g, w) in got.data.iter().zip(&exp.data[n..2 * n]) {
        if *w != -7.5 {
            assert_eq!(*g, w.round().clamp(0.0, 255.0));
        }
    }
}

#[test]
fn slice_npy_equals_points_and_png_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let vol = fx("golden/vol_5x7x3_float32.npy");
    let npy_out = dir.path().join("plane.npy");
    ok(&[
        "slice",
        s(&vol),
        "--origin",
        "-0.5,0.25,2",
        "--u",
        "0.3,0.1,-0.05",
        "--v",
        "-0.5,0,1",
        "--size",
        "7,5",
        "--out",
        s(&npy_out),
        "--dtype",
        "f64",
    ]);
    let plane = npy::read_array(&npy_out).unwrap();
    assert_eq!(plane.shape, vec![5, 7]);
    // The same positions as a point list.
    let mut csv = String::new();
    for j in 0..5 {
        for i in 0..7 {
            let (i, j) = (i as f64, j as f64);
            csv += &format!(
                "{:?},{:?},{:?}\n",
                -0.5 + 0.3 * i - 0.5 * j,
                0.25 + 0.1 * i,
                2.0 - 0.05 * i + j
            );
        }
    }
    let pts = dir.path().join("p.csv");
    std::fs::write(&pts, csv).unwrap();
    let pout = dir.path().join("p.npy");
    ok(&[
        "sample",
        s(&vol),
        "--points",
        s(&pts),
        "--out",
        s(&pout),
        "--dtype",
        "f64",
    ]);
    let want = npy::read_array(&pout).unwrap();
    for (g, w) in plane.data.iter().zip(&want.data) {
        assert!(
            (g.is_nan() && w.is_nan()) || (g - w).abs() < 1e-12,
            "{g} vs {w}"
        );
    }
    // PNG, viridis, explicit window typed with a negative number, `=` form.
    let png = dir.path().join("plane.png");
    ok(&[
        "slice",
        s(&vol),
        "--origin=-1,0,0",
        "--u=0,0.05,0",
        "--v",
        "0.05,0,0",
        "--size",
        "64,48",
        "--out",
        s(&png),
        "--window",
        "-100,100",
        "--colormap",
        "viridis",
    ]);
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 64);
    assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 48);
    // A slab.
    let slab = dir.path().join("slab.npy");
    ok(&[
        "slice",
        s(&vol),
        "--origin",
        "0,0,1",
        "--u",
        "0.5,0,0",
        "--v",
        "0,0.5,0",
        "--size",
        "9,13",
        "--thickness",
        "2",
        "--step",
        "0.5",
        "--reduce",
        "max",
        "--out",
        s(&slab),
    ]);
    assert_eq!(npy::read_array(&slab).unwrap().shape, vec![13, 9]);
}

#[test]
fn world_coordinates_use_the_file_affine() {
    // Sampling the NIfTI at world positions of voxel centres returns scaled voxel values.
    let dir = tempfile::tempdir().unwrap();
    let nii = fx("nifti/sform.nii");
    let values = npy::read_array(&fx("nifti/sform_values.npy")).unwrap().data;
    let aff = npy::read_array(&fx("nifti/sform_affine.npy")).unwrap().data;
    let mut csv = String::new();
    let mut want = vec![];
    for (i, j, k) in [(0, 0, 0), (3, 4, 2), (1, 2, 1), (2, 0, 1)] {
        let idx = [i as f64, j as f64, k as f64];
        let w: Vec<f64> = (0..3)
            .map(|r| (0..3).map(|c| aff[4 * r + c] * idx[c]).sum::<f64>() + aff[4 * r + 3])
            .collect();
        csv += &format!("{:?} {:?} {:?}\n", w[0], w[1], w[2]);
        want.push(values[(i * 5 + j) * 3 + k]);
    }
    let pts = dir.path().join("w.csv");
    std::fs::write(&pts, csv).unwrap();
    let out = dir.path().join("w.npy");
    ok(&[
        "sample",
        s(&nii),
        "--points",
        s(&pts),
        "--out",
        s(&out),
        "--world",
        "--dtype",
        "f64",
    ]);
    let got = npy::read_array(&out).unwrap().data;
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "{g} vs {w}");
    }
}

#[test]
fn raw_volumes_take_layout_flags() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("v.bin");
    let mut bytes = vec![0u8; 5];
    bytes.extend((0..24u16).flat_map(|v| (v * 10).to_be_bytes()));
    std::fs::write(&raw, bytes).unwrap();
    let o = ok(&[
        "info",
        s(&raw),
        "--shape",
        "2,3,4",
        "--dtype",
        "u16",
        "--offset",
        "5",
        "--endian",
        "big",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format"], "raw");
    let pts = dir.path().join("p.csv");
    std::fs::write(&pts, "1,2,3\n0.5,0,0\n").unwrap();
    let out = dir.path().join("o.npy");
    ok(&[
        "sample",
        s(&raw),
        "--shape",
        "2,3,4",
        "--raw-dtype",
        "u16",
        "--offset",
        "5",
        "--endian",
        "big",
        "--order",
        "C",
        "--points",
        s(&pts),
        "--out",
        s(&out),
    ]);
    assert_eq!(npy::read_array(&out).unwrap().data, vec![230.0, 60.0]);
    let e = fails(&["info", s(&raw)], 1);
    assert!(e.contains("--shape"), "{e}");
}

#[test]
fn bad_input_fails_cleanly_and_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vol = fx("golden/vol_5x7x3_float32.npy");
    let out = d.join("o.npy");
    let e = fails(&["info", s(&d.join("nope.npy"))], 1);
    assert!(e.contains("nope.npy"), "{e}");
    // Points of the wrong shape, wrong dtype, bad CSV.
    let p2 = d.join("p2.npy");
    npy::write_npy(&p2, &[4, 2], &[0.0f64; 8]).unwrap();
    assert!(fails(
        &["sample", s(&vol), "--points", s(&p2), "--out", s(&out)],
        1
    )
    .contains("(N, 3)"));
    let pi = d.join("pi.npy");
    npy::write_npy(&pi, &[2, 3], &[0i32; 6]).unwrap();
    assert!(fails(
        &["sample", s(&vol), "--points", s(&pi), "--out", s(&out)],
        1
    )
    .contains("float"));
    let csv = d.join("bad.csv");
    std::fs::write(&csv, "1,2,3\n4,5\n").unwrap();
    assert!(fails(
        &["sample", s(&vol), "--points", s(&csv), "--out", s(&out)],
        1
    )
    .contains("line 2"));
    // Truncated volume.
    let good = std::fs::read(&vol).unwrap();
    let trunc = d.join("trunc.npy");
    std::fs::write(&trunc, &good[..good.len() - 4]).unwrap();
    let e = fails(&["info", s(&trunc)], 1);
    assert!(e.contains("trunc.npy") && e.contains("truncated"), "{e}");
    // Raw offset past the end.
    let raw = d.join("r.raw");
    std::fs::write(&raw, [0u8; 8]).unwrap();
    assert!(fails(
        &[
            "info",
            s(&raw),
            "--shape",
            "2,2,2",
            "--raw-dtype",
            "u8",
            "--offset",
            "9"
        ],
        1
    )
    .contains("past the end"));
    // Usage errors: zero or negative shape and size, NaN in an affine, bad vector, unknown mode.
    assert!(fails(&["info", s(&raw), "--shape", "2,0,2", "--dtype", "u8"], 2).contains("positive"));
    assert!(
        fails(&["info", s(&raw), "--shape", "2,-2,2", "--dtype", "u8"], 2).contains("positive")
    );
    let plane = ["--origin", "0,0,0", "--u", "1,0,0", "--v", "0,1,0"];
    let slice = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["slice", s(&vol)].iter().map(|x| x.to_string()).collect();
        a.extend(plane.iter().map(|x| x.to_string()));
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let run = |a: Vec<String>, code| fails(&a.iter().map(String::as_str).collect::<Vec<_>>(), code);
    assert!(run(slice(&["--size", "0,5", "--out", s(&out)]), 2).contains("positive"));
    let nan_affine = "1,0,0,0,0,nan,0,0,0,0,1,0,0,0,0,1";
    assert!(run(
        slice(&["--size", "4,4", "--out", s(&out), "--affine", nan_affine]),
        2
    )
    .contains("non-finite"));
    assert!(run(
        slice(&["--size", "4,4", "--out", s(&out), "--mode", "bogus"]),
        2
    )
    .contains("unknown mode"));
    assert!(fails(
        &[
            "slice",
            s(&vol),
            "--origin",
            "0,0",
            "--u",
            "1,0,0",
            "--v",
            "0,1,0",
            "--size",
            "2,2",
            "--out",
            s(&out)
        ],
        1
    )
    .contains("--origin has 2 components; this 3-D source takes 3"));
    // Parallel u and v: degenerate plane.
    assert!(fails(
        &[
            "slice",
            s(&vol),
            "--origin",
            "0,0,0",
            "--u",
            "1,0,0",
            "--v",
            "-2,0,0",
            "--size",
            "2,2",
            "--out",
            s(&out)
        ],
        1
    )
    .contains("parallel"));
    assert!(fails(
        &["info", s(&raw), "--shape", "2,2,2", "--raw-dtype", "q7"],
        2
    )
    .contains("unknown dtype"));
    assert!(fails(&["info", s(&raw), "--shape", "2,2,2"], 1).contains("--raw-dtype"));
    assert!(!out.exists(), "a failed command must not leave output");
}

#[test]
fn empty_point_lists_give_empty_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let vol = fx("golden/vol_5x7x3_float32.npy");
    let csv = dir.path().join("empty.csv");
    std::fs::write(&csv, "x,y,z\n").unwrap();
    let out = dir.path().join("o.npy");
    ok(&["sample", s(&vol), "--points", s(&csv), "--out", s(&out)]);
    assert_eq!(npy::read_array(&out).unwrap().shape, vec![0]);
    let e = dir.path().join("e.npy");
    npy::write_npy(&e, &[0, 3], &[0.0f32; 0]).unwrap();
    ok(&["sample", s(&vol), "--points", s(&e), "--out", s(&out)]);
    assert_eq!(npy::read_array(&out).unwrap().shape, vec![0]);
}

#[test]
fn demo_writes_a_png_of_the_phantom_and_of_a_given_volume() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("demo.png");
    let o = ok(&[
        "demo",
        "--phantom-size",
        "48",
        "--pixels",
        "64",
        "--train-seconds",
        "0.5",
        "--out",
        s(&png),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Shepp") && text.contains("ms"), "{text}");
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    // Every engine's panel, also on its own.
    for name in ["slice", "dvr", "neural", "rbf", "rate_map", "pyramid"] {
        assert!(text.contains(&format!("{name}: ")), "{name}: {text}");
        let own = dir.path().join(format!("demo-{name}.png"));
        assert_eq!(&std::fs::read(&own).unwrap()[..4], b"\x89PNG", "{name}");
    }
    let png2 = dir.path().join("demo2.png");
    ok(&[
        "demo",
        s(&fx("nrrd/gzip.nrrd")),
        "--pixels",
        "32",
        "--train-seconds",
        "0.5",
        "--out",
        s(&png2),
    ]);
    assert!(png2.exists());
}

fn chunked(p: &str) -> PathBuf {
    fx("chunked").join(p)
}

#[test]
fn chunked_and_sparse_sources_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    // A Zarr group lists its arrays; an OME-Zarr image picks a level.
    let o = ok(&["info", s(&chunked("group.zarr")), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["arrays"][1]["path"], "scans/ct");
    let o = ok(&[
        "info",
        s(&chunked("ome.zarr")),
        "--scale-level",
        "1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["shape"], serde_json::json!([6, 5, 4]));
    let o = ok(&[
        "info",
        s(&chunked("ome.zarr")),
        "--spacing",
        "1.0",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["shape"],
        serde_json::json!([6, 5, 4]),
        "coarsest level with spacing <= 1"
    );
    // Sampling a sharded Zarr, a sparse archive and a coords/values pair matches scipy.
    for (name, src, extra) in [
        ("v3_sharded", chunked("v3_sharded.zarr"), vec![]),
        ("sparse_fill", chunked("sparse_fill.npz"), vec![]),
        (
            "sparse_pair",
            chunked("pair_coords.npy"),
            vec![
                "--values".to_string(),
                s(&chunked("pair_values.npy")).to_string(),
                "--shape".into(),
                "20,15,12".into(),
            ],
        ),
    ] {
        let pts = chunked(&format!("expected/{name}_points.npy"));
        let out = dir.path().join(format!("{name}.npy"));
        let mut args: Vec<String> = [
            "sample",
            s(&src),
            "--points",
            s(&pts),
            "--out",
            s(&out),
            "--cval",
            "-7.5",
            "--dtype",
            "f64",
            "--cache-mb",
            "1",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        args.extend(extra);
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let got = npy::read_array(&out).unwrap().data;
        let want = npy::read_array(&chunked(&format!("expected/{name}_linear_constant.npy")))
            .unwrap()
            .data;
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-9 * (1.0 + w.abs()),
                "{name}: {g} vs {w}"
            );
        }
    }
    // A slice and the demo on a Zarr store.
    let png = dir.path().join("z.png");
    ok(&[
        "slice",
        s(&chunked("v3_zstd.zarr")),
        "--origin",
        "0,0,0",
        "--u",
        "0.2,0,0",
        "--v",
        "0,0.2,0.05",
        "--size",
        "40,30",
        "--out",
        s(&png),
    ]);
    ok(&[
        "demo",
        s(&chunked("v2_blosc.zarr")),
        "--pixels",
        "32",
        "--train-seconds",
        "0.5",
        "--out",
        s(&png),
    ]);
    // Errors name the problem.
    assert!(fails(&["info", s(&chunked("bad_json.zarr"))], 1).contains("zarr.json"));
    assert!(fails(&["info", s(&chunked("not_sparse.npz"))], 1).contains("not a sparse COO archive"));
    assert!(fails(
        &["info", s(&chunked("pair_coords.npy")), "--values", "v.npy"],
        1
    )
    .contains("--shape"));
}

#[test]
fn convert_writes_a_zarr_store_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.zarr");
    let src = fx("golden/vol_5x7x3_float32.npy");
    ok(&[
        "convert",
        s(&src),
        s(&dst),
        "--chunks",
        "2,3,2",
        "--codec",
        "gzip",
        "--level",
        "6",
    ]);
    let o = ok(&["info", s(&dst), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["format"].as_str(), v["chunk_shape"].clone()),
        (Some("zarr-v3"), serde_json::json!([2, 3, 2]))
    );
    // Same samples from the store as from the .npy.
    let pts = fx("golden/points_5x7x3.npy");
    let (a, b) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    ok(&[
        "sample",
        s(&src),
        "--points",
        s(&pts),
        "--out",
        s(&a),
        "--dtype",
        "f64",
    ]);
    ok(&[
        "sample",
        s(&dst),
        "--points",
        s(&pts),
        "--out",
        s(&b),
        "--dtype",
        "f64",
    ]);
    let (x, y) = (
        npy::read_array(&a).unwrap().data,
        npy::read_array(&b).unwrap().data,
    );
    assert!(x
        .iter()
        .zip(&y)
        .all(|(p, q)| (p.is_nan() && q.is_nan()) || p == q));
    assert!(fails(&["convert", s(&src), s(&dst)], 1).contains("already exists"));
    assert!(fails(
        &[
            "convert",
            s(&src),
            s(&dir.path().join("z.zarr")),
            "--codec",
            "zstd",
            "--level",
            "40"
        ],
        1
    )
    .contains("1..=22"));
}

#[test]
fn hdf5_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let h5 = chunked("volumes.h5");
    let o = ok(&["info", s(&h5), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["arrays"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["path"] == "/chunked/lzf"));
    let lzf = format!("{}:/chunked/shuffle_lzf", h5.display());
    let pts = chunked("expected/h5_shuffle_lzf_points.npy");
    let out = dir.path().join("h.npy");
    ok(&[
        "sample",
        &lzf,
        "--points",
        s(&pts),
        "--out",
        s(&out),
        "--cval",
        "-7.5",
        "--dtype",
        "f64",
    ]);
    let got = npy::read_array(&out).unwrap().data;
    let want = npy::read_array(&chunked("expected/h5_shuffle_lzf_linear_constant.npy"))
        .unwrap()
        .data;
    assert!(got
        .iter()
        .zip(&want)
        .all(|(g, w)| (g - w).abs() <= 1e-9 * (1.0 + w.abs())));
    let dst = dir.path().join("h.zarr");
    ok(&["convert", &lzf, s(&dst)]);
    assert!(fails(&["info", &format!("{}:/nope", h5.display())], 1).contains("no dataset '/nope'"));
}

#[test]
fn rbf_fit_eval_grid_and_models_as_fields() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    // A linear field (reproduced exactly with the degree-1 default) at scattered points.
    let lin = |x: f64, y: f64| 2.0 + 0.5 * x - 1.5 * y;
    let mut seed = 1u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut csv = String::from("id,x,y,elev\n");
    let mut table = Vec::new();
    for i in 0..3000 {
        let (x, y) = (next() * 100.0, next() * 50.0);
        csv += &format!("{i},{x},{y},{}\n", lin(x, y));
        table.extend([x, y, lin(x, y)]);
    }
    std::fs::write(d("pts.csv"), csv).unwrap();
    npy::write_npy(&d("pts.npy"), &[3000, 3], &table).unwrap();
    let o = ok(&[
        "rbf",
        "fit",
        s(&d("pts.csv")),
        "--columns",
        "x,y,elev",
        "-o",
        s(&d("m.vxr")),
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("fitted 3000 2-D points"));
    ok(&[
        "rbf",
        "fit",
        s(&d("pts.npy")),
        "-o",
        s(&d("w.vxr")),
        "--kernel",
        "wendland-c2",
        "--points-per-cell",
        "500",
    ]);
    let q: Vec<f64> = (0..400).map(|_| next() * 40.0 + 5.0).collect();
    npy::write_npy(&d("q.npy"), &[200, 2], &q).unwrap();
    for m in ["m.vxr", "w.vxr"] {
        ok(&[
            "rbf",
            "eval",
            s(&d(m)),
            "--points",
            s(&d("q.npy")),
            "--out",
            s(&d("v.npy")),
            "--gradient",
            s(&d("g.npy")),
        ]);
        let v = npy::read_array(&d("v.npy")).unwrap();
        assert_eq!(v.shape, [200]);
        for (p, v) in q.chunks(2).zip(&v.data) {
            assert!((lin(p[0], p[1]) - v).abs() < 1e-8, "{m}: {v}");
        }
        let g = npy::read_array(&d("g.npy")).unwrap();
        assert_eq!(g.shape, [200, 2]);
        assert!(g
            .data
            .chunks(2)
            .all(|g| (g[0] - 0.5).abs() < 1e-6 && (g[1] + 1.5).abs() < 1e-6));
    }
    ok(&[
        "rbf",
        "grid",
        s(&d("m.vxr")),
        "--bounds",
        "0,100,0,50",
        "--shape",
        "11,6",
        "--out",
        s(&d("grid.npy")),
    ]);
    let grid = npy::read_array(&d("grid.npy")).unwrap();
    assert_eq!(grid.shape, [11, 6]);
    assert!((grid.data[6 * 3 + 2] - lin(30.0, 20.0)).abs() < 1e-8);
    ok(&[
        "rbf",
        "grid",
        s(&d("m.vxr")),
        "--shape",
        "64,32",
        "--out",
        s(&d("grid.png")),
    ]);
    assert!(std::fs::read(d("grid.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));
    ok(&[
        "rbf",
        "grid",
        s(&d("m.vxr")),
        "--bounds",
        "0,100,0,50",
        "--shape",
        "11,6",
        "--out",
        s(&d("grid.zarr")),
    ]);
    let info = String::from_utf8(ok(&["info", s(&d("grid.zarr")), "--json"]).stdout).unwrap();
    assert!(
        info.contains("\"shape\": [\n    11,\n    6,\n    1\n  ]"),
        "{info}"
    );
    // The model is a field: sample and slice it like a volume.
    npy::write_npy(&d("p3.npy"), &[1, 3], &[30.0, 20.0, 0.0]).unwrap();
    ok(&[
        "sample",
        s(&d("m.vxr")),
        "--points",
        s(&d("p3.npy")),
        "--out",
        s(&d("s.npy")),
        "--dtype",
        "f64",
    ]);
    assert!((npy::read_array(&d("s.npy")).unwrap().data[0] - lin(30.0, 20.0)).abs() < 1e-8);
    ok(&[
        "slice",
        s(&d("m.vxr")),
        "--origin",
        "0,0,0",
        "--u",
        "1,0,0",
        "--v",
        "0,1,0",
        "--size",
        "50,40",
        "--out",
        s(&d("sl.png")),
    ]);
    let text = String::from_utf8(ok(&["info", s(&d("m.vxr"))]).stdout).unwrap();
    assert!(
        text.contains("kernel:        tps (degree 1") && text.contains("points:        3000"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&ok(&["info", s(&d("w.vxr")), "--json"]).stdout).unwrap();
    assert_eq!(json["kernel"], "wendland-c2");
    assert_eq!(json["points"], 3000);

    // Bad input: clear messages, exit 1, nothing written.
    std::fs::write(d("nan.csv"), "1,2,3\n4,nan,6\n7,8,9\n2,2,2\n").unwrap();
    let e = fails(&["rbf", "fit", s(&d("nan.csv")), "-o", s(&d("nan.vxr"))], 1);
    assert!(e.contains("point 1 has a non-finite coordinate"), "{e}");
    assert!(!d("nan.vxr").exists());
    let e = fails(
        &[
            "rbf",
            "fit",
            s(&d("pts.csv")),
            "--columns",
            "x,y,height",
            "-o",
            s(&d("x.vxr")),
        ],
        1,
    );
    assert!(
        e.contains("no column \"height\"") && e.contains("id, x, y, elev"),
        "{e}"
    );
    let e = fails(
        &[
            "rbf",
            "fit",
            s(&d("pts.npy")),
            "--kernel",
            "quintic",
            "-o",
            s(&d("x.vxr")),
        ],
        1,
    );
    assert!(e.contains("unknown kernel"), "{e}");
    let e = fails(
        &["rbf", "fit", s(&d("missing.csv")), "-o", s(&d("x.vxr"))],
        1,
    );
    assert!(e.contains("missing.csv"), "{e}");
    let mut bytes = std::fs::read(d("m.vxr")).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(d("cut.vxr"), &bytes).unwrap();
    let e = fails(
        &[
            "rbf",
            "eval",
            s(&d("cut.vxr")),
            "--points",
            s(&d("q.npy")),
            "--out",
            s(&d("x.npy")),
        ],
        1,
    );
    assert!(
        e.contains("cut.vxr") && e.contains("checksum mismatch"),
        "{e}"
    );
    let e = fails(
        &[
            "rbf",
            "eval",
            s(&d("m.vxr")),
            "--points",
            s(&d("p3.npy")),
            "--out",
            s(&d("x.npy")),
        ],
        1,
    );
    assert!(e.contains("shape (N, 2)"), "{e}");
    let e = fails(
        &[
            "rbf",
            "grid",
            s(&d("m.vxr")),
            "--shape",
            "10,10,10",
            "--out",
            s(&d("x.npy")),
        ],
        1,
    );
    assert!(e.contains("needs 2 positive sizes"), "{e}");
    let e = fails(&["convert", s(&d("m.vxr")), s(&d("m.zarr"))], 1);
    assert!(e.contains("is a fitted RBF model"), "{e}");
    assert!(!d("x.npy").exists() && !d("x.vxr").exists());
}

#[test]
fn an_interrupted_rbf_grid_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    let pts: Vec<f64> = (0..5000)
        .flat_map(|i| {
            let (x, y) = ((i % 71) as f64 + 0.3 * (i % 7) as f64, (i / 71) as f64);
            [x, y, (0.1 * x).sin() + 0.01 * y]
        })
        .collect();
    npy::write_npy(&d("p.npy"), &[5000, 3], &pts).unwrap();
    ok(&["rbf", "fit", s(&d("p.npy")), "-o", s(&d("m.vxr"))]);
    let child = Command::new(env!("CARGO_BIN_EXE_voxfield"))
        .args([
            "rbf",
            "grid",
            s(&d("m.vxr")),
            "--shape",
            "6000,6000",
            "--out",
            s(&d("big.npy")),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the temporary output to appear, then interrupt.
    let t = std::time::Instant::now();
    while std::fs::read_dir(dir.path()).unwrap().count() < 3 && t.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["m.vxr", "p.npy"]);
}

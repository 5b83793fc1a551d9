//! `voxfield compress` / `decompress` / `info` on neural models, and their bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

use voxfield_io::npy;

mod common;
use common::{run, s};

fn smooth(shape: [usize; 3]) -> Vec<f32> {
    let mut v = vec![];
    for i in 0..shape[0] {
        for j in 0..shape[1] {
            for k in 0..shape[2] {
                let (x, y, z) = (i as f32 / 20.0, j as f32 / 20.0, k as f32 / 20.0);
                v.push(10.0 + 5.0 * (3.0 * x).sin() * (2.0 * y).cos() + 3.0 * z);
            }
        }
    }
    v
}

fn read_f64(p: &Path) -> Vec<f64> {
    let a = npy::read_array(p).unwrap();
    a.data
}

#[test]
fn compress_decompress_sample_and_info() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { d.path().join(n) };
    let shape = [20, 18, 22];
    let vol = smooth(shape);
    npy::write_npy(&p("v.npy"), &shape, &vol).unwrap();
    let (code, err) = run(&[
        "compress",
        s(&p("v.npy")),
        "-o",
        s(&p("m.vxn")),
        "--epochs",
        "12",
        "--log2-table",
        "10",
        "--batch",
        "256",
        "--levels",
        "8",
        "--width",
        "32",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("ratio") && err.contains("PSNR"), "{err}");
    let (code, err) = run(&["decompress", s(&p("m.vxn")), "-o", s(&p("d.npy"))]);
    assert_eq!(code, 0, "{err}");
    let dec = read_f64(&p("d.npy"));
    assert_eq!(dec.len(), vol.len());
    let mse: f64 = dec
        .iter()
        .zip(&vol)
        .map(|(a, b)| (a - *b as f64).powi(2))
        .sum::<f64>()
        / vol.len() as f64;
    let range = 16.0; // ≈ max − min of the field
    let psnr = 10.0 * (range * range / mse).log10();
    assert!(psnr > 28.0, "decoded PSNR {psnr:.1} dB");
    // The model is a field: sampling at voxel centres equals the decoded volume (f32 output).
    let pts: Vec<f64> = vec![3.0, 4.0, 5.0, 19.0, 17.0, 21.0];
    npy::write_npy(&p("pts.npy"), &[2, 3], &pts).unwrap();
    let (code, err) = run(&[
        "sample",
        s(&p("m.vxn")),
        "--points",
        s(&p("pts.npy")),
        "--out",
        s(&p("o.npy")),
        "--dtype",
        "f64",
    ]);
    assert_eq!(code, 0, "{err}");
    let got = read_f64(&p("o.npy"));
    let at = |i: usize, j: usize, k: usize| dec[(i * shape[1] + j) * shape[2] + k];
    assert!(
        (got[0] as f32 - at(3, 4, 5) as f32).abs() < 1e-4
            && (got[1] as f32 - at(19, 17, 21) as f32).abs() < 1e-4
    );
    // `convert M.vxn out.zarr` decodes the same voxels as `decompress`.
    let (code, err) = run(&[
        "convert",
        s(&p("m.vxn")),
        s(&p("m.zarr")),
        "--chunks",
        "8,8,8",
    ]);
    assert_eq!(code, 0, "{err}");
    let z = voxfield::open(&p("m.zarr"), &Default::default()).unwrap();
    let mut zv = vec![0.0; vol.len()];
    z.read_box([0; 3], shape, &mut zv).unwrap();
    assert_eq!(zv, dec);
    // Reading a box of the model as a volume decodes exactly those voxels.
    let m = voxfield::open(&p("m.vxn"), &Default::default()).unwrap();
    let mut bx = vec![0.0; 3 * 5 * 7];
    m.read_box([2, 11, 13], [3, 5, 7], &mut bx).unwrap();
    for (n, v) in bx.iter().enumerate() {
        let (i, j, k) = (2 + n / 35, 11 + (n / 7) % 5, 13 + n % 7);
        assert_eq!(*v, dec[(i * shape[1] + j) * shape[2] + k] as f32 as f64);
    }
    // decompress writes NIfTI (gzip or not) and Zarr too: the same voxels, read back.
    for out in ["d.nii.gz", "d.nii", "d.zarr"] {
        let (code, err) = run(&["decompress", s(&p("m.vxn")), "-o", s(&p(out))]);
        assert_eq!(code, 0, "{out}: {err}");
        let v = voxfield::open(&p(out), &Default::default()).unwrap();
        assert_eq!(v.info().shape, shape, "{out}");
        assert_eq!(v.info().dtype, voxfield::DType::F32, "{out}");
        let mut got = vec![0.0; vol.len()];
        v.read_box([0; 3], shape, &mut got).unwrap();
        assert_eq!(got, dec, "{out}");
    }
    let (code, err) = run(&["decompress", s(&p("m.vxn")), "-o", s(&p("d.tif"))]);
    assert!(
        code != 0 && err.contains(".nii.gz") && !p("d.tif").exists(),
        "{err}"
    );
    // info reads the header.
    let o = Command::new(env!("CARGO_BIN_EXE_voxfield"))
        .args(["info", s(&p("m.vxn")), "--json"])
        .output()
        .unwrap();
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(h["shape"], serde_json::json!([20, 18, 22]));
    assert_eq!(h["training"]["epochs"], 12);
}

#[test]
fn bad_models_and_volumes_are_refused_clearly() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { d.path().join(n) };
    let shape = [8, 1, 9]; // a length-1 axis
    npy::write_npy(&p("thin.npy"), &shape, &smooth(shape)).unwrap();
    let args = |src: &Path, out: &Path| {
        vec![
            "compress".to_string(),
            s(src).into(),
            "-o".into(),
            s(out).into(),
            "--epochs".into(),
            "2".into(),
            "--log2-table".into(),
            "8".into(),
            "--levels".into(),
            "4".into(),
            "--width".into(),
            "16".into(),
        ]
    };
    let a = args(&p("thin.npy"), &p("thin.vxn"));
    assert_eq!(run(&a.iter().map(String::as_str).collect::<Vec<_>>()).0, 0);
    // A constant volume: no division by zero, decodes to the constant.
    npy::write_npy(&p("c.npy"), &[4, 5, 6], &vec![7.0f32; 120]).unwrap();
    let a = args(&p("c.npy"), &p("c.vxn"));
    assert_eq!(run(&a.iter().map(String::as_str).collect::<Vec<_>>()).0, 0);
    assert_eq!(
        run(&["decompress", s(&p("c.vxn")), "-o", s(&p("c_out.npy"))]).0,
        0
    );
    assert!(read_f64(&p("c_out.npy")).iter().all(|&v| v == 7.0));
    // NaN voxels are refused, and nothing is written.
    let mut v = smooth([4, 5, 6]);
    v[17] = f32::NAN;
    npy::write_npy(&p("nan.npy"), &[4, 5, 6], &v).unwrap();
    let a = args(&p("nan.npy"), &p("nan.vxn"));
    let (code, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(code == 1 && err.contains("NaN"), "{err}");
    assert!(!p("nan.vxn").exists());
    // Truncated, bit-flipped and foreign files.
    let good = std::fs::read(p("thin.vxn")).unwrap();
    std::fs::write(p("cut.vxn"), &good[..good.len() / 2]).unwrap();
    let mut flipped = good.clone();
    let k = good.len() - 10;
    flipped[k] ^= 1;
    std::fs::write(p("flip.vxn"), &flipped).unwrap();
    std::fs::write(
        p("foreign.vxn"),
        b"this is not a model at all, just some text",
    )
    .unwrap();
    for (name, needle) in [
        ("cut.vxn", "checksum"),
        ("flip.vxn", "checksum"),
        ("foreign.vxn", "magic"),
    ] {
        let (code, err) = run(&["decompress", s(&p(name)), "-o", s(&p("x.npy"))]);
        assert!(
            code == 1 && err.contains(needle) && err.contains(name),
            "{name}: {err}"
        );
        let (code, err) = run(&["info", s(&p(name))]);
        assert!(code == 1 && err.contains(needle), "{name}: {err}");
    }
    assert!(!p("x.npy").exists());
}

#[test]
fn ratio_chooses_a_network_that_reaches_it_or_says_none_does() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { d.path().join(n) };
    let shape = [24, 20, 28];
    npy::write_npy(&p("v.npy"), &shape, &smooth(shape)).unwrap();
    let native = (shape.iter().product::<usize>() * 4) as f64;
    for r in [2.0, 8.0] {
        let out = p(&format!("r{r}.vxn"));
        let (code, err) = run(&[
            "compress",
            s(&p("v.npy")),
            "-o",
            s(&out),
            "--ratio",
            &r.to_string(),
            "--epochs",
            "1",
        ]);
        assert_eq!(code, 0, "{err}");
        let bytes = std::fs::metadata(&out).unwrap().len() as f64;
        assert!(
            native / bytes >= r,
            "ratio {r}: reached {:.2}",
            native / bytes
        );
        assert!(err.contains("tables of 2^"), "{err}");
    }
    let (code, err) = run(&[
        "compress",
        s(&p("v.npy")),
        "-o",
        s(&p("x.vxn")),
        "--ratio",
        "100000",
    ]);
    assert!(
        code == 1 && err.contains("no configuration reaches ratio"),
        "{err}"
    );
    assert!(!p("x.vxn").exists());
}

#[test]
fn deterministic_training_gives_the_same_bytes_on_any_thread_count() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { d.path().join(n) };
    let shape = [12, 10, 14];
    npy::write_npy(&p("v.npy"), &shape, &smooth(shape)).unwrap();
    let train = |out: &str, threads: &str, extra: &[&str]| {
        let (o, v) = (p(out), p("v.npy"));
        let mut args = vec![
            "compress",
            s(&v),
            "-o",
            s(&o),
            "--epochs",
            "2",
            "--log2-table",
            "8",
            "--levels",
            "4",
            "--width",
            "16",
            "--batch",
            "128",
            "--threads",
            threads,
            "--deterministic",
        ];
        args.extend_from_slice(extra);
        let (code, err) = run(&args);
        (code, err, o)
    };
    let (c1, e1, m1) = train("a.vxn", "1", &[]);
    let (c2, e2, m2) = train("b.vxn", "2", &[]);
    assert!(c1 == 0 && c2 == 0, "{e1}{e2}");
    // The header's training record holds the wall time; the parameters must agree.
    let (a, b) = (
        voxfield::neural::NeuralModel::load(&m1).unwrap(),
        voxfield::neural::NeuralModel::load(&m2).unwrap(),
    );
    assert_eq!(a.net.params, b.net.params);
    let (code, err, m3) = train("c.vxn", "1", &["--time-limit", "5"]);
    assert!(
        code != 0 && err.contains("--time-limit") && !m3.exists(),
        "{err}"
    );
}

/// Reptile: an initialisation meta-learned on volumes of one kind makes the first
/// epoch on a new volume of that kind fit better than a random start.
#[test]
fn a_reptile_initialisation_speeds_up_the_first_epoch() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { d.path().join(n) };
    let shape = [32, 32, 32];
    for n in 0..4 {
        let mut v = vec![];
        for i in 0..32 {
            for j in 0..32 {
                for k in 0..32 {
                    let (x, y, z) = (k as f32 / 32.0, j as f32 / 32.0, i as f32 / 32.0);
                    let a = 2.0 + n as f32 * 0.7;
                    let r2 = (x - 0.5).powi(2) + (y - 0.5).powi(2) + (z - 0.5).powi(2);
                    v.push(
                        100.0
                            + 60.0 * (a * x + n as f32).sin() * (3.0 * y).cos()
                            + 40.0 * (-9.0 * r2).exp(),
                    );
                }
            }
        }
        npy::write_npy(&p(&format!("s{n}.npy")), &shape, &v).unwrap();
    }
    let net = ["--log2-table", "10", "--levels", "8", "--width", "32"];
    let mut args = vec!["compress", "meta-train"];
    let vols: Vec<PathBuf> = (0..3).map(|n| p(&format!("s{n}.npy"))).collect();
    args.extend(vols.iter().map(|v| s(v)));
    let init = p("init.vxn");
    args.extend([
        "-o",
        s(&init),
        "--meta-steps",
        "60",
        "--inner-steps",
        "8",
        "--batch",
        "2048",
    ]);
    args.extend(net);
    let (code, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Reptile initialisation over 3 volumes"),
        "{err}"
    );
    let first_epoch = |out: &str, extra: &[&str]| -> f64 {
        let (target, o) = (p("s3.npy"), p(out));
        let mut args = vec![
            "compress",
            s(&target),
            "-o",
            s(&o),
            "--epochs",
            "1",
            "--batch",
            "2048",
        ];
        args.extend_from_slice(extra);
        let (code, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        let m = voxfield::neural::NeuralModel::load(&o).unwrap();
        m.record["psnr_estimate_db"].as_f64().unwrap()
    };
    let random = first_epoch("a.vxn", &net);
    let reptile = first_epoch("b.vxn", &["--init", s(&init)]);
    assert!(
        reptile > random + 1.5,
        "Reptile {reptile:.2} dB vs random {random:.2} dB"
    );
    // The initialisation fixes the network's shape; a conflicting size is refused.
    let (code, err) = run(&[
        "compress",
        s(&p("s3.npy")),
        "-o",
        s(&p("c.vxn")),
        "--init",
        s(&init),
        "--width",
        "8",
    ]);
    assert!(
        code != 0
            && err.contains("init fixes the network's shape, so width")
            && !p("c.vxn").exists(),
        "{err}"
    );
    // A volume with NaN voxels is refused by meta-training too, and nothing is written.
    npy::write_npy(
        &p("nan.npy"),
        &[2, 2, 2],
        &[0.0f32, 1.0, f32::NAN, 2.0, 3.0, 4.0, 5.0, 6.0],
    )
    .unwrap();
    let (code, err) = run(&[
        "compress",
        "meta-train",
        s(&p("nan.npy")),
        "-o",
        s(&p("i2.vxn")),
    ]);
    assert!(
        code != 0 && err.contains("NaN") && !p("i2.vxn").exists(),
        "{err}"
    );
}

#[test]
fn an_interrupted_training_exits_130_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { d.path().join(n) };
    let shape = [48, 48, 48];
    npy::write_npy(&p("v.npy"), &shape, &smooth(shape)).unwrap();
    let (v, m) = (p("v.npy"), p("m.vxn"));
    let child = Command::new(env!("CARGO_BIN_EXE_voxfield"))
        .args([
            "compress",
            s(&v),
            "-o",
            s(&m),
            "--epochs",
            "100000",
            "--batch",
            "256",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Opening and the value range take milliseconds; training then runs for hours.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted") && err.contains("was not written"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["v.npy"]);
}

/// Rewrites a model's JSON header with `edit` and seals it with a valid CRC, as a
/// hostile writer could.
fn forge(model: &Path, out: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let b = std::fs::read(model).unwrap();
    let len = u64::from_le_bytes(b[12..20].try_into().unwrap()) as usize;
    let mut h: serde_json::Value = serde_json::from_slice(&b[20..20 + len]).unwrap();
    edit(&mut h);
    let head = serde_json::to_vec(&h).unwrap();
    let mut body = b[..12].to_vec();
    body.extend_from_slice(&(head.len() as u64).to_le_bytes());
    body.extend_from_slice(&head);
    body.extend_from_slice(&b[20 + len..b.len() - 4]);
    let crc = crc32fast::hash(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(out, body).unwrap();
}

#[test]
fn absurd_networks_shapes_and_sizes_are_refused_before_allocating() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { d.path().join(n) };
    let shape = [8, 9, 10];
    npy::write_npy(&p("v.npy"), &shape, &smooth(shape)).unwrap();
    let (v, m) = (p("v.npy"), p("m.vxn"));
    let small = [
        "--epochs",
        "1",
        "--log2-table",
        "6",
        "--levels",
        "2",
        "--width",
        "8",
    ];
    let mut args = vec!["compress", s(&v), "-o", s(&m)];
    args.extend(small);
    let (code, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    // A valid checksum over a header claiming a 2^32-parameter network.
    forge(&m, &p("huge.vxn"), |h| {
        h["encoding"]["levels"] = 32.into();
        h["encoding"]["features"] = 8.into();
        h["encoding"]["log2_table"] = 24.into();
        h["encoding"]["per_level_scale"] = 2.0.into();
    });
    let (code, err) = run(&["info", s(&p("huge.vxn"))]);
    assert!(code == 0, "info reads only the header: {err}");
    let (code, err) = run(&["decompress", s(&p("huge.vxn")), "-o", s(&p("d.npy"))]);
    assert!(
        code != 0 && err.contains("over the limit") && !p("d.npy").exists(),
        "{err}"
    );
    // A network inside the limits whose parameters the file does not hold.
    forge(&m, &p("short.vxn"), |h| {
        h["encoding"]["log2_table"] = 20.into()
    });
    let (code, err) = run(&["decompress", s(&p("short.vxn")), "-o", s(&p("d.npy"))]);
    assert!(
        code != 0 && err.contains("the network needs") && !p("d.npy").exists(),
        "{err}"
    );
    // Forged storage of the quantised tables.
    type Edit = fn(&mut serde_json::Value);
    let storage: [(&str, Edit, &str); 5] = [
        ("step0", |h| h["storage"]["step"] = 0.into(), "step"),
        ("stepneg", |h| h["storage"]["step"] = (-0.5).into(), "step"),
        (
            "stepnull",
            |h| h["storage"]["step"] = serde_json::Value::Null,
            "step",
        ),
        (
            "bytes",
            |h| h["storage"]["table_bytes"] = 3.into(),
            "parameter bytes",
        ),
        ("kind", |h| h["storage"]["tables"] = "bf8".into(), "storage"),
    ];
    for (name, edit, says) in storage {
        let f = p(&format!("{name}.vxn"));
        forge(&m, &f, edit);
        let (code, err) = run(&["decompress", s(&f), "-o", s(&p("d.npy"))]);
        assert!(
            code != 0 && err.contains(says) && !p("d.npy").exists(),
            "{name}: {err}"
        );
    }
    // A model of 2^40-voxel planes: compare refuses rather than allocate planes.
    forge(&m, &p("wide.vxn"), |h| {
        h["shape"] = serde_json::json!([2, 1u64 << 20, 1u64 << 20])
    });
    let (code, err) = run(&["compare", s(&p("wide.vxn")), s(&p("wide.vxn"))]);
    assert!(code != 0 && err.contains("MiB"), "{err}");
    // Absurd options for training and meta-training.
    for bad in [
        vec!["--batch", "1000000000000"],
        vec!["--batch", "0"],
        vec!["--log2-table", "60"],
        vec!["--levels", "1000000"],
        vec!["--width", "100000"],
        vec!["--threads", "100000"],
        vec!["--bits", "0"],
        vec!["--bits", "12"],
        vec!["--loss", "l3"],
    ] {
        let x = p("x.vxn");
        let mut args = vec!["compress", s(&v), "-o", s(&x)];
        args.extend(&bad);
        let (code, err) = run(&args);
        assert!(
            code != 0 && !err.is_empty() && !p("x.vxn").exists(),
            "{bad:?}: {err}"
        );
        let mut args = vec!["compress", "meta-train", s(&v), "-o", s(&x)];
        args.extend(&bad);
        let (code, err) = run(&args);
        assert!(
            code != 0 && !err.is_empty() && !p("x.vxn").exists(),
            "meta-train {bad:?}: {err}"
        );
    }
    // Special files are not volumes, and an output that is an input is refused.
    let (code, err) = run(&["compress", "meta-train", "/dev/zero", "-o", s(&p("x.vxn"))]);
    assert!(code != 0 && !p("x.vxn").exists(), "{err}");
    let (code, err) = run(&["compress", "meta-train", s(&v), "-o", s(&v)]);
    assert!(code != 0 && p("v.npy").exists(), "{err}");
    assert_eq!(npy::read_array(&v).unwrap().data.len(), 720);
}

#[test]
fn an_rbf_model_trains_on_the_grid_it_is_sampled_on() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { d.path().join(n) };
    // Scattered samples of a smooth function; its RBF fit is the source.
    let mut rows = vec![];
    let mut state = 7u64;
    let mut unit = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..400 {
        let (x, y, z) = (unit() * 4.0, unit() * 4.0, unit() * 4.0);
        rows.extend([x, y, z, x.sin() + 0.5 * y.cos() + 0.25 * z]);
    }
    npy::write_npy(&p("pts.npy"), &[400, 4], &rows).unwrap();
    let (code, err) = run(&["rbf", "fit", s(&p("pts.npy")), "-o", s(&p("f.vxr"))]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(&["compress", s(&p("f.vxr")), "-o", s(&p("m.vxn"))]);
    assert!(
        code != 0 && err.contains("--shape") && !p("m.vxn").exists(),
        "{err}"
    );
    let (code, err) = run(&[
        "compress",
        s(&p("f.vxr")),
        "-o",
        s(&p("m.vxn")),
        "--shape",
        "16,16,16",
        "--epochs",
        "60",
        "--levels",
        "8",
        "--log2-table",
        "10",
        "--width",
        "16",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(&[
        "rbf",
        "grid",
        s(&p("f.vxr")),
        "--shape",
        "16,16,16",
        "--out",
        s(&p("g.npy")),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(&[
        "decompress",
        s(&p("m.vxn")),
        "-o",
        s(&p("m.npy")),
        "--dtype",
        "f32",
    ]);
    assert_eq!(code, 0, "{err}");
    let (a, b) = (read_f64(&p("g.npy")), read_f64(&p("m.npy")));
    let range =
        a.iter().cloned().fold(f64::MIN, f64::max) - a.iter().cloned().fold(f64::MAX, f64::min);
    let mse = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64;
    let psnr = 10.0 * (range * range / mse).log10();
    assert!(psnr > 30.0, "PSNR {psnr:.1} dB against the RBF grid");
    // The model keeps the grid's world coordinates (the samples' bounding box).
    let (code, err) = run(&["info", s(&p("m.vxn")), "--json"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn special_outputs_inputs_and_endless_claims_are_refused() {
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    use std::os::unix::fs::FileTypeExt;
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { d.path().join(n) };
    let shape = [8, 9, 10];
    npy::write_npy(&p("v.npy"), &shape, &smooth(shape)).unwrap();
    let small = [
        "--epochs",
        "1",
        "--log2-table",
        "6",
        "--levels",
        "2",
        "--width",
        "8",
    ];
    let compress = |out: &Path| {
        let mut a = vec![
            "compress".to_string(),
            s(&p("v.npy")).into(),
            "-o".into(),
            s(out).into(),
        ];
        a.extend(small.iter().map(|x| x.to_string()));
        a
    };
    // A FIFO as -o is refused before training and stays a FIFO.
    let fifo = p("out.vxn");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: a valid NUL-terminated path inside the test's temporary folder.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let v = compress(&fifo);
    let (code, err) = run(&args(&v));
    assert!(code == 1 && err.contains("FIFO"), "{err}");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    // A symlink as -o: the target is written, the link stays a link.
    let (target, link) = (p("target.vxn"), p("link.vxn"));
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let v = compress(&link);
    let (code, err) = run(&args(&v));
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    voxfield::neural::NeuralModel::load(&target).unwrap();
    // decompress: a FIFO as output or as model is refused, the FIFO kept.
    let fifo_npy = p("out.npy");
    let c = std::ffi::CString::new(s(&fifo_npy)).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let (code, err) = run(&["decompress", s(&target), "-o", s(&fifo_npy)]);
    assert!(code == 1 && err.contains("FIFO"), "{err}");
    assert!(std::fs::symlink_metadata(&fifo_npy)
        .unwrap()
        .file_type()
        .is_fifo());
    let (code, err) = run(&["decompress", s(&fifo), "-o", s(&p("d.npy"))]);
    assert!(code == 1 && err.contains("regular file"), "{err}");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    // A valid checksum over a header claiming 10^12 voxels: decompress refuses
    // before writing (not enough disk), info and sample still work.
    forge(&target, &p("huge.vxn"), |h| {
        h["shape"] = serde_json::json!([10000, 10000, 10000])
    });
    let (code, err) = run(&["decompress", s(&p("huge.vxn")), "-o", s(&p("huge.npy"))]);
    assert!(code == 1 && err.contains("GiB free"), "{err}");
    assert!(!p("huge.npy").exists());
    let (code, err) = run(&["info", s(&p("huge.vxn"))]);
    assert_eq!(code, 0, "{err}");
    // Endless work is refused up front.
    for bad in [
        vec!["--epochs", "1000000000000000000"],
        vec!["--finetune-epochs", "1000000000000000000"],
    ] {
        let mut v = compress(&p("x.vxn"));
        v.retain(|a| a != "--epochs" && a != "1");
        v.extend(bad.iter().map(|x| x.to_string()));
        let (code, err) = run(&args(&v));
        assert!(code == 1 && err.contains("epochs"), "{bad:?}: {err}");
    }
    let (code, err) = run(&[
        "compress",
        "meta-train",
        s(&p("v.npy")),
        "-o",
        s(&p("x.vxn")),
        "--meta-steps",
        "1000000000000000000",
    ]);
    assert!(code == 1 && err.contains("meta steps"), "{err}");
    assert!(!p("x.vxn").exists());
}

#[test]
fn forged_header_numbers_are_refused_not_saturated() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { d.path().join(n) };
    let shape = [8, 9, 10];
    npy::write_npy(&p("v.npy"), &shape, &smooth(shape)).unwrap();
    let (v, m) = (p("v.npy"), p("m.vxn"));
    let args = [
        "compress",
        s(&v),
        "-o",
        s(&m),
        "--epochs",
        "1",
        "--log2-table",
        "6",
        "--levels",
        "2",
        "--width",
        "8",
    ];
    assert_eq!(run(&args).0, 0);
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &str); 7] = [
        (
            "base",
            |h| h["encoding"]["base"] = (1u64 << 63).into(),
            "'base'",
        ),
        (
            "levels",
            |h| h["encoding"]["levels"] = 2.5.into(),
            "'levels'",
        ),
        ("hi", |h| h["hi"] = 1e308.into(), "value range"),
        ("lohi", |h| h["lo"] = 1e300.into(), "value range"),
        ("dtype", |h| h["dtype"] = "complex64".into(), "'dtype'"),
        ("step", |h| h["storage"]["step"] = 1e-45.into(), "step"),
        (
            "shape",
            |h| h["shape"] = serde_json::json!([1u64 << 31, 1u64 << 31, 1u64 << 32]),
            "'shape'",
        ),
    ];
    for (name, edit, says) in cases {
        let f = p(&format!("{name}.vxn"));
        forge(&m, &f, edit);
        let out = p("d.npy");
        let (code, err) = run(&["decompress", s(&f), "-o", s(&out)]);
        assert!(
            code == 1
                && err.contains(says)
                && err.contains(&format!("{name}.vxn"))
                && !out.exists(),
            "{name}: {err}"
        );
    }
    // A version-1 file (f16 tables only) claiming quantised tables.
    let mut b = std::fs::read(&m).unwrap();
    b[8..12].copy_from_slice(&1u32.to_le_bytes());
    let n = b.len() - 4;
    let crc = crc32fast::hash(&b[..n]);
    b[n..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(p("v1.vxn"), b).unwrap();
    let (code, err) = run(&["decompress", s(&p("v1.vxn")), "-o", s(&p("d.npy"))]);
    assert!(code == 1 && err.contains("version-1"), "{err}");
}

/// The range-coded tables of a version-3 model: a stream whose count claims
/// 10^12 codes, one cut short, one with words after its last code — each with
/// a valid file checksum — are refused naming the file, before any allocation
/// from the claim, and nothing is written. The rate term's weight: refused when
/// not a number ≥ 0, and when given with f16 tables (it would not apply).
#[test]
fn forged_range_coded_tables_and_rate_weights_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { d.path().join(n) };
    let shape = [8, 9, 10];
    let (v, m, x) = (p("v.npy"), p("m.vxn"), p("x.vxn"));
    npy::write_npy(&v, &shape, &smooth(shape)).unwrap();
    let small = [
        "--epochs",
        "2",
        "--log2-table",
        "6",
        "--levels",
        "2",
        "--width",
        "8",
    ];
    let mut args = vec!["compress", s(&v), "-o", s(&m)];
    args.extend(small);
    let (code, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    let b = std::fs::read(&m).unwrap();
    let len = u64::from_le_bytes(b[12..20].try_into().unwrap()) as usize;
    let h: serde_json::Value = serde_json::from_slice(&b[20..20 + len]).unwrap();
    assert_eq!(h["storage"]["coder"], "range");
    let table_bytes = h["storage"]["table_bytes"].as_u64().unwrap() as usize;
    let at = b.len() - 4 - table_bytes;
    let body = b[..b.len() - 4].to_vec();
    let mut huge = body.clone();
    huge[at..at + 8].copy_from_slice(&1_000_000_000_000u64.to_le_bytes());
    let short = body[..body.len() - 8].to_vec();
    let mut long = body.clone();
    long.extend_from_slice(&[0x5a; 8]);
    for (name, forged, expect) in [
        ("huge.vxn", huge, "hold 1000000000000 codes"),
        ("short.vxn", short, "short.vxn"),
        ("long.vxn", long, "long.vxn"),
    ] {
        // The header's table bytes follow the stream (so only the stream is
        // wrong) and the checksum is made again.
        let raw = p("raw.vxn");
        let n = forged.len();
        let mut file = forged;
        file.extend_from_slice(&[0; 4]);
        std::fs::write(&raw, file).unwrap();
        forge(&raw, &p(name), |h| {
            h["storage"]["table_bytes"] = (table_bytes + n - body.len()).into()
        });
        let out = p("d.npy");
        let (code, err) = run(&["decompress", s(&p(name)), "-o", s(&out)]);
        assert!(
            code == 1 && err.contains(expect) && err.contains(name) && !out.exists(),
            "{name}: {err}"
        );
    }
    for bad in ["nan", "-1", "inf"] {
        let w = format!("--rate-weight={bad}");
        let mut args = vec!["compress", s(&v), "-o", s(&x), &w];
        args.extend(small);
        let (code, err) = run(&args);
        assert!(
            code == 1 && err.contains("rate weight") && !x.exists(),
            "{bad}: {err}"
        );
    }
    let mut args = vec![
        "compress",
        s(&v),
        "-o",
        s(&x),
        "--bits",
        "16",
        "--rate-weight",
        "4",
    ];
    args.extend(small);
    let (code, err) = run(&args);
    assert!(
        code == 1 && err.contains("applies to quantised tables") && !x.exists(),
        "{err}"
    );
    let args = [
        "compress",
        s(&v),
        "-o",
        s(&x),
        "--epochs",
        "1",
        "--rate-weight",
        "4",
    ];
    let (code, err) = run(&args);
    assert!(
        code == 1 && err.contains("quantisation-aware epochs") && !x.exists(),
        "{err}"
    );
}

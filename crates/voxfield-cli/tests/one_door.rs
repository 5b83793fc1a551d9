//! One door: every sampling option, on every kind of field, either changes the
//! result as documented or is refused with a message naming it — never ignored.
//! And a neural model is one field (its network) through the CLI and the facade.

use std::path::{Path, PathBuf};

use voxfield_io::npy;

mod common;
use common::{run, s};

fn smooth(shape: [usize; 3]) -> Vec<f32> {
    let mut v = vec![];
    for i in 0..shape[0] {
        for j in 0..shape[1] {
            for k in 0..shape[2] {
                let (x, y, z) = (i as f32 / 5.0, j as f32 / 4.0, k as f32 / 6.0);
                v.push(10.0 + 5.0 * x.sin() * y.cos() + 3.0 * z);
            }
        }
    }
    v
}

/// The fields of the table: a volume without an affine, a multiscale OME-Zarr
/// image (scale 2), a neural model of the volume and a 2-D RBF model.
struct Fields {
    dir: tempfile::TempDir,
}

impl Fields {
    fn new() -> Fields {
        let dir = tempfile::tempdir().unwrap();
        let f = Fields { dir };
        let shape = [12, 10, 14];
        npy::write_npy(&f.p("v.npy"), &shape, &smooth(shape)).unwrap();
        let (code, err) = run(&[
            "compress",
            s(&f.p("v.npy")),
            "-o",
            s(&f.p("m.vxn")),
            "--epochs",
            "2",
            "--log2-table",
            "8",
            "--levels",
            "4",
            "--width",
            "16",
        ]);
        assert_eq!(code, 0, "{err}");
        let mut table = Vec::new();
        for i in 0..60 {
            let (x, y) = ((i % 8) as f64 * 1.7, (i / 8) as f64 * 1.3);
            table.extend([x, y, 2.0 + 0.5 * x - 1.5 * y + (x * y).sin()]);
        }
        npy::write_npy(&f.p("t.npy"), &[60, 3], &table).unwrap();
        let (code, err) = run(&["rbf", "fit", s(&f.p("t.npy")), "-o", s(&f.p("t.vxr"))]);
        assert_eq!(code, 0, "{err}");
        // Inside at fractional positions, and outside (edge modes and fill values show).
        let pts = [
            1.3, 2.7, 3.2, 5.5, 4.25, 6.75, -1.5, 2.0, 3.0, 11.6, 9.2, 7.9,
        ];
        npy::write_npy(&f.p("pts.npy"), &[4, 3], &pts).unwrap();
        f
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn source(&self, kind: &str) -> PathBuf {
        match kind {
            "multiscale" => {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/chunked/ome.zarr")
            }
            "volume" => self.p("v.npy"),
            "neural" => self.p("m.vxn"),
            "rbf" => self.p("t.vxr"),
            k => unreachable!("{k}"),
        }
    }

    /// `voxfield sample KIND --points pts.npy [extra]`: the values or the refusal.
    fn sample(&self, kind: &str, extra: &[&str], out: &str) -> Result<Vec<f64>, String> {
        let out = self.p(out);
        let _ = std::fs::remove_file(&out);
        let src = self.source(kind);
        let pts = self.p("pts.npy");
        let mut args = vec![
            "sample",
            s(&src),
            "--points",
            s(&pts),
            "--out",
            s(&out),
            "--dtype",
            "f64",
        ];
        args.extend(extra);
        let (code, err) = run(&args);
        match code {
            0 => Ok(npy::read_array(&out).unwrap().data),
            _ => {
                assert!(!out.exists(), "{args:?} failed but left {}", out.display());
                Err(err)
            }
        }
    }
}

enum Expect {
    /// Applied, and the values differ from the defaults'.
    Changes,
    /// Refused, the message containing every needle.
    Refused(&'static [&'static str]),
}
use Expect::*;

fn differs(a: &[f64], b: &[f64]) -> bool {
    a.iter()
        .zip(b)
        .any(|(x, y)| x.to_bits() != y.to_bits() && !(x.is_nan() && y.is_nan()))
}

#[test]
fn every_option_on_every_field_kind_is_applied_or_refused() {
    let f = Fields::new();
    const AFFINE: &str = "2,0,0,1,0,2,0,1,0,0,2,1,0,0,0,1";
    let options: [(&str, &[&str]); 6] = [
        ("method nearest", &["--method", "nearest"]),
        ("method spline3", &["--method", "spline3"]),
        ("mode wrap", &["--mode", "wrap"]),
        ("cval 5", &["--cval", "5"]),
        ("world", &["--world"]),
        ("affine", &["--affine", AFFINE]),
    ];
    let table: [(&str, [Expect; 6]); 4] = [
        (
            "volume",
            [
                Changes,
                Changes,
                Changes,
                Changes,
                Refused(&["world", "no affine"]),
                Changes,
            ],
        ),
        (
            "multiscale",
            [Changes, Changes, Changes, Changes, Changes, Changes],
        ),
        (
            "neural",
            [
                Refused(&["method", "neural model", "evaluated directly"]),
                Refused(&["method", "neural model"]),
                Refused(&["mode", "neural model"]),
                Refused(&["cval", "neural model"]),
                Refused(&["world", "no affine"]),
                Changes,
            ],
        ),
        (
            "rbf",
            [
                Refused(&["method", "RBF model", "evaluated exactly"]),
                Refused(&["method", "RBF model"]),
                Refused(&["mode", "RBF model"]),
                Refused(&["cval", "RBF model"]),
                Refused(&["world", "RBF model"]),
                Refused(&["affine", "RBF model"]),
            ],
        ),
    ];
    for (kind, expects) in &table {
        let base = f.sample(kind, &[], "base.npy").unwrap();
        assert!(base.iter().any(|v| v.is_finite()), "{kind}: {base:?}");
        for ((name, args), expect) in options.iter().zip(expects) {
            let got = f.sample(kind, args, "o.npy");
            match (expect, got) {
                (Changes, Ok(v)) => assert!(differs(&v, &base), "{kind} {name}: no effect"),
                (Refused(needles), Err(msg)) => {
                    for n in *needles {
                        assert!(msg.contains(n), "{kind} {name}: {n:?} not in {msg}");
                    }
                }
                (Changes, Err(msg)) => panic!("{kind} {name}: refused: {msg}"),
                (Refused(_), Ok(_)) => panic!("{kind} {name}: accepted (ignored?)"),
            }
        }
    }
}

#[test]
fn the_run_summary_names_only_what_was_applied() {
    let f = Fields::new();
    let (code, err) = run(&[
        "sample",
        s(&f.p("m.vxn")),
        "--points",
        s(&f.p("pts.npy")),
        "--out",
        s(&f.p("o.npy")),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("evaluated directly") && !err.contains("mode"),
        "{err}"
    );
    let (code, err) = run(&[
        "sample",
        s(&f.p("v.npy")),
        "--points",
        s(&f.p("pts.npy")),
        "--out",
        s(&f.p("o.npy")),
        "--mode",
        "wrap",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("linear, mode wrap, cval nan"), "{err}");
}

#[test]
fn a_neural_model_is_its_network_through_the_cli_and_the_facade() {
    let f = Fields::new();
    let cli = f.sample("neural", &[], "cli.npy").unwrap();
    let pts: Vec<[f64; 3]> = [
        1.3, 2.7, 3.2, 5.5, 4.25, 6.75, -1.5, 2.0, 3.0, 11.6, 9.2, 7.9,
    ]
    .chunks(3)
    .map(|c| [c[0], c[1], c[2]])
    .collect();
    // The facade: any path through one door, its default field.
    let src = voxfield::Source::open(&f.p("m.vxn"), &Default::default()).unwrap();
    assert_eq!(src.kind(), "neural model");
    let cache = voxfield::ChunkCache::new(1 << 20);
    let field = src
        .field(&voxfield::FieldOptions::default(), &cache, 0)
        .unwrap();
    let flat: Vec<f64> = pts.iter().flatten().copied().collect();
    let mut facade = vec![0.0f64; pts.len()];
    voxfield::evaluate(
        field.as_ref(),
        &voxfield::PointList::new(&flat).unwrap(),
        &mut facade,
    )
    .unwrap();
    // The network itself, evaluated directly (not an interpolation of decoded voxels).
    let model = voxfield::neural::NeuralModel::load(&f.p("m.vxn")).unwrap();
    let mut direct = vec![0.0f64; pts.len()];
    model.values(&pts, &mut direct);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&cli), bits(&facade));
    assert_eq!(bits(&facade), bits(&direct));
    // The same through the volume-shaped entry (voxfield::open + voxfield::field).
    let vol = voxfield::open(&f.p("m.vxn"), &Default::default()).unwrap();
    let field = voxfield::field(vol.as_ref(), &Default::default(), &cache).unwrap();
    let mut again = vec![0.0f64; pts.len()];
    voxfield::evaluate(
        field.as_ref(),
        &voxfield::PointList::new(&flat).unwrap(),
        &mut again,
    )
    .unwrap();
    assert_eq!(bits(&again), bits(&direct));
    // Options of a volume file do not apply to a model file.
    let opts = voxfield::OpenOptions {
        index: voxfield::IndexRequest {
            named: vec![("t".into(), 1)],
            positional: vec![],
        },
        ..Default::default()
    };
    for path in ["m.vxn", "t.vxr"] {
        let err = voxfield::Source::open(&f.p(path), &opts)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("index") && err.contains("model"), "{err}");
    }
}

#[test]
fn hostile_model_paths_through_the_door_are_clear_errors() {
    let f = Fields::new();
    let open = |name: &str| {
        voxfield::Source::open(&f.p(name), &Default::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| panic!("{name} opened"))
    };
    // A FIFO named like a model is refused, not read (it would block).
    for name in ["fifo.vxn", "fifo.vxr"] {
        let c = std::ffi::CString::new(s(&f.p(name))).unwrap();
        // SAFETY: creating a FIFO inside this test's temporary folder.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open(name);
        assert!(e.contains(name), "{e}");
    }
    // /dev/zero behind a model's name: refused as not a regular file.
    std::os::unix::fs::symlink("/dev/zero", f.p("zero.vxn")).unwrap();
    assert!(open("zero.vxn").contains("zero.vxn"));
    // Truncated models: a checksum or length error naming the file, exit 1 from the CLI.
    for (name, src) in [("cut.vxn", "m.vxn"), ("cut.vxr", "t.vxr")] {
        let bytes = std::fs::read(f.p(src)).unwrap();
        std::fs::write(f.p(name), &bytes[..bytes.len() / 2]).unwrap();
        assert!(open(name).contains(name));
        let (code, err) = run(&[
            "sample",
            s(&f.p(name)),
            "--points",
            s(&f.p("pts.npy")),
            "--out",
            s(&f.p("o.npy")),
        ]);
        assert!(code == 1 && err.contains(name), "{err}");
        assert!(!f.p("o.npy").exists());
    }
}

//! Golden tests against `scipy.ndimage.map_coordinates` (order 0 and 1, every mode,
//! every dtype, odd shapes and an axis of length 1). Fixtures are written by
//! `tests/fixtures/make_fixtures.py` with scipy and numpy.

use std::path::{Path, PathBuf};

use voxfield_core::{Field, VolumeSource};
use voxfield_io::npy;
use voxfield_sample::{evaluate, Method, Mode, PointList, SampleOptions, VolumeField};

const MODES: [&str; 6] = [
    "constant",
    "grid-constant",
    "nearest",
    "reflect",
    "mirror",
    "wrap",
];
const DTYPES: [&str; 11] = [
    "bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32",
    "float64",
];
const CVAL: f64 = -7.5;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/golden")
}

fn sample(vol: &dyn VolumeSource, pts: &[f64], method: Method, mode: Mode, cval: f64) -> Vec<f64> {
    let opts = SampleOptions { method, mode, cval };
    let field = VolumeField::new(vol.contiguous().unwrap(), opts, None, None);
    let mut out = vec![0.0f64; pts.len() / 3];
    evaluate(
        &field as &dyn Field,
        &PointList::new(pts).unwrap(),
        &mut out,
    )
    .unwrap();
    out
}

fn assert_close(got: &[f64], want: &[f64], pts: &[f64], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-9 * (1.0 + w.abs());
        let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= tol;
        assert!(
            ok,
            "{what}: point {i} {:?}: got {g}, scipy {w}",
            &pts[3 * i..3 * i + 3]
        );
    }
}

fn check_volume(path: &Path, tag: &str, dtype: &str) {
    let vol = npy::open(path, &Default::default()).unwrap();
    let pts = npy::read_array(&fixtures().join(format!("points_{tag}.npy")))
        .unwrap()
        .data;
    let exp = npy::read_array(&fixtures().join(format!("expected_{tag}_{dtype}.npy"))).unwrap();
    let n = pts.len() / 3;
    for (m, mode) in MODES.iter().enumerate() {
        for (o, method) in [Method::Nearest, Method::Linear].into_iter().enumerate() {
            let want = &exp.data[(m * 2 + o) * n..(m * 2 + o + 1) * n];
            let got = sample(&vol, &pts, method, mode.parse().unwrap(), CVAL);
            assert_close(
                &got,
                want,
                &pts,
                &format!("{} {mode} {method}", path.display()),
            );
        }
    }
}

#[test]
fn every_dtype_mode_and_order_matches_scipy() {
    for tag in ["5x7x3", "1x6x4"] {
        for dtype in DTYPES {
            check_volume(
                &fixtures().join(format!("vol_{tag}_{dtype}.npy")),
                tag,
                dtype,
            );
        }
    }
}

#[test]
fn npy_layouts_big_endian_fortran_and_versions_match_scipy() {
    for (dtype, files) in [
        (
            "int16",
            &[
                "layout_be.npy",
                "layout_f.npy",
                "layout_be_f.npy",
                "layout_v2.npy",
                "layout_v3.npy",
            ][..],
        ),
        ("float64", &["layout_be_f8.npy"][..]),
        ("uint32", &["layout_be_u4.npy"][..]),
    ] {
        for f in files {
            check_volume(&fixtures().join(f), "5x7x3", dtype);
        }
    }
}

#[test]
fn nan_and_inf_coordinates_give_cval_in_every_mode() {
    let vol = npy::open(
        &fixtures().join("vol_5x7x3_float32.npy"),
        &Default::default(),
    )
    .unwrap();
    let bad = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
    let mut pts = vec![];
    for b in bad {
        pts.extend_from_slice(&[b, 1.0, 1.0, 1.0, b, 1.0, 1.0, 1.0, b]);
    }
    for mode in MODES {
        for method in [Method::Nearest, Method::Linear, Method::Cubic] {
            let got = sample(&vol, &pts, method, mode.parse().unwrap(), CVAL);
            assert!(got.iter().all(|v| *v == CVAL), "{mode} {method}: {got:?}");
            let got = sample(&vol, &pts, method, mode.parse().unwrap(), f64::NAN);
            assert!(got.iter().all(|v| v.is_nan()), "{mode} {method}: {got:?}");
        }
    }
}

#[test]
fn default_cval_nan_matches_scipy_constant_mode() {
    // scipy with cval=NaN: points outside are NaN, the upper edge n-1 is not.
    let vol = npy::open(
        &fixtures().join("vol_5x7x3_float64.npy"),
        &Default::default(),
    )
    .unwrap();
    let pts = [
        4.0,
        6.0,
        2.0,
        -0.5,
        1.0,
        1.0,
        4.0 + 1e-9,
        1.0,
        1.0,
        0.0,
        0.0,
        0.0,
    ];
    let got = sample(&vol, &pts, Method::Linear, Mode::Constant, f64::NAN);
    let view = vol.contiguous().unwrap();
    assert_eq!(got[0], view.get([4, 6, 2]));
    assert!(got[1].is_nan() && got[2].is_nan());
    assert_eq!(got[3], view.get([0, 0, 0]));
}

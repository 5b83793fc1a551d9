//! One conformance suite for every source: `read_box` and sampling against the same
//! array read by the reference library (numpy, nibabel, pynrrd, zarr-python, h5py,
//! sparse), with fixtures written by those libraries
//! (`tests/fixtures/make_chunked_fixtures.py`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use voxfield::{
    evaluate, field, open, ChunkCache, FieldOptions, Method, Mode, OpenOptions, PointList,
    VolumeSource, ZarrOptions,
};
use voxfield_io::npy;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/chunked")
}

fn expected(name: &str, what: &str) -> Vec<f64> {
    npy::read_array(&dir().join("expected").join(format!("{name}_{what}.npy")))
        .unwrap()
        .data
}

fn open_case(case: &Value) -> Box<dyn VolumeSource> {
    let source = case["source"].as_str().unwrap();
    let level = case
        .get("level")
        .and_then(Value::as_u64)
        .map_or(ZarrOptions::FullResolution, |l| {
            ZarrOptions::Level(l as usize)
        });
    let sparse_values = case.get("values").map(|v| {
        let s: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        (dir().join(v.as_str().unwrap()), [s[0], s[1], s[2]])
    });
    let opts = OpenOptions {
        level,
        sparse_values,
        ..Default::default()
    };
    open(&dir().join(source), &opts).unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * (1.0 + b.abs())
}

fn conform(case: &Value) {
    let name = case["name"].as_str().unwrap();
    let src = open_case(case);
    let info = src.info().clone();
    let shape: Vec<usize> = case["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(info.shape.to_vec(), shape, "{name}: shape");
    let want_dtype = match case["dtype"].as_str().unwrap() {
        "float64" if name.starts_with("nifti") => info.dtype.name(), // nibabel's get_fdata is always float64
        d => d,
    };
    assert_eq!(info.dtype.name(), want_dtype, "{name}: dtype");
    if let Some(c) = case.get("chunks") {
        let c: Vec<usize> = c
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(info.chunk_shape.to_vec(), c, "{name}: chunk shape");
    }
    if let Some(a) = case.get("affine") {
        let rows = info.affine.expect("affine").rows();
        for i in 0..4 {
            for j in 0..4 {
                assert!(
                    (rows[i][j] - a[i][j].as_f64().unwrap()).abs() < 1e-9,
                    "{name}: affine {rows:?}"
                );
            }
        }
    }
    // read_box: the whole volume and an interior box, values after the value scale.
    let values = expected(name, "values");
    let (m, q) = info.value_scale.unwrap_or((1.0, 0.0));
    let mut all = vec![0.0; values.len()];
    src.read_box([0; 3], info.shape, &mut all).unwrap();
    for (i, (g, w)) in all.iter().zip(&values).enumerate() {
        assert!(
            close(g * m + q, *w),
            "{name}: voxel {i}: {} vs {w}",
            g * m + q
        );
    }
    let lo = shape.iter().map(|&n| (n > 2) as usize).collect::<Vec<_>>();
    let size = [0, 1, 2].map(|a| shape[a] - 2 * lo[a]);
    let mut part = vec![0.0; size.iter().product()];
    src.read_box([lo[0], lo[1], lo[2]], size, &mut part)
        .unwrap();
    let mut n = 0;
    for i in 0..size[0] {
        for j in 0..size[1] {
            for k in 0..size[2] {
                let w = values[((i + lo[0]) * shape[1] + j + lo[1]) * shape[2] + k + lo[2]];
                assert!(close(part[n] * m + q, w), "{name}: sub-box voxel {n}");
                n += 1;
            }
        }
    }
    // Sampling, with a cache smaller than one chunk and a roomy one.
    let pts = expected(name, "points");
    let list = PointList::new(&pts).unwrap();
    for budget in [0, 1 << 24] {
        let cache = ChunkCache::new(budget);
        for (method, mode, cval, what) in [
            (Method::Linear, Mode::Constant, -7.5, "linear_constant"),
            (Method::Nearest, Mode::Reflect, 0.0, "nearest_reflect"),
        ] {
            let opts = FieldOptions {
                method: Some(method),
                mode: Some(mode),
                cval: Some(cval),
                ..Default::default()
            };
            let f = field(src.as_ref(), &opts, &cache).unwrap();
            let mut got = vec![0.0f64; pts.len() / 3];
            evaluate(f.as_ref(), &list, &mut got).unwrap();
            for (i, (g, w)) in got.iter().zip(expected(name, what)).enumerate() {
                assert!(
                    close(*g, w),
                    "{name} {what}: point {:?}: {g} vs scipy {w}",
                    &pts[3 * i..3 * i + 3]
                );
            }
        }
    }
}

#[test]
fn every_source_reads_and_samples_like_its_reference_library() {
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("cases.json")).unwrap()).unwrap();
    let mut ran = 0;
    for case in cases["cases"].as_array().unwrap() {
        conform(case);
        ran += 1;
    }
    assert!(ran >= 21, "only {ran} cases ran");
}

#[test]
fn sparse_empty_regions_give_the_fill_value_whatever_the_batch() {
    // A batch whose points touch no stored voxel (LeanVolumeInterpolator's sparse
    // class returns NaN here), in volumes with fill value 0 and 2.5, and an all-zero one.
    for (file, fill) in [
        ("sparse.npz", 0.0),
        ("sparse_fill.npz", 2.5),
        ("sparse_empty.npz", 0.0),
    ] {
        let src = open(&dir().join(file), &OpenOptions::default()).unwrap();
        let shape = src.info().shape;
        let mut dense = vec![0.0; shape.iter().product()];
        src.read_box([0; 3], shape, &mut dense).unwrap();
        // Grid nodes whose 8 surrounding voxels all hold the fill value.
        let mut pts = vec![];
        for i in 0..shape[0] - 1 {
            for j in 0..shape[1] - 1 {
                for k in 0..shape[2] - 1 {
                    let empty = (0..8).all(|c| {
                        let (a, b, d) = (i + (c >> 2 & 1), j + (c >> 1 & 1), k + (c & 1));
                        dense[(a * shape[1] + b) * shape[2] + d] == fill
                    });
                    if empty && pts.len() < 300 {
                        pts.extend([i as f64 + 0.5, j as f64 + 0.25, k as f64 + 0.75]);
                    }
                }
            }
        }
        assert!(!pts.is_empty(), "{file}: no empty region found");
        let cache = ChunkCache::new(1 << 20);
        let f = field(src.as_ref(), &FieldOptions::default(), &cache).unwrap();
        let mut out = vec![f64::NAN; pts.len() / 3];
        evaluate(f.as_ref(), &PointList::new(&pts).unwrap(), &mut out).unwrap();
        assert!(out.iter().all(|v| *v == fill), "{file}: {:?}", &out[..4]);
    }
}

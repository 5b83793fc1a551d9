//! A model file whose header lies (a valid checksum over a header claiming 10^12
//! cells) is refused before anything is allocated for the cells.

use voxfield_rbf::{fit, FitOptions, RbfModel};

#[test]
fn a_header_claiming_more_cells_than_the_file_holds_is_refused() {
    let pts: Vec<f64> = (0..40)
        .flat_map(|i| [(i % 7) as f64, (i / 7) as f64 * 1.3])
        .collect();
    let vals: Vec<f64> = (0..40).map(|i| (i as f64).sin()).collect();
    let model = fit(
        &pts,
        2,
        &vals,
        1,
        &FitOptions::default(),
        &voxfield_core::work::Watch::none(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.vxr");
    model.save(&p).unwrap();
    let b = std::fs::read(&p).unwrap();
    let hlen = u64::from_le_bytes(b[12..20].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&b[20..20 + hlen]).unwrap();
    header["cells"] = serde_json::json!(1_000_000_000_000u64);
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = b[..12].to_vec();
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&b[20 + hlen..b.len() - 4]);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(&p, &out).unwrap();
    let e = match RbfModel::load(&p) {
        Ok(_) => panic!("a lying header must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("1000000000000 cells") && e.contains("at most"),
        "{e}"
    );
}

/// Coordinates at 1e±300 and values near 1e307 fit and interpolate like unit-scale
/// data (the analysis and the domain grid work in logs; each cell is normalised).
#[test]
fn extreme_but_finite_scales_fit_and_interpolate() {
    let base: Vec<[f64; 2]> = (0..300)
        .map(|i| {
            let t = i as f64;
            [(t * 0.618_033_988_7).fract(), (t * 0.414_213_562_4).fract()]
        })
        .collect();
    let vals: Vec<f64> = base.iter().map(|p| (3.0 * p[0]).sin() + p[1]).collect();
    for (xs, vs) in [(1e-300, 1.0), (1e300, 1.0), (1e-200, 1.0), (1.0, 1e307)] {
        let pts: Vec<f64> = base.iter().flat_map(|p| [p[0] * xs, p[1] * xs]).collect();
        let v: Vec<f64> = vals.iter().map(|x| x * vs).collect();
        let model = fit(
            &pts,
            2,
            &v,
            1,
            &FitOptions::default(),
            &voxfield_core::work::Watch::none(),
        )
        .unwrap_or_else(|e| panic!("scale {xs:e}/{vs:e}: {e}"));
        for (i, want) in v.iter().enumerate().step_by(37) {
            let mut got = [0.0];
            model.eval_one(&[pts[2 * i], pts[2 * i + 1], 0.0], &mut got);
            assert!(
                ((got[0] - want) / vs).abs() < 1e-9,
                "scale {xs:e}/{vs:e}: {} vs {want}",
                got[0]
            );
        }
    }
}

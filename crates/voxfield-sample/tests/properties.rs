//! Properties against analytic fields: exactness at grid nodes, linear and
//! quadratic reproduction, cubic continuity, and request shapes (planes, grids,
//! slabs) agreeing with the equivalent point lists.

use voxfield_core::{Affine, ContiguousView, DType, Endian, Field};
use voxfield_sample::{
    evaluate, evaluate_plane, Grid, Method, Mode, Plane, PointList, Positions, Reduce,
    SampleOptions, VolumeField,
};

/// Deterministic xorshift generator (no dependency needed for property loops).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

const SHAPE: [usize; 3] = [9, 11, 7];

fn f64_volume(f: impl Fn(f64, f64, f64) -> f64) -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..SHAPE[0] {
        for j in 0..SHAPE[1] {
            for k in 0..SHAPE[2] {
                bytes.extend_from_slice(&f(i as f64, j as f64, k as f64).to_le_bytes());
            }
        }
    }
    bytes
}

fn field(bytes: &[u8], method: Method, mode: Mode) -> VolumeField<'_> {
    let view = ContiguousView::dense(bytes, SHAPE, DType::F64, Endian::Little, false).unwrap();
    VolumeField::new(
        view,
        SampleOptions {
            method,
            mode,
            cval: f64::NAN,
        },
        None,
        None,
    )
}

fn at(f: &dyn Field, p: [f64; 3]) -> f64 {
    let mut o = [0.0];
    f.sample_block(&[p], &mut o).unwrap();
    o[0]
}

fn linear(x: f64, y: f64, z: f64) -> f64 {
    3.0 * x - 2.0 * y + 0.5 * z + 7.0
}
fn quadratic(x: f64, y: f64, z: f64) -> f64 {
    0.5 * x * x - y * y + 0.25 * z * z + x * y - 2.0 * y * z + x - 3.0
}

#[test]
fn every_method_is_exact_at_grid_nodes() {
    let vol = f64_volume(quadratic);
    for method in [Method::Nearest, Method::Linear, Method::Cubic] {
        for mode in [
            Mode::Constant,
            Mode::Nearest,
            Mode::Reflect,
            Mode::Mirror,
            Mode::GridConstant,
        ] {
            let f = field(&vol, method, mode);
            for i in 0..SHAPE[0] {
                for j in 0..SHAPE[1] {
                    for k in 0..SHAPE[2] {
                        let (x, y, z) = (i as f64, j as f64, k as f64);
                        let got = at(&f, [x, y, z]);
                        assert!(
                            (got - quadratic(x, y, z)).abs() < 1e-9,
                            "{method} {mode} at {i},{j},{k}: {got}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn linear_reproduces_linear_fields_everywhere_inside() {
    let vol = f64_volume(linear);
    let f = field(&vol, Method::Linear, Mode::Constant);
    let mut rng = Rng(7);
    for _ in 0..20_000 {
        let p = [0, 1, 2].map(|a| rng.range(0.0, (SHAPE[a] - 1) as f64));
        let got = at(&f, p);
        assert!(
            (got - linear(p[0], p[1], p[2])).abs() < 1e-9,
            "{p:?}: {got}"
        );
    }
}

#[test]
fn cubic_reproduces_quadratics_in_the_interior() {
    let vol = f64_volume(quadratic);
    let f = field(&vol, Method::Cubic, Mode::Constant);
    let mut rng = Rng(11);
    for _ in 0..20_000 {
        // Interior: every 4-tap support inside the volume.
        let p = [0, 1, 2].map(|a| rng.range(1.0, (SHAPE[a] - 2) as f64 - 1e-9));
        let got = at(&f, p);
        assert!(
            (got - quadratic(p[0], p[1], p[2])).abs() < 1e-9,
            "{p:?}: {got}"
        );
    }
}

#[test]
fn cubic_is_continuous_across_cell_borders() {
    let mut rng = Rng(3);
    let vol = f64_volume(|x, y, z| {
        (x * 1.3).sin() * (y * 0.7).cos() + (z * 2.1).sin() * 5.0 + x * y * z * 0.01
    });
    let f = field(&vol, Method::Cubic, Mode::Mirror);
    for _ in 0..5_000 {
        let mut p = [0, 1, 2].map(|a| rng.range(-1.0, SHAPE[a] as f64));
        let axis = (rng.next() * 3.0) as usize;
        p[axis] = (rng.range(0.0, (SHAPE[axis] - 1) as f64)).round();
        let (mut lo, mut hi) = (p, p);
        lo[axis] -= 1e-9;
        hi[axis] += 1e-9;
        let (a, b) = (at(&f, lo), at(&f, hi));
        assert!(
            (a - b).abs() < 1e-6,
            "jump {} at {p:?} axis {axis}",
            (a - b).abs()
        );
    }
}

#[test]
fn zero_weight_taps_are_never_read() {
    // A NaN neighbour or a NaN fill value must not leak into an exact grid-node value
    // (scipy and LeanVolumeInterpolator both return NaN on the upper edge here).
    let vol = f64_volume(|x, y, z| {
        if (x, y, z) == (1.0, 1.0, 1.0) {
            f64::NAN
        } else {
            linear(x, y, z)
        }
    });
    for mode in [Mode::Constant, Mode::GridConstant] {
        for method in [Method::Linear, Method::Cubic] {
            let f = field(&vol, method, mode);
            for p in [
                [0.0, 1.0, 1.0],
                [1.0, 0.0, 1.0],
                [2.0, 1.0, 1.0],
                [8.0, 10.0, 6.0],
                [8.0, 4.0, 3.0],
            ] {
                let got = at(&f, p);
                assert_eq!(got, linear(p[0], p[1], p[2]), "{method} {mode} at {p:?}");
            }
        }
    }
}

#[test]
fn modes_agree_inside_and_differ_only_outside() {
    let vol = f64_volume(quadratic);
    let mut rng = Rng(5);
    let fields: Vec<_> = [
        Mode::Constant,
        Mode::GridConstant,
        Mode::Nearest,
        Mode::Reflect,
        Mode::Mirror,
        Mode::Wrap,
    ]
    .into_iter()
    .map(|m| field(&vol, Method::Linear, m))
    .collect();
    for _ in 0..2_000 {
        let p = [0, 1, 2].map(|a| rng.range(0.0, (SHAPE[a] - 1) as f64));
        let vals: Vec<f64> = fields.iter().map(|f| at(f, p)).collect();
        assert!(
            vals.iter().all(|v| (v - vals[0]).abs() < 1e-9),
            "{p:?}: {vals:?}"
        );
    }
}

fn eval_points(f: &dyn Field, pts: &[[f64; 3]]) -> Vec<f64> {
    let flat: Vec<f64> = pts.iter().flatten().copied().collect();
    let mut out = vec![0.0; pts.len()];
    evaluate(f, &PointList::new(&flat).unwrap(), &mut out).unwrap();
    out
}

fn same(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x.is_nan() && y.is_nan()) || x == y,
            "element {i}: {x} vs {y}"
        );
    }
}

#[test]
fn plane_equals_its_point_list() {
    let vol = f64_volume(quadratic);
    for method in [Method::Nearest, Method::Linear, Method::Cubic] {
        let f = field(&vol, method, Mode::Constant);
        // Sizes that are not multiples of the tile size, partly outside the volume.
        let plane = Plane::new(
            [-1.0, 2.0, 0.5],
            [0.31, 0.05, 0.12],
            [-0.07, 0.27, 0.2],
            37,
            53,
        )
        .unwrap();
        let mut got = vec![0.0; plane.len()];
        evaluate_plane(&f, &plane, &[0.0], Reduce::Mean, &mut got).unwrap();
        let pts: Vec<[f64; 3]> = (0..plane.nv)
            .flat_map(|j| (0..plane.nu).map(move |i| (i, j)))
            .map(|(i, j)| plane.at(i, j))
            .collect();
        same(&got, &eval_points(&f, &pts));
        assert!(got.iter().any(|v| v.is_nan()) && got.iter().any(|v| !v.is_nan()));
    }
}

#[test]
fn big_plane_runs_in_parallel_and_equals_points() {
    let vol = f64_volume(linear);
    let f = field(&vol, Method::Linear, Mode::Nearest);
    let plane = Plane::new(
        [0.0, 0.0, 0.0],
        [0.013, 0.002, 0.001],
        [0.001, 0.017, 0.009],
        611,
        401,
    )
    .unwrap();
    let mut got = vec![0.0; plane.len()];
    evaluate_plane(&f, &plane, &[0.0], Reduce::Mean, &mut got).unwrap();
    let mut want = vec![0.0; plane.len()];
    evaluate(&f, &plane, &mut want).unwrap();
    same(&got, &want);
}

#[test]
fn slab_equals_nanmean_and_nanmax_of_point_lists() {
    let vol = f64_volume(quadratic);
    let f = field(&vol, Method::Linear, Mode::Constant);
    let plane = Plane::new([4.0, -0.5, 3.0], [0.0, 0.4, 0.1], [0.3, 0.0, -0.05], 19, 23).unwrap();
    let depths = Plane::slab_offsets(4.0, 0.5).unwrap();
    assert_eq!(depths.len(), 9);
    let n = plane.unit_normal().unwrap();
    for reduce in [Reduce::Mean, Reduce::Max] {
        let mut got = vec![0.0f64; plane.len()];
        evaluate_plane(&f, &plane, &depths, reduce, &mut got).unwrap();
        let per_depth: Vec<Vec<f64>> = depths
            .iter()
            .map(|d| {
                let pts: Vec<[f64; 3]> = (0..plane.len())
                    .map(|p| {
                        let q = plane.at(p % plane.nu, p / plane.nu);
                        [0, 1, 2].map(|a| q[a] + d * n[a])
                    })
                    .collect();
                eval_points(&f, &pts)
            })
            .collect();
        for p in 0..plane.len() {
            let finite: Vec<f64> = per_depth
                .iter()
                .map(|v| v[p])
                .filter(|v| !v.is_nan())
                .collect();
            let want: f64 = if finite.is_empty() {
                f64::NAN
            } else if reduce == Reduce::Mean {
                finite.iter().sum::<f64>() / finite.len() as f64
            } else {
                finite.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
            };
            assert!(
                (got[p].is_nan() && want.is_nan()) || (got[p] - want).abs() < 1e-12,
                "{reduce:?} pixel {p}: {} vs {want}",
                got[p]
            );
        }
    }
}

#[test]
fn grid_equals_outer_product_point_list() {
    let vol = f64_volume(quadratic);
    let f = field(&vol, Method::Cubic, Mode::Reflect);
    let x = [-1.5, 0.0, 2.25, 8.0];
    let y = [0.5, 3.0, 10.0, 11.5, -0.25];
    let z = [0.0, 1.5, 6.0];
    let grid = Grid { axes: [&x, &y, &z] };
    let mut got = vec![0.0; grid.len()];
    evaluate(&f, &grid, &mut got).unwrap();
    let mut pts = vec![];
    for a in x {
        for b in y {
            for c in z {
                pts.push([a, b, c]);
            }
        }
    }
    same(&got, &eval_points(&f, &pts));
}

#[test]
fn world_coordinates_go_through_the_inverse_affine() {
    let vol = f64_volume(linear);
    let view = ContiguousView::dense(&vol, SHAPE, DType::F64, Endian::Little, false).unwrap();
    let a = Affine::from_rows([
        [0.0, 2.0, 0.0, 10.0],
        [-1.5, 0.0, 0.0, 3.0],
        [0.0, 0.0, 0.5, -1.0],
        [0.0, 0.0, 0.0, 1.0],
    ])
    .unwrap();
    let f = VolumeField::new(
        view,
        SampleOptions::default(),
        None,
        Some(a.inverse().unwrap()),
    );
    let mut rng = Rng(9);
    for _ in 0..1000 {
        let idx = [0, 1, 2].map(|ax| rng.range(0.0, (SHAPE[ax] - 1) as f64));
        let got = at(&f, a.apply(idx));
        assert!((got - linear(idx[0], idx[1], idx[2])).abs() < 1e-9);
    }
}

#[test]
fn value_scale_applies_on_both_paths() {
    let vol = f64_volume(linear);
    let view = ContiguousView::dense(&vol, SHAPE, DType::F64, Endian::Little, false).unwrap();
    let opts = SampleOptions {
        method: Method::Linear,
        mode: Mode::Nearest,
        cval: 0.0,
    };
    let f = VolumeField::new(view, opts, Some((2.0, -1.0)), None);
    for p in [[1.5f64, 2.5, 3.5], [-3.0, 2.0, 1.0], [8.0, 10.0, 6.0]] {
        let c = [
            p[0].clamp(0.0, 8.0),
            p[1].clamp(0.0, 10.0),
            p[2].clamp(0.0, 6.0),
        ];
        assert!((at(&f, p) - (2.0 * linear(c[0], c[1], c[2]) - 1.0)).abs() < 1e-9);
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let vol = f64_volume(quadratic);
    let f = field(&vol, Method::Cubic, Mode::Mirror);
    let mut rng = Rng(1);
    let pts: Vec<f64> = (0..300_000).map(|_| rng.range(-3.0, 13.0)).collect();
    let list = PointList::new(&pts).unwrap();
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut out = vec![0.0f32; list.len()];
        pool.install(|| evaluate(&f, &list, &mut out)).unwrap();
        out
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn tiles_of_a_plane_sample_exactly_its_positions() {
    let mut r = Rng(77);
    for _ in 0..20 {
        let v3 = |r: &mut Rng| [r.range(-3.0, 3.0), r.range(-3.0, 3.0), r.range(-3.0, 3.0)];
        let (o, u, v) = (v3(&mut r), v3(&mut r), v3(&mut r));
        let whole = Plane::new(o, u, v, 300, 200).unwrap();
        let (i0, j0) = ((r.next() * 250.0) as usize, (r.next() * 150.0) as usize);
        let tile = whole.tile(i0, j0, 40, 30).tile(3, 5, 10, 10);
        for (i, j) in [(0, 0), (9, 9), (4, 7)] {
            let (a, b) = (tile.at(i, j), whole.at(i0 + 3 + i, j0 + 5 + j));
            assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits));
        }
    }
}

//! The environment engine against neurospatial 0.6.0's documented rules (grid
//! construction, connectivity counts, half-open bins), analytic properties of
//! the diffusion kernel, a Taylor-series matrix exponential on a small graph,
//! thread safety and bad input. Parity with neurospatial itself is tested from
//! Python on fixtures it generates (crates/voxfield-py/tests/test_env.py).

use voxfield_env::trajectory::OccupancyOptions;
use voxfield_env::{Environment, Grid, Mode, Operator, Reach, Shaping, TieBreak};

fn lattice(nx: usize, ny: usize, h: f64) -> Vec<f64> {
    let mut p = vec![];
    for i in 0..nx {
        for j in 0..ny {
            p.extend([(i as f64 + 0.5) * h, (j as f64 + 0.5) * h]);
        }
    }
    p
}

#[test]
fn grids_follow_neurospatial_rules() {
    // x in [0, 10], h = 3: edges −1.5 … 11.5 in 5 bins of 2.6.
    let g = Grid::from_samples(&[0.0, 10.0, 4.0], 1, &[3.0], Some(0), Shaping::default()).unwrap();
    assert_eq!(g.shape, vec![5]);
    assert_eq!(g.edges[0][0], -1.5);
    assert_eq!(g.edges[0][5], 11.5);
    assert!((g.edges[0][1] - g.edges[0][0] - 2.6).abs() < 1e-12);
    assert_eq!(g.active, vec![true, false, true, false, true]);
    // A lattice of centres gives exactly N² bins; 42 edges on 4×4 with
    // diagonals, 24 without.
    let p = lattice(4, 4, 2.0);
    let g = Grid::from_samples(&p, 2, &[2.0], Some(0), Shaping::default()).unwrap();
    assert_eq!(g.shape, vec![4, 4]);
    let env = Environment::new(g.clone(), true).unwrap();
    assert_eq!((env.n_bins(), env.graph.n_edges()), (16, 42));
    assert_eq!(Environment::new(g, false).unwrap().graph.n_edges(), 24);
    assert!(env.bin_sizes().iter().all(|&a| (a - 4.0).abs() < 1e-12));
    // Half-open bins: the top edge and NaN are outside; the bottom edge is in.
    assert_eq!(env.bin_at(&[0.0, 0.0]), 0);
    assert_eq!(env.bin_at(&[8.0, 1.0]), -1);
    assert_eq!(env.bin_at(&[7.999, 7.999]), 15);
    assert_eq!(env.bin_at(&[f64::NAN, 1.0]), -1);
    assert_eq!(env.bin_at(&[2.0, 2.0]), 5);
    // 3-D: 26 neighbours of an inner bin, 6 without diagonals.
    let mut p3 = vec![];
    for i in 0..3 {
        for j in 0..3 {
            for k in 0..3 {
                p3.extend([i as f64, j as f64, k as f64]);
            }
        }
    }
    let g3 = Grid::from_samples(&p3, 3, &[1.0], Some(0), Shaping::default()).unwrap();
    assert_eq!(
        Environment::new(g3.clone(), true)
            .unwrap()
            .graph
            .neighbors(13)
            .len(),
        26
    );
    assert_eq!(
        Environment::new(g3, false)
            .unwrap()
            .graph
            .neighbors(13)
            .len(),
        6
    );
}

/// exp(−tA)·x by a Taylor series with scaling (t·‖A‖ halved until < 0.5, then
/// squared back): an independent route to the same action on a small graph.
fn taylor_action(a: &[Vec<f64>], t: f64, x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let norm: f64 = a
        .iter()
        .map(|r| r.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0, f64::max);
    let s = ((t * norm / 0.5).log2().ceil().max(0.0)) as i32;
    let h = t / 2f64.powi(s);
    // E = exp(−hA) densely by Taylor, then E^(2^s) applied to x.
    let mut e = vec![vec![0.0; n]; n];
    let mut term: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| (i == j) as u8 as f64).collect())
        .collect();
    for k in 0..40 {
        for i in 0..n {
            for j in 0..n {
                e[i][j] += term[i][j];
            }
        }
        let mut next = vec![vec![0.0; n]; n];
        for i in 0..n {
            for j in 0..n {
                next[i][j] =
                    -h / (k + 1) as f64 * (0..n).map(|m| term[i][m] * a[m][j]).sum::<f64>();
            }
        }
        term = next;
    }
    let mut y = x.to_vec();
    for _ in 0..(1 << s) {
        y = (0..n)
            .map(|i| (0..n).map(|j| e[i][j] * y[j]).sum())
            .collect();
    }
    y
}

#[test]
fn smoothing_is_the_exponential_of_the_generator() {
    // An L-shaped arena with unequal bin widths (3 × 2).
    let mut p = lattice(5, 5, 1.0);
    p.retain(|_| true);
    let rows: Vec<f64> = p
        .chunks(2)
        .filter(|r| !(r[0] > 2.0 && r[1] > 2.0))
        .flat_map(|r| [r[0] * 3.0, r[1] * 2.0])
        .collect();
    let g = Grid::from_samples(&rows, 2, &[3.0, 2.0], Some(0), Shaping::default()).unwrap();
    let env = Environment::new(g, true).unwrap();
    let n = env.n_bins();
    assert_eq!(n, 16);
    let area = env.bin_sizes();
    let sigma = 4.0;
    // 0.6.0's generator: w = exp(−d²/2σ²), L = D − W.
    let mut l = vec![vec![0.0; n]; n];
    for b in 0..n {
        for (v, d) in env.graph.edges(b) {
            let w = (-(d * d) / (2.0 * sigma * sigma)).exp();
            l[b][v] -= w;
            l[b][b] += w;
        }
    }
    let minv_l: Vec<Vec<f64>> = (0..n)
        .map(|i| l[i].iter().map(|v| v / area[i]).collect())
        .collect();
    let f: Vec<f64> = (0..n).map(|i| ((i * 7) % 5) as f64 + 0.5).collect();
    let t = sigma * sigma / 2.0;
    let want_tr = taylor_action(&l, t, &f);
    let got_tr = env
        .smooth(&f, 1, sigma, Mode::Transition, Operator::Legacy060)
        .unwrap();
    let g_density: Vec<f64> = f.iter().zip(&area).map(|(v, a)| v / a).collect();
    let want_de = taylor_action(&minv_l, t, &g_density);
    let got_de = env
        .smooth(&f, 1, sigma, Mode::Density, Operator::Legacy060)
        .unwrap();
    for i in 0..n {
        assert!(
            (got_tr[i] - want_tr[i]).abs() < 1e-12 * want_tr[i].abs().max(1.0),
            "{i}"
        );
        assert!(
            (got_de[i] - want_de[i]).abs() < 1e-12 * want_de[i].abs().max(1.0),
            "{i}"
        );
    }
    // Transition conserves the sum, density conserves Σ a·ρ, density of ones is 1/area.
    let s = |v: &[f64]| v.iter().sum::<f64>();
    assert!((s(&got_tr) - s(&f)).abs() < 1e-12 * s(&f));
    let mass: f64 = got_de.iter().zip(&area).map(|(r, a)| r * a).sum();
    assert!((mass - s(&f)).abs() < 1e-12 * s(&f));
    let ones = env
        .smooth(&vec![1.0; n], 1, sigma, Mode::Density, Operator::Legacy060)
        .unwrap();
    assert!(ones.iter().all(|v| (v - 1.0 / 6.0).abs() < 1e-12));
    // Many fields at once equal one at a time.
    let two: Vec<f64> = f.iter().flat_map(|v| [*v, 2.0 * v]).collect();
    let both = env
        .smooth(&two, 2, sigma, Mode::Transition, Operator::Legacy060)
        .unwrap();
    for i in 0..n {
        assert!((both[2 * i] - got_tr[i]).abs() < 1e-13);
        assert!((both[2 * i + 1] - 2.0 * got_tr[i]).abs() < 1e-12);
    }
    // The dense kernel's columns are smoothed unit vectors.
    let k = env
        .compute_kernel(sigma, Mode::Transition, Operator::Legacy060, 100, false)
        .unwrap();
    for i in 0..n {
        let row: f64 = (0..n).map(|j| k[i * n + j] * f[j]).sum();
        assert!((row - got_tr[i]).abs() < 1e-12);
    }
    let e = env
        .compute_kernel(sigma, Mode::Transition, Operator::Legacy060, 10, false)
        .unwrap_err();
    assert!(e.to_string().contains("use smooth()"), "{e}");
}

#[test]
fn the_finite_volume_bandwidth_is_the_physical_sigma() {
    // A 1-D track: a point source spreads with standard deviation σ whatever h.
    for h in [0.5, 1.0, 2.0] {
        let n = (400.0 / h) as usize;
        let xs: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) * h).collect();
        let env = Environment::new(
            Grid::from_samples(&xs, 1, &[h], Some(0), Shaping::default()).unwrap(),
            true,
        )
        .unwrap();
        let mut f = vec![0.0; n];
        f[n / 2] = 1.0;
        for mode in [Mode::Transition, Mode::Average] {
            let y = env
                .smooth(&f, 1, 5.0, mode, Operator::FiniteVolume)
                .unwrap();
            let total: f64 = y.iter().sum();
            let mean: f64 = y.iter().zip(&xs).map(|(w, x)| w * x).sum::<f64>() / total;
            let var: f64 = y
                .iter()
                .zip(&xs)
                .map(|(w, x)| w * (x - mean).powi(2))
                .sum::<f64>()
                / total;
            assert!(
                (var.sqrt() - 5.0).abs() < 0.02,
                "h {h} {mode:?}: std {}",
                var.sqrt()
            );
        }
        // Average mode keeps constants.
        let c = env
            .smooth(&vec![3.0; n], 1, 5.0, Mode::Average, Operator::FiniteVolume)
            .unwrap();
        assert!(c.iter().all(|v| (v - 3.0).abs() < 1e-12));
    }
}

#[test]
fn paths_distances_and_trajectories() {
    let env = Environment::new(
        Grid::from_samples(
            &lattice(10, 10, 1.0),
            2,
            &[1.0],
            Some(0),
            Shaping::default(),
        )
        .unwrap(),
        true,
    )
    .unwrap();
    let p = env.path_between(0, 99);
    assert_eq!(p.len(), 10);
    assert!((env.distance_between(0, 99) - 9.0 * 2f64.sqrt()).abs() < 1e-12);
    // Dijkstra (no guide) agrees.
    assert_eq!(env.graph.path(0, 99, &|_| 0.0).len(), 10);
    for w in p.windows(2) {
        assert!(env.graph.neighbors(w[0]).contains(&(w[1] as u32)));
    }
    // Occupancy: times [0, .1, .2, 1.0, 1.1, 1.2] give 0.3 s: the 0.8 s gap, the
    // interval starting outside and the last sample drop out.
    let t = [0.0, 0.1, 0.2, 1.0, 1.1, 1.2];
    let pos = [0.5, 0.5, 0.5, 0.5, 1.5, 0.5, -5.0, 0.5, 1.5, 1.5, 1.5, 1.5];
    let occ = env
        .occupancy(&t, &pos, &OccupancyOptions::default())
        .unwrap();
    assert!((occ.iter().sum::<f64>() - 0.3).abs() < 1e-12);
    assert!((occ[0] - 0.2).abs() < 1e-12 && occ[10] == 0.0 && (occ[11] - 0.1).abs() < 1e-12);
    assert_eq!(
        env.bin_sequence(&t, &pos, true, true).unwrap(),
        vec![0, 10, -1, 11]
    );
    assert_eq!(
        env.bin_sequence(&t, &pos, true, false).unwrap(),
        vec![0, 10, 11]
    );
    assert_eq!(env.bin_sequence(&t, &pos, false, true).unwrap().len(), 6);
    let counts = OccupancyOptions {
        return_seconds: false,
        max_gap: None,
        ..Default::default()
    };
    assert_eq!(
        env.occupancy(&t, &pos, &counts)
            .unwrap()
            .iter()
            .sum::<f64>(),
        4.0
    );
    let bad = env.occupancy(&[0.0, 1.0, 0.5], &[0.5; 6], &OccupancyOptions::default());
    assert!(bad.unwrap_err().to_string().contains("must not decrease"));
}

#[test]
fn many_threads_query_one_environment() {
    let env = std::sync::Arc::new(
        Environment::new(
            Grid::from_samples(
                &lattice(40, 40, 2.0),
                2,
                &[2.0],
                Some(0),
                Shaping::default(),
            )
            .unwrap(),
            true,
        )
        .unwrap(),
    );
    let f: Vec<f64> = (0..env.n_bins()).map(|i| (i % 13) as f64).collect();
    let want = env
        .smooth(&f, 1, 5.0, Mode::Density, Operator::Legacy060)
        .unwrap();
    env.clear_cache(true, true);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (env, f) = (env.clone(), f.clone());
            std::thread::spawn(move || {
                let s = env
                    .smooth(&f, 1, 5.0, Mode::Density, Operator::Legacy060)
                    .unwrap();
                let p = env.path_between(i, env.n_bins() - 1 - i);
                // The nearest-bin index is built lazily by whichever thread comes first.
                let q: Vec<f64> = (0..400).map(|k| (k * 7 % 97) as f64 - 8.0).collect();
                let m = env
                    .map_points_to_bins(&q, TieBreak::LowestIndex, Reach::default())
                    .unwrap();
                (s, p.len(), env.bin_at(&[3.0 + i as f64, 5.0]), m)
            })
        })
        .collect();
    let mut maps = vec![];
    for (i, h) in handles.into_iter().enumerate() {
        let (s, _, b, m) = h.join().unwrap();
        assert_eq!(s, want);
        assert_eq!(b, env.bin_at(&[3.0 + i as f64, 5.0]));
        maps.push(m);
    }
    assert!(maps.windows(2).all(|w| w[0] == w[1]));
}

/// Brute force over every centre: the nearest, lowest index among ties within 1e-10.
fn brute_nearest(env: &Environment, p: &[f64]) -> (i64, f64) {
    let d: Vec<f64> = (0..env.n_bins())
        .map(|b| {
            let c = env.center(b);
            ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)).sqrt()
        })
        .collect();
    let best = d.iter().copied().fold(f64::INFINITY, f64::min);
    let b = d.iter().position(|&x| x - best < 1e-10).unwrap();
    (b as i64, best)
}

#[test]
fn nearest_bins_are_exact_on_sparse_and_ragged_arenas() {
    // An L-shaped arena with holes and uneven edges: buckets hold 0 to several centres.
    let mut g = Grid::with_edges(
        vec![
            vec![0.0, 1.0, 3.0, 3.5, 7.0, 8.0, 12.0],
            vec![-2.0, 0.0, 0.5, 4.0, 4.1, 9.0],
        ],
        true,
    )
    .unwrap();
    for (f, a) in g.active.iter_mut().enumerate() {
        *a = f % 7 != 3 && !(f >= 20 && f % 5 < 3);
    }
    let env = Environment::new(g, true).unwrap();
    let mut q = vec![];
    for i in 0..60 {
        for j in 0..60 {
            q.extend([-6.0 + i as f64 * 0.4, -8.0 + j as f64 * 0.4]);
        }
    }
    let (bins, dist) = env
        .map_points_to_bins(&q, TieBreak::LowestIndex, Reach::Distance(f64::INFINITY))
        .unwrap();
    for (k, p) in q.chunks(2).enumerate() {
        let (b, d) = brute_nearest(&env, p);
        assert_eq!(bins[k], b, "point {p:?}");
        assert!((dist[k] - d).abs() < 1e-12);
    }
    // The default reach: 10 typical spacings from the nearest centre.
    let s = env.typical_spacing();
    let far = [12.0 + 10.0 * s + 1.0, 4.0];
    let (b, d) = env
        .map_points_to_bins(&far, TieBreak::LowestIndex, Reach::default())
        .unwrap();
    assert_eq!((b[0], d[0]), (-1, f64::INFINITY));
    assert!(env
        .map_points_to_bins(&[f64::NAN, 1.0], TieBreak::LowestIndex, Reach::default())
        .is_err());
}

#[test]
fn linear_occupancy_splits_a_segment_by_length() {
    // Four unit cells; a segment from (0.5, 0.5) to (1.5, 1.0) crosses x = 1 halfway.
    let g = Grid::with_edges(vec![vec![0.0, 1.0, 2.0], vec![0.0, 1.0, 2.0]], true).unwrap();
    let env = Environment::new(g, true).unwrap();
    let o = OccupancyOptions {
        linear: true,
        ..OccupancyOptions::default()
    };
    let occ = env
        .occupancy(&[0.0, 0.4], &[0.5, 0.5, 1.5, 1.0], &o)
        .unwrap();
    // Bin order is C order: (0,0), (0,1), (1,0), (1,1); y = 1 is reached only at the end.
    assert!(
        (occ[0] - 0.2).abs() < 1e-12 && (occ[2] - 0.2).abs() < 1e-12,
        "{occ:?}"
    );
    assert_eq!(occ[1] + occ[3], 0.0);
}

#[test]
fn density_smoothing_conserves_mass_at_a_million_bins() {
    let g = Grid::with_edges(
        vec![
            voxfield_env::grid::linspace(0.0, 2000.0, 1000),
            voxfield_env::grid::linspace(0.0, 2000.0, 1000),
        ],
        true,
    )
    .unwrap();
    let env = Environment::new(g, true).unwrap();
    assert_eq!(env.n_bins(), 1_000_000);
    let f: Vec<f64> = (0..env.n_bins())
        .map(|i| ((i * 2_654_435_761) % 1000) as f64)
        .collect();
    let y = env
        .smooth(&f, 1, 5.0, Mode::Density, Operator::Legacy060)
        .unwrap();
    let mass: f64 = y.iter().map(|r| r * 4.0).sum();
    let want: f64 = f.iter().sum();
    assert!((mass - want).abs() < 1e-9 * want, "{mass} vs {want}");
}

#[test]
fn bad_input_is_refused_clearly() {
    let say = |r: voxfield_core::Result<Grid>, what: &str| {
        let e = r.unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
    };
    say(
        Grid::from_samples(
            &[0.0, f64::INFINITY],
            1,
            &[1.0],
            Some(0),
            Shaping::default(),
        ),
        "infinite",
    );
    say(
        Grid::from_samples(
            &[f64::NAN, f64::NAN],
            1,
            &[1.0],
            Some(0),
            Shaping::default(),
        ),
        "no samples",
    );
    say(
        Grid::from_samples(&[], 2, &[1.0], Some(0), Shaping::default()),
        "no samples",
    );
    say(
        Grid::from_samples(&[0.0, 1.0], 1, &[0.0], Some(0), Shaping::default()),
        "bin_size",
    );
    say(
        Grid::from_samples(&[0.0, 1.0], 1, &[-2.0], Some(0), Shaping::default()),
        "bin_size",
    );
    say(
        Grid::from_samples(&[0.0, 1.0], 1, &[1e-12], Some(0), Shaping::default()),
        "too small",
    );
    say(
        Grid::from_samples(&[0.0; 8], 4, &[1.0], Some(0), Shaping::default()),
        "1-D to 3-D",
    );
    let env = Environment::new(
        Grid::from_samples(&lattice(3, 3, 1.0), 2, &[1.0], Some(0), Shaping::default()).unwrap(),
        true,
    )
    .unwrap();
    let e = env
        .smooth(&[1.0; 5], 1, 1.0, Mode::Density, Operator::Legacy060)
        .unwrap_err();
    assert!(e.to_string().contains("for 9 bins"), "{e}");
    let e = env
        .smooth(&[1.0; 9], 1, 0.0, Mode::Density, Operator::Legacy060)
        .unwrap_err();
    assert!(e.to_string().contains("bandwidth"), "{e}");
    let mut nan = vec![1.0; 9];
    nan[4] = f64::NAN;
    assert!(env
        .smooth(&nan, 1, 1.0, Mode::Density, Operator::Legacy060)
        .is_err());
    assert!(env
        .check_bin(9)
        .unwrap_err()
        .to_string()
        .contains("out of range"));
    assert!(env.check_bin(-1).is_err());
    let e = env
        .occupancy(&[0.0, 1.0], &[0.5; 2], &OccupancyOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("2 times for 1 positions"), "{e}");
}

#[test]
fn a_cached_dense_kernel_is_what_smooth_then_applies() {
    let pts: Vec<f64> = (0..400)
        .flat_map(|i| [(i % 20) as f64, (i / 20) as f64])
        .collect();
    let grid = Grid::from_samples(&pts, 2, &[1.0, 1.0], Some(0), Shaping::default()).unwrap();
    let env = Environment::new(grid, true).unwrap();
    let n = env.n_bins();
    let f: Vec<f64> = (0..n).map(|i| ((i * 7) % 11) as f64).collect();
    let free = env
        .smooth(&f, 1, 2.0, Mode::Density, Operator::Legacy060)
        .unwrap();
    assert_eq!(env.cached_kernels(), 0);
    let k = env
        .compute_kernel(2.0, Mode::Density, Operator::Legacy060, 10_000, true)
        .unwrap();
    assert_eq!(env.cached_kernels(), 1);
    let dense = env
        .smooth(&f, 1, 2.0, Mode::Density, Operator::Legacy060)
        .unwrap();
    for i in 0..n {
        let want: f64 = (0..n).map(|j| k[i * n + j] * f[j]).sum();
        assert!((dense[i] - want).abs() < 1e-12 * want.abs().max(1.0));
        assert!((dense[i] - free[i]).abs() < 1e-10 * free[i].abs().max(1.0));
    }
    // Several fields at once, and another mode is not served by this kernel.
    let two: Vec<f64> = f.iter().flat_map(|v| [*v, -v]).collect();
    let both = env
        .smooth(&two, 2, 2.0, Mode::Density, Operator::Legacy060)
        .unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
    assert!((0..n).all(|i| close(both[2 * i], dense[i]) && close(both[2 * i + 1], -dense[i])));
    env.compute_kernel(2.0, Mode::Transition, Operator::Legacy060, 10_000, false)
        .unwrap();
    assert_eq!(env.cached_kernels(), 1);
    env.clear_cache(true, false);
    assert_eq!(env.cached_kernels(), 0);
}

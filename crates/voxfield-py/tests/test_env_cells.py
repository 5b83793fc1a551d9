"""Cell scores of voxfield.env against neurospatial 0.6.0 itself: boundary bins, the FFT
autocorrelogram, the grid score (scipy's rotations inside an annulus) and the border score,
single and batch, on hand-built and random rate maps; bad input refused as neurospatial."""
import warnings

import numpy as np
import pytest

from voxfield import env as ve

ns = pytest.importorskip("neurospatial")
from neurospatial.encoding import _metrics as ns_metrics  # noqa: E402
from neurospatial.encoding.border import border_score as ns_border  # noqa: E402
from neurospatial.encoding.grid import grid_score as ns_grid_score  # noqa: E402
from neurospatial.encoding.grid import spatial_autocorrelation as ns_autocorrelation  # noqa: E402


def both(positions, bin_size, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ns.Environment.from_samples(positions, bin_size=bin_size, **kw), \
            ve.Environment.from_samples(positions, bin_size, **kw)


def arena(seed, shape="box", n=30000):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 60, (n, 2))
    p[:, 1] *= 0.8
    if shape == "disc":  # a round arena inside its square grid: ~79 % of cells active
        p = p[np.hypot(p[:, 0] - 30, p[:, 1] - 24) < 24]
    return p


def hexagonal_grid_cell(centres, spacing, phase=0.0, angle=0.2):
    k = 4 * np.pi / (np.sqrt(3) * spacing)
    r = sum(np.cos(k * (centres @ np.array([np.cos(angle + a), np.sin(angle + a)])) + phase)
            for a in (0, np.pi / 3, 2 * np.pi / 3))
    return np.maximum(r, 0.0) * 4.0


@pytest.mark.parametrize("bin_size,kw", [(2.5, {}), (2.0, {"layout": "Hexagonal"}), (3.0, {"bin_count_threshold": 3}),
                                         (1.5, {"connect_diagonal_neighbors": False})])
def test_boundary_bins_match(bin_size, kw):
    for shape in ("box", "disc"):
        a, b = both(arena(1, shape), bin_size, **kw)
        np.testing.assert_array_equal(b.boundary_bins, a.boundary_bins)
    p3 = np.random.default_rng(2).uniform(0, 20, (20000, 3))
    a, b = both(p3[np.linalg.norm(p3 - 10, axis=1) < 10], 2.0)
    np.testing.assert_array_equal(b.boundary_bins, a.boundary_bins)
    a, b = both(np.random.default_rng(3).uniform(0, 30, (500, 1)), 1.0)
    np.testing.assert_array_equal(b.boundary_bins, a.boundary_bins)


@pytest.mark.parametrize("shape,bin_size", [("box", 2.5), ("box", 2.0), ("disc", 2.0), ("box", 3.3)])
def test_autocorrelation_and_grid_score_match(shape, bin_size):
    a, b = both(arena(4, shape), bin_size)
    rng = np.random.default_rng(5)
    c = b.bin_centers
    maps = [hexagonal_grid_cell(c, 14.0), hexagonal_grid_cell(c, 20.0, 1.0, 0.7),
            np.exp(-np.sum((c - 20) ** 2, 1) / 50.0), rng.gamma(2.0, 1.0, b.n_bins)]
    unvisited = maps[0].copy()
    unvisited[rng.random(b.n_bins) < 0.1] = np.nan  # unvisited bins
    maps.append(unvisited)
    for rate in maps:
        want = ns_autocorrelation(a, rate)
        got = ve.spatial_autocorrelation(b, rate)
        assert got.shape == want.shape == b.grid_shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        for inner, outer in [(0.2, 0.5), (0.1, 0.9), (0.3, 0.6), (0.25, 1.0)]:
            w = ns_grid_score(want, inner_radius_fraction=inner, outer_radius_fraction=outer)
            g = ve.grid_score(want, inner_radius_fraction=inner, outer_radius_fraction=outer)
            assert g == pytest.approx(w, abs=1e-12, nan_ok=True)
    # On the finer grids the hexagonal map scores as a grid cell, the field does not.
    scores = ve.batch_grid_scores(b, np.array(maps))
    assert not scores.failures.any()
    if bin_size <= 2.5:
        assert scores[0] > 0.4 > scores[2]
    want = ns_metrics.batch_grid_scores(a, np.array(maps))
    np.testing.assert_allclose(scores.scores, want.scores, atol=1e-12)
    np.testing.assert_allclose(ve.spatial_autocorrelations(b, np.array(maps))[1], ns_autocorrelation(a, maps[1]),
                               atol=1e-12)


def test_grid_score_edge_cases_match():
    rng = np.random.default_rng(6)
    for h, w in [(7, 7), (8, 9), (31, 30), (4, 40), (64, 64)]:
        ac = rng.normal(size=(h, w))
        assert ve.grid_score(ac) == pytest.approx(ns_grid_score(ac), abs=1e-12, nan_ok=True)
    tiny = rng.normal(size=(5, 5))  # annulus under 10 pixels
    assert np.isnan(ve.grid_score(tiny)) and np.isnan(ns_grid_score(tiny))
    bad = rng.normal(size=(20, 20))
    bad[3, 4] = np.inf
    assert np.isnan(ve.grid_score(bad))
    stack = rng.normal(size=(4, 20, 22))
    np.testing.assert_allclose(ve.grid_score(stack), [ns_grid_score(s) for s in stack], atol=1e-12)
    with pytest.raises(ValueError, match="inner_radius_fraction"):
        ve.grid_score(stack[0], inner_radius_fraction=0.0)
    with pytest.raises(ValueError, match="outer_radius_fraction"):
        ve.grid_score(stack[0], inner_radius_fraction=0.5, outer_radius_fraction=0.4)
    with pytest.raises(ValueError, match="2D"):
        ve.grid_score(np.zeros(5))


def test_autocorrelation_refusals_match():
    a, b = both(arena(7), 2.5)
    for rate, msg in [(np.full(b.n_bins, np.nan), "All firing rates are NaN"),
                      (np.full(b.n_bins, 3.0), "constant")]:
        with pytest.raises(ValueError, match=msg):
            ns_autocorrelation(a, rate)
        with pytest.raises(ValueError, match=msg):
            ve.spatial_autocorrelation(b, rate)
    with pytest.raises(ValueError, match="shape"):
        ve.spatial_autocorrelation(b, np.zeros(3))
    # Constant and all-NaN maps are NaN in a batch, not failures (as neurospatial).
    maps = np.array([np.full(b.n_bins, 2.0), np.full(b.n_bins, np.nan), np.arange(b.n_bins, dtype=float)])
    got, want = ve.batch_grid_scores(b, maps), ns_metrics.batch_grid_scores(a, maps)
    np.testing.assert_array_equal(got.failures, want.failures)
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-12)
    # A hexagonal lattice is autocorrelated over its rows x columns, as neurospatial does.
    h, hb = both(arena(7), 2.5, layout="Hexagonal")
    rate = hexagonal_grid_cell(hb.bin_centers, 14.0)
    np.testing.assert_allclose(ve.spatial_autocorrelation(hb, rate), ns_autocorrelation(h, rate), atol=1e-12)
    np.testing.assert_allclose(ve.batch_grid_scores(hb, rate[None]).scores,
                               ns_metrics.batch_grid_scores(h, rate[None]).scores, atol=1e-12)
    # No regular 2-D grid (a thin ring fills under half its grid; a 3-D box): refused singly,
    # NaN for every neuron in a batch (not failures), as neurospatial.
    t = np.random.default_rng(8).uniform(0, 2 * np.pi, 20000)
    ring = np.c_[30 + 25 * np.cos(t), 30 + 25 * np.sin(t)] + np.random.default_rng(9).normal(0, 0.5, (20000, 2))
    r, rb = both(ring, 2.0)
    assert rb.active_mask.mean() < 0.5
    with pytest.raises(ValueError, match="at least half"):
        ve.spatial_autocorrelation(rb, np.arange(rb.n_bins, dtype=float))
    box = both(np.random.default_rng(1).uniform(0, 9, (900, 3)), 1.0)[1]
    with pytest.raises(ValueError, match="2-D grid"):
        ve.spatial_autocorrelation(box, np.arange(float(box.n_bins)))
    maps = np.ones((2, rb.n_bins)) * np.arange(rb.n_bins)
    got, want = ve.batch_grid_scores(rb, maps), ns_metrics.batch_grid_scores(r, maps)
    np.testing.assert_array_equal(got.failures, want.failures)
    assert np.isnan(got.scores).all() and np.isnan(want.scores).all()


@pytest.mark.parametrize("layout", ["RegularGrid", "Hexagonal"])
def test_border_score_matches(layout):
    a, b = both(arena(8, "disc"), 2.5, layout=layout)
    c = b.bin_centers
    rng = np.random.default_rng(9)
    wall = np.exp(-np.maximum(0.0, c[:, 0] - c[:, 0].min()) ** 2 / 30.0)  # a field along the west wall
    centre = np.exp(-np.sum((c - [30, 24]) ** 2, 1) / 40.0)
    noisy = rng.gamma(1.0, 1.0, b.n_bins)
    holes = centre.copy()
    holes[rng.random(b.n_bins) < 0.2] = np.nan
    maps = [wall, centre, noisy, holes, np.zeros(b.n_bins), np.full(b.n_bins, np.nan)]
    for rate in maps:
        for kw in [{}, {"metric": "euclidean"}, {"threshold": 0.5}, {"min_area": 200.0}, {"threshold": 0.1}]:
            w = ns_border(a, rate, **kw)
            g = ve.border_score(b, rate, **kw)
            assert g == pytest.approx(w, abs=1e-12, nan_ok=True), (kw, g, w)
    assert ve.border_score(b, wall) > 0.5 > ve.border_score(b, centre)
    got = ve.batch_border_scores(b, np.array(maps), metric="euclidean")
    want = ns_metrics.batch_border_scores(a, np.array(maps), metric="euclidean")
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-12)
    for kw, msg in [({"threshold": 0.0}, "threshold"), ({"threshold": 1.0}, "threshold"),
                    ({"min_area": -1.0}, "min_area"), ({"metric": "manhattan"}, "metric")]:
        with pytest.raises(ValueError, match=msg):
            ve.border_score(b, wall, **kw)
    with pytest.raises(ValueError, match="shape"):
        ve.border_score(b, wall[:-1])
    with pytest.raises(ValueError, match="n_neurons"):
        ve.batch_border_scores(b, wall)


def test_field_metrics_match():
    from neurospatial.encoding import _field_metrics as nf
    from neurospatial.encoding import compute_spatial_rate as ns_rate
    from neurospatial.encoding.spatial import is_place_cell as ns_is_place_cell
    a, b = both(arena(10, "disc"), 2.5)
    c = b.bin_centers
    rate = np.exp(-np.sum((c - [20, 20]) ** 2, 1) / 30.0) * 8
    rng = np.random.default_rng(11)
    fields = [np.flatnonzero(rate > 0.2 * rate.max()), np.array([5]), np.array([3, 40, 77, 200])]
    for f in fields:
        assert ve.field_size(b, f) == pytest.approx(nf.field_size(a, f), rel=1e-12)
        for method in ("euclidean", "geodesic"):
            np.testing.assert_allclose(ve.rate_map_centroid(b, rate, f, method=method),
                                       nf.rate_map_centroid(a, rate, f, method=method), rtol=1e-12)
    zero = np.zeros(b.n_bins)
    np.testing.assert_allclose(ve.rate_map_centroid(b, zero, fields[0]), nf.rate_map_centroid(a, zero, fields[0]))
    noisy = rate + rng.normal(0, 0.5, b.n_bins)
    noisy[rng.random(b.n_bins) < 0.1] = np.nan
    for method in ("pearson", "spearman"):
        assert ve.field_stability(rate, noisy, method=method) == pytest.approx(
            nf.field_stability(rate, noisy, method=method), rel=1e-12)
    assert ve.field_stability(rate, np.ones(b.n_bins)) is not None and np.isnan(ve.field_stability(rate, np.ones(b.n_bins)))
    assert ve.field_stability(rate[:1], rate[:1]) == 0.0
    with pytest.raises(ValueError, match="Unknown method"):
        ve.field_stability(rate, noisy, method="kendall")
    with pytest.raises(ValueError, match="field_bins"):
        ve.rate_map_centroid(b, rate, np.array([b.n_bins]))
    with pytest.raises(ValueError, match="empty"):
        ve.rate_map_centroid(b, rate, np.array([], dtype=int))
    # The rates result's peaks and place-cell test, for one unit and many.
    rng = np.random.default_rng(12)
    t = np.arange(0, 300, 1 / 30)
    p = np.clip(np.cumsum(rng.normal(0, 1.5, (t.size, 2)), 0) % 96, 0, 48) + 1
    p = np.where(p > 48, 96 - p, p)
    near = t[np.linalg.norm(p - [20, 20], axis=1) < 6]
    noise = np.sort(rng.uniform(0, 300, 3000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for train in (near, noise):
            want = ns_rate(a, train, t, p)
            got = ve.compute_spatial_rate(b, train, t, p)
            np.testing.assert_allclose(got.peak_location(), want.peak_location())
            assert got.peak_firing_rate() == pytest.approx(want.peak_firing_rate(), rel=1e-10)
            assert got.is_place_cell() == want.is_place_cell()
            assert ve.is_place_cell(b, train, t, p) == ns_is_place_cell(a, train, t, p)
        assert ve.is_place_cell(b, near, t, p) and not ve.is_place_cell(b, noise, t, p)
        many = ve.compute_spatial_rates(b, [near, noise, np.array([])], t, p)
        locs = many.peak_locations()
        assert locs.shape == (3, 2)
        np.testing.assert_array_equal(many.is_place_cell(), [True, False, False])

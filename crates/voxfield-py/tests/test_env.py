"""voxfield.env against neurospatial 0.6.0 itself (pip-installed in the test venv):
grids, active masks and connectivity, bin_at, dense kernels and smoothing in both
modes, occupancy, bin sequences, paths and distances, on fixtures it builds here."""
import warnings

import numpy as np
import pytest

from voxfield.env import Environment

ns = pytest.importorskip("neurospatial")


def walk(n, dims, span, seed):
    """A reflected random walk: an animal exploring a box."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, span / 40, (n, dims))
    p = np.cumsum(steps, axis=0) % (2 * span)
    return np.where(p > span, 2 * span - p, p)


def both(positions, bin_size, **kw):
    return (ns.Environment.from_samples(positions, bin_size=bin_size, **kw),
            Environment.from_samples(positions, bin_size, **kw))


def graph_edges(env):
    g = env.connectivity
    return {(min(u, v), max(u, v)): d["distance"] for u, v, d in g.edges(data=True)}


@pytest.mark.parametrize("dims,bin_size,kw", [
    (2, 2.0, {}),
    (2, [2.5, 1.5], {"bin_count_threshold": 2}),
    (2, 3.0, {"connect_diagonal_neighbors": False}),
    (3, 4.0, {}),
    (1, 0.7, {}),
    (2, 2.0, {"infer_active_bins": False}),
    (2, 1.0, {"close_gaps": True}),
    (2, 1.0, {"fill_holes": True, "bin_count_threshold": 1}),
    (2, 1.5, {"dilate": True}),
    (2, 1.0, {"close_gaps": True, "fill_holes": True, "dilate": True, "bin_count_threshold": 2}),
    (3, 2.0, {"close_gaps": True, "fill_holes": True}),
    (3, 3.0, {"dilate": True, "add_boundary_bins": True}),
    (2, 2.0, {"add_boundary_bins": True}),
    (1, 0.7, {"add_boundary_bins": True, "dilate": True}),
    (2, 2.0, {"add_boundary_bins": True, "infer_active_bins": False}),
])
def test_grids_masks_and_connectivity_match(dims, bin_size, kw):
    p = walk(3000, dims, 30.0, seed=dims)
    p[5] = np.nan  # rows with a NaN are dropped by both
    a, b = both(p, bin_size, **kw)
    assert b.n_bins == a.n_bins and b.grid_shape == tuple(a.grid_shape)
    for ea, eb in zip(a.grid_edges, b.grid_edges):
        np.testing.assert_array_equal(eb, ea)
    np.testing.assert_array_equal(b.active_mask, a.active_mask)
    np.testing.assert_array_equal(b.bin_centers, a.bin_centers)
    np.testing.assert_allclose(b.bin_sizes, a.bin_sizes, rtol=1e-14)
    want = graph_edges(a)
    pairs, dist = b.edges()
    got = {(int(i), int(j)): d for (i, j), d in zip(pairs, dist)}
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-14)
    for i in [0, b.n_bins // 2, b.n_bins - 1]:
        assert sorted(b.neighbors(i)) == sorted(a.neighbors(i))


def test_bin_at_matches_on_edges_outside_and_nan():
    p = walk(2000, 2, 20.0, seed=3)
    a, b = both(p, 2.0)
    rng = np.random.default_rng(4)
    lo, hi = [e[0] for e in a.grid_edges], [e[-1] for e in a.grid_edges]
    q = rng.uniform(np.array(lo) - 3, np.array(hi) + 3, (5000, 2))
    # Exact edges (half-open bins; the top edge is outside) and NaN.
    ex, ey = a.grid_edges
    q[:40] = np.stack([ex[rng.integers(0, len(ex), 40)], ey[rng.integers(0, len(ey), 40)]], axis=1)
    q[40] = [np.nan, 5.0]
    q[41] = [ex[-1], ey[0]]
    np.testing.assert_array_equal(b.bin_at(q), a.bin_at(q))
    np.testing.assert_array_equal(b.contains(q), a.contains(q))


@pytest.mark.parametrize("mode", ["density", "transition"])
@pytest.mark.parametrize("bandwidth", [3.0, 7.5])
def test_dense_kernels_and_smoothing_match(mode, bandwidth):
    # An irregular arena (a walk's footprint, with holes) of ~400 bins, and a 3-D one.
    for dims, span, size in [(2, 40.0, 2.0), (3, 10.0, 2.0)]:
        p = walk(4000, dims, span, seed=10 + dims)
        a, b = both(p, size)
        assert b.n_bins <= 600
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ka = a.compute_kernel(bandwidth, mode=mode)
        kb = b.compute_kernel(bandwidth, mode=mode)
        np.testing.assert_allclose(kb, ka, rtol=0, atol=1e-10 * np.abs(ka).max())
        f = np.random.default_rng(1).random((b.n_bins, 3))
        np.testing.assert_allclose(b.smooth(f, bandwidth, mode=mode), ka @ f, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(b.smooth(f[:, 0], bandwidth, mode=mode), a.smooth(f[:, 0], bandwidth, mode=mode),
                                   rtol=1e-10, atol=1e-13)


def test_occupancy_and_bin_sequence_match():
    rng = np.random.default_rng(7)
    n = 3000
    t = np.cumsum(rng.choice([1 / 30, 1 / 30, 1 / 30, 0.7], n))
    p = walk(n, 2, 30.0, seed=8)
    a, b = both(p, 2.5)
    q = p.copy()
    q[::97] += 100.0  # some samples outside
    speed = rng.uniform(0, 10, n)
    for kw in [{}, {"max_gap": None}, {"return_seconds": False}, {"speed": speed, "min_speed": 3.0},
               {"bandwidth": 4.0}]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = a.occupancy(t, q, **kw)
        np.testing.assert_allclose(b.occupancy(t, q, **kw), want, rtol=1e-10, atol=1e-12, err_msg=str(kw))
    for kw in [{}, {"dedup": False}, {"outside_value": None}]:
        got, want = b.bin_sequence(t, q, **kw), a.bin_sequence(t, q, **kw)
        assert got.dtype == want.dtype == np.int32
        np.testing.assert_array_equal(got, want)


def test_paths_and_distances_match():
    p = walk(4000, 2, 40.0, seed=21)
    a, b = both(p, 2.0)
    rng = np.random.default_rng(0)
    ea = {(min(u, v), max(u, v)): d["distance"] for u, v, d in a.connectivity.edges(data=True)}
    for _ in range(20):
        i, j = (int(x) for x in rng.integers(0, b.n_bins, 2))
        pa, pb = a.path_between(i, j), b.path_between(i, j)
        length = lambda path: sum(ea[(min(u, v), max(u, v))] for u, v in zip(path, path[1:]))
        # Many shortest paths exist on a grid: the lengths agree, not the bins.
        assert (len(pb) == 0) == (len(pa) == 0)
        if pb:
            assert pb[0] == i and pb[-1] == j
            assert length(pb) == pytest.approx(length(pa), rel=1e-12)
    pts = rng.uniform(0, 40, (10, 2))
    for u, v in zip(pts[::2], pts[1::2]):
        assert b.distance_between(u, v) == pytest.approx(a.distance_between(u, v), rel=1e-12)
    targets = [0, b.n_bins // 3]
    np.testing.assert_allclose(b.distance_to(targets), a.distance_to(targets), rtol=1e-12)
    np.testing.assert_allclose(b.distance_to(targets, metric="euclidean"),
                               a.distance_to(targets, metric="euclidean"), rtol=1e-12)


def test_threads_share_one_environment():
    from concurrent.futures import ThreadPoolExecutor
    b = Environment.from_samples(walk(5000, 2, 60.0, seed=2), 1.0)
    f = np.random.default_rng(3).random(b.n_bins)
    want = b.smooth(f, 4.0)
    b.clear_cache()
    with ThreadPoolExecutor(8) as ex:
        outs = list(ex.map(lambda _: b.smooth(f, 4.0), range(8)))
    for o in outs:
        np.testing.assert_array_equal(o, want)


def test_bad_input_is_refused_clearly():
    p = walk(500, 2, 10.0, seed=1)
    b = Environment.from_samples(p, 1.0)
    with pytest.raises(ValueError, match="infinite"):
        Environment.from_samples(np.array([[0.0, 1.0], [np.inf, 2.0]]), 1.0)
    with pytest.raises(ValueError, match="no samples"):
        Environment.from_samples(np.full((4, 2), np.nan), 1.0)
    with pytest.raises(ValueError, match="no samples"):
        Environment.from_samples(np.zeros((0, 2)), 1.0)
    for bad in [0.0, -1.0, np.nan]:
        with pytest.raises(ValueError, match="bin_size"):
            Environment.from_samples(p, bad)
    with pytest.raises(ValueError, match="field has shape"):
        b.smooth(np.ones(b.n_bins + 1), 2.0)
    with pytest.raises(ValueError, match="bandwidth"):
        b.smooth(np.ones(b.n_bins), -1.0)
    with pytest.raises(ValueError, match="must not decrease"):
        b.occupancy([0.0, 1.0, 0.5], p[:3])
    with pytest.raises(ValueError, match="out of range"):
        b.path_between(0, b.n_bins)
    with pytest.raises(ValueError, match="mode"):
        b.smooth(np.ones(b.n_bins), 2.0, mode="sideways")
    # Absurd grids are refused before anything is allocated.
    with pytest.raises(ValueError, match="too large"):
        Environment.from_samples(np.array([[0.0, 0.0], [1e6, 1e6]]), 1.0, infer_active_bins=False)
    with pytest.raises(ValueError, match="too small"):
        Environment.from_samples(np.array([[0.0], [1.0]]), 1e-300)
    with pytest.raises(ValueError, match="too large"):
        Environment.from_grid_mask(np.zeros((1, 1, 1), bool), [np.arange(1001.0)] * 3)
    big = Environment.from_samples(np.array([[0.0, 0.0], [150.0, 150.0]]), 1.0, infer_active_bins=False)
    assert big.n_bins > 20_000
    with pytest.raises(ValueError, match="use smooth"):
        big.compute_kernel(2.0)


def test_rate_maps_and_scores_match():
    from neurospatial.encoding import compute_spatial_rates as ns_rates
    from voxfield.env import compute_spatial_rates, sparsity, spatial_information
    rng = np.random.default_rng(11)
    n = 6000
    t = np.cumsum(rng.choice([1 / 30] * 9 + [0.8], n))
    p = walk(n, 2, 30.0, seed=12)
    a, b = both(p, 2.5)
    # Place-cell-like units: Poisson spikes driven by the position, plus spikes
    # outside the session and in dropped gaps.
    centres = rng.uniform(0, 30, (12, 2))
    trains = []
    for c in centres:
        rate = 20 * np.exp(-np.sum((p - c) ** 2, axis=1) / (2 * 4.0 ** 2))
        k = rng.random(n) < rate / 30
        trains.append(np.sort(np.concatenate([t[k] + rng.uniform(0, 1 / 30, k.sum()), [0.001, t[-1] + 3]])))
    trains.append(np.array([]))
    speed = rng.uniform(0, 10, n)
    for kw in [{}, {"smoothing_method": "binned"}, {"min_occupancy": 0.05, "bandwidth": 3.0},
               {"speed": speed, "min_speed": 2.0}, {"max_gap": None, "fill_value": 0.0},
               {"smoothing_method": "gaussian_kde"}, {"smoothing_method": "gaussian_kde", "bandwidth": 0.7,
                                                      "min_occupancy": 0.01}]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = ns_rates(a, trains, t, p, **kw)
        got = compute_spatial_rates(b, trains, t, p, **kw)
        np.testing.assert_allclose(got.occupancy, want.occupancy, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got.firing_rates, np.asarray(want.firing_rates), rtol=1e-9, atol=1e-12,
                                   equal_nan=True, err_msg=str(kw))
        np.testing.assert_allclose(got.spatial_information(), want.spatial_information(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got.sparsity(), want.sparsity(), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="non-negative"):
        compute_spatial_rates(b, [np.array([-1.0, 2.0])], t, p)
    with pytest.raises(ValueError, match="finite"):
        compute_spatial_rates(b, [np.array([1.0, np.inf])], t, p)
    # gaussian_kde on a holed 3-D arena (inactive cells carry no weight) and in 1-D.
    for dims, h in [(3, 3.0), (1, 0.5)]:
        q = walk(n, dims, 20.0, seed=13)
        a3, b3 = both(q, h, bin_count_threshold=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = ns_rates(a3, trains[:4], t, q, smoothing_method="gaussian_kde", bandwidth=4.0)
        got3 = compute_spatial_rates(b3, trains[:4], t, q, smoothing_method="gaussian_kde", bandwidth=4.0)
        np.testing.assert_allclose(got3.firing_rates, np.asarray(want.firing_rates), rtol=1e-9, atol=1e-12,
                                   equal_nan=True)
    with pytest.raises(ValueError, match="smoothing_method"):
        compute_spatial_rates(b, trains, t, p, smoothing_method="box")
    r = got.firing_rates[0]
    assert spatial_information(r, got.occupancy) == pytest.approx(float(got.spatial_information()[0]))
    assert 0 <= sparsity(r, got.occupancy) <= 1


@pytest.mark.parametrize("dims,bin_size,threshold", [(2, 2.0, 0), (3, 4.0, 1), (1, 0.7, 0), (2, 3.0, 3)])
def test_map_points_to_bins_matches_with_ties_and_far_points(dims, bin_size, threshold):
    from neurospatial.ops.binning import map_points_to_bins as ns_map
    from voxfield.env import map_points_to_bins

    p = walk(3000, dims, 30.0, seed=10 + dims)
    a, b = both(p, bin_size, bin_count_threshold=threshold)
    rng = np.random.default_rng(dims)
    q = np.concatenate([
        rng.uniform(-40, 70, (2000, dims)),       # inside, outside, far outside
        a.bin_centers[:50],                        # exactly on centres
        (a.bin_centers[:-1] + a.bin_centers[1:])[:200] / 2,  # midpoints: ties
        a.bin_centers[:20] + 10 * bin_size * 1.5,  # far
    ])
    for kw in [{}, {"max_distance": 3.0}, {"max_distance_factor": 1.5}, {"return_dist": True}]:
        want, got = ns_map(q, a, **kw), map_points_to_bins(q, b, **kw)
        if kw.get("return_dist"):
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
        else:
            np.testing.assert_array_equal(got, want)
    assert (map_points_to_bins(q, b) == -1).any() and (map_points_to_bins(q, b) >= 0).any()
    # closest_center: the same distances; the same bins wherever the nearest is unique.
    wb, wd = ns_map(q, a, tie_break="closest_center", return_dist=True)
    gb, gd = map_points_to_bins(q, b, tie_break="closest_center", return_dist=True)
    np.testing.assert_allclose(gd, wd, rtol=1e-12)
    lb, _ = map_points_to_bins(q, b, return_dist=True)
    unique = ns_map(q, a, tie_break="lowest_index") == wb
    np.testing.assert_array_equal(gb[unique], wb[unique])


@pytest.mark.parametrize("dims,bin_size,threshold", [(2, 2.0, 0), (3, 4.0, 0), (2, 3.0, 2), (1, 0.7, 0)])
def test_interpolate_matches_nearest_and_linear(dims, bin_size, threshold):
    p = walk(3000, dims, 30.0, seed=20 + dims)
    a, b = both(p, bin_size, bin_count_threshold=threshold)
    field = np.sin(a.bin_centers @ np.arange(1, dims + 1) / 7.0)
    rng = np.random.default_rng(5)
    lo = np.array([e[0] for e in a.grid_edges]) - 2
    hi = np.array([e[-1] for e in a.grid_edges]) + 2
    q = np.concatenate([rng.uniform(lo, hi, (3000, dims)), a.bin_centers[:40]])
    for mode in ("nearest", "linear"):
        want, got = a.interpolate(field, q, mode=mode), b.interpolate(field, q, mode=mode)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        ok = ~np.isnan(want)
        assert ok.sum() > 100
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-12, atol=1e-14)


def test_interpolate_and_mapping_refuse_bad_input():
    from voxfield.env import map_points_to_bins

    env = Environment.from_samples(walk(500, 2, 20.0, seed=1), 2.0)
    f = np.ones(env.n_bins)
    with pytest.raises(ValueError, match="non-finite"):
        env.interpolate(f, [[np.nan, 1.0]])
    with pytest.raises(ValueError, match="non-finite"):
        map_points_to_bins([[np.inf, 1.0]], env)
    with pytest.raises(ValueError, match="expected"):
        env.interpolate(f[:-1], [[1.0, 1.0]])
    with pytest.raises(ValueError, match="NaN or infinite"):
        env.interpolate(np.full(env.n_bins, np.nan), [[1.0, 1.0]])
    with pytest.raises(ValueError, match="mode"):
        env.interpolate(f, [[1.0, 1.0]], mode="cubic")
    with pytest.raises(ValueError, match="not both"):
        map_points_to_bins([[1.0, 1.0]], env, max_distance=1, max_distance_factor=1)
    with pytest.raises(ValueError, match="non-negative"):
        map_points_to_bins([[1.0, 1.0]], env, max_distance=-1)
    with pytest.raises(ValueError, match="tie_break"):
        map_points_to_bins([[1.0, 1.0]], env, tie_break="first")
    assert env.interpolate(f, np.empty((0, 2))).shape == (0,)
    one = Environment.from_samples([[0.0, 0.0]], 1.0)
    with pytest.raises(ValueError, match="at least 2 bins"):
        one.interpolate([1.0], [[0.0, 0.0]], mode="linear")
    assert map_points_to_bins([[1e6, 1e6]], one)[0] == 0  # one bin: no reach limit


@pytest.mark.parametrize("dims,bin_size,threshold", [(2, 2.0, 0), (3, 4.0, 0), (1, 0.7, 0), (2, 3.0, 2)])
def test_linear_occupancy_matches(dims, bin_size, threshold):
    p = walk(1500, dims, 30.0, seed=30 + dims)
    a, b = both(p, bin_size, bin_count_threshold=threshold)
    rng = np.random.default_rng(dims)
    t = np.cumsum(rng.uniform(0.01, 0.05, len(p)))
    t[700:] += 1.0  # one gap longer than max_gap
    q = p * 1.4 - 4  # segments that leave and cross inactive bins
    q[::97] = p[::97]  # and some axis-aligned steps
    q[200:210, 0] = q[199, 0]
    for kw in [{}, {"return_seconds": False}, {"max_gap": None}]:
        want = a.occupancy(t, q, time_allocation="linear", **kw)
        got = b.occupancy(t, q, time_allocation="linear", **kw)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
        assert want.sum() > 0
    with pytest.raises(ValueError, match="time_allocation"):
        b.occupancy(t, q, time_allocation="middle")


def test_transitions_match_empirical_random_walk_and_diffusion():
    p = walk(4000, 2, 20.0, seed=40)
    a, b = both(p, 2.0)
    t = np.arange(len(p)) / 30.0
    for kw in [{}, {"lag": 3}, {"allow_teleports": True, "lag": 5}, {"normalize": False}]:
        want = a.transitions(times=t, positions=p, **kw).toarray()
        got = b.transitions(times=t, positions=p, **kw)
        assert got.shape == (b.n_bins, b.n_bins)
        np.testing.assert_allclose(got.toarray(), want, rtol=1e-14)
    seq = a.bin_sequence(t, p, dedup=True)
    seq = seq[seq >= 0]
    np.testing.assert_allclose(b.transitions(seq).toarray(), a.transitions(seq).toarray(), rtol=1e-14)
    for norm in (True, False):
        np.testing.assert_allclose(b.transitions(method="random_walk", normalize=norm).toarray(),
                                   a.transitions(method="random_walk", normalize=norm).toarray(), rtol=1e-14)
    np.testing.assert_allclose(b.transitions(method="diffusion", bandwidth=3.0).toarray(),
                               a.transitions(method="diffusion", bandwidth=3.0).toarray(), atol=1e-10)
    with pytest.raises(ValueError, match="out of range"):
        b.transitions(np.array([0, -1, 2]))
    with pytest.raises(ValueError, match="out of range"):
        b.transitions(np.array([0, b.n_bins]))
    with pytest.raises(ValueError, match="integers"):
        b.transitions(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="lag"):
        b.transitions(np.array([0, 1]), lag=0)
    with pytest.raises(ValueError, match="not both"):
        b.transitions(np.array([0, 1]), method="random_walk")
    with pytest.raises(ValueError, match="bandwidth"):
        b.transitions(method="diffusion")
    assert b.transitions(np.array([3])).nnz == 0


def place_maps(env, seed):
    """Rate maps with several Gaussian fields (some merged, some small), noise and NaN bins."""
    rng = np.random.default_rng(seed)
    c = env.bin_centers
    maps = []
    for k in range(6):
        peaks = c[rng.choice(len(c), 1 + k % 3, replace=False)]
        widths = rng.uniform(1.5, 5.0, len(peaks))
        r = sum(rng.uniform(2, 15) * np.exp(-np.sum((c - p) ** 2, axis=1) / (2 * w * w))
                for p, w in zip(peaks, widths))
        r = r + rng.uniform(0, 0.3, len(c))
        if k == 4:
            r[rng.choice(len(c), 10, replace=False)] = np.nan
        maps.append(r)
    maps.append(np.full(len(c), 20.0) + rng.uniform(0, 1, len(c)))  # an interneuron
    maps.append(np.zeros(len(c)))
    return maps


@pytest.mark.parametrize("dims,diag", [(2, True), (2, False), (3, True), (1, True)])
def test_scores_and_place_fields_match(dims, diag):
    from neurospatial import encoding as ne
    from voxfield import env as ve

    p = walk(4000, dims, 30.0, seed=50 + dims)
    a, b = both(p, 2.0 if dims < 3 else 4.0, connect_diagonal_neighbors=diag)
    occ = a.occupancy(np.arange(len(p)) / 30.0, p)
    for r in place_maps(a, seed=dims):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = ne.detect_place_fields(a, r)
            got = ve.detect_place_fields(b, r)
            for kw in [{"threshold": 0.5, "min_size": 3}, {"detect_subfields": False, "min_size": 2}]:
                w2, g2 = ne.detect_place_fields(a, r, **kw), ve.detect_place_fields(b, r, **kw)
                assert [list(f) for f in g2] == [list(f) for f in w2]
        assert [list(f) for f in got] == [list(f) for f in want]
        assert got.excluded_reason == want.excluded_reason
        for name in ("selectivity", "information_per_second"):
            w, g = getattr(ne, name)(r, occ), getattr(ve, name)(r, occ)
            assert g == pytest.approx(w, rel=1e-12, nan_ok=True)
        for method in ("pearson", "spearman"):
            w, g = ne.rate_map_coherence(r, a, method=method), ve.rate_map_coherence(r, b, method=method)
            assert g == pytest.approx(w, rel=1e-10, nan_ok=True)
    assert any(len(ne.detect_place_fields(a, r)) > 1 for r in place_maps(a, seed=dims)[:6]) or dims == 1
    with pytest.raises(ValueError, match="threshold"):
        ve.detect_place_fields(b, np.ones(b.n_bins), threshold=1.5)
    with pytest.raises(ValueError, match="n_bins"):
        ve.detect_place_fields(b, np.ones(b.n_bins + 1))


@pytest.mark.parametrize("dims,kw", [(2, {}), (3, {"connect_diagonal_neighbors": False}), (1, {}),
                                     (2, {"bin_count_threshold": 3})])
def test_file_pair_both_ways(tmp_path, dims, kw):
    p = walk(2000, dims, 30.0, seed=60 + dims)
    a, b = both(p, 2.5 if dims < 3 else 5.0, **kw)
    # neurospatial → voxfield
    a.to_file(tmp_path / "ns")
    r = Environment.from_file(tmp_path / "ns")
    np.testing.assert_array_equal(r.bin_centers, a.bin_centers)
    np.testing.assert_array_equal(r.active_mask, a.active_mask)
    assert graph_edges(a).keys() == {(int(i), int(j)) for i, j in r.edges()[0]}
    q = walk(500, dims, 32.0, seed=1)
    np.testing.assert_array_equal(r.bin_at(q), a.bin_at(q))
    # voxfield → neurospatial: the same bins, graph and queries
    b.to_file(tmp_path / "vf.json")
    back = ns.Environment.from_file(tmp_path / "vf")
    # neurospatial 0.6.0 turns a MaskedGrid's grid_edges into one 2-D array when every axis
    # has as many edges (its own files too), and bin_sizes then fails: give it its tuple back.
    back.layout.grid_edges = tuple(np.asarray(e) for e in back.layout.grid_edges)
    assert back.n_bins == a.n_bins
    np.testing.assert_array_equal(back.bin_centers, a.bin_centers)
    np.testing.assert_array_equal(back.active_mask, a.active_mask)
    assert graph_edges(back).keys() == graph_edges(a).keys()
    for k, d in graph_edges(back).items():
        assert d == pytest.approx(graph_edges(a)[k], rel=1e-14)
    np.testing.assert_array_equal(back.bin_at(q), a.bin_at(q))
    f = np.linspace(0, 1, a.n_bins)
    np.testing.assert_allclose(back.smooth(f, 4.0), a.smooth(f, 4.0), rtol=1e-10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ns.json", "ns.npz", "vf.json", "vf.npz"]


def test_file_pair_refuses_bad_files(tmp_path):
    import json

    env = Environment.from_samples(walk(500, 2, 20.0, seed=1), 2.0)
    env.to_file(tmp_path / "e")
    with pytest.raises(Exception, match="missing.json"):
        Environment.from_file(tmp_path / "missing")
    meta = json.loads((tmp_path / "e.json").read_text())
    for key, value, msg in [("schema_version", "Environment-v9", "schema_version"),
                            ("layout_type", "TriangularMesh", "not one voxfield reads"),
                            ("layout_type", "Hexagonal", "no numeric hexagon_width"),
                            ("n_bins", 3, "n_bins")]:
        bad = dict(meta, **{key: value})
        (tmp_path / "b.json").write_text(json.dumps(bad))
        (tmp_path / "b.npz").write_bytes((tmp_path / "e.npz").read_bytes())
        with pytest.raises(Exception, match=msg):
            Environment.from_file(tmp_path / "b")
    edited = json.loads(json.dumps(meta))
    edited["graph"]["links"] = edited["graph"]["links"][1:]
    (tmp_path / "b.json").write_text(json.dumps(edited))
    with pytest.raises(Exception, match="edited graph"):
        Environment.from_file(tmp_path / "b")
    import os

    os.mkfifo(tmp_path / "f.json")
    (tmp_path / "f.npz").write_bytes((tmp_path / "e.npz").read_bytes())
    with pytest.raises(Exception, match="not a regular file"):
        Environment.from_file(tmp_path / "f")  # a FIFO would block a plain read
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(Exception, match="not valid JSON"):
        Environment.from_file(tmp_path / "b")
    (tmp_path / "b.json").write_text(json.dumps(meta))
    (tmp_path / "b.npz").write_bytes((tmp_path / "e.npz").read_bytes()[:100])
    with pytest.raises(Exception, match="b.npz"):
        Environment.from_file(tmp_path / "b")


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_cli_rate_maps_match_neurospatial_and_info_reads_the_pair(tmp_path):
    import json
    import os
    import subprocess

    from neurospatial.encoding import compute_spatial_rates, spatial_information

    cli = os.environ["VOXFIELD_CLI"]
    p = walk(6000, 2, 40.0, seed=70)
    t = np.arange(len(p)) / 30.0
    t[3000:] += 2.0  # a tracking gap
    rng = np.random.default_rng(70)
    spikes = {f"cell{u}": np.sort(rng.uniform(0, t[-1], 300 + 50 * u)) for u in range(4)}
    np.save(tmp_path / "pos.npy", np.column_stack([t, p]))
    np.savez(tmp_path / "spk.npz", **spikes)
    r = subprocess.run([cli, "env", "rate-maps", tmp_path / "pos.npy", tmp_path / "spk.npz", "--bin-size", "4",
                        "--bandwidth", "6", "-o", tmp_path / "rates.npy", "--png", tmp_path / "panel.png",
                        "--env", tmp_path / "arena", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = json.loads(r.stdout)
    env = ns.Environment.from_samples(p, bin_size=4.0)
    want = compute_spatial_rates(env, list(spikes.values()), t, p, bandwidth=6.0)
    got = np.load(tmp_path / "rates.npy")
    assert got.shape == (4, env.n_bins)
    np.testing.assert_allclose(got, np.asarray(want.firing_rates), rtol=1e-9, atol=1e-12)
    occ = env.occupancy(t, p)
    for u, row in enumerate(table["units"]):
        assert row["unit"] == f"cell{u}" and row["spikes"] == len(spikes[row["unit"]])
        w = spatial_information(np.asarray(want.firing_rates)[u], occ)
        assert row["information_bits_per_spike"] == pytest.approx(w, rel=1e-9)
    assert (tmp_path / "panel.png").read_bytes()[:4] == b"\x89PNG"
    back = Environment.from_file(tmp_path / "arena")
    np.testing.assert_array_equal(back.bin_centers, env.bin_centers)
    r = subprocess.run([cli, "env", "info", tmp_path / "arena.json", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n_bins"] == env.n_bins
    # Bad input: a clear error naming the file, nothing written.
    np.save(tmp_path / "bad.npy", np.column_stack([t, p, p, p]))
    r = subprocess.run([cli, "env", "rate-maps", tmp_path / "bad.npy", tmp_path / "spk.npz", "--bin-size", "4",
                        "-o", tmp_path / "x.npy"], capture_output=True, text=True)
    assert r.returncode == 1 and "bad.npy" in r.stderr and "1-3 coordinates" in r.stderr
    tb = t.copy()
    tb[10] = tb[5]
    np.save(tmp_path / "back.npy", np.column_stack([tb, p]))
    r = subprocess.run([cli, "env", "rate-maps", tmp_path / "back.npy", tmp_path / "spk.npz", "--bin-size", "4",
                        "-o", tmp_path / "x.npy"], capture_output=True, text=True)
    assert r.returncode == 1 and "must not decrease" in r.stderr
    r = subprocess.run([cli, "env", "rate-maps", tmp_path / "pos.npy", tmp_path / "spk.npz", "--bin-size", "0",
                        "-o", tmp_path / "x.npy"], capture_output=True, text=True)
    assert r.returncode == 1 and "bin_size" in r.stderr
    assert not (tmp_path / "x.npy").exists()


def test_pixel_mask_and_polygon_layouts_match():
    shapely = pytest.importorskip("shapely")
    rng = np.random.default_rng(80)
    img = rng.random((13, 17)) > 0.3
    for px in (1.0, (0.5, 2.0)):
        a = ns.Environment.from_pixel_mask(img, pixel_size=px)
        b = Environment.from_pixel_mask(img, px)
        np.testing.assert_array_equal(b.active_mask, a.active_mask)
        np.testing.assert_allclose(b.bin_centers, a.bin_centers, rtol=1e-15)
        assert {(int(i), int(j)) for i, j in b.edges()[0]} == graph_edges(a).keys()
        q = rng.uniform(-1, 20, (500, 2))
        np.testing.assert_array_equal(b.bin_at(q), a.bin_at(q))
    star = [(10 * np.cos(t) * (1 + 0.5 * (k % 2)), 10 * np.sin(t) * (1 + 0.5 * (k % 2)))
            for k, t in enumerate(np.linspace(0, 2 * np.pi, 11)[:-1])]
    polys = [shapely.Polygon(star),
             shapely.Polygon([(0, 0), (20, 0), (20, 20), (0, 20)], [[(5, 5), (15, 5), (15, 15), (5, 15)]]),
             shapely.Polygon([(0, 0), (10, 0), (10, 5), (5, 5), (5, 10), (0, 10)])]  # edges through centres
    for poly, h in zip(polys, (1.5, 2.0, 2.0)):
        a = ns.Environment.from_polygon(poly, bin_size=h)
        for arg in (poly, np.asarray(poly.exterior.coords) if not poly.interiors else poly):
            b = Environment.from_polygon(arg, h)
            assert b.n_bins == a.n_bins
            for ea, eb in zip(a.grid_edges, b.grid_edges):
                np.testing.assert_array_equal(eb, ea)
            np.testing.assert_array_equal(b.active_mask, a.active_mask)
            np.testing.assert_array_equal(b.bin_centers, a.bin_centers)
    with pytest.raises(ValueError, match="at least 3"):
        Environment.from_polygon([(0, 0), (1, 1)], 1.0)
    with pytest.raises(ValueError, match="finite"):
        Environment.from_polygon([(0, 0), (1, np.nan), (1, 1)], 1.0)
    with pytest.raises(ValueError, match="bin_size"):
        Environment.from_polygon(polys[0], 0.0)
    with pytest.raises(ValueError, match="at least one True"):
        Environment.from_pixel_mask(np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="boolean"):
        Environment.from_pixel_mask(np.ones((3, 3)))


def test_connectivity_6_18_26_in_3d_and_kept_by_files(tmp_path):
    p = walk(3000, 3, 20.0, seed=90)
    envs = {k: Environment.from_samples(p, 4.0, connectivity=k) for k in (6, 18, 26)}
    assert envs[6].edges()[0].shape[0] == ns.Environment.from_samples(
        p, bin_size=4.0, connect_diagonal_neighbors=False).connectivity.number_of_edges()
    assert envs[26].edges()[0].shape[0] == ns.Environment.from_samples(p, bin_size=4.0).connectivity.number_of_edges()
    # 18: exactly the pairs whose centres differ along one or two axes.
    e = envs[18]
    c = e.bin_centers
    pairs, _ = envs[26].edges()
    moved = (np.abs(c[pairs[:, 0]] - c[pairs[:, 1]]) > 1e-9).sum(axis=1)
    assert {tuple(x) for x in e.edges()[0].tolist()} == {tuple(x) for x in pairs[moved <= 2].tolist()}
    f = np.linspace(0, 1, e.n_bins)
    e.to_file(tmp_path / "e18")
    back = Environment.from_file(tmp_path / "e18")
    np.testing.assert_array_equal(back.edges()[0], e.edges()[0])
    np.testing.assert_allclose(back.smooth(f, 5.0), e.smooth(f, 5.0), rtol=1e-14)
    with pytest.raises(ValueError, match="connectivity"):
        Environment.from_samples(p, 4.0, connectivity=8)


@pytest.mark.parametrize("width,threshold", [(2.0, 0), (3.3, 2), (1.0, 1)])
def test_hexagonal_layout_matches(width, threshold):
    from neurospatial.ops.binning import map_points_to_bins as ns_map
    from voxfield.env import map_points_to_bins

    p = walk(4000, 2, 30.0, seed=100)
    a = ns.Environment.from_samples(p, bin_size=width, layout="Hexagonal", bin_count_threshold=threshold)
    b = Environment.from_samples(p, width, layout="Hexagonal", bin_count_threshold=threshold)
    assert b.layout_type == "Hexagonal" and b.n_bins == a.n_bins
    assert b.grid_shape == tuple(a.grid_shape)
    np.testing.assert_array_equal(b.active_mask, a.active_mask)
    np.testing.assert_allclose(b.bin_centers, a.bin_centers, rtol=1e-15, atol=1e-13)
    np.testing.assert_allclose(b.bin_sizes, a.bin_sizes, rtol=1e-14)
    want = graph_edges(a)
    pairs, dist = b.edges()
    got = {(int(i), int(j)): d for (i, j), d in zip(pairs, dist)}
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-13)
    rng = np.random.default_rng(3)
    q = np.concatenate([rng.uniform(-5, 35, (4000, 2)), a.bin_centers, [[np.nan, 1.0]]])
    np.testing.assert_array_equal(b.bin_at(q), a.bin_at(q))
    np.testing.assert_array_equal(map_points_to_bins(q[:-1], b), ns_map(q[:-1], a))
    f = np.sin(a.bin_centers[:, 0] / 5.0) + 1.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode in ("density", "transition"):
            np.testing.assert_allclose(b.smooth(f, 4.0, mode=mode), a.smooth(f, 4.0, mode=mode), rtol=1e-10)
    t = np.arange(len(p)) / 30.0
    np.testing.assert_allclose(b.occupancy(t, p), a.occupancy(t, p), rtol=1e-12)
    assert b.path_between(0, b.n_bins - 1) and a.distance_between(p[0], p[-1]) == pytest.approx(
        b.distance_between(p[0], p[-1]), rel=1e-12)
    if threshold == 0:
        from neurospatial.encoding import compute_spatial_rates as ns_rates
        from voxfield.env import compute_spatial_rates
        trains = [np.sort(rng.uniform(0, t[-1], 400)) for _ in range(3)]
        for method in ("diffusion_kde", "gaussian_kde"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                w = ns_rates(a, trains, t, p, smoothing_method=method, bandwidth=4.0)
            g = compute_spatial_rates(b, trains, t, p, smoothing_method=method, bandwidth=4.0)
            np.testing.assert_allclose(g.firing_rates, np.asarray(w.firing_rates), rtol=1e-9, equal_nan=True)
    with pytest.raises(ValueError, match="rectangular grid"):
        b.interpolate(f, q[:3], mode="linear")
    with pytest.raises(ValueError, match="rectangular grid"):
        b.occupancy(t, p, time_allocation="linear")
    with pytest.raises(ValueError, match="2-D positions"):
        Environment.from_samples(walk(100, 3, 5.0, seed=1), 1.0, layout="Hexagonal")
    with pytest.raises(ValueError, match="positive"):
        Environment.from_samples(p, 0.0, layout="Hexagonal")


@pytest.mark.parametrize("spacing,bin_size", [(0.0, 2.0), (15.0, 3.0), ([5.0, 0.0, 10.0, 2.5], 2.5)])
def test_track_layout_matches(spacing, bin_size):
    from track_linearization import make_track_graph

    # A W-maze-like track: a junction of three arms and a bent arm.
    nodes = [(0.0, 0.0), (30.0, 0.0), (30.0, 40.0), (0.0, 40.0), (60.0, 40.0), (60.0, 0.0)]
    edges = [(0, 1), (1, 2), (2, 3), (2, 4), (4, 5)]
    g = make_track_graph(nodes, edges)
    order = [(0, 1), (1, 2), (2, 3), (2, 4), (4, 5)]
    a = ns.Environment.from_graph(g, order, spacing, bin_size)
    b = Environment.from_graph(g, order, spacing, bin_size)
    assert b.is_linearized_track and b.n_bins == a.n_bins
    np.testing.assert_allclose(b.grid_edges[0], a.grid_edges[0], rtol=1e-14)
    np.testing.assert_array_equal(b.active_mask, a.active_mask)
    np.testing.assert_allclose(b.bin_centers, a.bin_centers, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(b.bin_sizes, a.bin_sizes, rtol=1e-13)
    want = graph_edges(a)
    pairs, dist = b.edges()
    got = {(int(i), int(j)): d for (i, j), d in zip(pairs, dist)}
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-12)
    rng = np.random.default_rng(4)
    q = rng.uniform(-10, 70, (500, 2))
    np.testing.assert_array_equal(b.bin_at(q), a.bin_at(q))
    np.testing.assert_allclose(b.to_linear(q), a.to_linear(q), rtol=1e-12, atol=1e-12)
    x = np.linspace(-5, a.grid_edges[0][-1] + 5, 333)
    np.testing.assert_allclose(b.linear_to_nd(x), a.linear_to_nd(x), rtol=1e-12, atol=1e-12)
    f = np.cos(np.arange(a.n_bins) / 4.0) + 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(b.smooth(f, 5.0), a.smooth(f, 5.0), rtol=1e-10)
    t = np.arange(len(q)) / 30.0
    np.testing.assert_allclose(b.occupancy(t, q), a.occupancy(t, q), rtol=1e-12)
    assert b.path_between(0, b.n_bins - 1) == a.path_between(0, a.n_bins - 1)
    with pytest.raises(ValueError, match="not an edge"):
        Environment.from_graph(g, [(0, 2)], 0.0, 1.0)
    with pytest.raises(ValueError, match="edge_spacing"):
        Environment.from_graph(g, order, [1.0, 2.0], 1.0)
    with pytest.raises(ValueError, match="positive"):
        Environment.from_graph(g, order, 0.0, 0.0)
    with pytest.raises(ValueError, match="linearised track"):
        Environment.from_samples(walk(100, 2, 5.0, seed=1), 1.0).to_linear([[0.0, 0.0]])


def test_rebin_and_subset_match():
    shapely = pytest.importorskip("shapely")
    for dims, h, kw in [(2, 2.0, {}), (2, 1.5, {"connect_diagonal_neighbors": False}), (3, 4.0, {}), (1, 0.7, {})]:
        p = walk(3000, dims, 30.0, seed=110 + dims)
        a, b = both(p, h, **kw)
        for factor in (2, 3):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ra, rb = a.rebin(factor), b.rebin(factor)
            assert rb.n_bins == ra.n_bins
            for ea, eb in zip(ra.grid_edges, rb.grid_edges):
                np.testing.assert_array_equal(eb, ea)
            np.testing.assert_allclose(rb.bin_centers, ra.bin_centers, rtol=1e-15)
            assert {(int(i), int(j)) for i, j in rb.edges()[0]} == graph_edges(ra).keys()
        keep = np.random.default_rng(dims).random(a.n_bins) > 0.4
        for inv in (False, True):
            sa, sb = a.subset(bins=keep, invert=inv), b.subset(bins=keep, invert=inv)
            # neurospatial's masked grid takes centres as e + diff/2 (an ulp from the midpoint)
            np.testing.assert_allclose(sb.bin_centers, sa.bin_centers, rtol=1e-15, atol=1e-15)
            np.testing.assert_array_equal(sb.active_mask, sa.active_mask)
            assert {(int(i), int(j)) for i, j in sb.edges()[0]} == graph_edges(sa).keys()
    p = walk(3000, 2, 30.0, seed=120)
    a, b = both(p, 2.0)
    poly = shapely.Polygon([(5, 5), (25, 8), (20, 25), (8, 20)])
    np.testing.assert_allclose(b.subset(polygon=poly).bin_centers, a.subset(polygon=poly).bin_centers, rtol=1e-15)
    with pytest.raises(ValueError, match="(?i)exactly one"):
        b.subset(bins=np.ones(b.n_bins, bool), polygon=poly)
    with pytest.raises(ValueError, match="no bins selected"):
        b.subset(bins=np.zeros(b.n_bins, bool))
    with pytest.raises(ValueError, match="boolean"):
        b.subset(bins=np.ones(b.n_bins))
    with pytest.raises(ValueError, match="positive"):
        b.rebin(0)
    with pytest.raises(ValueError, match="1 to"):
        b.rebin(10_000)
    hexa = Environment.from_samples(p, 2.0, layout="Hexagonal")
    with pytest.raises(ValueError, match="rectangular grid"):
        hexa.rebin(2)
    sub = hexa.subset(bins=np.arange(hexa.n_bins) % 2 == 0)
    assert sub.n_bins == (hexa.n_bins + 1) // 2 and sub.layout_type == "Hexagonal"


def test_a_bin_map_reads_as_a_field():
    for dims, h in [(2, 2.0), (3, 4.0), (1, 0.7)]:
        p = walk(3000, dims, 30.0, seed=130 + dims)
        a, b = both(p, h, bin_count_threshold=1)
        rates = b.smooth(np.random.default_rng(dims).random(b.n_bins), 4.0)
        q = np.random.default_rng(1).uniform(-3, 33, (2000, dims))
        for mode in ("linear", "nearest"):
            m = b.field(rates, mode=mode)
            want = a.interpolate(rates, q, mode=mode)  # neurospatial's own reading
            got = m.sample(q)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_allclose(got[~np.isnan(want)], want[~np.isnan(want)], rtol=1e-12)
            if dims == 1:
                continue
            # A plane is the same field on a lattice of points.
            o, u, v = np.full(dims, 1.0), np.eye(dims)[0] * 0.7, np.eye(dims)[1] * 0.9
            img = m.plane(o, u, v, (5, 7))
            jj, ii = np.mgrid[0:5, 0:7]
            pts = o + ii.reshape(-1, 1) * u + jj.reshape(-1, 1) * v
            np.testing.assert_allclose(img.ravel(), m.sample(pts), rtol=1e-13, equal_nan=True)
        assert np.isnan(b.field(rates).sample(np.full((1, dims), np.nan))).all()
    hexa = Environment.from_samples(walk(2000, 2, 20.0, seed=1), 2.0, layout="Hexagonal")
    vals = np.arange(hexa.n_bins, dtype=float)
    np.testing.assert_array_equal(hexa.field(vals, mode="nearest").sample(hexa.bin_centers), vals)
    with pytest.raises(ValueError, match="rectangular grid"):
        hexa.field(vals)
    with pytest.raises(ValueError, match="expected"):
        hexa.field(vals[:-1], mode="nearest")


def test_bin_sequence_with_runs_and_single_unit_rates_match():
    from neurospatial.encoding import compute_spatial_rate as ns_rate
    from voxfield.env import compute_spatial_rate

    p = walk(3000, 2, 30.0, seed=140)
    p[100:140] += 100.0  # a trip outside
    t = np.arange(len(p)) / 30.0
    a, b = both(walk(3000, 2, 30.0, seed=140), 2.0)
    for ov in (-1, None):
        w, g = a.bin_sequence_with_runs(t, p, outside_value=ov), b.bin_sequence_with_runs(t, p, outside_value=ov)
        np.testing.assert_array_equal(g.bins, w.bins)
        np.testing.assert_array_equal(g.run_starts, w.run_starts)
        np.testing.assert_array_equal(g.run_lengths, w.run_lengths)
    spikes = np.sort(np.random.default_rng(2).uniform(0, t[-1], 500))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = ns_rate(a, spikes, t, p, bandwidth=3.0)
    g = compute_spatial_rate(b, spikes, t, p, bandwidth=3.0)
    np.testing.assert_allclose(g.firing_rate, np.asarray(w.firing_rate), rtol=1e-9, equal_nan=True)
    with pytest.raises(ValueError, match="decrease"):
        b.bin_sequence_with_runs(t[::-1], p)


def test_hexagonal_and_track_files_both_ways(tmp_path):
    from track_linearization import make_track_graph

    p = walk(3000, 2, 30.0, seed=150)
    g = make_track_graph([(0.0, 0.0), (30.0, 0.0), (30.0, 40.0), (60.0, 40.0)], [(0, 1), (1, 2), (2, 3)])
    cases = [(ns.Environment.from_samples(p, bin_size=2.5, layout="Hexagonal", bin_count_threshold=2),
              Environment.from_samples(p, 2.5, layout="Hexagonal", bin_count_threshold=2)),
             (ns.Environment.from_graph(g, [(0, 1), (1, 2), (2, 3)], [4.0, 0.0], 2.0),
              Environment.from_graph(g, [(0, 1), (1, 2), (2, 3)], [4.0, 0.0], 2.0))]
    q = np.random.default_rng(5).uniform(-5, 65, (500, 2))
    for k, (a, b) in enumerate(cases):
        a.to_file(tmp_path / f"ns{k}")
        r = Environment.from_file(tmp_path / f"ns{k}")
        assert r.layout_type == b.layout_type
        np.testing.assert_allclose(r.bin_centers, a.bin_centers, rtol=1e-13)
        np.testing.assert_array_equal(r.bin_at(q), a.bin_at(q))
        b.to_file(tmp_path / f"vf{k}")
        back = ns.Environment.from_file(tmp_path / f"vf{k}")
        assert back.n_bins == a.n_bins and back.layout_type == a.layout_type
        np.testing.assert_allclose(back.bin_centers, a.bin_centers, rtol=1e-13)
        assert graph_edges(back).keys() == graph_edges(a).keys()
        np.testing.assert_array_equal(back.bin_at(q), a.bin_at(q))
        again = Environment.from_file(tmp_path / f"vf{k}")
        np.testing.assert_array_equal(again.bin_centers, b.bin_centers)
    np.testing.assert_allclose(Environment.from_file(tmp_path / "vf1").to_linear(q), cases[1][0].to_linear(q),
                               rtol=1e-12)


def test_hostile_layout_parameters_are_refused(tmp_path):
    import json

    import networkx as nx

    p = walk(500, 2, 20.0, seed=160)
    with pytest.raises(ValueError, match="too large"):
        Environment.from_samples(p, 1e-6, layout="Hexagonal")
    g = nx.Graph()
    g.add_node(0, pos=(0.0, 0.0))
    g.add_node(1, pos=(1e9, 0.0))
    g.add_edge(0, 1, distance=1e9, edge_id=0)
    with pytest.raises(ValueError, match="more than"):
        Environment.from_graph(g, [(0, 1)], 0.0, 1e-3)
    g.nodes[1]["pos"] = (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(ValueError, match="coordinates"):
        Environment.from_graph(g, [(0, 1)], 0.0, 1.0)
    g.nodes[1]["pos"] = (float("nan"), 1.0)
    with pytest.raises(ValueError):
        Environment.from_graph(g, [(0, 1)], 0.0, 1.0)
    # A file whose hexagon width would make 10^12 cells, and one whose track has no edge_order.
    env = Environment.from_samples(p, 2.0, layout="Hexagonal")
    env.to_file(tmp_path / "h")
    meta = json.loads((tmp_path / "h.json").read_text())
    meta["layout_parameters"]["hexagon_width"] = 1e-6
    (tmp_path / "h.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="too large"):
        Environment.from_file(tmp_path / "h")
    g2 = nx.path_graph(3)
    for n in g2.nodes:
        g2.nodes[n]["pos"] = (float(n), 0.0)
    for i, (u, v) in enumerate(g2.edges):
        g2.edges[u, v].update(distance=1.0, edge_id=i)
    t = Environment.from_graph(g2, [(0, 1), (1, 2)], 0.0, 0.5)
    t.to_file(tmp_path / "t")
    meta = json.loads((tmp_path / "t.json").read_text())
    del meta["layout_parameters"]["edge_order"]
    (tmp_path / "t.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="edge_order"):
        Environment.from_file(tmp_path / "t")


def test_rate_scores_with_zero_bins_are_zero_not_uninitialised():
    import voxfield.env as ve
    info = ve.spatial_information(np.zeros((5, 0)), np.zeros(0))
    assert np.array_equal(info, np.zeros(5))
    assert np.array_equal(ve.sparsity(np.zeros((5, 0)), np.zeros(0)), np.zeros(5))
    with pytest.raises(ValueError, match="do not match"):
        ve.sparsity(np.ones((2, 3)), np.ones(4))


def test_hostile_options_and_environment_files_are_refused(tmp_path):
    """Issue 22: an unbounded bandwidth ran for ever (or aborted on a 320 GB allocation), a negative
    max_gap gave all-NaN rates with exit 0, and forged environment pairs passed or were inflated whole."""
    import os
    import subprocess

    cli = os.environ["VOXFIELD_CLI"]
    p = walk(3000, 2, 40.0, seed=71)
    t = np.arange(len(p)) / 30.0
    spikes = {"a": np.sort(np.random.default_rng(1).uniform(0, t[-1], 200))}
    np.save(tmp_path / "pos.npy", np.column_stack([t, p]))
    np.savez(tmp_path / "spk.npz", **spikes)
    base = [cli, "env", "rate-maps", tmp_path / "pos.npy", tmp_path / "spk.npz", "--bin-size", "4",
            "-o", tmp_path / "r.npy"]
    for flags, says in ((["--bandwidth", "1e4"], "bandwidth 10000 is larger than the environment"),
                        (["--bandwidth", "1e10"], "bandwidth"),
                        (["--max-gap=-1"], "max_gap -1")):
        r = subprocess.run(base + flags, capture_output=True, text=True)
        assert r.returncode == 1 and says in r.stderr and "panicked" not in r.stderr, (flags, r.stderr)
        assert not (tmp_path / "r.npy").exists()
    r = subprocess.run(base + ["--bandwidth", "6", "--env", tmp_path / "arena"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    members = dict(np.load(tmp_path / "arena.npz"))

    def forged(name, **change):
        d = tmp_path / name
        d.mkdir()
        (d / "arena.json").write_text((tmp_path / "arena.json").read_text())
        np.savez_compressed(d / "arena.npz", **{**members, **change})
        return subprocess.run([cli, "env", "info", d / "arena.json"], capture_output=True, text=True)

    mask = members["active_mask"]
    cases = {
        "float_mask": ({"active_mask": mask.astype(np.float64)}, "active_mask is float64"),
        "edges_2d": ({"grid_edges_0": members["grid_edges_0"][None, :]}, "grid_edges_0 has shape"),
        "inf_centres": ({"bin_centers": np.full_like(members["bin_centers"], np.inf)}, "bin_centers"),
        # 64 MB of mask (compressed to ~64 KB): refused from the archive's directory, not inflated.
        "huge_mask": ({"active_mask": np.zeros((8000, 8000), bool)}, "active_mask holds 64000"),
    }
    for name, (change, says) in cases.items():
        r = forged(name, **change)
        assert r.returncode == 1 and says in r.stderr and "arena.npz" in r.stderr, (name, r.stderr)


def test_rate_maps_write_all_outputs_or_none(tmp_path):
    """A 3-D arena cannot have a 2-D panel: the refusal leaves neither the rates nor the environment."""
    import os
    import subprocess

    cli = os.environ["VOXFIELD_CLI"]
    p = walk(2000, 3, 20.0, seed=72)
    t = np.arange(len(p)) / 30.0
    np.save(tmp_path / "pos.npy", np.column_stack([t, p]))
    np.savez(tmp_path / "spk.npz", a=np.sort(np.random.default_rng(2).uniform(0, t[-1], 100)))
    r = subprocess.run([cli, "env", "rate-maps", tmp_path / "pos.npy", tmp_path / "spk.npz", "--bin-size", "4",
                        "-o", tmp_path / "r.npy", "--png", tmp_path / "p.png", "--env", tmp_path / "arena"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "2-D" in r.stderr, r.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["pos.npy", "spk.npz"]


def test_kernel_cache_semantics_of_the_performance_guide():
    p = walk(3000, 2, 30.0, seed=21)
    a, b = both(p, 2.0)
    f = np.random.default_rng(2).random(b.n_bins)
    free = b.smooth(f, 3.0)  # nothing cached: matrix-free
    assert b._e.cached_kernels() == 0
    b.compute_kernel(3.0, cache=False)
    assert b._e.cached_kernels() == 0
    k = b.compute_kernel(3.0)  # neurospatial's default: cached
    assert b._e.cached_kernels() == 1
    dense = b.smooth(f, 3.0)  # now one product with the cached kernel
    np.testing.assert_allclose(dense, k @ f, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dense, free, rtol=1e-10, atol=1e-13)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.compute_kernel(3.0)
    np.testing.assert_allclose(dense, a.smooth(f, 3.0), rtol=1e-10, atol=1e-13)
    # the same calls as neurospatial, selective clearing included
    b.clear_cache(kdtree=True, kernels=False, cached_properties=True)
    assert b._e.cached_kernels() == 1
    b.clear_cache(kernels=True)
    assert b._e.cached_kernels() == 0
    np.testing.assert_allclose(b.smooth(f, 3.0), free, rtol=0, atol=0)


def test_bin_spikes_in_time_matches_neurospatial():
    from neurospatial.decoding import bin_spikes_in_time as ns_bin
    from voxfield.env import bin_spikes_in_time
    rng = np.random.default_rng(5)
    trains = [np.sort(rng.uniform(0, 10, rng.integers(0, 400))) for _ in range(7)] + [np.array([])]
    trains[0] = np.concatenate([trains[0], [0.0, 10.0, 2.5, -1.0]])  # edges and one outside
    for kw in [dict(dt=0.025), dict(dt=0.1, t_start=0.0, t_stop=10.0), dict(dt=0.25, t_start=1.0, t_stop=9.1),
               dict(dt=0.05, t_start=0.0, t_stop=10.0, orient="neuron_x_time")]:
        want_c, want_t = ns_bin(trains, **kw)
        got_c, got_t = bin_spikes_in_time(trains, **kw)
        np.testing.assert_array_equal(got_c, want_c)
        np.testing.assert_array_equal(got_t, want_t)
    for bad in [dict(dt=0.0), dict(dt=1.0, t_start=0.0, t_stop=0.5), dict(dt=1.0, t_start=2.0, t_stop=1.0)]:
        with pytest.raises(ValueError):
            ns_bin(trains, **bad)
        with pytest.raises(ValueError):
            bin_spikes_in_time(trains, **bad)


def test_decode_position_matches_neurospatial():
    from neurospatial.decoding import decode_position as ns_decode
    from voxfield.env import decode_position
    p = walk(4000, 2, 40.0, seed=31)
    a, b = both(p, 4.0)
    rng = np.random.default_rng(6)
    n_neurons, nt = 25, 300
    centres = b.bin_centers
    fields_at = rng.uniform(centres.min(0), centres.max(0), (n_neurons, 2))
    rates = 0.2 + 15 * np.exp(-((centres[None, :, :] - fields_at[:, None, :]) ** 2).sum(-1) / 50.0)
    rates[3, :10] = 0.0  # zero rates (floored at 1e-10)
    counts = rng.poisson(rates[:, rng.integers(0, b.n_bins, nt)].T * 0.05).astype(np.int64)
    counts[7] = 0  # a silent time bin
    prior = rng.random(b.n_bins)
    tprior = rng.random((nt, b.n_bins))
    tprior[5, 3:] = 0.0  # mostly zero: clipped at 1e-10 after normalising (neurospatial's rule)
    for pr in [None, prior, tprior]:
        want = ns_decode(a, counts, rates, dt=0.05, prior=pr)
        got = decode_position(b, counts, rates, dt=0.05, prior=pr)
        np.testing.assert_allclose(got.posterior, want.posterior, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(got.map_estimate, want.map_estimate)
        np.testing.assert_allclose(got.map_position, want.map_position, rtol=1e-14, atol=1e-14)  # centres: last ulp
        np.testing.assert_allclose(got.mean_position, want.mean_position, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(got.posterior_entropy, want.posterior_entropy, rtol=1e-9, atol=1e-10)
    # NaN rates are excluded from their bin, with a warning (as neurospatial)
    nan_rates = rates.copy()
    nan_rates[2, 5:9] = np.nan
    with pytest.warns(UserWarning):
        want = ns_decode(a, counts, nan_rates, dt=0.05)
    with pytest.warns(UserWarning, match="non-finite"):
        got = decode_position(b, counts, nan_rates, dt=0.05)
    np.testing.assert_allclose(got.posterior, want.posterior, rtol=1e-10, atol=1e-12)
    # bad input refused, as neurospatial refuses it
    zero_row = tprior.copy()
    zero_row[5] = 0.0
    for args, kw in [((counts, -rates), {}), ((counts - 1, rates), {}), ((counts, rates), dict(prior=-prior)),
                     ((counts, rates), dict(prior=zero_row)), ((counts, rates), dict(prior=0 * prior)),
                     ((counts.astype(float) + 0.5, rates), {}), ((counts, np.full_like(rates, np.nan)), {}),
                     ((counts, rates[:, :-1]), {}), ((counts[:, :-1], rates), {})]:
        with pytest.raises(ValueError):
            decode_position(b, *args, dt=0.05, **kw)
    with pytest.raises(ValueError, match="dt"):
        decode_position(b, counts, rates, dt=0.0)


def test_decode_position_summary_matches_neurospatial():
    from neurospatial.decoding import decode_position_summary as ns_summary
    from voxfield.env import decode_position, decode_position_summary
    p = walk(3000, 2, 30.0, seed=41)
    a, b = both(p, 3.0)
    rng = np.random.default_rng(8)
    rates = rng.uniform(0.1, 20, (12, b.n_bins))
    counts = rng.poisson(0.3, (500, 12)).astype(np.int64)
    prior = rng.random(b.n_bins)
    want = ns_summary(a, counts, rates, dt=0.025, prior=prior, times=np.arange(500) * 0.025)
    got = decode_position_summary(b, counts, rates, dt=0.025, prior=prior, times=np.arange(500) * 0.025)
    np.testing.assert_array_equal(got.map_bin, want.map_bin)
    np.testing.assert_allclose(got.map_position, want.map_position, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(got.mean_position, want.mean_position, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got.posterior_entropy, want.posterior_entropy, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(got.peak_prob, want.peak_prob, rtol=1e-10, atol=1e-12)
    full = decode_position(b, counts, rates, dt=0.025, prior=prior)
    np.testing.assert_array_equal(got.map_estimate, full.map_estimate)
    np.testing.assert_allclose(got.peak_prob, full.posterior.max(axis=1), rtol=1e-12)
    with pytest.raises(TypeError):
        decode_position_summary(b, counts, rates, dt=0.025, time_chunk=64)  # not taken: refused, not ignored


def test_shuffle_pvalues_and_zscores_match_neurospatial():
    from neurospatial.stats.shuffle import compute_shuffle_pvalue as ns_p, compute_shuffle_zscore as ns_z
    from voxfield.env import compute_shuffle_pvalue, compute_shuffle_zscore
    rng = np.random.default_rng(12)
    null = rng.normal(0, 1, 999)
    for obs in [-3.0, -0.2, 0.0, 0.7, 2.5, float(null[10])]:
        for tail in ["greater", "less", "two-sided"]:
            assert compute_shuffle_pvalue(obs, null, tail=tail) == ns_p(obs, null, tail=tail)
        assert compute_shuffle_zscore(obs, null) == pytest.approx(ns_z(obs, null), rel=1e-15)
    with_nan = np.concatenate([null, [np.nan, np.inf]])
    with pytest.warns(UserWarning):
        want = ns_p(1.0, with_nan)
    with pytest.warns(UserWarning, match="non-finite"):
        assert compute_shuffle_pvalue(1.0, with_nan) == want
    assert np.isnan(compute_shuffle_zscore(1.0, np.ones(5))) and np.isnan(ns_z(1.0, np.ones(5)))
    for bad in [dict(observed=np.nan, null_scores=null), dict(observed=1.0, null_scores=[np.nan]),
                dict(observed=1.0, null_scores=null, tail="both")]:
        with pytest.raises(ValueError):
            compute_shuffle_pvalue(**bad)


def test_absurd_decoding_sizes_are_refused():
    from voxfield.env import bin_spikes_in_time, decode_position
    trains = [np.array([0.0, 1e6])] * 8
    with pytest.raises(ValueError, match="raise dt|too large"):
        bin_spikes_in_time(trains, 1e-9)  # 10^15 time bins
    with pytest.raises(ValueError, match="raise dt"):
        bin_spikes_in_time(trains, 1e6 / 2 ** 30)  # 2^30 bins x 8 trains: 64 GiB of counts
    for dt in [0.0, -1.0, np.nan, np.inf]:
        with pytest.raises(ValueError, match="dt"):
            bin_spikes_in_time(trains, dt)
    env = Environment.from_samples(walk(500, 2, 10.0, seed=1), 2.0)
    with pytest.raises(ValueError, match="dt"):
        decode_position(env, np.zeros((3, 2), np.int64), np.ones((2, env.n_bins)), dt=np.inf)


def test_decoding_errors_and_summaries_match_neurospatial():
    from neurospatial.decoding import decode_position as ns_decode
    from neurospatial.decoding import decode_position_summary as ns_summary
    from neurospatial.decoding.metrics import decoding_error as ns_error
    from neurospatial.decoding.metrics import median_decoding_error as ns_median

    from voxfield.env import decode_position, decode_position_summary, decoding_error, median_decoding_error
    rng = np.random.default_rng(31)
    p = walk(4000, 2, 30.0, seed=32)
    a, b = both(p, 3.0)
    c = b.bin_centers
    rates = 0.2 + 10 * np.exp(-((c[None] - rng.uniform(0, 30, (12, 2))[:, None]) ** 2).sum(-1) / 40)
    counts = rng.poisson(0.5, (200, 12))
    times = np.arange(200) * 0.1 + 0.05
    want = ns_decode(a, counts, rates, 0.1, times=times)
    got = decode_position(b, counts, rates, 0.1, times=times)
    assert got.summary() == pytest.approx(want.summary(), rel=1e-10)
    true_t = np.arange(0, 20.5, 0.033)
    true_p = walk(len(true_t), 2, 30.0, seed=33)
    for metric in ("euclidean", "geodesic"):
        np.testing.assert_allclose(got.error_against(true_t, true_p, metric=metric),
                                   want.error_against(true_t, true_p, metric=metric), rtol=1e-10)
    s_want, s_got = ns_summary(a, counts, rates, 0.1, times=times), decode_position_summary(b, counts, rates, 0.1,
                                                                                            times=times)
    assert s_got.summary() == pytest.approx(s_want.summary(), rel=1e-10)
    x = rng.uniform(-5, 35, (300, 2))  # some outside the arena: straight-line there
    y = rng.uniform(-5, 35, (300, 2))
    x[3] = np.nan
    for metric in ("euclidean", "geodesic"):
        np.testing.assert_allclose(decoding_error(x, y, env=b, metric=metric), ns_error(x, y, env=a, metric=metric),
                                   rtol=1e-10)
    assert median_decoding_error(x, y) == pytest.approx(ns_median(x, y), rel=1e-12)
    with pytest.raises(ValueError, match="env is required"):
        decoding_error(x, y, metric="geodesic")
    with pytest.raises(ValueError, match="Shape mismatch"):
        decoding_error(x, y[:-1])
    with pytest.raises(ValueError, match="Invalid metric"):
        decoding_error(x, y, metric="manhattan")
    with pytest.raises(ValueError, match="strictly increasing"):
        got.error_against(true_t[::-1], true_p)
    with pytest.raises(ValueError, match="shape"):
        got.error_against(true_t, true_p[:, :1])
    with pytest.raises(ValueError, match="times=None"):
        decode_position(b, counts, rates, 0.1).error_against(true_t, true_p)


def test_cli_rate_maps_scores_and_shuffles(tmp_path):
    import json
    import os
    import subprocess

    from voxfield.env import batch_border_scores, batch_grid_scores
    cli = os.environ["VOXFIELD_CLI"]
    p = walk(9000, 2, 40.0, seed=71)
    t = np.arange(len(p)) / 30.0
    rng = np.random.default_rng(71)
    near = t[np.linalg.norm(p - p[100], axis=1) < 6]
    spikes = {"place": near, "noise": np.sort(rng.uniform(0, t[-1], 400))}
    np.save(tmp_path / "pos.npy", np.column_stack([t, p]))
    np.savez(tmp_path / "spk.npz", **spikes)
    base = [cli, "env", "rate-maps", tmp_path / "pos.npy", tmp_path / "spk.npz", "--bin-size", "4", "-o",
            tmp_path / "rates.npy", "--env", tmp_path / "arena", "--scores", "grid,border", "--shuffles", "30",
            "--seed", "3", "--min-shift", "10"]
    r = subprocess.run(base + ["--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["units"]
    env = Environment.from_file(tmp_path / "arena")
    rates = np.load(tmp_path / "rates.npy")
    grid, border = batch_grid_scores(env, rates).scores, batch_border_scores(env, rates).scores
    for u, row in enumerate(rows):
        assert row["grid_score"] == pytest.approx(grid[u], abs=1e-12)
        assert row["border_score"] == pytest.approx(border[u], abs=1e-12)
        for key in ("p_information", "p_sparsity", "p_grid_score", "p_border_score"):
            assert 1 / 31 <= row[key] <= 1
    assert rows[0]["p_information"] == pytest.approx(1 / 31)  # the place cell beats every shift
    again = subprocess.run(base + ["--json"], capture_output=True, text=True)
    assert json.loads(again.stdout)["units"] == rows  # the seed fixes the shifts
    table = subprocess.run(base, capture_output=True, text=True)
    assert table.returncode == 0 and "p_grid_score" in table.stdout.splitlines()[0]
    bad = subprocess.run(base[:-2] + ["--min-shift", "1e6"], capture_output=True, text=True)
    assert bad.returncode == 1 and "min-shift" in bad.stderr
    # Absurd shuffle counts are refused before any shift is drawn; options for shuffles without them too.
    for extra, msg in [(["--shuffles", str(10**12)], "shuffled maps"), (["--shuffles", str(2**63)], "shuffled maps"),
                       (["--shuffles", "5", "--min-shift", "nan"], "min-shift")]:
        bad = subprocess.run(base[:9] + ["--scores", "grid,border"] + extra, capture_output=True, text=True,
                             timeout=60)
        assert bad.returncode == 1 and msg in bad.stderr, bad.stderr
    bad = subprocess.run(base[:9] + ["--seed", "4"], capture_output=True, text=True)
    assert bad.returncode == 1 and "apply to shuffles" in bad.stderr
    np.save(tmp_path / "line.npy", np.column_stack([t, p[:, 0]]))
    bad = subprocess.run([cli, "env", "rate-maps", tmp_path / "line.npy", tmp_path / "spk.npz", "--bin-size", "4",
                          "-o", tmp_path / "x.npy", "--scores", "grid"], capture_output=True, text=True)
    assert bad.returncode == 1 and "2-D grid" in bad.stderr and not (tmp_path / "x.npy").exists()

"""Spike-time shuffles of spatial scores against neurospatial 0.6.0 itself: with explicit
shifts every shuffled score equals neurospatial's compute_spatial_rate + its scores on the
shifted spike train (numpy's mod), drawn shifts follow np.random.default_rng, p-values and
z-scores equal neurospatial's helpers, and bad requests are refused before any work."""
import time
import warnings

import numpy as np
import pytest

from voxfield import env as ve

ns = pytest.importorskip("neurospatial")
from neurospatial.encoding import compute_spatial_rate  # noqa: E402
from neurospatial.encoding.border import border_score as ns_border  # noqa: E402
from neurospatial.encoding.grid import grid_score as ns_grid_score  # noqa: E402
from neurospatial.encoding.grid import spatial_autocorrelation as ns_autocorrelation  # noqa: E402
from neurospatial.stats.shuffle import compute_shuffle_pvalue, compute_shuffle_zscore  # noqa: E402

ALL = ("spatial_information", "sparsity", "grid_score", "border_score")


def session(seed, duration=240.0, rate=30.0, side=60.0):
    rng = np.random.default_rng(seed)
    t = np.arange(0, duration, 1 / rate)
    p = np.cumsum(rng.normal(0, 1.2, (t.size, 2)), 0) % (2 * side)
    p = np.where(p > side, 2 * side - p, p)
    return t, p


def neurospatial_scores(env, train, t, p, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = compute_spatial_rate(env, np.sort(train), t, p, **kw)
        fr = r.firing_rate
        try:
            grid = ns_grid_score(ns_autocorrelation(env, fr))
        except ValueError:
            grid = np.nan
        return [r.spatial_information(), r.sparsity(), grid, ns_border(env, fr)]


@pytest.mark.parametrize("method,kw", [("diffusion_kde", {}), ("gaussian_kde", {"bandwidth": 4.0}),
                                       ("diffusion_kde", {"max_gap": None, "min_occupancy": 0.05}),
                                       ("gaussian_kde", {"speed": True, "min_speed": 20.0})])
def test_shuffled_scores_equal_neurospatial_on_shifted_trains(method, kw):
    t, p = session(1)
    kw = dict(kw)
    if kw.get("speed") is True:
        kw["speed"] = np.r_[0.0, np.linalg.norm(np.diff(p, axis=0), axis=1) * 30.0]
    t = t.copy()
    t[2000:] += 1.0  # one gap over max_gap
    a = ns.Environment.from_samples(p, bin_size=3.0)
    b = ve.Environment.from_samples(p, 3.0)
    rng = np.random.default_rng(2)
    centre = p[rng.integers(0, len(p), 1)][0]
    near = t[np.linalg.norm(p - centre, axis=1) < 8][::3]  # a place cell
    trains = [np.sort(rng.uniform(0, t[-1], 300)), near, np.array([]), np.r_[near[:20], t[-1], t[-1] + 5.0]]
    shifts = np.c_[rng.uniform(0, t[-1], (4, 3)), [[0.0], [t[-1] - t[0]], [-7.5], [1e4]]]
    got = ve.shuffle_spatial_scores(b, trains, t, p, shifts=shifts, scores=ALL, smoothing_method=method, **kw)
    assert got.names == ALL and got.null["grid_score"].shape == (4, 4)
    span = t[-1] - t[0]
    for u, train in enumerate(trains):
        want = neurospatial_scores(a, train, t, p, smoothing_method=method, **kw)
        for q, name in enumerate(ALL):
            assert got.observed[name][u] == pytest.approx(want[q], abs=1e-10, nan_ok=True), (name, u)
        for j in range(shifts.shape[1]):
            shifted = t[0] + np.mod((train - t[0]) + shifts[u, j], span)
            want = neurospatial_scores(a, shifted, t, p, smoothing_method=method, **kw)
            for q, name in enumerate(ALL):
                assert got.null[name][u, j] == pytest.approx(want[q], abs=1e-10, nan_ok=True), (name, u, j)
    # The place cell beats its random shifts on information (a shift of the whole span is
    # its own map); the test can fail.
    assert got.observed["spatial_information"][1] > got.null["spatial_information"][1, :3].max()


def test_drawn_shifts_pvalues_and_zscores_follow_neurospatial():
    t, p = session(3, duration=200.0)
    b = ve.Environment.from_samples(p, 4.0)
    rng = np.random.default_rng(4)
    trains = [np.sort(rng.uniform(0, 200, 200)) for _ in range(3)]
    r = ve.shuffle_spatial_scores(b, trains, t, p, n_shuffles=40, rng=7, min_shift=10.0)
    want = np.random.default_rng(7).uniform(10.0, (t[-1] - t[0]) - 10.0, size=(3, 40))
    np.testing.assert_array_equal(r.shifts, want)
    again = ve.shuffle_spatial_scores(b, trains, t, p, shifts=want)
    np.testing.assert_array_equal(again.null["sparsity"], r.null["sparsity"])
    row = ve.shuffle_spatial_scores(b, trains, t, p, shifts=want[0])
    np.testing.assert_array_equal(row.shifts, np.broadcast_to(want[0], (3, 40)))
    for tail in ("greater", "less", "two-sided"):
        pv = r.p_values("spatial_information", tail=tail)
        for u in range(3):
            assert pv[u] == compute_shuffle_pvalue(r.observed["spatial_information"][u],
                                                   r.null["spatial_information"][u], tail=tail)
    z = r.z_scores("sparsity")
    for u in range(3):
        assert z[u] == pytest.approx(compute_shuffle_zscore(r.observed["sparsity"][u], r.null["sparsity"][u]),
                                     rel=1e-12)
    one = r.result("spatial_information", 1, tail="less")
    assert one.n_shuffles == 40 and one.shuffle_type == "spike_time_circular"
    assert one.p_value == r.p_values("spatial_information", tail="less")[1]
    with pytest.raises(KeyError, match="grid_score"):
        r.p_values("grid_score")


def test_bad_shuffle_requests_are_refused_before_any_work():
    t, p = session(5, duration=100.0)
    b = ve.Environment.from_samples(p, 4.0)
    train = [np.sort(np.random.default_rng(6).uniform(0, 100, 100))]
    start = time.perf_counter()
    with pytest.raises(ValueError, match="shuffled maps per call"):
        ve.shuffle_spatial_scores(b, train, t, p, n_shuffles=10**9)
    assert time.perf_counter() - start < 5
    cases = [({"n_shuffles": 0}, "positive integer"), ({"min_shift": 60.0}, "min_shift"),
             ({"smoothing_method": "binned"}, "diffusion_kde"), ({"scores": ("grid",)}, "expected distinct"),
             ({"scores": ()}, "expected distinct"), ({"shifts": [1.0, np.nan]}, "finite"),
             ({"shifts": np.ones((2, 3))}, "shape"), ({"shifts": [1.0], "rng": 3}, "do not apply"),
             ({"shifts": [1.0, 2.0], "n_shuffles": 3}, "n_shuffles"), ({"threshold": 0.5}, "border_score"),
             ({"inner_radius_fraction": 0.1}, "grid_score"), ({"base": 10.0, "scores": ("sparsity",)}, "base"),
             ({"scores": ("border_score",), "threshold": 1.5}, "threshold"),
             ({"speed": np.ones(len(t))}, "min_speed"), ({"bandwidth": 0.0}, "bandwidth")]
    for kw, msg in cases:
        with pytest.raises(ValueError, match=msg):
            ve.shuffle_spatial_scores(b, train, t, p, **{"n_shuffles": kw.pop("n_shuffles", None), **kw})
    with pytest.raises(ValueError, match="finite"):
        ve.shuffle_spatial_scores(b, [np.array([1.0, np.inf])], t, p, n_shuffles=2)
    with pytest.raises(ValueError, match="precision"):
        ve.shuffle_spatial_scores(b, train, t, p, shifts=[5.0, 1e300])
    with pytest.raises(ValueError, match="must not decrease"):
        ve.shuffle_spatial_scores(b, train, t[::-1], p, n_shuffles=2)
    # Degenerate maps score as neurospatial's rules say, not as errors: no spikes, no occupancy.
    r = ve.shuffle_spatial_scores(b, [np.array([]), train[0]], t, p + 1000.0, n_shuffles=2, rng=0,
                                  scores=ALL)
    assert (r.observed["spatial_information"] == 0).all() and np.isnan(r.observed["grid_score"]).all()
    with pytest.raises(ValueError, match="no spike trains"):
        ve.shuffle_spatial_scores(b, [], t, p, n_shuffles=2)
    with pytest.raises(ValueError, match="spanning some time"):
        ve.shuffle_spatial_scores(b, train, t[:1], p[:1], shifts=[1.0])
    line = ve.Environment.from_samples(np.linspace(0, 50, 500)[:, None], 2.0)
    with pytest.raises(ValueError, match="2-D grid"):
        ve.shuffle_spatial_scores(line, train, t, np.linspace(0, 50, len(t)), n_shuffles=2, scores=("grid_score",))

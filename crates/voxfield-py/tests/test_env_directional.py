"""Head-direction tuning of voxfield.env against neurospatial 0.6.0 itself: rates,
occupancy and counts per heading bin (with and without the wrapped Gaussian, radians and
degrees), preferred direction, mean vector length, the Rayleigh p-value and the
head-direction-cell test; bad trajectories refused as neurospatial."""
import warnings

import numpy as np
import pytest

from voxfield import env as ve

ns = pytest.importorskip("neurospatial")
from neurospatial.encoding import directional as nd  # noqa: E402
from neurospatial.stats.circular import rayleigh_test as ns_rayleigh  # noqa: E402


def session(seed, duration=300.0):
    rng = np.random.default_rng(seed)
    t = np.arange(0, duration, 1 / 30)
    heading = np.cumsum(rng.normal(0, 0.15, t.size)) - 3.0  # unwrapped, negative too
    return rng, t, heading


def hd_train(rng, t, heading, preferred, kappa=4.0, peak=20.0):
    rate = peak * np.exp(kappa * (np.cos(heading - preferred) - 1))
    return t[rng.random(t.size) < rate / 30]


@pytest.mark.parametrize("kw", [{}, {"bandwidth": 0.2}, {"bin_size": np.pi / 18, "bandwidth": 1.0},
                                {"bin_size": 12.0, "bandwidth": 10.0, "angle_unit": "deg"}, {"bin_size": 0.7}])
def test_directional_rates_and_statistics_match(kw):
    rng, t, heading = session(1)
    h = np.degrees(heading) if kw.get("angle_unit") == "deg" else heading
    h = h.copy()
    h[100:130] = np.nan  # lost tracking
    trains = [hd_train(rng, t, heading, 1.0), np.sort(rng.uniform(0, 300, 500)), hd_train(rng, t, heading, -2.5, 1.0, 4),
              np.array([5.0, 6.0])]
    for train in trains:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = nd.compute_directional_rate(train, t, h, **kw)
        got = ve.compute_directional_rate(train, t, h, **kw)
        np.testing.assert_allclose(got.bin_centers, want.bin_centers, rtol=1e-15)
        np.testing.assert_allclose(got.occupancy, want.occupancy, rtol=1e-12)
        np.testing.assert_array_equal(got.spike_counts, want.spike_counts)
        np.testing.assert_allclose(got.firing_rate, want.firing_rate, rtol=1e-12, equal_nan=True)
        assert got.bin_size == pytest.approx(want.bin_size, rel=1e-15)
        for name in ("preferred_direction", "mean_vector_length", "rayleigh_pvalue", "peak_firing_rate",
                     "tuning_width", "tuning_width_deg", "preferred_direction_deg"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                w = getattr(want, name)()
            assert getattr(got, name)() == pytest.approx(w, rel=1e-10, abs=1e-14, nan_ok=True), name
        for mvl, alpha in [(0.4, 0.05), (0.2, 0.01)]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert got.is_head_direction_cell(mvl, alpha) == want.is_head_direction_cell(mvl, alpha)
                assert ve.is_head_direction_cell(train, t, h, min_mvl=mvl, alpha=alpha, **kw) == \
                    nd.is_head_direction_cell(train, t, h, min_mvl=mvl, alpha=alpha, **kw)
    many = ve.compute_directional_rates(trains, t, h, **kw)
    assert len(many) == 4 and many[0].is_head_direction_cell() and not many[1].is_head_direction_cell()


def test_rayleigh_test_matches():
    rng = np.random.default_rng(4)
    for n in (5, 30, 200):
        a = rng.vonmises(0.5, 2.0, n)
        w = rng.integers(1, 5, n).astype(float)
        assert ve.rayleigh_test(a, weights=w) == pytest.approx(ns_rayleigh(a, weights=w), rel=1e-12)
        assert ve.rayleigh_test(a) == pytest.approx(ns_rayleigh(a), rel=1e-12)
    with pytest.raises(ValueError, match="at least 3"):
        ve.rayleigh_test([0.1, 0.2], weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        ve.rayleigh_test([0.1, 0.2, 0.3], weights=[1.0, -1.0, 4.0])


def test_bad_heading_input_is_refused():
    rng, t, heading = session(5, 20.0)
    spikes = np.array([1.0, 2.0])
    cases = [((spikes, t, heading[:-1]), {}, "same length"), ((spikes, t[:2], heading[:2]), {}, "at least 3"),
             ((spikes, t[::-1], heading), {}, "increasing"), ((spikes, t, heading), {"bin_size": 0.0}, "positive"),
             ((spikes, t, heading), {"bin_size": 100.0}, "bins"), ((spikes, t, heading), {"bandwidth": -1.0}, "bandwidth"),
             ((spikes, t, heading), {"bandwidth": 1e300}, "taps"), ((spikes, t, heading), {"bin_size": 1e-12}, "bins"),
             ((np.array([np.nan]), t, heading), {}, "finite"), ((spikes, t, heading), {"angle_unit": "grad"}, "angle_unit")]
    for args, kw, msg in cases:
        with pytest.raises(ValueError, match=msg):
            ve.compute_directional_rate(*args, **kw)
        assert ve.is_head_direction_cell(*args, **kw) is False

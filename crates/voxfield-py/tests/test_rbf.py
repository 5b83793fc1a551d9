"""voxfield.RBFInterpolator against scipy's RBFInterpolator (global solve, the
standard method) and analytic fields."""
import warnings

import numpy as np
import pytest
from scipy.interpolate import RBFInterpolator as ScipyRBF

import voxfield


def franke(x, y):
    return (0.75 * np.exp(-((9 * x - 2) ** 2 + (9 * y - 2) ** 2) / 4)
            + 0.75 * np.exp(-(9 * x + 1) ** 2 / 49 - (9 * y + 1) / 10)
            + 0.5 * np.exp(-((9 * x - 7) ** 2 + (9 * y - 3) ** 2) / 4)
            - 0.2 * np.exp(-(9 * x - 4) ** 2 - (9 * y - 7) ** 2))


def field3(p):
    return franke(p[:, 0], p[:, 1]) * (1 + 0.5 * np.sin(3 * p[:, 2]))


@pytest.mark.parametrize("kernel,kw", [
    ("thin_plate_spline", {}),
    ("cubic", {}),
    ("gaussian", {"epsilon": 10.0, "degree": 1}),
    ("multiquadric", {"epsilon": 10.0, "degree": 1}),
])
def test_agrees_with_scipys_global_rbf_on_5000_points(kernel, kw):
    rng = np.random.default_rng(1)
    pts = rng.random((5000, 2))
    vals = franke(pts[:, 0], pts[:, 1])
    held = rng.uniform(0.02, 0.98, size=(2000, 2))
    ref = ScipyRBF(pts, vals, kernel=kernel, **kw)(held)
    ours = voxfield.RBFInterpolator(pts, vals, kernel=kernel, points_per_cell=300, **kw)
    assert ours.info["cells"] >= 16
    rel = np.abs(ours(held) - ref).max() / np.ptp(vals)
    assert rel < 1e-3, f"{kernel}: {rel:.2e} of the value range"


def test_agrees_with_scipy_in_3d():
    rng = np.random.default_rng(2)
    pts = rng.random((5000, 3))
    vals = field3(pts)
    held = rng.uniform(0.05, 0.95, size=(1000, 3))
    ref = ScipyRBF(pts, vals, kernel="thin_plate_spline")(held)
    # 5,000 points are sparse in 3-D (cells of ~1,000 points reach only ~10 spacings
    # across), so the overlap is wider than the 2-D default: 0.05 % instead of 0.16 %.
    ours = voxfield.RBFInterpolator(pts, vals, points_per_cell=300, overlap=0.4)
    assert ours.info["cells"] >= 8
    assert np.abs(ours(held) - ref).max() / np.ptp(vals) < 1e-3


@pytest.mark.parametrize("dim,kernel", [(2, "thin_plate_spline"), (2, "wendland-c2"), (3, "wendland-c4"),
                                        (3, "thin_plate_spline")])
def test_passes_through_every_sample(dim, kernel):
    rng = np.random.default_rng(3)
    pts = rng.random((4000, dim))
    vals = franke(pts[:, 0], pts[:, 1]) if dim == 2 else field3(pts)
    rbf = voxfield.RBFInterpolator(pts, vals, kernel=kernel, points_per_cell=300)
    assert np.abs(rbf(pts) - vals).max() <= 1e-8 * np.ptp(vals)


def test_scipy_call_shapes_values_shapes_grid_and_gradient():
    rng = np.random.default_rng(4)
    pts = rng.random((3000, 2))
    v1 = franke(pts[:, 0], pts[:, 1])
    # scipy's own call shape works unchanged (neighbors is accepted and not needed).
    rbf = voxfield.RBFInterpolator(pts, v1, neighbors=50, smoothing=0.0, kernel="thin_plate_spline")
    q = rng.random((7, 2))
    assert rbf(q).shape == (7,)
    two = voxfield.RBFInterpolator(pts, np.stack([v1, 2 * v1], axis=1))
    out = two(q)
    assert out.shape == (7, 2)
    np.testing.assert_allclose(out[:, 1], 2 * out[:, 0], rtol=1e-12)
    np.testing.assert_allclose(out[:, 0], rbf(q), rtol=1e-12)
    g = rbf.grid((5, 4), bounds=(0.1, 0.9, 0.2, 0.8))
    xs, ys = np.meshgrid(np.linspace(0.1, 0.9, 5), np.linspace(0.2, 0.8, 4), indexing="ij")
    np.testing.assert_array_equal(g, rbf(np.stack([xs.ravel(), ys.ravel()], axis=1)).reshape(5, 4))
    assert two.grid((3, 3)).shape == (3, 3, 2)
    # A linear field: exact values and gradients.
    lin = 1 + 2 * pts[:, 0] - 3 * pts[:, 1]
    r = voxfield.RBFInterpolator(pts, lin)
    np.testing.assert_allclose(r(q), 1 + 2 * q[:, 0] - 3 * q[:, 1], atol=1e-9)
    np.testing.assert_allclose(r.gradient(q), np.tile([2.0, -3.0], (7, 1)), atol=1e-6)
    # 1-D points may be a flat array.
    x = np.sort(rng.random(200))
    r1 = voxfield.RBFInterpolator(x, np.sin(5 * x), kernel="cubic")
    np.testing.assert_allclose(r1(x), np.sin(5 * x), atol=1e-9)
    assert np.isnan(rbf(np.array([[np.nan, 0.5]])))[0]


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    pts = rng.random((2000, 3))
    rbf = voxfield.RBFInterpolator(pts, field3(pts), kernel="wendland-c2", points_per_cell=500)
    path = tmp_path / "m.vxr"
    rbf.save(path)
    back = voxfield.load(path)
    q = rng.random((500, 3))
    np.testing.assert_array_equal(back(q), rbf(q))
    assert back.info == rbf.info
    raw = path.read_bytes()
    (tmp_path / "cut.vxr").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="checksum mismatch"):
        voxfield.load(tmp_path / "cut.vxr")
    with pytest.raises(FileNotFoundError):
        voxfield.load(tmp_path / "missing.vxr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.vxr", "m.vxr"]


def test_bad_input_raises_clear_errors():
    rng = np.random.default_rng(6)
    pts = rng.random((300, 2))
    vals = franke(pts[:, 0], pts[:, 1])
    bad = pts.copy()
    bad[17, 1] = np.nan
    with pytest.raises(ValueError, match="point 17 has a non-finite coordinate"):
        voxfield.RBFInterpolator(bad, vals)
    v = vals.copy()
    v[4] = np.inf
    with pytest.raises(ValueError, match="point 4 has a non-finite value"):
        voxfield.RBFInterpolator(pts, v)
    with pytest.raises(ValueError, match="one row per point"):
        voxfield.RBFInterpolator(pts, vals[:-1])
    with pytest.raises(TypeError, match="numeric"):
        voxfield.RBFInterpolator(pts.astype(object), vals)
    with pytest.raises(ValueError, match="collinear"):
        voxfield.RBFInterpolator(np.c_[np.arange(50.0), 2 * np.arange(50.0)], np.ones(50))
    with pytest.raises(ValueError, match="fewer than kernel"):
        voxfield.RBFInterpolator(pts[:2], vals[:2])
    with pytest.raises(ValueError, match="unknown kernel"):
        voxfield.RBFInterpolator(pts, vals, kernel="quintic")
    with pytest.raises(ValueError, match="needs degree >= 1"):
        voxfield.RBFInterpolator(pts, vals, degree=0)
    with pytest.raises(ValueError, match="support="):
        voxfield.RBFInterpolator(pts, vals, kernel="wendland-c2", epsilon=2.0)
    with pytest.raises(ValueError, match="only in 1 to 3 dimensions"):
        voxfield.RBFInterpolator(rng.random((100, 4)), np.ones(100), kernel="wendland-c2")
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        voxfield.RBFInterpolator(pts, vals)(rng.random((5, 3)))
    dup = np.vstack([pts, pts[:3]])
    dv = np.r_[vals, vals[:3] + 1]
    with pytest.raises(ValueError, match="same coordinates"):
        voxfield.RBFInterpolator(dup, dv, duplicates="reject")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = voxfield.RBFInterpolator(dup, dv)
    assert any("merged 3 duplicate" in str(x.message) for x in w)
    np.testing.assert_allclose(r(pts[:3]), vals[:3] + 0.5, atol=1e-9)


def _ticks_while(fn):
    """How often this thread runs a Python loop while ``fn`` runs in another thread:
    if ``fn`` held the GIL, this loop would stall until it returned."""
    import threading
    worker = threading.Thread(target=fn)
    ticks = 0
    worker.start()
    while worker.is_alive():
        ticks += 1
    worker.join()
    return ticks


def test_fit_and_evaluation_release_the_gil():
    rng = np.random.default_rng(7)
    pts = rng.random((60_000, 2))
    vals = franke(pts[:, 0], pts[:, 1])
    done = {}
    assert _ticks_while(lambda: done.setdefault("rbf", voxfield.RBFInterpolator(pts, vals))) > 10_000
    q = rng.random((400_000, 2))
    assert _ticks_while(lambda: done["rbf"](q)) > 10_000

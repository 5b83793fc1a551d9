"""Cross-level links read back (issue 27): vv.parents / vv.children on pyramids zarr-vectors 0.9.2
builds, equal to its own read_links of the +1 family mapped to read_points rows, and to the geometry
(a per_object metanode is the centroid of the vertices in its bin, so a parent shares its child's bin)."""

import warnings

import numpy as np
import pytest

from _stores import zv
from voxfield import vectors as vv

zv_points = pytest.importorskip("zarr_vectors.types.points")
from zarr_vectors.core.arrays import read_links  # noqa: E402
from zarr_vectors.core.store import get_resolution_level, open_store  # noqa: E402
from zarr_vectors.multiresolution.coarsen import build_pyramid  # noqa: E402
from zarr_vectors.types.polylines import write_polylines  # noqa: E402


def zv_parents(store, level):
    """zarr-vectors' +1 records as (fine row, coarse row) in read_points order of both levels."""
    root = zv(open_store, str(store))
    fine, coarse = (zv(get_resolution_level, root, lv) for lv in (level, level + 1))

    def starts(lv):
        import json
        meta = json.loads((store / str(lv) / "vertices" / "zarr.json").read_text())
        out, at = {}, 0
        keys = sorted(tuple(int(x) for x in k.split(".")) for k in meta["attributes"]["nonempty_chunks"])
        pts = zv(zv_points.read_points, str(store), level=lv)["positions"]
        cs = np.asarray(json.loads((store / "zarr.json").read_text())["attributes"]["zarr_vectors"]["chunk_shape"])
        chunk_of = [tuple(c) for c in np.floor(pts / cs).astype(int)]
        for k in keys:
            out[k] = at
            at += sum(1 for c in chunk_of if c == k)
        return out, at

    fs, n = starts(level)
    cs, _ = starts(level + 1)
    parent = np.full(n, -1)
    for (fc, fv), (cc, cv) in zv(read_links, fine, delta=1):
        parent[fs[tuple(fc)] + fv] = cs[tuple(cc)] + cv
    del coarse
    return parent


def test_point_pyramid_parents_and_children(tmp_path):
    store = tmp_path / "p.zarrvectors"
    p = np.random.default_rng(0).uniform(0, 100, (5000, 3)).astype(np.float32)
    zv(zv_points.write_points, str(store), p, chunk_shape=(25, 25, 25), bin_shape=(5, 5, 5))
    zv(build_pyramid, str(store), factors=[(2, 1), (2, 1)])
    for level, bin_size in ((0, 10.0), (1, 20.0)):
        par = vv.parents(store, level)
        np.testing.assert_array_equal(par, zv_parents(store, level))
        fine = vv.read_points(store, level=level)["positions"]
        coarse = vv.read_points(store, level=level + 1)["positions"]
        assert len(par) == len(fine) and par.min() >= 0
        np.testing.assert_array_equal(np.floor(fine / bin_size), np.floor(coarse[par] / bin_size))
        ch = vv.children(store, level + 1)
        assert len(ch["offsets"]) == len(coarse) + 1 and ch["offsets"][-1] == len(fine)
        for k in (0, len(coarse) // 2, len(coarse) - 1):
            kids = ch["children"][ch["offsets"][k]:ch["offsets"][k + 1]]
            np.testing.assert_array_equal(kids, np.flatnonzero(par == k))
    with pytest.raises(ValueError, match="coarsest"):
        vv.parents(store, 2)
    with pytest.raises(ValueError, match="no children"):
        vv.children(store, 0)


def test_thinned_polylines_have_no_parents_where_dropped(tmp_path):
    store = tmp_path / "l.zarrvectors"
    rng = np.random.default_rng(1)
    lines = [rng.normal(0, 8, (int(rng.integers(3, 30)), 3)).cumsum(0).astype(np.float32) for _ in range(200)]
    zv(write_polylines, str(store), lines, chunk_shape=(20, 20, 20), bin_shape=(5, 5, 5))
    zv(build_pyramid, str(store), factors=[(2, 1), (2, 4)], sparsity_seed=3)
    for level in (0, 1):
        np.testing.assert_array_equal(vv.parents(store, level), zv_parents(store, level))
    assert (vv.parents(store, 1) == -1).any()  # vertices of objects thinned out at level 2

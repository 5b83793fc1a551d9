"""zarr-vectors 0.9's selection idiom (issue 27): objects=, groups=, where=, near=, bbox= and limit=
on stores zarr-vectors 0.9.2 writes, equal to its own object/group reads and to numpy filters of its
full reads; bad terms refused with the reason."""

import os
import subprocess
import warnings

import numpy as np
import pytest

from _stores import assert_identical, zv
from voxfield import vectors as vv

zv_points = pytest.importorskip("zarr_vectors.types.points")
from zarr_vectors.multiresolution.coarsen import build_pyramid  # noqa: E402
from zarr_vectors.types.polylines import write_polylines  # noqa: E402

CLI = os.environ.get("VOXFIELD_CLI")
N = 6000


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("sel") / "objs.zarrvectors"
    rng = np.random.default_rng(1)
    p = rng.uniform(-20, 100, (N, 3)).astype(np.float32)
    oid = rng.integers(0, 40, N)
    va = {"w": rng.random(N).astype(np.float32), "label": rng.integers(0, 5, N).astype(np.int32),
          "rgb": rng.integers(0, 255, (N, 3)).astype(np.uint8)}
    oa = {"score": np.arange(40, dtype=np.float64) * 0.5}
    groups = {0: [1, 2, 3], 1: [5, 9, 30], 2: list(range(20, 40))}
    zv(zv_points.write_points, str(path), p, chunk_shape=(25, 25, 25), bin_shape=(12.5, 12.5, 12.5),
       vertex_attributes=va, object_ids=oid, object_attributes=oa, groups=groups)
    return path


def rows(r):
    """(object id, x, y, z) rows sorted: object reads may order vertices differently within an object."""
    ids = np.asarray(r.get("object_ids", np.zeros(len(r["positions"]))), dtype=np.float64)
    a = np.column_stack([ids, r["positions"].astype(np.float64)])
    return a[np.lexsort(a.T[::-1])]


def test_objects_and_groups_equal_zarr_vectors_reads(store):
    for ids in ([1, 5], [0], [39, 7, 12]):
        want = zv(zv_points.read_points, str(store), object_ids=ids, attribute_names=["w"])
        got = vv.select(store, objects=ids, attribute_names=["w"])
        assert got["vertex_count"] == want["vertex_count"] > 0
        np.testing.assert_array_equal(rows(got), rows(want))
        assert set(got["object_ids"]) == set(ids)
        order = np.lexsort(np.column_stack([got["object_ids"], got["positions"]]).T[::-1])
        order_w = np.lexsort(np.column_stack([want["object_ids"], want["positions"]]).T[::-1])
        np.testing.assert_array_equal(got["vertex_attributes"]["w"][order], want["vertex_attributes"]["w"][order_w])
    for gid in ([1], [0, 2]):
        want = zv(zv_points.read_points, str(store), group_ids=gid)
        got = vv.read_points(store, group_ids=gid)
        np.testing.assert_array_equal(rows(got), rows(want))
    got = vv.select(store, objects=[1, 2, 5, 9], groups=[1])  # intersected: 5 and 9
    assert set(got["object_ids"]) == {5, 9}


def test_where_near_bbox_and_limit_equal_numpy_filters(store):
    full = zv(zv_points.read_points, str(store), attribute_names=["w", "label"])
    p, w, label = full["positions"], full["vertex_attributes"]["w"], full["vertex_attributes"]["label"]
    cases = [
        (dict(where={"w": (">", 0.5)}), w > 0.5),
        (dict(where={"label": 3}), label == 3),
        (dict(where={"label": ("!=", 3), "w": ("<=", 0.25)}), (label != 3) & (w <= 0.25)),
        (dict(near=([40, 30, 20], 25.0)), ((p - [40, 30, 20]) ** 2).sum(1) <= 25.0 ** 2),
        (dict(bbox=([0, 0, 0], [50, 60, 70]), where={"w": (">=", 0.3)}),
         np.all((p >= [0, 0, 0]) & (p <= [50, 60, 70]), axis=1) & (w >= 0.3)),
    ]
    for kw, mask in cases:
        got = vv.select(store, attribute_names=["w"], **kw)
        np.testing.assert_array_equal(got["positions"], p[mask])
        np.testing.assert_array_equal(got["vertex_attributes"]["w"], w[mask])
        assert not got["truncated"]
    mask = (((p - [40, 30, 20]) ** 2).sum(1) <= 40.0 ** 2) & (w > 0.2)
    got = vv.select(store, near=([40, 30, 20], 40.0), where={"w": (">", 0.2)}, limit=17)
    np.testing.assert_array_equal(got["positions"], p[mask][:17])
    assert got["truncated"] and mask.sum() > 17
    assert not vv.select(store, limit=N)["truncated"]


def test_where_on_object_attributes_and_coarse_levels(store, tmp_path):
    oa = np.arange(40) * 0.5
    chosen = [int(i) for i in np.flatnonzero(oa > 15)]
    want = zv(zv_points.read_points, str(store), object_ids=chosen)
    got = vv.select(store, where={"score": (">", 15)})
    np.testing.assert_array_equal(rows(got), rows(want))
    # Any level: a plain point pyramid's coarse level, filtered like its full read.
    plain = tmp_path / "plain.zarrvectors"
    q = np.random.default_rng(2).uniform(0, 100, (4000, 3)).astype(np.float32)
    zv(zv_points.write_points, str(plain), q, chunk_shape=(20, 20, 20), bin_shape=(5, 5, 5))
    zv(build_pyramid, str(plain), factors=[(2, 1), (2, 1)])
    for level in (1, 2):
        full = zv(zv_points.read_points, str(plain), level=level)["positions"]
        mask = ((full - [50, 50, 50]) ** 2).sum(1) <= 30.0 ** 2
        np.testing.assert_array_equal(vv.select(plain, level=level, near=([50, 50, 50], 30))["positions"],
                                      full[mask])


def test_polyline_objects_are_their_vertices(tmp_path):
    rng = np.random.default_rng(3)
    lines = [rng.normal(0, 15, (int(rng.integers(2, 40)), 3)).cumsum(0).astype(np.float32) for _ in range(200)]
    store = tmp_path / "l.zarrvectors"
    zv(write_polylines, str(store), lines, chunk_shape=(20, 20, 20))
    got = vv.select(store, objects=[3, 150, 7])
    want = np.concatenate([lines[3], lines[7], lines[150]])
    np.testing.assert_array_equal(got["positions"], want)  # object by object, each in its order
    np.testing.assert_array_equal(got["object_ids"], np.repeat([3, 7, 150], [len(lines[i]) for i in (3, 7, 150)]))
    box = ([-10, -10, -10], [10, 10, 10])
    inside = np.all((want >= box[0]) & (want <= box[1]), axis=1)
    np.testing.assert_array_equal(vv.select(store, objects=[3, 150, 7], bbox=box)["positions"], want[inside])


def test_bad_selections_are_refused(store):
    for kw, msg in [(dict(where={"nope": 1}), "no vertex or object attribute"),
                    (dict(where={"rgb": 3}), "3-channel"),
                    (dict(where={"w": ("~", 1)}), "operator"),
                    (dict(groups=[7]), "group 7"),
                    (dict(limit=0), "limit"),
                    (dict(near=([1, 2], 3.0)), "near"),
                    (dict(near=([1, 2, 3], -1.0)), "near"),
                    (dict(bbox=([5, 5, 5], [1, 1, 1])), "bbox"),
                    (dict(objects=[1.5]), "integer")]:
        with pytest.raises(ValueError, match=msg):
            vv.select(store, **kw)
    plain = store.parent / "noobj.zarrvectors"
    zv(zv_points.write_points, str(plain), np.zeros((3, 3), np.float32) + 1, chunk_shape=(5, 5, 5))
    with pytest.raises(ValueError, match="object_index"):
        vv.select(plain, objects=[0])
    with pytest.raises(ValueError, match="no groups"):
        vv.select(plain, groups=[0])


@pytest.mark.skipif(not CLI, reason="VOXFIELD_CLI names the built voxfield")
def test_cli_selection_flags(store, tmp_path):
    out = tmp_path / "s.npy"
    r = subprocess.run([CLI, "vectors", "read", store, "--objects", "1,5,9", "--where", "w>0.3",
                        "--near", "40,40,40,50", "--limit", "25", "--attributes", "w", "-o", out],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    want = vv.select(store, objects=[1, 5, 9], where={"w": (">", 0.3)}, near=([40, 40, 40], 50), limit=25,
                     attribute_names=["w"])
    got = np.load(out)
    np.testing.assert_array_equal(got[:, :3], want["positions"])
    np.testing.assert_array_equal(got[:, 3], want["vertex_attributes"]["w"])
    for args, msg in ((["--limit", "3", "-o", tmp_path / "x.precomputed"], "limit does not apply"),
                      (["--objects", "1", "-o", tmp_path / "x.trk"], "objects does not apply"),
                      (["--where", "w>>1", "-o", out], "operator"),
                      (["--near", "1,2,3", "-o", out], "near")):
        r = subprocess.run([CLI, "vectors", "read", store, *args], capture_output=True, text=True)
        assert r.returncode != 0 and msg in r.stderr, (args, r.stderr)


@pytest.mark.parametrize("chunk,bins,compressor", [((25, 25, 25), (12.5, 12.5, 12.5), None),
                                                   ((30, 30, 30), None, "zstd")])
def test_point_writes_with_objects_are_zarr_vectors_own(tmp_path, chunk, bins, compressor):
    """write_points(object_ids=, object_attributes=, groups=): zarr-vectors' object layout, file for file
    (zstd tables equal once decoded: libzstd 1.5.7 here, 1.5.6 in numcodecs), read back by both."""
    rng = np.random.default_rng(9)
    p = rng.uniform(-20, 100, (3000, 3)).astype(np.float32)
    oid = rng.choice([0, 2, 3, 7, 11, 40], 3000)  # ids not contiguous
    va = {"w": rng.random(3000).astype(np.float32)}
    oa = {"score": np.arange(6, dtype=np.float64) * 1.5}
    groups = {0: [2, 3], 1: [40], 2: [0, 7, 11]}
    mine, theirs = tmp_path / "vf.zarrvectors", tmp_path / "zv.zarrvectors"
    kw = dict(chunk_shape=chunk, bin_shape=bins, vertex_attributes=va, object_ids=oid, object_attributes=oa,
              groups=groups, compressor=compressor)
    zv(zv_points.write_points, str(theirs), p, **kw)
    r = vv.write_points(mine, p, **kw)
    assert r["object_count"] == 6 and r["group_count"] == 3
    assert_identical(mine, theirs, zstd_decoded="any")
    for store in (mine, theirs):
        want = zv(zv_points.read_points, str(theirs), object_ids=[3, 40], attribute_names=["w"])
        got = vv.select(store, objects=[3, 40], attribute_names=["w"])
        np.testing.assert_array_equal(rows(got), rows(want))
        np.testing.assert_array_equal(rows(vv.select(store, groups=[2])),
                                      rows(zv(zv_points.read_points, str(theirs), group_ids=[2])))
        np.testing.assert_array_equal(rows(vv.select(store, where={"score": (">=", 6)})),
                                      rows(zv(zv_points.read_points, str(theirs), object_ids=[11, 40])))
    with pytest.raises(ValueError, match="group 0 names object 5"):
        vv.write_points(tmp_path / "bad.zarrvectors", p, object_ids=oid, groups={0: [5]})
    with pytest.raises(ValueError, match="object ids for"):
        vv.write_points(tmp_path / "bad.zarrvectors", p, object_ids=oid[:10])
    with pytest.raises(ValueError, match="≥ 0"):
        vv.write_points(tmp_path / "bad.zarrvectors", p, object_ids=-oid - 1)
    assert not (tmp_path / "bad.zarrvectors").exists()

"""voxfield.vectors against zarr-vectors 0.9.2 itself (pip-installed in the test venv):
stores it writes (points with attributes, a built pyramid, polylines, a zstd-compressed
store, negative coordinates) read level by level and by bounding box, equal to its own
reads; bad stores refused with the file named."""
import json
import warnings

import numpy as np
import pytest

from voxfield import vectors as vv

zv_points = pytest.importorskip("zarr_vectors.types.points")
from zarr_vectors.multiresolution.coarsen import build_pyramid  # noqa: E402
from zarr_vectors.types.polylines import read_polylines, write_polylines  # noqa: E402


def cloud(n, seed, lo=0.0, hi=100.0, d=3):
    return np.random.default_rng(seed).uniform(lo, hi, (n, d)).astype(np.float32)


def same(got, want):
    np.testing.assert_array_equal(got["positions"], want["positions"])
    assert got["vertex_count"] == want["vertex_count"]
    for k, v in want.get("vertex_attributes", {}).items():
        np.testing.assert_array_equal(np.asarray(got["vertex_attributes"][k]).reshape(np.shape(v)), v)


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory):
    path = tmp_path_factory.mktemp("zv") / "pts.zarrvectors"
    p = cloud(20_000, 1)
    attrs = {"intensity": np.random.default_rng(2).random(len(p)).astype(np.float32),
             "label": np.random.default_rng(3).integers(0, 9, len(p)).astype(np.int32),
             "rgb": np.random.default_rng(4).integers(0, 255, (len(p), 3)).astype(np.uint8)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zv_points.write_points(str(path), p, chunk_shape=(25, 25, 25), bin_shape=(12.5, 12.5, 12.5),
                               vertex_attributes=attrs)
        build_pyramid(str(path), factors=[(2, 1), (2, 4)])
    return path


def test_levels_and_whole_levels_match(pyramid):
    levels = vv.list_resolution_levels(pyramid)
    assert levels == [0, 1, 2]
    for level in levels:
        names = vv.info(pyramid)["levels"][level]["attributes"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = zv_points.read_points(str(pyramid), level=level, attribute_names=names or None)
        got = vv.read_points(pyramid, level=level, attribute_names=names or None)
        assert set(want["vertex_attributes"]) == set(names) == set(got["vertex_attributes"])
        assert got["vertex_count"] > 0
        same(got, want)
    meta = vv.info(pyramid)
    assert meta["zarr_vectors"]["zv_version"] == "0.9.2" and len(meta["levels"]) == 3


def test_bbox_reads_match_zarr_vectors_and_a_numpy_filter(pyramid):
    every = ["intensity", "label", "rgb"]
    full = vv.read_points(pyramid, attribute_names=every)
    assert vv.read_points(pyramid)["vertex_attributes"] == {}  # as zarr-vectors: none unless named
    rng = np.random.default_rng(7)
    for _ in range(6):
        a, b = rng.uniform(-10, 110, 3), rng.uniform(-10, 110, 3)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = zv_points.read_points(str(pyramid), bbox=(lo, hi), attribute_names=every)
        got = vv.read_points(pyramid, bbox=(lo, hi), attribute_names=every)
        assert len(want["vertex_attributes"]) == 3
        same(got, want)
        inside = np.all((full["positions"] >= lo) & (full["positions"] <= hi), axis=1)
        assert got["vertex_count"] == inside.sum()
        np.testing.assert_array_equal(np.sort(got["vertex_attributes"]["intensity"]),
                                      np.sort(full["vertex_attributes"]["intensity"][inside]))
    sub = vv.read_points(pyramid, attribute_names=["label"])
    assert list(sub["vertex_attributes"]) == ["label"]


def test_polylines_negative_coordinates_and_zstd(tmp_path):
    rng = np.random.default_rng(8)
    lines = [np.cumsum(rng.normal(0, 3, (int(rng.integers(5, 60)), 3)), axis=0).astype(np.float32) - 20
             for _ in range(200)]
    path = str(tmp_path / "lines.zarrvectors")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_polylines(path, lines, chunk_shape=(16, 16, 16))
        want = zv_points.read_points(path)
    got = vv.read_points(path)
    same(got, want)
    assert got["vertex_count"] == sum(len(x) for x in lines)
    assert (got["positions"] < 0).any()
    z = str(tmp_path / "z.zarrvectors")
    p = cloud(3000, 9, -50, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zv_points.write_points(z, p, chunk_shape=(20, 20, 20), compressor="zstd")
        same(vv.read_points(z), zv_points.read_points(z))
        box = ([-10, -10, -10], [10, 5, 30])
        same(vv.read_points(z, bbox=box), zv_points.read_points(z, bbox=(np.array(box[0]), np.array(box[1]))))


def test_bad_stores_are_refused_clearly(tmp_path, pyramid):
    import shutil

    with pytest.raises(Exception, match="zarr.json"):
        vv.read_points(tmp_path / "missing")
    s = tmp_path / "old.zarrvectors"
    shutil.copytree(pyramid, s)
    root = json.loads((s / "zarr.json").read_text())
    root["attributes"]["zarr_vectors"]["zv_version"] = "0.8.1"
    (s / "zarr.json").write_text(json.dumps(root))
    with pytest.raises(Exception, match="older than 0.9.0"):
        vv.read_points(s)
    root["attributes"]["zarr_vectors"]["zv_version"] = "0.9.2"
    (s / "zarr.json").write_text(json.dumps(root))
    with pytest.raises(Exception, match="no level 7"):
        vv.read_points(s, level=7)
    with pytest.raises(Exception, match="must not exceed"):
        vv.read_points(s, bbox=([10, 0, 0], [0, 1, 1]))
    with pytest.raises(Exception, match="NaN"):
        vv.read_points(s, bbox=([np.nan, 0, 0], [1, 1, 1]))
    # A truncated chunk blob and an attribute whose length disagrees with the vertices.
    cell = next((s / "0" / "vertices" / "c").rglob("*"))
    while cell.is_dir():
        cell = next(cell.iterdir())
    blob = cell.read_bytes()
    cell.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(Exception, match="truncated"):
        vv.read_points(s)
    cell.write_bytes(blob)
    acell = s / "0" / "vertex_attributes" / "intensity" / cell.relative_to(s / "0" / "vertices")
    ablob = acell.read_bytes()
    n = int.from_bytes(ablob[4:8], "little")
    acell.write_bytes((1).to_bytes(4, "little") + (n - 4).to_bytes(4, "little") + ablob[8:-4])
    with pytest.raises(Exception, match="intensity"):
        vv.read_points(s, attribute_names=["intensity"])
    with pytest.raises(Exception, match="nope"):
        vv.read_points(s, attribute_names=["nope"])


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_cli_info_and_read(tmp_path, pyramid):
    import os
    import subprocess

    cli = os.environ["VOXFIELD_CLI"]
    r = subprocess.run([cli, "vectors", "info", pyramid, "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    meta = json.loads(r.stdout)
    assert [lv["level"] for lv in meta["levels"]] == [0, 1, 2] and meta["dims"] == 3
    out = tmp_path / "box.npy"
    r = subprocess.run([cli, "vectors", "read", pyramid, "--level", "0", "--bbox", "-5,10,10,60,60,90",
                        "--attributes", "intensity,rgb", "-o", out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    table = np.load(out)
    want = vv.read_points(pyramid, bbox=([-5, 10, 10], [60, 60, 90]), attribute_names=["intensity", "rgb"])
    np.testing.assert_array_equal(table[:, :3], want["positions"].astype(np.float64))
    np.testing.assert_array_equal(table[:, 3], want["vertex_attributes"]["intensity"].astype(np.float64))
    np.testing.assert_array_equal(table[:, 4:], want["vertex_attributes"]["rgb"].astype(np.float64))
    r = subprocess.run([cli, "vectors", "read", pyramid, "--bbox", "1,2", "-o", out], capture_output=True, text=True)
    assert r.returncode == 1 and "needs 6" in r.stderr
    (tmp_path / "empty").mkdir()
    r = subprocess.run([cli, "vectors", "read", tmp_path / "empty", "-o", tmp_path / "x.npy"], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "zarr.json" in r.stderr and not (tmp_path / "x.npy").exists()


@pytest.mark.parametrize("chunk,bins,lo,hi", [((25, 25, 25), (12.5, 12.5, 12.5), 0, 100),
                                              ((20, 20, 20), None, -50, 50),
                                              (None, None, 0, 10)])
def test_written_stores_read_the_same_in_zarr_vectors_with_identical_cells(tmp_path, chunk, bins, lo, hi):
    p = cloud(5000, 11, lo, hi)
    p[:5] = np.floor(p[:5] / 12.5) * 12.5  # points exactly on bin and chunk faces
    attrs = {"w": np.random.default_rng(1).random(len(p)).astype(np.float32),
             "rgb": np.random.default_rng(2).integers(0, 255, (len(p), 3)).astype(np.uint8)}
    mine, theirs = tmp_path / "vf.zarrvectors", tmp_path / "zv.zarrvectors"
    vv.write_points(mine, p, chunk_shape=chunk, bin_shape=bins, vertex_attributes=attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zv_points.write_points(str(theirs), p, chunk_shape=chunk, bin_shape=bins, vertex_attributes=attrs)
        got = zv_points.read_points(str(mine), attribute_names=["w", "rgb"])
        want = zv_points.read_points(str(theirs), attribute_names=["w", "rgb"])
        assert set(want["vertex_attributes"]) == {"w", "rgb"}
        same(got, want)
        box = (np.array([lo + 5.0] * 3), np.array([lo + 30.0] * 3))
        same(zv_points.read_points(str(mine), bbox=box), zv_points.read_points(str(theirs), bbox=box))
    same(vv.read_points(mine, attribute_names=["w", "rgb"]), want)
    # Every chunk file (vertices, fragment indices, attributes) is byte-identical.
    files = sorted(f.relative_to(theirs) for f in theirs.rglob("*") if f.is_file() and f.name != "zarr.json")
    assert files and files == sorted(f.relative_to(mine) for f in mine.rglob("*")
                                     if f.is_file() and f.name != "zarr.json")
    for f in files:
        assert (mine / f).read_bytes() == (theirs / f).read_bytes(), f
    ours, zvs = (json.loads((s / "zarr.json").read_text())["attributes"]["zarr_vectors"] for s in (mine, theirs))
    assert ours["bounds"] == zvs["bounds"] and ours["geometry_types"] == zvs["geometry_types"]


def test_writing_refuses_bad_input_and_leaves_nothing(tmp_path):
    s = tmp_path / "s.zarrvectors"
    p = cloud(100, 3)
    with pytest.raises(ValueError, match="non-finite"):
        vv.write_points(s, np.vstack([p, [[np.nan, 1, 1]]]))
    with pytest.raises(ValueError, match="empty"):
        vv.write_points(s, np.empty((0, 3)))
    with pytest.raises(ValueError, match="rows"):
        vv.write_points(s, p, vertex_attributes={"a": np.ones(99)})
    with pytest.raises(ValueError, match="positive"):
        vv.write_points(s, p, chunk_shape=(0, 10, 10))
    with pytest.raises(ValueError, match="larger than its chunk"):
        vv.write_points(s, p, chunk_shape=(10, 10, 10), bin_shape=(50, 50, 50))
    assert list(tmp_path.iterdir()) == []
    vv.write_points(s, p)
    with pytest.raises(ValueError, match="already exists"):
        vv.write_points(s, p)
    assert vv.read_points(s)["vertex_count"] == 100


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_cli_write_then_zarr_vectors_reads_it(tmp_path):
    import os
    import subprocess

    cli = os.environ["VOXFIELD_CLI"]
    p = cloud(2000, 12).astype(np.float64)
    w = np.random.default_rng(5).random(len(p))
    np.save(tmp_path / "pts.npy", np.column_stack([p, w]))
    store = tmp_path / "out.zarrvectors"
    r = subprocess.run([cli, "vectors", "write", tmp_path / "pts.npy", "-o", store, "--chunk", "50,50,50",
                        "--bin", "25,25,25", "--attributes", "weight"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = zv_points.read_points(str(store), attribute_names=["weight"])
    order = np.lexsort(got["positions"].T[::-1])
    ref = np.lexsort(p.astype(np.float32).T[::-1])
    np.testing.assert_array_equal(got["positions"][order], p.astype(np.float32)[ref])
    np.testing.assert_array_equal(got["vertex_attributes"]["weight"][order], w[ref])
    r = subprocess.run([cli, "vectors", "write", tmp_path / "pts.npy", "-o", tmp_path / "b.zarrvectors"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "4 columns" in r.stderr and not (tmp_path / "b.zarrvectors").exists()
    r = subprocess.run([cli, "vectors", "write", tmp_path / "pts.npy", "-o", tmp_path / "c.zarrvectors",
                        "--kind", "graph"], capture_output=True, text=True)
    assert r.returncode == 1 and "graphs from .swc" in r.stderr


def test_polylines_read_object_by_object_as_zarr_vectors(tmp_path):
    rng = np.random.default_rng(21)
    lines = [np.cumsum(rng.normal(0, 3, (int(rng.integers(2, 80)), 3)), axis=0).astype(np.float32) - 10
             for _ in range(300)]
    path = str(tmp_path / "sl.zarrvectors")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_polylines(path, lines, chunk_shape=(12, 12, 12))
        build_pyramid(path, factors=[(2, 1), (2, 2)])
        levels = vv.list_resolution_levels(path)
        assert levels == [0, 1, 2]
        for level in levels:
            want = read_polylines(path, level=level)
            got = vv.read_polylines(path, level=level)
            assert got["polyline_count"] == want["polyline_count"] > 0
            np.testing.assert_array_equal(got["object_ids"], np.asarray(want["object_ids"]))
            # zarr-vectors gives each polyline as its per-chunk pieces; voxfield as one array.
            for g, w in zip(got["polylines"], want["polylines"]):
                np.testing.assert_array_equal(g, np.concatenate(w) if isinstance(w, list) else w)


def test_removing_a_level_keeps_the_store_readable_by_zarr_vectors(tmp_path, pyramid):
    import shutil

    from zarr_vectors.core.store import list_resolution_levels, open_store

    s = tmp_path / "cut.zarrvectors"
    shutil.copytree(pyramid, s)
    vv.remove_resolution_level(s, 1)
    assert vv.list_resolution_levels(s) == [0, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list_resolution_levels(open_store(str(s))) == [0, 2]
        same(vv.read_points(s, level=2), zv_points.read_points(str(s), level=2))
    root = json.loads((s / "zarr.json").read_text())["attributes"]
    assert "1" not in [n["name"] for n in root["ome"]["nodes"]]
    with pytest.raises(Exception, match="cannot be removed"):
        vv.remove_resolution_level(s, 0)
    with pytest.raises(Exception, match="no level 1"):
        vv.remove_resolution_level(s, 1)


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_cli_ply_in_and_out(tmp_path, pyramid):
    import os
    import subprocess

    cli = os.environ["VOXFIELD_CLI"]
    out = tmp_path / "l1.ply"
    r = subprocess.run([cli, "vectors", "read", pyramid, "--level", "0", "--bbox", "0,0,0,50,50,50",
                        "--attributes", "intensity,rgb", "-o", out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    want = vv.read_points(pyramid, bbox=([0, 0, 0], [50, 50, 50]), attribute_names=["intensity", "rgb"])
    # The PLY read back with a tiny independent parser (numpy structured dtype).
    raw = out.read_bytes()
    head, body = raw.split(b"end_header\n", 1)
    assert b"element vertex %d" % want["vertex_count"] in head
    dt = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f8"),
                   ("rgb_0", "<f8"), ("rgb_1", "<f8"), ("rgb_2", "<f8")])
    rows = np.frombuffer(body, dtype=dt)
    np.testing.assert_array_equal(np.stack([rows["x"], rows["y"], rows["z"]], 1), want["positions"])
    np.testing.assert_array_equal(rows["intensity"], want["vertex_attributes"]["intensity"])
    np.testing.assert_array_equal(rows["rgb_2"], want["vertex_attributes"]["rgb"][:, 2])
    # PLY in: an ASCII file with an extra property and a face element after the vertices.
    pts = cloud(50, 30)
    ply = tmp_path / "in.ply"
    lines = ["ply", "format ascii 1.0", "element vertex 50", "property float x", "property float y",
             "property float z", "property uchar label", "element face 1", "property list uchar int vertex_indices",
             "end_header"] + [f"{x} {y} {z} {i % 7}" for i, (x, y, z) in enumerate(pts)] + ["3 0 1 2"]
    ply.write_text("\n".join(lines) + "\n")
    store = tmp_path / "from_ply.zarrvectors"
    r = subprocess.run([cli, "vectors", "write", ply, "-o", store, "--chunk", "50,50,50"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    got = vv.read_points(store, attribute_names=["label"])
    assert got["vertex_count"] == 50
    np.testing.assert_array_equal(np.sort(got["vertex_attributes"]["label"]), np.sort(np.arange(50) % 7))
    ply.write_text("\n".join(lines[:10]) + "\n1 2 3 4\n")
    r = subprocess.run([cli, "vectors", "write", ply, "-o", tmp_path / "bad.zarrvectors"], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "ends after 1 of 50" in r.stderr
    ply.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 999999999999\nproperty float x\n"
                    b"property float y\nend_header\n")
    r = subprocess.run([cli, "vectors", "write", ply, "-o", tmp_path / "bad2.zarrvectors"], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "claims" in r.stderr


@pytest.mark.parametrize("lo,hi,chunk,bins,factors", [(-30, 100, (50, 50, 50), (12.5, 12.5, 12.5), [2, 2]),
                                                      (0, 1000, (200, 200, 200), (50, 50, 50), [2, 4, 2]),
                                                      (0, 10, None, None, [3])])
def test_point_pyramids_are_built_as_zarr_vectors_builds_them(tmp_path, lo, hi, chunk, bins, factors):
    import shutil

    p = cloud(20_000, 40, lo, hi)
    theirs, mine = tmp_path / "zv.zarrvectors", tmp_path / "vf.zarrvectors"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zv_points.write_points(str(theirs), p, chunk_shape=chunk, bin_shape=bins)
        shutil.copytree(theirs, mine)
        build_pyramid(str(theirs), factors=[(f, 1) for f in factors])
    out = vv.build_pyramid(mine, factors=[(f, 1) for f in factors])
    assert out["levels"] == list(range(1, len(factors) + 1))
    assert vv.list_resolution_levels(mine) == vv.list_resolution_levels(theirs)
    files = sorted(f.relative_to(theirs) for f in theirs.rglob("*") if f.is_file() and f.name != "zarr.json")
    assert files == sorted(f.relative_to(mine) for f in mine.rglob("*") if f.is_file() and f.name != "zarr.json")
    for f in files:
        assert (mine / f).read_bytes() == (theirs / f).read_bytes(), f
    for level in vv.list_resolution_levels(mine):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            same(zv_points.read_points(str(mine), level=level), zv_points.read_points(str(theirs), level=level))
        a, b = (json.loads((s / str(level) / "zarr.json").read_text()) for s in (mine, theirs))
        assert a == b
    ra, rb = (json.loads((s / "zarr.json").read_text())["attributes"] for s in (mine, theirs))
    assert ra["multiscales"] == rb["multiscales"] and ra["ome"]["nodes"] == rb["ome"]["nodes"]
    assert ra["zarr_vectors"]["format_capabilities"] == rb["zarr_vectors"]["format_capabilities"]
    with pytest.raises(Exception, match="has levels"):
        vv.build_pyramid(mine, factors=[(2, 1)])


def test_pyramid_refusals(tmp_path):
    rng = np.random.default_rng(3)
    lines = [np.cumsum(rng.normal(0, 3, (20, 3)), axis=0).astype(np.float32) for _ in range(10)]
    path = tmp_path / "l.zarrvectors"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_polylines(str(path), lines, chunk_shape=(8, 8, 8))
    vv.build_pyramid(path, factors=[(2, 1)])
    with pytest.raises(Exception, match="has levels"):
        vv.build_pyramid(path, factors=[(2, 1)])
    assert vv.list_resolution_levels(path) == [0, 1]


def test_cross_object_metanode_levels_are_the_metanodes_alone(tmp_path):
    """cross_object_metanode: the same metanodes per_object makes (float64 means of the kept objects'
    vertices per bin, checked by hand), with no object index; zarr-vectors reads the level as points;
    deeper levels coarsen it as points; aggregated attributes ride along."""
    rng = np.random.default_rng(8)
    lines = [np.cumsum(rng.normal(0, 3, (30, 3)), axis=0) + 40 for _ in range(12)]
    fa = {"fa": [rng.random(len(x)).astype(np.float32) for x in lines]}
    paths = {}
    for m in ("per_object", "cross_object_metanode"):
        paths[m] = tmp_path / f"{m}.zarrvectors"
        vv.write_polylines(paths[m], lines, chunk_shape=(16, 16, 16), bin_shape=(4, 4, 4), vertex_attributes=fa)
        vv.build_pyramid(paths[m], factors=[(2, 1), (2, 1)], method=m, aggregation="mean")
    a, b = (vv.read_points(paths[m], level=1, attribute_names=["fa"]) for m in paths)
    np.testing.assert_array_equal(a["positions"], b["positions"])
    np.testing.assert_array_equal(a["vertex_attributes"]["fa"], b["vertex_attributes"]["fa"])
    allv = np.concatenate(lines)
    keys, inv = np.unique(np.floor(allv.astype(np.float32) / 8.0), axis=0, return_inverse=True)
    means = np.stack([np.bincount(inv.ravel(), weights=allv.astype(np.float32)[:, d].astype(np.float64))
                      for d in range(3)], 1) / np.bincount(inv.ravel())[:, None]
    got = b["positions"]
    assert len(got) == len(keys)
    np.testing.assert_allclose(got[np.lexsort(got.T[::-1])], means.astype(np.float32)[np.lexsort(means.T[::-1])],
                               rtol=1e-6)
    lvl = vv.info(paths["cross_object_metanode"])["levels"][1]["metadata"]
    assert "cross_object_metanode" in json.dumps(lvl) and "preserves_object_ids" not in json.dumps(lvl), lvl
    assert not (paths["cross_object_metanode"] / "1" / "object_index").exists()
    assert (paths["per_object"] / "1" / "object_index").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same(vv.read_points(paths["cross_object_metanode"], level=2),
             zv_points.read_points(str(paths["cross_object_metanode"]), level=2))
    with pytest.raises(Exception, match="per_object or cross_object_metanode"):
        vv.build_pyramid(tmp_path / "x.zarrvectors", factors=[(2, 1)], method="nope")


def test_a_crashed_build_leaves_a_readable_store(tmp_path):
    """A level being built lives under a dot name until it is complete: a crash leaves it
    there, invisible to both libraries, and the finished levels stay readable."""
    from zarr_vectors.core.store import list_resolution_levels, open_store

    s = tmp_path / "c.zarrvectors"
    vv.write_points(s, cloud(3000, 50), chunk_shape=(25, 25, 25), bin_shape=(12.5, 12.5, 12.5))
    vv.build_pyramid(s, factors=[(2, 1)])
    stale = s / f".2.partial-{99999}" / "vertices"
    stale.mkdir(parents=True)
    (stale / "zarr.json").write_text("{ half written")
    assert vv.list_resolution_levels(s) == [0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list_resolution_levels(open_store(str(s))) == [0, 1]
        same(vv.read_points(s, level=1), zv_points.read_points(str(s), level=1))


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_fifos_symlinks_and_existing_outputs(tmp_path, pyramid):
    """FIFOs inside a store or as input are refused (a read would block), a PLY output through a
    symlink lands on its target, a FIFO output is refused, and a store is never written over."""
    import os
    import shutil
    import subprocess

    cli = os.environ["VOXFIELD_CLI"]
    s = tmp_path / "f.zarrvectors"
    shutil.copytree(pyramid, s)
    cell = next(f for f in (s / "0" / "vertices" / "c").rglob("*") if f.is_file())
    cell.unlink()
    os.mkfifo(cell)
    with pytest.raises(Exception, match="not a regular file"):
        vv.read_points(s)
    lvl = s / "1" / "zarr.json"
    lvl.unlink()
    os.mkfifo(lvl)
    with pytest.raises(Exception, match="not a regular file"):
        vv.read_points(s, level=1)
    os.mkfifo(tmp_path / "in.ply")
    r = subprocess.run([cli, "vectors", "write", tmp_path / "in.ply", "-o", tmp_path / "x.zarrvectors"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "not a regular file" in r.stderr
    os.mkfifo(tmp_path / "out.ply")
    r = subprocess.run([cli, "vectors", "read", pyramid, "--level", "2", "-o", tmp_path / "out.ply"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "FIFO" in r.stderr
    (tmp_path / "real.ply").write_bytes(b"old")
    os.symlink(tmp_path / "real.ply", tmp_path / "link.ply")
    r = subprocess.run([cli, "vectors", "read", pyramid, "--level", "2", "-o", tmp_path / "link.ply"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "link.ply").is_symlink() and (tmp_path / "real.ply").read_bytes().startswith(b"ply\n")
    os.symlink(tmp_path / "elsewhere", tmp_path / "store_link.zarrvectors")
    with pytest.raises(ValueError, match="already exists"):
        vv.write_points(tmp_path / "store_link.zarrvectors", cloud(10, 1))
    assert not (tmp_path / "elsewhere").exists()


def store_files(root):
    return sorted(str(f.relative_to(root)) for f in root.rglob("*") if f.is_file())


def assert_same_cells(mine, theirs):
    """Every file of both stores: cells byte-identical (zstd ones equal once decoded), metadata equal as JSON
    apart from the store name and the fields zarr-vectors leaves out."""
    import numcodecs

    assert store_files(mine) == store_files(theirs)
    for f in store_files(theirs):
        a, b = (mine / f).read_bytes(), (theirs / f).read_bytes()
        if f.endswith("zarr.json"):
            ja, jb = json.loads(a), json.loads(b)
            if f == "zarr.json":
                for j in (ja, jb):
                    j["attributes"]["ome"].pop("name")
            else:
                # zarr-vectors' polyline writer records multi-channel vertex attributes as row_shape [].
                for j in (ja, jb):
                    j.get("attributes", {}).pop("row_shape", None)
                    j.get("attributes", {}).pop("channel_names", None)
            assert ja == jb, f
        elif a[:4] == b"\x28\xb5\x2f\xfd":
            assert numcodecs.Zstd().decode(a) == numcodecs.Zstd().decode(b), f
        else:
            assert a == b, f


def streamlines(n, seed, d=3, scale=30.0):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, scale, (int(rng.integers(1, 40)), d)).cumsum(0).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize("d,chunk,bins", [(3, (50, 50, 50), (25, 25, 25)), (2, (16, 16), None)])
def test_written_polylines_are_zarr_vectors_own_cells_and_stitches(tmp_path, d, chunk, bins):
    lines = streamlines(120, 11, d)
    va = {"fa": [np.arange(len(p), dtype=np.float32) for p in lines],
          "rgb": [np.full((len(p), 3), i % 250, np.uint8) for i, p in enumerate(lines)]}
    oa = {"length": np.arange(len(lines), dtype=np.float64) * 1.5,
          "cls": np.arange(2 * len(lines), dtype=np.int32).reshape(-1, 2)}
    theirs, mine = tmp_path / "zv.zarrvectors", tmp_path / "vf.zarrvectors"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = write_polylines(str(theirs), lines, chunk_shape=chunk, bin_shape=bins, vertex_attributes=va,
                               object_attributes=oa)
    got = vv.write_polylines(mine, lines, chunk_shape=chunk, bin_shape=bins, vertex_attributes=va,
                             object_attributes=oa)
    for k in ("polyline_count", "vertex_count", "chunk_count", "cross_chunk_link_count"):
        assert got[k] == want[k], k
    assert got["cross_chunk_link_count"] > 100
    assert_same_cells(mine, theirs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = read_polylines(str(mine))
    for want_line, pieces in zip(lines, back["polylines"]):
        np.testing.assert_array_equal(np.concatenate(pieces), want_line)
    ours = vv.read_polylines(mine)
    for want_line, line in zip(lines, ours["polylines"]):
        np.testing.assert_array_equal(line, want_line)


def test_polyline_writes_refuse_bad_input_and_leave_nothing(tmp_path):
    ok = streamlines(5, 3)
    out = tmp_path / "bad.zarrvectors"
    bad = [ok[:0], [ok[0], np.full((3, 3), np.nan, np.float32)], [ok[0], ok[1][:, :2]]]
    for lines, msg in zip(bad, ["empty", "non-finite", "shape"]):
        with pytest.raises(ValueError, match=msg):
            vv.write_polylines(out, lines, chunk_shape=(10, 10, 10))
    with pytest.raises(ValueError, match="vertices and"):
        vv.write_polylines(out, ok, chunk_shape=(10, 10, 10),
                           vertex_attributes={"a": [np.zeros(len(p) + 1) for p in ok]})
    with pytest.raises(ValueError, match="needs 5 rows"):
        vv.write_polylines(out, ok, chunk_shape=(10, 10, 10), object_attributes={"a": np.zeros(4)})
    with pytest.raises(ValueError, match="geometry"):
        vv.write_polylines(out, ok, chunk_shape=(10, 10, 10), geometry_type="mesh")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    vv.write_polylines(out, ok, chunk_shape=(10, 10, 10))
    with pytest.raises(ValueError, match="already exists"):
        vv.write_polylines(out, ok, chunk_shape=(10, 10, 10))


@pytest.mark.parametrize("kind", ["lines", "points"])
def test_pyramids_with_links_thinning_and_depth_are_zarr_vectors_own(tmp_path, kind):
    """0.9.2's single-seed draws reproduced: every cell, manifest, object attribute and
    cross-level link family (+1/-1/+2/-2) equal to what zarr-vectors writes."""
    import shutil

    theirs, mine = tmp_path / "zv.zarrvectors", tmp_path / "vf.zarrvectors"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "lines":
            write_polylines(str(theirs), streamlines(200, 5), chunk_shape=(50, 50, 50), bin_shape=(25, 25, 25),
                            object_attributes={"length": np.arange(200, dtype=np.float64) * 1.5,
                                               "tag": np.arange(200, dtype=np.uint16)})
            factors = [(2, 1), (2, 4), (2, 2)]
        else:
            zv_points.write_points(str(theirs), cloud(20_000, 3, -30, 100), chunk_shape=(50, 50, 50),
                                   bin_shape=(12.5, 12.5, 12.5))
            factors = [(2, 1), (2, 1), (2, 1)]
        shutil.copytree(theirs, mine)
        want = build_pyramid(str(theirs), factors=factors, sparsity_seed=42, cross_level_depth=2)
    got = vv.build_pyramid(mine, factors=factors, sparsity_seed=42, cross_level_depth=2, single_seed=True)
    assert got["vertex_counts"] == [s["vertex_count"] for s in want["level_specs"]]
    assert (mine / "1" / "links" / "+2").is_dir() and (mine / "3" / "links" / "-2").is_dir()
    assert_same_cells(mine, theirs)
    if kind == "lines":
        # 0.9.2's single seed: level 3 redraws from all 200 rows, so it keeps objects level 2 dropped.
        assert got["objects_kept"] == [200, 50, 100]


def test_sharded_polyline_pyramids_read_as_zarr_vectors_builds_them(tmp_path):
    """A sharded polyline store (zarr-vectors' shard_shape) coarsened unit by unit, shard batch by
    shard batch: each level's objects and vertices, and the cross-level parents, equal zarr-vectors'
    own build through both readers (voxfield shards coarse levels too; zarr-vectors writes them
    unsharded, so the files differ by layout)."""
    import os
    import shutil

    theirs, mine = tmp_path / "zv.zarrvectors", tmp_path / "vf.zarrvectors"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_polylines(str(theirs), streamlines(120, 5), chunk_shape=(25, 25, 25), bin_shape=(12.5,) * 3,
                        shard_shape=(2, 2, 2), object_attributes={"length": np.arange(120, dtype=np.float64)})
        shutil.copytree(theirs, mine)
        want = build_pyramid(str(theirs), factors=[(2, 1), (2, 4)], sparsity_seed=9, cross_level_depth=2)
    got = vv.build_pyramid(mine, factors=[(2, 1), (2, 4)], sparsity_seed=9, cross_level_depth=2, single_seed=True)
    assert got["vertex_counts"] == [s["vertex_count"] for s in want["level_specs"]]
    joined = lambda p: np.concatenate([np.asarray(s).reshape(-1, 3) for s in p]) if len(p) else None  # noqa: E731
    for lv in range(3):
        a, b = vv.read_polylines(mine, level=lv), vv.read_polylines(theirs, level=lv)
        assert a["object_ids"].tolist() == b["object_ids"].tolist()
        assert all(np.array_equal(x, y) for x, y in zip(a["polylines"], b["polylines"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z, w = read_polylines(str(mine), level=lv), read_polylines(str(theirs), level=lv)
        assert [int(i) for i in z["object_ids"]] == [int(i) for i in w["object_ids"]]
        assert all(np.array_equal(joined(x), joined(y)) for x, y in zip(z["polylines"], w["polylines"]))
    for lv in range(2):
        np.testing.assert_array_equal(vv.parents(mine, lv), vv.parents(theirs, lv))
    assert not [f for f in os.listdir(mine) if f.startswith(".")]


def test_pyramid_thinning_per_level_is_nested_and_keeps_object_ids(tmp_path):
    lines = streamlines(400, 21)
    path = tmp_path / "t.zarrvectors"
    vv.write_polylines(path, lines, chunk_shape=(50, 50, 50), bin_shape=(25, 25, 25))
    out = vv.build_pyramid(path, factors=[(2, 1), (2, 4), (2, 4)], sparsity_seed=3)
    assert out["objects_kept"] == [400, 100, 25]
    ids = [set(vv.read_polylines(path, level=lv)["object_ids"].tolist()) for lv in range(4)]
    assert ids[0] == ids[1] == set(range(400))
    assert len(ids[2]) == 100 and len(ids[3]) == 25 and ids[3] < ids[2]  # drawn among the survivors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lv in range(4):  # zarr-vectors reads every level, dropped objects empty, ids kept
            theirs = read_polylines(str(path), level=lv)
            assert set(int(i) for i in theirs["object_ids"]) == ids[lv]
    # A coarse object's path is its level-0 vertices' metanodes with repeats collapsed.
    first = vv.read_polylines(path, level=1)
    assert first["polyline_count"] == 400
    assert all(len(c) <= len(f) for c, f in zip(first["polylines"], lines))


def test_spatial_coverage_keeps_one_object_per_occupied_bin(tmp_path):
    rng = np.random.default_rng(4)
    # 60 clusters of 5 short lines each, far apart: a random draw of 60 misses clusters, coverage must not.
    cells = rng.choice(30 ** 3, 60, replace=False)
    centres = np.stack(np.unravel_index(cells, (30, 30, 30)), axis=1) * 200.0 + 100.0  # level-1 bin centres
    lines = [(c + rng.normal(0, 3, (6, 3)).cumsum(0)).astype(np.float32) for c in centres for _ in range(5)]
    path = tmp_path / "c.zarrvectors"
    vv.write_polylines(path, lines, chunk_shape=(400, 400, 400), bin_shape=(100, 100, 100))
    vv.build_pyramid(path, factors=[(2, 5)], sparsity_strategy="spatial_coverage", sparsity_seed=1,
                     cross_level_storage="none")
    kept = vv.read_polylines(path, level=1)["object_ids"]
    assert len(kept) == 60
    assert sorted(set(int(k) // 5 for k in kept)) == list(range(60))


def test_attribute_aggregation_checked_by_hand(tmp_path):
    p = cloud(5000, 12, 0, 100)
    rng = np.random.default_rng(13)
    intensity = rng.random(len(p)).astype(np.float32)
    label = rng.integers(0, 4, len(p)).astype(np.int32)
    for agg in ["mean", "sum", "min", "max", "mode", "count", "first"]:
        path = tmp_path / f"{agg}.zarrvectors"
        vv.write_points(path, p, chunk_shape=(50, 50, 50), bin_shape=(12.5, 12.5, 12.5),
                        vertex_attributes={"intensity": intensity, "label": label})
        # Members in stored order ("first" is the first member as level 0 stores them).
        base = vv.read_points(path, attribute_names=["intensity", "label"])
        stored, values_of = base["positions"], base["vertex_attributes"]
        groups = {}
        for i, k in enumerate(map(tuple, np.floor(stored.astype(np.float64) / 25.0).astype(np.int64))):
            groups.setdefault(k, []).append(i)
        vv.build_pyramid(path, factors=[(2, 1)], aggregation=agg, cross_level_storage="none")
        got = vv.read_points(path, level=1, attribute_names=["intensity", "label"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = zv_points.read_points(str(path), level=1, attribute_names=["intensity", "label"])
        same(got, theirs)
        # The metanode of each bin sits at its members' float64 mean, stored as float32.
        by_pos = {}
        for members in groups.values():
            centre = tuple(stored[members].astype(np.float64).mean(0).astype(np.float32))
            by_pos[centre] = members
        assert len(by_pos) == got["vertex_count"] == len(groups)
        for row, pos in enumerate(got["positions"]):
            m = by_pos[tuple(pos)]
            for name in ("intensity", "label"):
                v = values_of[name][m].astype(np.float64)
                want = {"mean": v.mean(), "sum": v.sum(), "min": v.min(), "max": v.max(), "count": len(m),
                        "first": v[0], "mode": np.unique(v)[np.argmax(np.unique(v, return_counts=True)[1])]}[agg]
                np.testing.assert_allclose(got["vertex_attributes"][name][row], want, rtol=1e-6)


def test_pyramid_bad_options_are_refused(tmp_path):
    path = tmp_path / "p.zarrvectors"
    vv.write_points(path, cloud(500, 1), chunk_shape=(50, 50, 50))
    for kwargs, msg in [({"factors": [(0.5, 1)]}, "≥ 1"), ({"factors": [(2, float("nan"))]}, "≥ 1"),
                        ({"factors": []}, "no factors"), ({"factors": [(2, 1)], "aggregation": "median"}, "median"),
                        ({"factors": [(2, 1)], "cross_level_storage": "both"}, "both"),
                        ({"factors": [(2, 1)], "sparsity_strategy": "length"}, "length"),
                        ({"factors": [(2, 1)], "cross_level_depth": -2}, "depth")]:
        with pytest.raises(Exception, match=msg):
            vv.build_pyramid(path, **kwargs)
    assert vv.list_resolution_levels(path) == [0]


def peak_rss_anon(cmd, env):
    """Runs cmd and returns (returncode, stderr, peak RssAnon in MiB, sampled every 2 ms)."""
    import subprocess
    import time

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.002)
    _, err = proc.communicate()
    return proc.returncode, err, peak / 1024


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_memory_of_write_and_pyramid_stays_bounded_as_the_input_grows(tmp_path):
    """The CLI streams an .npy through a memory map, spills records per chunk (budget forced
    to 8 MiB here) and coarsens unit by unit: 10× the points must not need 10× the memory."""
    import os

    cli = os.environ["VOXFIELD_CLI"]
    env = dict(os.environ, VOXFIELD_SPILL_MB="8", RAYON_NUM_THREADS="2")
    peaks = {}
    for n in (300_000, 3_000_000):
        rng = np.random.default_rng(n)
        table = np.column_stack([rng.uniform(0, 1000, (n, 3)), rng.random(n)]).astype(np.float32)
        src, store = tmp_path / f"p{n}.npy", tmp_path / f"p{n}.zarrvectors"
        np.save(src, table)
        rc, err, w = peak_rss_anon([cli, "vectors", "write", str(src), "-o", str(store), "--chunk", "100,100,100",
                                    "--bin", "25,25,25", "--attributes", "w"], env)
        assert rc == 0, err
        rc, err, b = peak_rss_anon([cli, "vectors", "build-pyramid", str(store), "--factors", "2,2,2,2"], env)
        assert rc == 0, err
        peaks[n] = (w, b)
        assert vv.read_points(store)["vertex_count"] == n
        assert [vv.read_points(store, level=lv)["vertex_count"] for lv in (2, 3, 4)] == [1000, 125, 27]
    (w1, b1), (w10, b10) = peaks[300_000], peaks[3_000_000]
    # 3M points are 46 MiB of records (and 69 MiB as float64 coordinates): held whole they
    # would show; the bound is the spill budget + one 256k-point block + a chunk per thread.
    assert w10 < 40 and w10 < w1 + 15, peaks
    assert b10 < 24 and b10 < b1 + 8, peaks


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_polyline_pyramids_stream_in_bounded_memory(tmp_path):
    """Polyline pyramids coarsen unit by unit, the manifests' fragment references and the coarse
    paths sorted out through spill files (budget forced to 8 MiB): 10× the streamlines — a store
    whose vertices alone (46 MB) are more than the bound — must not need 10× the memory; and a
    build that spills at 1 MiB writes the same files as one that spills nothing."""
    import os
    import shutil

    cli = os.environ["VOXFIELD_CLI"]

    def lines(n):
        rng = np.random.default_rng(n)
        starts = rng.uniform(0, 1000, (n, 1, 3))
        return list((starts + rng.normal(0, 4, (n, 32, 3)).cumsum(1)).astype(np.float32))

    peaks = {}
    for n in (12_000, 120_000):
        store = tmp_path / f"l{n}.zarrvectors"
        vv.write_polylines(store, lines(n), chunk_shape=(100, 100, 100))
        if n == 120_000:
            # ~150k references (2.4 MB): at 1 MiB they spill into ~10 groups; at the default
            # 128 MiB nothing spills. Both builds must write the same files.
            builds = {}
            for mb in ("1", None):
                builds[mb] = tmp_path / f"budget{mb}.zarrvectors"
                shutil.copytree(store, builds[mb])
                env = dict(os.environ)
                env.pop("VOXFIELD_SPILL_MB", None)
                if mb:
                    env["VOXFIELD_SPILL_MB"] = mb
                rc, err, _ = peak_rss_anon([cli, "vectors", "build-pyramid", str(builds[mb]), "--factors",
                                            "2:1,2:4,2:4"], env)
                assert rc == 0, err
            spilled, held = builds["1"], builds[None]
            assert store_files(spilled) == store_files(held)
            for f in store_files(held):
                assert (spilled / f).read_bytes() == (held / f).read_bytes(), f
            shutil.rmtree(spilled)
            shutil.rmtree(held)
        env = dict(os.environ, VOXFIELD_SPILL_MB="8", RAYON_NUM_THREADS="2")
        rc, err, peaks[n] = peak_rss_anon([cli, "vectors", "build-pyramid", str(store), "--factors", "2:1,2:4,2:4"], env)
        assert rc == 0, err
        kept = [vv.read_polylines(store, level=lv)["polyline_count"] for lv in range(4)]
        assert kept == [n, n, n // 4, n // 16]
        assert not [f for f in os.listdir(store) if f.startswith(".")]
        shutil.rmtree(store)
    # The bound: the spill budget, ~40 bytes an object, one unit per thread (an in-memory build
    # would hold the 3.8 M vertices: 46 MB of coordinates and ~100 bytes a vertex besides).
    assert peaks[120_000] < 64 and peaks[120_000] < peaks[12_000] + 32, peaks


def test_trk_and_tck_in_and_out_against_nibabel(tmp_path):
    """Streamlines nibabel saves (TRK with scalars and properties, TCK) become polyline stores
    whose vertices are nibabel's RAS+ mm points; a level exported to .trk/.tck loads in nibabel
    as the same streamlines; a bbox keeps the streamlines with a vertex inside."""
    import os
    import subprocess

    nib = pytest.importorskip("nibabel")
    from nibabel.streamlines import Tractogram

    cli = os.environ["VOXFIELD_CLI"]
    lines = [x + 40 for x in streamlines(60, 31, scale=4.0)]
    aff = np.array([[-2, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]], float)  # LAS, 2 mm
    scal = [np.random.default_rng(i).random((len(x), 3)).astype(np.float32) for i, x in enumerate(lines)]
    props = np.arange(len(lines), dtype=np.float32).reshape(-1, 1)
    tg = Tractogram(lines, data_per_point={"colors": scal}, data_per_streamline={"id": props},
                    affine_to_rasmm=np.eye(4))
    trk, tck = tmp_path / "in.trk", tmp_path / "in.tck"
    hdr = {"voxel_to_rasmm": aff, "voxel_sizes": (2.0, 2.0, 2.0), "dimensions": (91, 109, 91), "voxel_order": "LAS"}
    nib.streamlines.save(tg, str(trk), header=hdr)
    nib.streamlines.save(Tractogram(lines, affine_to_rasmm=np.eye(4)), str(tck))
    for src in (trk, tck):
        store = tmp_path / f"{src.suffix[1:]}.zarrvectors"
        r = subprocess.run([cli, "vectors", "write", src, "-o", store, "--chunk", "20,20,20"], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        want = nib.streamlines.load(str(src)).streamlines
        got = vv.read_polylines(store)["polylines"]
        assert len(got) == len(want) == len(lines)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, atol=2e-4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = read_polylines(str(store))  # zarr-vectors reads our store
        assert theirs["polyline_count"] == len(lines)
    names = vv.info(tmp_path / "trk.zarrvectors")["levels"][0]["attributes"]
    assert names == ["colors"]
    for out in ("out.trk", "out.tck"):
        r = subprocess.run([cli, "vectors", "read", tmp_path / "trk.zarrvectors", "-o", tmp_path / out],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        back = nib.streamlines.load(str(tmp_path / out)).streamlines
        assert len(back) == len(lines)
        for b, w in zip(back, lines):
            np.testing.assert_allclose(b, w, atol=2e-4)
    box = [35, 35, 35, 45, 45, 45]
    r = subprocess.run([cli, "vectors", "read", tmp_path / "tck.zarrvectors", "--bbox", ",".join(map(str, box)),
                        "-o", tmp_path / "box.tck"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    inside = [x for x in lines if np.all((x >= 35) & (x <= 45), axis=1).any()]
    assert 0 < len(nib.streamlines.load(str(tmp_path / "box.tck")).streamlines) == len(inside) < len(lines)


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_trx_in_and_out_against_trx_python(tmp_path):
    """TRX files trx-python writes (float16 positions, uint64 offsets, float16 dpv, int16 dps, a group;
    zipped deflated, and as a directory) become polyline stores with trx-python's points and data; a level
    exported to .trx loads in trx-python as the same streamlines."""
    import os
    import shutil
    import subprocess
    import zipfile

    nib = pytest.importorskip("nibabel")
    tmm = pytest.importorskip("trx.trx_file_memmap")
    from nibabel.streamlines import Tractogram

    cli = os.environ["VOXFIELD_CLI"]
    rng = np.random.default_rng(5)
    lines = [x + 40 for x in streamlines(40, 8, scale=3.0)]
    fa = [rng.random((len(x), 1)).astype(np.float32) for x in lines]
    tg = Tractogram(lines, data_per_point={"fa": fa},
                    data_per_streamline={"w": np.arange(len(lines), dtype=np.float32).reshape(-1, 1)},
                    affine_to_rasmm=np.eye(4))
    ref = nib.Nifti1Image(np.zeros((91, 109, 91), np.uint8), np.diag([2.0, 2, 2, 1]))
    t = tmm.TrxFile.from_tractogram(tg, ref, dtype_dict={"positions": np.float16, "offsets": np.uint64,
                                                         "dpv": {"fa": np.float16}, "dps": {"w": np.int16}})
    t.groups["left"] = np.array([0, 3, 5], np.uint32)
    zipped, folder = tmp_path / "in.trx", tmp_path / "plain"
    tmm.save(t, str(zipped), zipfile.ZIP_DEFLATED)
    tmm.save(t, str(folder))
    shutil.move(folder, tmp_path / "dir.trx")
    theirs = tmm.load(str(zipped))
    want = [np.array(w, np.float32) for w in theirs.streamlines]  # copies: close() unmaps
    for src in (zipped, tmp_path / "dir.trx"):
        store = tmp_path / f"{src.stem}.zarrvectors"
        r = subprocess.run([cli, "vectors", "write", src, "-o", store, "--chunk", "20,20,20"], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        got = vv.read_polylines(store)
        assert len(got["polylines"]) == len(want) == len(lines)
        for g, w in zip(got["polylines"], want):
            np.testing.assert_array_equal(g, np.asarray(w, np.float32))
        # Vertex data rides with its vertex: compare (x, y, z, fa) rows as sorted tables.
        pts = vv.read_points(store, attribute_names=["fa"])
        mine = np.column_stack([pts["positions"], pts["vertex_attributes"]["fa"].reshape(-1)])
        ref = np.column_stack([np.asarray(theirs.streamlines._data, np.float32),
                               np.asarray(theirs.data_per_vertex["fa"]._data, np.float32).reshape(-1)])
        np.testing.assert_array_equal(mine[np.lexsort(mine.T[::-1])], ref[np.lexsort(ref.T[::-1])])
        objs = vv.info(store)["levels"][0]
        assert objs["attributes"] == ["fa"], objs
    theirs.close()
    r = subprocess.run([cli, "vectors", "read", tmp_path / "in.zarrvectors", "-o", tmp_path / "out.trx"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    back = tmm.load(str(tmp_path / "out.trx"))
    assert len(back.streamlines) == len(want)
    for b, w in zip(back.streamlines, want):
        np.testing.assert_array_equal(b, np.asarray(w, np.float32))
    back.close()
    # Hostile archives: each a clear error naming the file, no store left behind.
    good = zipfile.ZipFile(zipped)
    entries = {n: good.read(n) for n in good.namelist()}

    def forged(name, **change):
        p = tmp_path / name
        with zipfile.ZipFile(p, "w") as z:
            for n, b in {**entries, **change}.items():
                if b is not None:
                    z.writestr(n, b)
        return p

    import json
    h = json.loads(entries["header.json"])
    cases = {
        forged("nohead.trx", **{"header.json": None}): "header.json",
        forged("count.trx", **{"header.json": json.dumps({**h, "NB_VERTICES": 10**12}).encode()}): "1000000000000 rows",
        forged("cut.trx", **{"positions.3.float16": entries["positions.3.float16"][:-6]}): "positions",
        forged("offs.trx", **{"offsets.uint64": np.array([0, 5, 3] + [7] * 38, "<u8").tobytes()}): "offsets",
        forged("grp.trx", **{"groups/left.uint32": np.array([99], "<u4").tobytes()}): "past NB_STREAMLINES",
        forged("dtype.trx", **{"dps/w.complex64": b"\0" * 8}): "dtype",
        forged("width.trx", **{"dpv/x.99999999999999999.float32": b"\0" * 8}): "99999999999999999 × float32",
        forged("nan.trx", **{"positions.3.float16": np.full(len(entries["positions.3.float16"]) // 2, np.nan,
                                                              "<f2").tobytes()}): "non-finite",
    }
    (tmp_path / "notzip.trx").write_bytes(b"PK\3\4 not really")
    cases[tmp_path / "notzip.trx"] = "zip"
    for src, msg in cases.items():
        out = tmp_path / (src.stem + ".zarrvectors")
        r = subprocess.run([cli, "vectors", "write", src, "-o", out], capture_output=True, text=True)
        assert r.returncode != 0 and msg in r.stderr and src.name in r.stderr, (src.name, r.stderr)
        assert "panicked" not in r.stderr and not out.exists()


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_bad_tractography_files_are_refused_clearly(tmp_path):
    import os
    import subprocess

    nib = pytest.importorskip("nibabel")
    from nibabel.streamlines import Tractogram

    cli = os.environ["VOXFIELD_CLI"]
    good = tmp_path / "g.trk"
    nib.streamlines.save(Tractogram(streamlines(5, 2), affine_to_rasmm=np.eye(4)), str(good))
    raw = good.read_bytes()
    cases = {"short.trk": raw[:500], "size.trk": raw[:996] + (999).to_bytes(4, "little") + raw[1000:],
             "cut.trk": raw[:-7], "magic.trk": b"XRACK" + raw[5:],
             "count.trk": raw[:988] + (9).to_bytes(4, "little") + raw[992:],
             "nohead.tck": b"mrtrix tracks\ncount: 1\n", "noend.tck": b"mrtrix tracks\nfile: . 64\ndatatype: Float32LE\nEND\n"
             + bytes(64 - 50) + np.array([1, 2, 3], "<f4").tobytes()}
    msgs = {"short.trk": "TRACK", "size.trk": "hdr_size", "cut.trk": "claims", "magic.trk": "TRACK",
            "count.trk": "counts 9", "nohead.tck": "END", "noend.tck": "Inf"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        out = tmp_path / (name + ".zarrvectors")
        r = subprocess.run([cli, "vectors", "write", tmp_path / name, "-o", out], capture_output=True, text=True)
        assert r.returncode == 1 and msgs[name] in r.stderr and name in r.stderr, (name, r.stderr)
        assert not out.exists()


def test_sharded_stores_both_ways_and_corrupt_shards(tmp_path):
    """Zarr v3 sharding (zarr-vectors' shard_shape): one file per 4³ chunk cells; each library
    reads the other's sharded stores, pyramids included; a damaged shard index is refused."""
    p = cloud(20_000, 44, -20, 100)
    w = np.random.default_rng(45).random(len(p)).astype(np.float32)
    theirs, mine = tmp_path / "zv.zarrvectors", tmp_path / "vf.zarrvectors"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zv_points.write_points(str(theirs), p, chunk_shape=(10, 10, 10), bin_shape=(5, 5, 5), shard_shape=4,
                               vertex_attributes={"w": w})
        same(vv.read_points(theirs, attribute_names=["w"]), zv_points.read_points(str(theirs), attribute_names=["w"]))
        box = (np.array([0.0, 5, -3]), np.array([40.0, 33, 60]))
        same(vv.read_points(theirs, bbox=box), zv_points.read_points(str(theirs), bbox=box))
    vv.write_points(mine, p, chunk_shape=(10, 10, 10), bin_shape=(5, 5, 5), shard_shape=4, vertex_attributes={"w": w})
    vv.build_pyramid(mine, factors=[(2, 1), (2, 1), (2, 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same(zv_points.read_points(str(mine), attribute_names=["w"]),
             zv_points.read_points(str(theirs), attribute_names=["w"]))
        for lv in (1, 2, 3):
            same(zv_points.read_points(str(mine), level=lv), vv.read_points(mine, level=lv))
    cells = -(-np.ceil(120 / 10) // 4) ** 3  # shards per array at most
    assert all(len(files) <= cells + 1 for _, _, files in __import__("os").walk(mine / "0" / "vertices"))
    lines = streamlines(300, 46)
    vv.write_polylines(tmp_path / "l.zarrvectors", lines, chunk_shape=(20, 20, 20), shard_shape=(4, 4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = read_polylines(str(tmp_path / "l.zarrvectors"))
    for a, b in zip(back["polylines"], lines):
        np.testing.assert_array_equal(np.concatenate(a), b)
    shard = next((mine / "0" / "vertices" / "c").rglob("*"))
    while shard.is_dir():
        shard = next(shard.iterdir())
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(Exception, match="crc32c"):
        vv.read_points(mine)
    shard.write_bytes(bytes(data[:20]))
    with pytest.raises(Exception, match="truncated shard"):
        vv.read_points(mine)
    with pytest.raises(ValueError, match="shard shape"):
        vv.write_points(tmp_path / "bad.zarrvectors", p, chunk_shape=(10, 10, 10), shard_shape=0)


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_an_interrupted_build_keeps_finished_levels_and_resumes(tmp_path, sig):
    """Ctrl-C (or kill -9) once level 1 is published: the store opens in zarr-vectors with the
    levels finished so far, and the same command run again resumes and ends with exactly the
    store an uninterrupted build makes."""
    import os
    import shutil
    import signal
    import subprocess
    import time

    from zarr_vectors.core.store import list_resolution_levels, open_store

    cli = os.environ["VOXFIELD_CLI"]
    rng = np.random.default_rng(77)
    np.save(tmp_path / "p.npy", rng.uniform(0, 1000, (60_000, 3)).astype(np.float32))
    store, twin = tmp_path / "s.zarrvectors", tmp_path / "twin.zarrvectors"
    r = subprocess.run([cli, "vectors", "write", tmp_path / "p.npy", "-o", store, "--chunk", "200,200,200",
                        "--bin", "25,25,25"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    shutil.copytree(store, twin)
    cmd = [cli, "vectors", "build-pyramid", str(store), "--factors", "2,2,2", "--depth", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (store / "1" / "zarr.json").exists() and proc.poll() is None:
        time.sleep(0.002)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate()
    assert proc.returncode == (130 if sig == "SIGINT" else -9), err
    if sig == "SIGINT":
        assert "resume" in err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        levels = list_resolution_levels(open_store(str(store)))
        assert 1 <= len(levels) - 1 < 3 and levels == list(range(len(levels)))
        for lv in levels:
            assert zv_points.read_points(str(store), level=lv)["vertex_count"] > 0
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([cli, "vectors", "build-pyramid", str(twin), "--factors", "2,2,2", "--depth", "2"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert vv.list_resolution_levels(store) == [0, 1, 2, 3]
    assert_same_cells(store, twin)
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 1 and "has levels" in r.stderr


@pytest.mark.parametrize("d", [3, 2])
def test_graphs_are_zarr_vectors_own_cells_and_read_the_same(tmp_path, d):
    """write_graph: vertices by chunk then object, every edge stored (flat rows within a chunk,
    canonical rows with perm across chunks): zarr-vectors' own files; read_graph both ways."""
    zv_graphs = pytest.importorskip("zarr_vectors.types.graphs")
    rng = np.random.default_rng(60 + d)
    n = 400
    pos = rng.uniform(-50, 150, (n, d)).astype(np.float32)
    edges = np.concatenate([rng.integers(0, n, (600, 2)), [[3, 3], [5, 9], [9, 5]]])
    near = np.argsort(pos[:, 0])  # short edges too, so many stay within a chunk
    edges = np.concatenate([edges, np.stack([near[:-1], near[1:]], axis=1)[:300]])
    oids = rng.integers(0, 7, n)
    va = {"radius": rng.random(n).astype(np.float32)}
    oa = {"kind": np.arange(7, dtype=np.int16)}
    theirs, mine = tmp_path / "zv.zarrvectors", tmp_path / "vf.zarrvectors"
    chunk = (40.0,) * d
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = zv_graphs.write_graph(str(theirs), pos, edges, chunk_shape=chunk, object_ids=oids,
                                     vertex_attributes=va, object_attributes=oa)
    got = vv.write_graph(mine, pos, edges, chunk_shape=chunk, object_ids=oids, vertex_attributes=va,
                         object_attributes=oa)
    for k in ("node_count", "edge_count", "chunk_count", "intra_edge_count", "cross_edge_count", "object_count"):
        assert got[k] == want[k], k
    assert got["intra_edge_count"] > 10
    assert_same_cells(mine, theirs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = zv_graphs.read_graph(str(mine)), zv_graphs.read_graph(str(theirs))
    np.testing.assert_array_equal(a["positions"], b["positions"])
    np.testing.assert_array_equal(a["edges"], b["edges"])
    ours = vv.read_graph(theirs)
    np.testing.assert_array_equal(ours["positions"], b["positions"])
    as_points = lambda g: sorted(map(tuple, np.concatenate([g["positions"][g["edges"][:, 0]],  # noqa: E731
                                                            g["positions"][g["edges"][:, 1]]], axis=1).tolist()))
    assert as_points(ours) == as_points(b)
    inp = sorted(map(tuple, np.concatenate([pos[edges[:, 0]], pos[edges[:, 1]]], axis=1).astype(np.float64).tolist()))
    assert as_points(ours) == inp  # every edge, in its original orientation


def test_graph_pyramids_are_zarr_vectors_own(tmp_path):
    """Graphs coarsen as objects (streamed unit by unit): metanodes, manifests, thinned objects,
    object attributes and +1/-1/+2/-2 links file for file as zarr-vectors builds them."""
    import shutil

    zv_graphs = pytest.importorskip("zarr_vectors.types.graphs")
    rng = np.random.default_rng(61)
    pos = rng.uniform(-50, 150, (400, 3)).astype(np.float32)
    theirs, mine = tmp_path / "zv.zarrvectors", tmp_path / "vf.zarrvectors"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zv_graphs.write_graph(str(theirs), pos, rng.integers(0, 400, (600, 2)), chunk_shape=(40.0,) * 3,
                              object_ids=rng.integers(0, 7, 400),
                              object_attributes={"kind": np.arange(7, dtype=np.int16)})
        shutil.copytree(theirs, mine)
        want = build_pyramid(str(theirs), factors=[(2, 1), (2, 2)], sparsity_seed=7, cross_level_depth=2)
    got = vv.build_pyramid(mine, factors=[(2, 1), (2, 2)], sparsity_seed=7, cross_level_depth=2, single_seed=True)
    assert got["vertex_counts"] == [s["vertex_count"] for s in want["level_specs"]]
    assert got["objects_kept"] == [7, 4]
    assert_same_cells(mine, theirs)


def test_graph_writes_refuse_bad_input(tmp_path):
    pos = cloud(20, 3)
    out = tmp_path / "g.zarrvectors"
    for kwargs, msg in [({"edges": [[0, 20]]}, "outside"), ({"edges": [[0, 1, 2]]}, "\\(m, 2\\)"),
                        ({"edges": [[0, 1]], "object_ids": np.zeros(19, int)}, "19 object ids"),
                        ({"edges": [[0, 1]], "object_ids": -np.ones(20, int)}, "negative")]:
        with pytest.raises(ValueError, match=msg):
            vv.write_graph(out, pos, kwargs.pop("edges"), chunk_shape=(10, 10, 10), **kwargs)
    assert not out.exists()


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
@pytest.mark.parametrize("version,fmt", [("1.2", 3), ("1.4", 7), ("1.2", 0)])
def test_las_files_written_by_laspy_stream_into_stores(tmp_path, version, fmt):
    import os
    import subprocess

    laspy = pytest.importorskip("laspy")
    cli = os.environ["VOXFIELD_CLI"]
    rng = np.random.default_rng(fmt)
    n = 5000
    las = laspy.create(point_format=fmt, file_version=version)
    las.header.offsets = [1000.0, 2000.0, 50.0]
    las.header.scales = [0.01, 0.01, 0.001]
    xyz = rng.uniform([1000, 2000, 50], [1300, 2250, 90], (n, 3))
    las.x, las.y, las.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    las.intensity = rng.integers(0, 65535, n).astype(np.uint16)
    las.classification = rng.integers(0, 20, n).astype(np.uint8)
    if "gps_time" in las.point_format.dimension_names:
        las.gps_time = rng.uniform(0, 1e5, n)
    if "red" in las.point_format.dimension_names:
        las.red, las.green, las.blue = (rng.integers(0, 65535, n).astype(np.uint16) for _ in range(3))
    las.write(str(tmp_path / "in.las"))
    back = laspy.read(str(tmp_path / "in.las"))
    store = tmp_path / "las.zarrvectors"
    r = subprocess.run([cli, "vectors", "write", tmp_path / "in.las", "-o", store, "--chunk", "50,50,50"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    names = vv.info(store)["levels"][0]["attributes"]
    got = vv.read_points(store, attribute_names=names)
    want = np.stack([back.x, back.y, back.z], axis=1).astype(np.float32)
    key = lambda a: np.lexsort(a.T[::-1])  # noqa: E731
    order, ref = key(got["positions"]), key(want)
    np.testing.assert_array_equal(got["positions"][order], want[ref])
    attrs = got["vertex_attributes"]
    np.testing.assert_array_equal(attrs["intensity"][order], np.asarray(back.intensity)[ref])
    np.testing.assert_array_equal(attrs["classification"][order], np.asarray(back.classification)[ref])
    if fmt in (3, 7):
        np.testing.assert_array_equal(attrs["gps_time"][order], np.asarray(back.gps_time)[ref])
        rgb = np.stack([back.red, back.green, back.blue], axis=1)
        np.testing.assert_array_equal(attrs["rgb"][order], rgb[ref])
    else:
        assert set(names) == {"intensity", "classification"}
    raw = (tmp_path / "in.las").read_bytes()
    for name, data, msg in [("cut.las", raw[:-5], "truncated"), ("sig.las", b"XASF" + raw[4:], "LASF"),
                            ("c.laz", raw, "LAZ is compressed"),
                            ("z.las", raw[:104] + bytes([raw[104] | 0x80]) + raw[105:], "compressed")]:
        (tmp_path / name).write_bytes(data)
        out = tmp_path / (name + ".zarrvectors")
        r = subprocess.run([cli, "vectors", "write", tmp_path / name, "-o", out], capture_output=True, text=True)
        assert r.returncode == 1 and msg in r.stderr and name in r.stderr, (name, r.stderr)
        assert not out.exists()


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_streamed_and_tract_inputs_meet_hostile_files(tmp_path):
    """An .npy whose header claims 10^12 rows, FIFOs given as .npy/.las/.trk/.tck inputs and a FIFO as a
    .trk output: each a clear error naming the file, nothing blocks, nothing is left behind."""
    import os
    import subprocess

    cli = os.environ["VOXFIELD_CLI"]
    huge = tmp_path / "huge.npy"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 3), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    huge.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(24))
    r = subprocess.run([cli, "vectors", "write", huge, "-o", tmp_path / "h.zarrvectors"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1 and "claims" in r.stderr and "huge.npy" in r.stderr, r.stderr
    for ext in ("npy", "las", "trk", "tck"):
        fifo = tmp_path / f"pipe.{ext}"
        os.mkfifo(fifo)
        out = tmp_path / f"pipe_{ext}.zarrvectors"
        r = subprocess.run([cli, "vectors", "write", fifo, "-o", out], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and f"pipe.{ext}" in r.stderr, (ext, r.stderr)
        assert not out.exists()
    store = tmp_path / "l.zarrvectors"
    vv.write_polylines(store, streamlines(5, 1), chunk_shape=(20, 20, 20))
    sink = tmp_path / "sink.trk"
    os.mkfifo(sink)
    r = subprocess.run([cli, "vectors", "read", store, "-o", sink], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "sink.trk" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["huge.npy", "l.zarrvectors", "sink.trk"] + [f"pipe.{e}" for e in ("npy", "las", "trk", "tck")])


def test_a_level_published_but_not_named_in_the_root_is_named_on_rerun(tmp_path):
    """A kill between renaming a level into place and naming it in the root metadata: the rerun names
    it (same multiscales and OME nodes as an uninterrupted build) and goes on."""
    path = tmp_path / "p.zarrvectors"
    vv.write_points(path, cloud(3000, 5), chunk_shape=(25, 25, 25), bin_shape=(12.5, 12.5, 12.5))
    vv.build_pyramid(path, factors=[(2, 1), (2, 1)])
    whole = json.loads((path / "zarr.json").read_text())
    cut = json.loads((path / "zarr.json").read_text())
    cut["attributes"]["multiscales"][0]["datasets"].pop()
    cut["attributes"]["ome"]["nodes"].pop()
    (path / "zarr.json").write_text(json.dumps(cut))
    vv.build_pyramid(path, factors=[(2, 1), (2, 1)])
    assert json.loads((path / "zarr.json").read_text()) == whole
    with pytest.raises(Exception, match="has levels"):
        vv.build_pyramid(path, factors=[(2, 1), (2, 1)])


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), written out so a test can forge a valid shard index."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_absurd_sizes_and_forged_headers_are_refused(tmp_path):
    """A shard index with a valid checksum claiming 10^12 bytes, a chunk so small the grid would hold
    10^30 cells, factors that overflow a bin, object ids far past the vertices, a shard of 5000 cells:
    each a clear error, nothing written."""
    import struct

    assert crc32c(b"123456789") == 0xE3069283
    p = cloud(2000, 8)
    store = tmp_path / "s.zarrvectors"
    vv.write_points(store, p, chunk_shape=(25, 25, 25), shard_shape=2)
    shard = sorted((store / "0" / "vertices" / "c").rglob("*"))[-1]
    data = bytearray(shard.read_bytes())
    n = 8  # 2³ cells per shard
    index = bytearray(data[-(16 * n + 4):-4])
    first = next(i for i in range(n) if struct.unpack_from("<Q", index, 16 * i)[0] != 2 ** 64 - 1)
    struct.pack_into("<QQ", index, 16 * first, 0, 10 ** 12)
    shard.write_bytes(bytes(data[:-(16 * n + 4)]) + bytes(index) + struct.pack("<I", crc32c(bytes(index))))
    with pytest.raises(Exception, match="claims bytes"):
        vv.read_points(store)
    for data, kwargs, msg in [(p * 1e6, {"chunk_shape": (1e-9,) * 3}, "too large"),
                              (p, {"chunk_shape": (25,) * 3, "shard_shape": 5000}, "shard shape")]:
        out = tmp_path / "bad.zarrvectors"
        with pytest.raises(ValueError, match=msg):
            vv.write_points(out, data, **kwargs)
        with pytest.raises(ValueError, match=msg):
            vv.write_polylines(out, [data[:50]], **kwargs)
        with pytest.raises(ValueError, match=msg):
            vv.write_graph(out, data, [[0, 1]], **kwargs)
        assert not out.exists()
    good = tmp_path / "g.zarrvectors"
    vv.write_points(good, p, chunk_shape=(25, 25, 25))
    with pytest.raises(ValueError, match="finite"):
        vv.build_pyramid(good, factors=[(1e300, 1), (1e300, 1)])
    assert vv.list_resolution_levels(good) == [0]
    with pytest.raises(ValueError, match="object rows"):
        vv.write_graph(tmp_path / "o.zarrvectors", p, [[0, 1]], chunk_shape=(25,) * 3,
                       object_ids=np.full(len(p), 10 ** 12))
    assert not (tmp_path / "o.zarrvectors").exists()


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_devices_and_symlinks_around_the_new_readers_and_writers(tmp_path):
    """/dev/zero (through a link made here) as .npy/.las/.trk/.tck input; a .tck output that is a link to a
    file here (written through, the link kept) or to /dev/null (refused); a LAS 1.4 header claiming 10^12
    points; a TRK claiming 30000 scalars; an absurd spill budget."""
    import os
    import struct
    import subprocess

    cli = os.environ["VOXFIELD_CLI"]
    for ext in ("npy", "las", "trk", "tck", "trx"):
        link = tmp_path / f"zero.{ext}"
        link.symlink_to("/dev/zero")
        r = subprocess.run([cli, "vectors", "write", link, "-o", tmp_path / f"z{ext}.zarrvectors"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and f"zero.{ext}" in r.stderr, (ext, r.stderr)
    store = tmp_path / "l.zarrvectors"
    vv.write_polylines(store, streamlines(5, 4), chunk_shape=(20, 20, 20))
    real = tmp_path / "real.tck"
    real.write_bytes(b"old")
    (tmp_path / "to_real.tck").symlink_to(real)
    r = subprocess.run([cli, "vectors", "read", store, "-o", tmp_path / "to_real.tck"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "to_real.tck").is_symlink() and real.read_bytes().startswith(b"mrtrix tracks")
    (tmp_path / "null.tck").symlink_to("/dev/null")
    r = subprocess.run([cli, "vectors", "read", store, "-o", tmp_path / "null.tck"], capture_output=True, text=True)
    assert r.returncode == 1 and "null.tck" in r.stderr, r.stderr
    # TRX: a FIFO (file or inside a TRX directory) as input, a link to /dev/null as output; a Neuroglancer
    # export onto a link is refused (the output must be new).
    os.mkfifo(tmp_path / "fifo.trx")
    (tmp_path / "d.trx").mkdir()
    (tmp_path / "d.trx" / "header.json").write_text('{"NB_STREAMLINES": 1, "NB_VERTICES": 2}')
    os.mkfifo(tmp_path / "d.trx" / "positions.3.float32")
    for src in ("fifo.trx", "d.trx"):
        r = subprocess.run([cli, "vectors", "write", tmp_path / src, "-o", tmp_path / "f.zarrvectors"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and src in r.stderr and "panicked" not in r.stderr, r.stderr
    (tmp_path / "null.trx").symlink_to("/dev/null")
    r = subprocess.run([cli, "vectors", "read", store, "-o", tmp_path / "null.trx"], capture_output=True, text=True)
    assert r.returncode == 1 and "null.trx" in r.stderr, r.stderr
    (tmp_path / "ng.precomputed").symlink_to(tmp_path / "elsewhere")
    r = subprocess.run([cli, "vectors", "read", store, "-o", tmp_path / "ng.precomputed"], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "already exists" in r.stderr and not (tmp_path / "elsewhere").exists(), r.stderr
    laspy = pytest.importorskip("laspy")
    las = laspy.create(point_format=6, file_version="1.4")
    las.x, las.y, las.z = (np.arange(10.0) for _ in range(3))
    las.write(str(tmp_path / "ok.las"))
    raw = bytearray((tmp_path / "ok.las").read_bytes())
    struct.pack_into("<Q", raw, 247, 10 ** 12)
    (tmp_path / "huge.las").write_bytes(bytes(raw))
    r = subprocess.run([cli, "vectors", "write", tmp_path / "huge.las", "-o", tmp_path / "h.zarrvectors"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "truncated" in r.stderr and "huge.las" in r.stderr, r.stderr
    nib = pytest.importorskip("nibabel")
    nib.streamlines.save(nib.streamlines.Tractogram(streamlines(3, 2), affine_to_rasmm=np.eye(4)),
                         str(tmp_path / "ok.trk"))
    raw = bytearray((tmp_path / "ok.trk").read_bytes())
    struct.pack_into("<h", raw, 36, 30000)
    (tmp_path / "scal.trk").write_bytes(bytes(raw))
    r = subprocess.run([cli, "vectors", "write", tmp_path / "scal.trk", "-o", tmp_path / "t.zarrvectors"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "30000 scalars" in r.stderr, r.stderr
    np.save(tmp_path / "p.npy", cloud(1000, 3))
    env = dict(os.environ, VOXFIELD_SPILL_MB=str(2 ** 63))
    r = subprocess.run([cli, "vectors", "write", tmp_path / "p.npy", "-o", tmp_path / "p.zarrvectors"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert not any(p.name.endswith("zarrvectors") and p.name.startswith("z") for p in tmp_path.iterdir())


def _ng_records(path, dtype):
    """Decode a Neuroglancer multiple-annotation file: (ids, records as bytes)."""
    b = path.read_bytes()
    k = int(np.frombuffer(b[:8], "<u8")[0])
    size = np.dtype(dtype).itemsize
    assert len(b) == 8 + k * (size + 8), path
    recs = [b[8 + i * size:8 + (i + 1) * size] for i in range(k)]
    ids = np.frombuffer(b[8 + k * size:], "<u8").tolist()
    return ids, recs


@pytest.mark.skipif(not __import__("os").environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_neuroglancer_annotations_match_neuroglancers_writer(tmp_path):
    """A point cloud level (with float32, int16 and uint8 attributes) and a streamline level exported as
    Neuroglancer precomputed annotations: info and every by_id / rel_object file equal what neuroglancer's own
    AnnotationWriter writes for the same annotations; the multi-level spatial index holds every annotation
    exactly once, inside its cell, each cell decoding to the by_id records."""
    import json
    import os
    import subprocess

    ng = pytest.importorskip("neuroglancer")
    from neuroglancer import write_annotations as wa

    cli = os.environ["VOXFIELD_CLI"]
    cs = ng.CoordinateSpace(names=["x", "y", "z"], units=["", "", ""], scales=[1, 1, 1])
    rng = np.random.default_rng(3)
    xyz = rng.uniform(0, 100, (700, 3))
    attrs = {"Intensity": rng.random(700).astype(np.float32), "label": rng.integers(-300, 300, 700).astype(np.int16),
             "cls": rng.integers(0, 255, 700).astype(np.uint8)}
    vv.write_points(tmp_path / "p.zarrvectors", xyz, chunk_shape=(50, 50, 50), vertex_attributes=attrs)
    out = tmp_path / "p.precomputed"
    r = subprocess.run([cli, "vectors", "read", tmp_path / "p.zarrvectors", "-o", out, "--cell-limit", "40"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    pts = vv.read_points(tmp_path / "p.zarrvectors", attribute_names=list(attrs))
    props = [ng.AnnotationPropertySpec(id=i, type=t) for i, t in
             (("intensity", "float32"), ("label", "int16"), ("cls", "uint8"))]
    w = wa.AnnotationWriter(cs, "point", properties=props)
    va = pts["vertex_attributes"]
    for i, p in enumerate(pts["positions"]):
        w.add_point(p, id=i, intensity=va["Intensity"][i], label=va["label"][i], cls=va["cls"][i])
    ref = tmp_path / "ref_p"
    w.write(ref)
    check_neuroglancer_export(out, ref, np.dtype(w.dtype), 700, limit=40)

    lines = [x + 40 for x in streamlines(25, 9, scale=6.0)]
    vv.write_polylines(tmp_path / "l.zarrvectors", lines, chunk_shape=(20, 20, 20))
    out = tmp_path / "l.precomputed"
    r = subprocess.run([cli, "vectors", "read", tmp_path / "l.zarrvectors", "-o", out, "--cell-limit", "30"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = vv.read_polylines(tmp_path / "l.zarrvectors")
    w = wa.AnnotationWriter(cs, "line", relationships=["object"])
    k = 0
    for line, oid in zip(got["polylines"], got["object_ids"]):
        for a, b in zip(line[:-1], line[1:]):
            w.add_line(a, b, id=k, object=int(oid))
            k += 1
    ref = tmp_path / "ref_l"
    w.write(ref)
    check_neuroglancer_export(out, ref, np.dtype(w.dtype), k, limit=30)
    for f in (ref / "rel_object").iterdir():  # per-object lists: same annotations, any order
        mine, theirs = _ng_records(out / "rel_object" / f.name, np.dtype(w.dtype)), _ng_records(f, np.dtype(w.dtype))
        assert sorted(zip(*mine)) == sorted(zip(*theirs))
    assert len(list((out / "rel_object").iterdir())) == len(lines)

    # Bad requests: clear errors, nothing written.
    for args, msg in ((["--cell-limit", "0"], "limit"), (["--bbox", "5,5,5,1,1,1"], "bbox"),
                      (["--bbox", "500,500,500,600,600,600"], "nothing to export")):
        o = tmp_path / "bad.precomputed"
        r = subprocess.run([cli, "vectors", "read", tmp_path / "p.zarrvectors", "-o", o, *args],
                           capture_output=True, text=True)
        assert r.returncode != 0 and msg in r.stderr and "panicked" not in r.stderr, r.stderr
        assert not o.exists() and not [p for p in tmp_path.iterdir() if "partial" in p.name]
    r = subprocess.run([cli, "vectors", "read", tmp_path / "p.zarrvectors", "-o", tmp_path / "p.precomputed"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "already exists" in r.stderr


def check_neuroglancer_export(out, ref, dtype, n, limit):
    import json

    mine, theirs = json.loads((out / "info").read_text()), json.loads((ref / "info").read_text())
    for key in ("@type", "dimensions", "annotation_type", "properties", "relationships", "by_id"):
        assert mine[key] == theirs[key], key
    if mine["annotation_type"] == "point":
        assert mine["lower_bound"] == theirs["lower_bound"]
        np.testing.assert_allclose(mine["upper_bound"], theirs["upper_bound"], rtol=1e-6)
    else:  # neuroglancer's writer bounds lines by first ends below, second ends above; ours hold every end
        assert np.all(np.array(mine["lower_bound"]) <= theirs["lower_bound"])
        assert np.all(np.array(mine["upper_bound"]) >= np.array(theirs["upper_bound"]) - 1e-4)
    ids = sorted(int(p.name) for p in (ref / "by_id").iterdir())
    assert ids == sorted(int(p.name) for p in (out / "by_id").iterdir()) == list(range(n))
    by_id = {}
    for i in ids:
        b = (out / "by_id" / str(i)).read_bytes()
        assert b == (ref / "by_id" / str(i)).read_bytes(), i
        by_id[i] = b[:np.dtype(dtype).itemsize]
    lo = np.array(mine["lower_bound"])
    seen = {}
    levels = mine["spatial"]
    assert levels[0]["grid_shape"] == [1, 1, 1] and len(levels) > 1
    for lv, spec in enumerate(levels):
        size = np.array(spec["chunk_size"])
        np.testing.assert_allclose(size * spec["grid_shape"], np.array(mine["upper_bound"]) - lo, rtol=1e-9)
        if lv:
            ratio = np.array(levels[lv - 1]["chunk_size"]) / size
            assert set(np.round(ratio, 9)) <= {1.0, 2.0}
        for f in (out / spec["key"]).iterdir():
            cell = np.array([int(c) for c in f.name.split("_")])
            assert np.all(cell < spec["grid_shape"])
            got_ids, recs = _ng_records(f, dtype)
            assert len(got_ids) <= 3 * limit
            for i, rec in zip(got_ids, recs):
                assert rec == by_id[i]
                seen.setdefault(i, set()).add(lv)
                geom = np.frombuffer(rec, dtype)["geometry"].reshape(-1, 3)
                cmin, cmax = lo + cell * size, lo + (cell + 1) * size
                assert np.all(geom.max(0) >= cmin - 1e-4) and np.all(geom.min(0) <= cmax + 1e-4)
    assert sorted(seen) == list(range(n)) and all(len(v) == 1 for v in seen.values())

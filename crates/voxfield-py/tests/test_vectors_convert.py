"""vv.import_file / vv.export (issue 27): the files the CLI reads and writes, from Python, through
the same library door; SWC skeletons in and out as graphs with radii, checked against zarr-vectors'
read_graph and a numpy parse of the SWC text; bad skeletons refused with the line named."""

import os
import subprocess
import warnings

import numpy as np
import pytest

from _stores import zv
from voxfield import vectors as vv

zv_graphs = pytest.importorskip("zarr_vectors.types.graphs")
zv_points = pytest.importorskip("zarr_vectors.types.points")
CLI = os.environ.get("VOXFIELD_CLI")

SWC = """# a two-tree skeleton: ids not contiguous, comments and blank lines
# id type x y z radius parent
1 1 10.0 10.0 10.0 3.5 -1
2 3 12.5 11.0 10.0 1.25 1
5 3 15.0 12.0 11.5 1.0 2   # trailing comment
7 3 14.0 8.0 9.0 0.75 2

9 2 40.0 40.0 40.0 0.5 -1
11 2 44.0 41.0 39.0 0.4 9
12 2 47.5 43.0 38.0 0.3 11
13 4 41.0 36.0 44.0 0.6 9
"""


def parse_swc(path):
    """A numpy parse of SWC text: {id: (type, xyz, radius, parent)}."""
    rows = np.loadtxt(path, comments="#", ndmin=2)
    return {int(r[0]): (int(r[1]), tuple(r[2:5]), r[5], int(r[6])) for r in rows}


def edge_set(positions, edges):
    """Edges as unordered pairs of coordinates (independent of vertex numbering)."""
    key = [tuple(np.round(p, 4)) for p in np.asarray(positions, dtype=np.float64)]
    return {frozenset((key[a], key[b])) for a, b in np.asarray(edges)}


def swc_edges(d):
    """A parsed SWC's parent links as unordered pairs of coordinates."""
    at = {i: tuple(np.round(v[1], 4)) for i, v in d.items()}
    return {frozenset((at[i], at[v[3]])) for i, v in d.items() if v[3] >= 0}


def test_swc_in_is_the_skeletons_graph(tmp_path):
    src = tmp_path / "n.swc"
    src.write_text(SWC)
    store = tmp_path / "n.zarrvectors"
    r = vv.import_file(src, store, chunk_shape=(16, 16, 16))
    assert r == {"kind": "graph", "vertex_count": 8, "object_count": 2, "chunk_count": r["chunk_count"],
                 "link_count": 6}
    want = parse_swc(src)
    g = zv(zv_graphs.read_graph, str(store))
    assert edge_set(g["positions"], g["edges"]) == swc_edges(want)
    pts = vv.read_points(store, attribute_names=["radius", "type"])
    by_xyz = {tuple(np.round(v[1], 4)): v for v in want.values()}
    for p, rad, t in zip(pts["positions"], pts["vertex_attributes"]["radius"], pts["vertex_attributes"]["type"]):
        kind, _, radius, _ = by_xyz[tuple(np.round(p.astype(np.float64), 4))]
        assert t == kind and rad == np.float32(radius)
    # One object per tree.
    objs = vv.select(store, objects=[0])
    assert {tuple(np.round(p, 4)) for p in objs["positions"].astype(np.float64)} == {
        tuple(np.round(v[1], 4)) for v in list(want.values())[:4]}


def test_swc_out_round_trips(tmp_path):
    src = tmp_path / "n.swc"
    src.write_text(SWC)
    store = tmp_path / "n.zarrvectors"
    vv.import_file(src, store, chunk_shape=(16, 16, 16))
    out = tmp_path / "back.swc"
    assert vv.export(store, out) == {"what": "samples", "count": 8, "vertex_count": 8}
    a, b = parse_swc(src), parse_swc(out)
    assert swc_edges(a) == swc_edges(b)
    assert sorted((v[0], np.float32(v[2])) for v in a.values()) == sorted((v[0], np.float32(v[2])) for v in b.values())
    assert "0.3 " in out.read_text()  # float32 radii written as their shortest text
    assert sum(v[3] == -1 for v in b.values()) == 2 and sorted(b) == list(range(1, 9))
    # A graph with a cycle is not a skeleton.
    cyc = tmp_path / "cycle.zarrvectors"
    vv.write_graph(cyc, np.eye(3) * 5, np.array([[0, 1], [1, 2], [2, 0]]))
    with pytest.raises(ValueError, match="cycle"):
        vv.export(cyc, tmp_path / "c.swc")
    with pytest.raises(ValueError, match="whole graph"):
        vv.export(store, tmp_path / "d.swc", bbox=([0, 0, 0], [1, 1, 1]))


@pytest.mark.parametrize("text,msg", [
    ("1 1 0 0 0 1 -1\n2 1 1 1 1 1 7\n", "line 2: parent 7 is not a sample"),
    ("1 1 0 0 0 1 -1\n1 1 1 1 1 1 1\n", "line 2: sample id 1 appears twice"),
    ("1 1 0 0 0 1 2\n2 1 1 1 1 1 1\n", "cycle"),
    ("1 1 0 0 0 1\n", "line 1: expected 7 fields"),
    ("1 1 0 nan 0 1 -1\n", "finite"),
    ("1 x 0 0 0 1 -1\n", "integers"),
    ("# only comments\n", "no samples"),
])
def test_bad_swc_is_refused_naming_the_line(tmp_path, text, msg):
    src = tmp_path / "bad.swc"
    src.write_text(text)
    with pytest.raises(ValueError, match=msg):
        vv.import_file(src, tmp_path / "s.zarrvectors")
    assert not (tmp_path / "s.zarrvectors").exists()


def test_tracts_and_points_through_import_and_export(tmp_path):
    nib = pytest.importorskip("nibabel")
    from nibabel.streamlines import Tractogram
    rng = np.random.default_rng(4)
    lines = [rng.normal(0, 10, (int(rng.integers(2, 30)), 3)).cumsum(0).astype(np.float32) for _ in range(60)]
    nib.streamlines.save(Tractogram(lines, affine_to_rasmm=np.eye(4)), str(tmp_path / "in.tck"))
    r = vv.import_file(tmp_path / "in.tck", tmp_path / "t.zarrvectors", chunk_shape=(20, 20, 20),
                       compressor="zstd")
    assert r["kind"] == "polylines" and r["object_count"] == 60 and r["link_count"] > 0
    for a, b in zip(vv.read_polylines(tmp_path / "t.zarrvectors")["polylines"], lines):
        np.testing.assert_array_equal(a, b)
    assert vv.export(tmp_path / "t.zarrvectors", tmp_path / "out.trk")["count"] == 60
    back = nib.streamlines.load(str(tmp_path / "out.trk")).streamlines
    for a, b in zip(back, lines):
        np.testing.assert_allclose(a, b, atol=1e-4)
    # Points: an .npy with named columns; the export of a selection equals vv.select.
    p = rng.uniform(0, 50, (3000, 4))
    np.save(tmp_path / "p.npy", p)
    r = vv.import_file(tmp_path / "p.npy", tmp_path / "p.zarrvectors", attribute_names=["w"], chunk_shape=(10, 10, 10))
    assert r["vertex_count"] == 3000 and r["kind"] == "points"
    direct = tmp_path / "direct.zarrvectors"
    vv.write_points(direct, p[:, :3], chunk_shape=(10, 10, 10), vertex_attributes={"w": p[:, 3]})
    for f in sorted(x.relative_to(direct) for x in direct.rglob("*") if x.is_file() and x.name != "zarr.json"):
        assert (direct / f).read_bytes() == (tmp_path / "p.zarrvectors" / f).read_bytes(), f
    e = vv.export(tmp_path / "p.zarrvectors", tmp_path / "sel.npy", near=([25, 25, 25], 10), where={"w": (">", 30)},
                  attribute_names=["w"])
    want = vv.select(tmp_path / "p.zarrvectors", near=([25, 25, 25], 10), where={"w": (">", 30)},
                     attribute_names=["w"])
    got = np.load(tmp_path / "sel.npy")
    assert e["count"] == len(got) == want["vertex_count"] > 0
    np.testing.assert_array_equal(got[:, :3], want["positions"])
    assert vv.export(tmp_path / "p.zarrvectors", tmp_path / "view.precomputed")["count"] == 3000
    assert (tmp_path / "view.precomputed" / "info").exists()
    with pytest.raises(ValueError, match="limit does not apply"):
        vv.export(tmp_path / "t.zarrvectors", tmp_path / "x.tck", limit=3)
    with pytest.raises(ValueError, match="not a format"):
        vv.import_file(tmp_path / "in.vtk", tmp_path / "x.zarrvectors")
    with pytest.raises(ValueError, match="holds polylines"):
        vv.import_file(tmp_path / "in.tck", tmp_path / "x.zarrvectors", kind="points")
    with pytest.raises(ValueError, match="attribute names apply"):
        vv.import_file(tmp_path / "in.tck", tmp_path / "x.zarrvectors", attribute_names=["a"])


def test_text_tables_import_as_write_points_writes_them(tmp_path):
    """A CSV (header, comments) and a space-separated .xyz import byte for byte as write_points of
    the same numbers (float64 attributes); numpy's savetxt writes them, numpy's loadtxt reads back."""
    rng = np.random.default_rng(8)
    p = rng.uniform(0, 50, (2000, 4))
    np.savetxt(tmp_path / "p.csv", p, delimiter=",", header="x,y,z,w", comments="", fmt="%.17g")
    np.savetxt(tmp_path / "p.xyz", p[:, :3], fmt="%.17g", header="a cloud", comments="# ")
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1), p)
    direct = tmp_path / "direct.zarrvectors"
    vv.write_points(direct, p[:, :3], chunk_shape=(10, 10, 10), vertex_attributes={"w": p[:, 3]})
    r = vv.import_file(tmp_path / "p.csv", tmp_path / "c.zarrvectors", attribute_names=["w"], chunk_shape=(10, 10, 10))
    assert r == {"kind": "points", "vertex_count": 2000, "object_count": 0, "chunk_count": r["chunk_count"],
                 "link_count": 0}
    for f in sorted(x.relative_to(direct) for x in direct.rglob("*") if x.is_file() and x.name != "zarr.json"):
        assert (direct / f).read_bytes() == (tmp_path / "c.zarrvectors" / f).read_bytes(), f
    got = vv.read_points(tmp_path / "c.zarrvectors", attribute_names=["w"])
    np.testing.assert_array_equal(got["vertex_attributes"]["w"], vv.read_points(direct, attribute_names=["w"])[
        "vertex_attributes"]["w"])
    r = vv.import_file(tmp_path / "p.xyz", tmp_path / "x.zarrvectors", chunk_shape=(10, 10, 10))
    np.testing.assert_array_equal(vv.read_points(tmp_path / "x.zarrvectors")["positions"],
                                  vv.read_points(direct)["positions"])
    with pytest.raises(ValueError, match="4 columns, but 3 coordinates and 0 attribute names"):
        vv.import_file(tmp_path / "p.csv", tmp_path / "bad.zarrvectors", chunk_shape=(10, 10, 10))
    (tmp_path / "bad.csv").write_text("x,y,z\n1,2,3\n4,5,six\n")
    with pytest.raises(ValueError, match=r"bad.csv.*line 3"):
        vv.import_file(tmp_path / "bad.csv", tmp_path / "bad.zarrvectors", chunk_shape=(10, 10, 10))
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    with pytest.raises(ValueError, match="line 2: expected 3 columns, found 2"):
        vv.import_file(tmp_path / "ragged.csv", tmp_path / "bad.zarrvectors", chunk_shape=(10, 10, 10))
    assert not (tmp_path / "bad.zarrvectors").exists()


@pytest.mark.skipif(not CLI, reason="VOXFIELD_CLI names the built voxfield")
def test_cli_swc_both_ways(tmp_path):
    src = tmp_path / "n.swc"
    src.write_text(SWC)
    r = subprocess.run([CLI, "vectors", "write", src, "-o", tmp_path / "n.zarrvectors", "--chunk", "16,16,16"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "2 trees" in r.stderr, r.stderr
    r = subprocess.run([CLI, "vectors", "read", tmp_path / "n.zarrvectors", "-o", tmp_path / "b.swc"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert swc_edges(parse_swc(src)) == swc_edges(parse_swc(tmp_path / "b.swc"))


def test_object_ids_from_a_table_column(tmp_path):
    """object_ids= / --object-ids names the column of per-point object ids: .npy, CSV and the CLI write
    the store write_points(object_ids=...) writes, file for file, and zarr-vectors reads the objects."""
    rng = np.random.default_rng(12)
    n = 1500
    xyz, oid, w = rng.uniform(0, 40, (n, 3)), rng.integers(0, 25, n), rng.random(n)
    table = np.column_stack([xyz, oid, w])
    np.save(tmp_path / "p.npy", table)
    np.savetxt(tmp_path / "p.csv", table, delimiter=",", fmt="%.17g")
    direct = tmp_path / "direct.zarrvectors"
    vv.write_points(direct, xyz, chunk_shape=(10, 10, 10), object_ids=oid, vertex_attributes={"w": w})
    outs = []
    for src in ("p.npy", "p.csv"):
        out = tmp_path / f"{src}.zarrvectors"
        r = vv.import_file(tmp_path / src, out, attribute_names=["id", "w"], object_ids="id", chunk_shape=(10, 10, 10))
        assert r["object_count"] == len(set(oid.tolist())) and r["vertex_count"] == n
        outs.append(out)
    if CLI:
        out = tmp_path / "cli.zarrvectors"
        subprocess.run([CLI, "vectors", "write", str(tmp_path / "p.csv"), "-o", str(out), "--chunk", "10,10,10",
                        "--attributes", "id,w", "--object-ids", "id"], check=True, capture_output=True)
        outs.append(out)
    files = sorted(x.relative_to(direct) for x in direct.rglob("*") if x.is_file() and x != direct / "zarr.json")
    assert any("object_index" in str(f) for f in files)
    for out in outs:
        assert sorted(x.relative_to(out) for x in out.rglob("*") if x.is_file() and x != out / "zarr.json") == files
        for f in files:
            assert (direct / f).read_bytes() == (out / f).read_bytes(), (out, f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = zv_points.read_points(str(outs[-1]), object_ids=[3, 7])
    want = xyz[np.isin(oid, [3, 7])].astype(np.float32)
    assert sorted(map(tuple, got["positions"].tolist())) == sorted(map(tuple, want.tolist()))
    with pytest.raises(ValueError, match="not among the attributes"):
        vv.import_file(tmp_path / "p.csv", tmp_path / "x.zarrvectors", attribute_names=["id", "w"], object_ids="oid")
    table[5, 3] = 2.5
    np.savetxt(tmp_path / "frac.csv", table, delimiter=",", fmt="%.17g")
    with pytest.raises(ValueError, match="point 5: object id 2.5 is not a whole number"):
        vv.import_file(tmp_path / "frac.csv", tmp_path / "x.zarrvectors", attribute_names=["id", "w"], object_ids="id")
    with pytest.raises(ValueError, match="object ids"):
        vv.import_file(tmp_path / "p.las", tmp_path / "x.zarrvectors", object_ids="id")
    assert not (tmp_path / "x.zarrvectors").exists()

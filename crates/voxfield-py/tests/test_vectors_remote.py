"""zarr-vectors stores compressed and remote (issue 27): stores written with zarr-vectors 0.9.2's
`compressor=` read by voxfield, voxfield's compressed writes byte-identical to zarr-vectors' own;
stores served over HTTP (a real server with index pages and byte ranges, requests logged) and from
an S3-compatible server (moto) read equal to the local copy, only the touched cells fetched."""

import functools
import http.server
import json
import os
import pathlib
import re
import subprocess
import threading
import warnings

import numpy as np
import pytest

from _stores import assert_identical, files, zv
from voxfield import vectors as vv


def assert_identical_rs(mine, theirs):
    assert_identical(mine, theirs, ignore_row_shape=True)

zv_points = pytest.importorskip("zarr_vectors.types.points")
from zarr_vectors.multiresolution.coarsen import build_pyramid  # noqa: E402
from zarr_vectors.types.graphs import read_graph, write_graph  # noqa: E402
from zarr_vectors.types.polylines import read_polylines, write_polylines  # noqa: E402

CLI = os.environ.get("VOXFIELD_CLI")


def cloud(n, seed, lo=0.0, hi=100.0):
    return np.random.default_rng(seed).uniform(lo, hi, (n, 3)).astype(np.float32)


def streamlines(n, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 20, (int(rng.integers(2, 30)), 3)).cumsum(0).astype(np.float32) for _ in range(n)]


def same_points(got, want):
    np.testing.assert_array_equal(got["positions"], want["positions"])
    for k, v in want.get("vertex_attributes", {}).items():
        np.testing.assert_array_equal(np.asarray(got["vertex_attributes"][k]).reshape(np.shape(v)), v)


# ------------------------------------------------------------------ compression


@pytest.mark.parametrize("compressor", ["zstd", "blosc"])
@pytest.mark.parametrize("shard", [None, 2])
def test_compressed_point_writes_are_zarr_vectors_own_bytes(tmp_path, compressor, shard):
    p = cloud(6000, 1, -30, 100)
    attrs = {"w": np.random.default_rng(2).random(len(p)).astype(np.float32),
             "rgb": np.random.default_rng(3).integers(0, 255, (len(p), 3)).astype(np.uint8)}
    mine, theirs = tmp_path / "vf.zarrvectors", tmp_path / "zv.zarrvectors"
    kw = dict(chunk_shape=(25, 25, 25), bin_shape=(12.5, 12.5, 12.5), vertex_attributes=attrs,
              compressor=compressor, shard_shape=shard)
    zv(zv_points.write_points, str(theirs), p, **kw)
    vv.write_points(mine, p, **kw)
    assert_identical_rs(mine, theirs)
    meta = json.loads((mine / "0" / "vertices" / "zarr.json").read_text())
    inner = meta["codecs"][0]["configuration"]["codecs"] if shard else meta["codecs"]
    assert inner[1]["name"] == compressor
    same_points(vv.read_points(theirs, attribute_names=["w", "rgb"]),
                zv(zv_points.read_points, str(theirs), attribute_names=["w", "rgb"]))


@pytest.mark.parametrize("compressor", ["zstd", "blosc"])
def test_compressed_polyline_and_graph_writes_are_zarr_vectors_own_bytes(tmp_path, compressor):
    lines = streamlines(80, 5)
    va = {"fa": [np.arange(len(x), dtype=np.float32) for x in lines]}
    zv(write_polylines, str(tmp_path / "zl.zarrvectors"), lines, chunk_shape=(30, 30, 30), vertex_attributes=va,
       compressor=compressor)
    vv.write_polylines(tmp_path / "vl.zarrvectors", lines, chunk_shape=(30, 30, 30), vertex_attributes=va,
                       compressor=compressor)
    assert_identical_rs(tmp_path / "vl.zarrvectors", tmp_path / "zl.zarrvectors")
    for a, b in zip(vv.read_polylines(tmp_path / "zl.zarrvectors")["polylines"], lines):
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(6)
    pos = rng.uniform(0, 100, (300, 3)).astype(np.float32)
    edges = rng.integers(0, 300, (500, 2))
    zv(write_graph, str(tmp_path / "zg.zarrvectors"), pos, edges, chunk_shape=(40, 40, 40), compressor=compressor)
    vv.write_graph(tmp_path / "vg.zarrvectors", pos, edges, chunk_shape=(40, 40, 40), compressor=compressor)
    assert_identical_rs(tmp_path / "vg.zarrvectors", tmp_path / "zg.zarrvectors")
    got, want = vv.read_graph(tmp_path / "zg.zarrvectors"), zv(read_graph, str(tmp_path / "zg.zarrvectors"))
    np.testing.assert_array_equal(got["positions"], want["positions"])
    assert sorted(map(tuple, got["edges"])) == sorted(map(tuple, np.asarray(want["edges"])))


@pytest.mark.parametrize("codecs", [
    [{"name": "gzip", "configuration": {"level": 5}}],
    [{"name": "zstd", "configuration": {"level": 7, "checksum": True}}],
    [{"name": "blosc", "configuration": {"cname": "lz4", "clevel": 9, "shuffle": "shuffle", "typesize": 4,
                                         "blocksize": 0}}],
    [{"name": "blosc", "configuration": {"cname": "zlib", "clevel": 1, "shuffle": "noshuffle", "typesize": 1,
                                         "blocksize": 0}}],
    [{"name": "blosc", "configuration": {"cname": "blosclz", "clevel": 5, "shuffle": "bitshuffle", "typesize": 8,
                                         "blocksize": 256}}],
])
def test_every_codec_zarr_vectors_writes_reads_the_same(tmp_path, codecs):
    """gzip stores are equal in values only: zarr-python stamps the current time into each gzip header."""
    p = cloud(3000, 7)
    w = np.random.default_rng(8).random(len(p)).astype(np.float64)
    theirs = tmp_path / "zv.zarrvectors"
    zv(zv_points.write_points, str(theirs), p, chunk_shape=(30, 30, 30), bin_shape=(15, 15, 15),
       vertex_attributes={"w": w}, compressor=codecs)
    want = zv(zv_points.read_points, str(theirs), attribute_names=["w"])
    same_points(vv.read_points(theirs, attribute_names=["w"]), want)
    box = (np.array([10.0, 0, 20]), np.array([50.0, 70, 90]))
    same_points(vv.read_points(theirs, bbox=box, attribute_names=["w"]),
                zv(zv_points.read_points, str(theirs), bbox=box, attribute_names=["w"]))
    if codecs[0]["name"] == "gzip":
        mine = tmp_path / "vf.zarrvectors"
        vv.write_points(mine, p, chunk_shape=(30, 30, 30), bin_shape=(15, 15, 15), vertex_attributes={"w": w},
                        compressor="gzip")
        same_points(zv(zv_points.read_points, str(mine), attribute_names=["w"]), want)


def test_corrupt_compressed_cells_are_named(tmp_path):
    p = cloud(2000, 9)
    for comp in ("zstd", "blosc", "gzip"):
        s = tmp_path / f"{comp}.zarrvectors"
        vv.write_points(s, p, chunk_shape=(50, 50, 50), compressor=comp)
        cell = next(f for f in (s / "0" / "vertices" / "c").rglob("*") if f.is_file())
        b = bytearray(cell.read_bytes())
        cell.write_bytes(bytes(b[: len(b) // 2]))
        with pytest.raises(Exception) as e:
            vv.read_points(s)
        assert str(cell.relative_to(tmp_path)) in str(e.value) and comp in str(e.value), str(e.value)
    with pytest.raises(ValueError, match="compressor lzma"):
        vv.write_points(tmp_path / "x.zarrvectors", p, compressor="lzma")
    assert not (tmp_path / "x.zarrvectors").exists()
    meta = tmp_path / "zstd.zarrvectors" / "0" / "vertices" / "zarr.json"
    j = json.loads(meta.read_text())
    j["codecs"][1] = {"name": "blosc", "configuration": {"cname": "brotli", "clevel": 5, "shuffle": "shuffle",
                                                         "typesize": 4, "blocksize": 0}}
    meta.write_text(json.dumps(j))
    with pytest.raises(Exception, match="brotli"):
        vv.read_points(tmp_path / "zstd.zarrvectors")


@pytest.mark.skipif(not CLI, reason="VOXFIELD_CLI names the built voxfield")
def test_cli_writes_with_a_compressor(tmp_path):
    p = cloud(2000, 10)
    np.save(tmp_path / "p.npy", p.astype(np.float64))
    out = tmp_path / "c.zarrvectors"
    r = subprocess.run([CLI, "vectors", "write", tmp_path / "p.npy", "-o", out, "--chunk", "25,25,25",
                        "--compressor", "blosc"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    theirs = tmp_path / "zv.zarrvectors"
    zv(zv_points.write_points, str(theirs), p, chunk_shape=(25, 25, 25), compressor="blosc")
    for f in files(theirs):
        if not f.endswith("zarr.json"):
            assert (out / f).read_bytes() == (theirs / f).read_bytes(), f
    r = subprocess.run([CLI, "vectors", "write", tmp_path / "p.npy", "-o", tmp_path / "d.zarrvectors",
                        "--compressor", "brotli"], capture_output=True, text=True)
    assert r.returncode != 0 and "brotli" in r.stderr and not (tmp_path / "d.zarrvectors").exists()


# ------------------------------------------------------------------ remote


class Server:
    """Serves `root` over HTTP/1.1: files with byte ranges, folders as HTML index pages (as Python's
    http.server and nginx's autoindex do) unless `index` is off; logs (path, range, status, bytes)."""

    def __init__(self, root):
        self.log = []
        self.index = True
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def list_directory(self, path):
                if not server.index:
                    self.send_error(404)
                    return None
                return super().list_directory(path)

            def do_GET(self):
                path = self.translate_path(self.path)
                rng = self.headers.get("Range")
                if os.path.isdir(path) or not rng:
                    status = 200 if os.path.isfile(path) or (os.path.isdir(path) and server.index) else 404
                    n = os.path.getsize(path) if os.path.isfile(path) else 0
                    server.log.append((self.path, None, status, n))
                    super().do_GET()
                    return
                if not os.path.isfile(path):
                    server.log.append((self.path, rng, 404, 0))
                    self.send_error(404)
                    return
                data = open(path, "rb").read()
                m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
                a, b = m.group(1), m.group(2)
                if a == "":
                    start, end = max(0, len(data) - int(b)), len(data)
                else:
                    start, end = int(a), min(len(data), int(b) + 1 if b else len(data))
                body = data[start:end]
                server.log.append((self.path, rng, 206, len(body)))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     functools.partial(Handler, directory=str(root)))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("vectors-served")
    p = cloud(20_000, 11, -40, 100)
    attrs = {"intensity": np.random.default_rng(12).random(len(p)).astype(np.float32),
             "label": np.random.default_rng(13).integers(0, 9, len(p)).astype(np.int32)}
    zv(zv_points.write_points, str(root / "pts.zarrvectors"), p, chunk_shape=(20, 20, 20),
       bin_shape=(10, 10, 10), vertex_attributes=attrs)
    zv(build_pyramid, str(root / "pts.zarrvectors"), factors=[(2, 1), (2, 1)])
    zv(zv_points.write_points, str(root / "sharded.zarrvectors"), p, chunk_shape=(20, 20, 20),
       vertex_attributes=attrs, shard_shape=3, compressor="blosc")
    lines = streamlines(300, 14)
    zv(write_polylines, str(root / "lines.zarrvectors"), lines, chunk_shape=(25, 25, 25))
    rng = np.random.default_rng(15)
    gpos = rng.uniform(0, 100, (300, 3)).astype(np.float32)
    zv(write_graph, str(root / "graph.zarrvectors"), gpos, rng.integers(0, 300, (400, 2)), chunk_shape=(30, 30, 30))
    import shutil

    import zarr
    shutil.copytree(root / "pts.zarrvectors", root / "consolidated.zarrvectors")
    zv(zarr.consolidate_metadata, str(root / "consolidated.zarrvectors"))
    server = Server(root)
    yield server, root
    server.close()


def cell_files(store, level, box, chunk):
    """The vertex cell files a box touches (relative paths under the server root)."""
    meta = json.loads((store / str(level) / "vertices" / "zarr.json").read_text())
    origin = meta["attributes"].get("chunk_grid_origin", [0, 0, 0])
    lo, hi = np.floor(np.asarray(box[0]) / chunk).astype(int), np.floor(np.asarray(box[1]) / chunk).astype(int)
    out = []
    for k in meta["attributes"]["nonempty_chunks"]:
        c = np.array([int(x) for x in k.split(".")])
        if np.all(c >= lo) and np.all(c <= hi):
            out.append(f"/{store.name}/{level}/vertices/c/" + "/".join(str(v) for v in c - origin))
    return sorted(out)


def test_remote_reads_equal_local_reads(served):
    server, root = served
    for name in ("pts", "consolidated", "sharded"):
        url, local = f"{server.url}/{name}.zarrvectors", root / f"{name}.zarrvectors"
        assert vv.list_resolution_levels(url) == vv.list_resolution_levels(local)
        assert vv.info(url)["levels"] == vv.info(local)["levels"]
        for level in vv.list_resolution_levels(local):
            same_points(vv.read_points(url, level=level, attribute_names=None),
                        vv.read_points(local, level=level))
        box = (np.array([-10.0, 5, 0]), np.array([30.0, 44, 61]))
        names = ["intensity", "label"]
        same_points(vv.read_points(url, bbox=box, attribute_names=names),
                    vv.read_points(local, bbox=box, attribute_names=names))
    for a, b in zip(vv.read_polylines(f"{server.url}/lines.zarrvectors")["polylines"],
                    vv.read_polylines(root / "lines.zarrvectors")["polylines"]):
        np.testing.assert_array_equal(a, b)
    got, want = vv.read_graph(f"{server.url}/graph.zarrvectors"), vv.read_graph(root / "graph.zarrvectors")
    np.testing.assert_array_equal(got["positions"], want["positions"])
    np.testing.assert_array_equal(got["edges"], want["edges"])


def test_a_box_fetches_only_its_cells(served):
    server, root = served
    store = root / "pts.zarrvectors"
    box = (np.array([0.0, 0, 0]), np.array([25.0, 39, 19]))
    for level, chunk in ((0, 20.0), (2, 20.0)):
        server.log.clear()
        names = ["intensity"] if level == 0 else []
        vv.read_points(f"{server.url}/pts.zarrvectors", level=level, bbox=box, attribute_names=names)
        got = sorted(p for p, _, s, _ in server.log if f"/{level}/vertices/c/" in p)
        want = cell_files(store, level, box, chunk)
        assert got == want and want, (got, want)
        cells = sum(n for p, _, _, n in server.log if "/c/" in p)
        touched = sum((root / p.lstrip("/")).stat().st_size for p in want)
        if level == 0:
            touched += sum((root / p.replace("/vertices/", "/vertex_attributes/intensity/").lstrip("/")).stat().st_size
                           for p in want)
        assert cells <= 1.2 * touched, (cells, touched)
    # Sharded: the shard index (a suffix range) and the cell's bytes (a range), never whole shards.
    server.log.clear()
    vv.read_points(f"{server.url}/sharded.zarrvectors", bbox=box)
    reads = [(p, r) for p, r, _, _ in server.log if "/vertices/c/" in p]
    assert reads and all(r for _, r in reads), reads


def test_consolidated_metadata_is_one_request(served):
    server, root = served
    for level, names in ((0, ["label"]), (2, None)):
        server.log.clear()
        vv.read_points(f"{server.url}/consolidated.zarrvectors", level=level, attribute_names=names)
        metas = [p for p, _, _, _ in server.log if p.endswith("zarr.json")]
        assert metas == ["/consolidated.zarrvectors/zarr.json"], metas
    server.log.clear()
    vv.read_points(f"{server.url}/pts.zarrvectors", level=0, attribute_names=["label"])
    assert sum(p.endswith("zarr.json") for p, _, _, _ in server.log) > 3  # without: one per node


def test_servers_without_index_pages(served):
    """No index pages: levels come from probing, attributes must be named; a clear error otherwise."""
    server, root = served
    server.index = False
    try:
        url = f"{server.url}/pts.zarrvectors"
        assert vv.list_resolution_levels(url) == [0, 1, 2]
        same_points(vv.read_points(url, attribute_names=["label"]),
                    vv.read_points(root / "pts.zarrvectors", attribute_names=["label"]))
        with pytest.raises(Exception, match="cannot list"):
            vv.info(url)
        with pytest.raises(Exception, match="no vertex attribute 'nope'"):
            vv.read_points(url, attribute_names=["nope"])
    finally:
        server.index = True


def test_remote_errors_and_writes(served, tmp_path):
    server, root = served
    with pytest.raises(Exception, match="absent.zarrvectors"):
        vv.read_points(f"{server.url}/absent.zarrvectors")
    with pytest.raises(Exception, match="needs a local store"):
        vv.build_pyramid(f"{server.url}/pts.zarrvectors", factors=[(2, 1)])
    with pytest.raises(Exception, match="needs a local store"):
        vv.remove_resolution_level(f"{server.url}/pts.zarrvectors", 2)
    assert (root / "pts.zarrvectors" / "2" / "zarr.json").exists()
    with pytest.raises(Exception, match="no level 7"):
        vv.read_points(f"{server.url}/pts.zarrvectors", level=7)


def test_s3_compatible_server(tmp_path, monkeypatch):
    """Small stores (moto takes ~20 ms per upload): a 2-level point pyramid with an attribute, polylines."""
    root = tmp_path
    p = cloud(3000, 21)
    zv(zv_points.write_points, str(root / "pts.zarrvectors"), p, chunk_shape=(50, 50, 50),
       vertex_attributes={"intensity": np.random.default_rng(22).random(len(p)).astype(np.float32)})
    zv(build_pyramid, str(root / "pts.zarrvectors"), factors=[(2, 1), (2, 1)])
    zv(write_polylines, str(root / "lines.zarrvectors"), streamlines(40, 23), chunk_shape=(40, 40, 40))
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    s3 = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    s3.start()
    try:
        host, port = s3.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                     "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(k, v)
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="vec")
        for name in ("pts.zarrvectors", "lines.zarrvectors"):
            for dirpath, _, names in os.walk(root / name):
                for f in names:
                    full = os.path.join(dirpath, f)
                    client.upload_file(full, "vec", "data/" + os.path.relpath(full, root))
        url = "s3://vec/data/pts.zarrvectors"
        assert vv.info(url)["levels"] == vv.info(root / "pts.zarrvectors")["levels"]
        box = (np.array([0.0, 0, 0]), np.array([50.0, 50, 50]))
        for level, names in ((0, ["intensity"]), (2, [])):
            same_points(vv.read_points(url, level=level, bbox=box, attribute_names=names),
                        vv.read_points(root / "pts.zarrvectors", level=level, bbox=box, attribute_names=names))
        for a, b in zip(vv.read_polylines("s3://vec/data/lines.zarrvectors")["polylines"],
                        vv.read_polylines(root / "lines.zarrvectors")["polylines"]):
            np.testing.assert_array_equal(a, b)
        with pytest.raises(Exception, match="absent"):
            vv.read_points("s3://vec/data/absent.zarrvectors")
    finally:
        s3.stop()


@pytest.mark.skipif(not CLI, reason="VOXFIELD_CLI names the built voxfield")
def test_cli_reads_urls(served, tmp_path):
    server, root = served
    url = f"{server.url}/pts.zarrvectors"
    r = subprocess.run([CLI, "vectors", "info", url, "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    local = subprocess.run([CLI, "vectors", "info", root / "pts.zarrvectors", "--json"], capture_output=True,
                           text=True)
    assert json.loads(r.stdout)["levels"] == json.loads(local.stdout)["levels"]
    for src, out in ((url, tmp_path / "r.npy"), (root / "pts.zarrvectors", tmp_path / "l.npy")):
        r = subprocess.run([CLI, "vectors", "read", src, "--level", "0", "--bbox", "0,0,0,40,40,40",
                            "--attributes", "intensity", "-o", out], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), np.load(tmp_path / "l.npy"))
    r = subprocess.run([CLI, "vectors", "build-pyramid", url, "--factors", "2:1"], capture_output=True, text=True)
    assert r.returncode != 0 and "needs a local store" in r.stderr

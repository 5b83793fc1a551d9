"""voxfield.serve against clients nobody here wrote: zarr-python reads the Zarr v3 /
OME-Zarr view, tensorstore the Neuroglancer precomputed view; HTTP behaviour (Range,
HEAD, ETag, CORS) and hostile requests checked with the standard library's client."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

import voxfield as vf

zarr = pytest.importorskip("zarr")


def mean_down(x: np.ndarray) -> np.ndarray:
    """numpy's 2x2x2 block mean (fewer at the far edges) of axes longer than 1,
    rounded half to even for integers: what a computed level holds."""
    r = [2 if n > 1 else 1 for n in x.shape]
    s = [-(-n // f) for n, f in zip(x.shape, r)]
    pad = np.zeros([a * f for a, f in zip(s, r)])
    cnt = np.zeros_like(pad)
    sl = tuple(slice(0, n) for n in x.shape)
    pad[sl] = x
    cnt[sl] = 1
    shape = (s[0], r[0], s[1], r[1], s[2], r[2])
    m = pad.reshape(shape).sum((1, 3, 5)) / cnt.reshape(shape).sum((1, 3, 5))
    if np.issubdtype(x.dtype, np.integer):
        return np.round(m).astype(x.dtype)
    return m.astype(x.dtype)


def gray_png(png: bytes) -> np.ndarray:
    """An 8-bit grey PNG decoded (filtered scanlines), by hand: no imaging library here."""
    import zlib
    idat, pos, width, height = b"", 8, None, None
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        kind, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
            assert data[8] == 8 and data[9] == 0  # 8-bit grey
        if kind == b"IDAT":
            idat += data
        pos += 12 + n
    raw = zlib.decompress(idat)
    rows, prev = [], bytearray(width)
    for r in range(height):
        line = raw[r * (width + 1):(r + 1) * (width + 1)]
        ftype, cur = line[0], bytearray(line[1:])
        for i in range(width):
            left = cur[i - 1] if i else 0
            up, ul = prev[i], (prev[i - 1] if i else 0)
            if ftype == 1:
                cur[i] = (cur[i] + left) & 255
            elif ftype == 2:
                cur[i] = (cur[i] + up) & 255
            elif ftype == 3:
                cur[i] = (cur[i] + (left + up) // 2) & 255
            elif ftype == 4:
                p = left + up - ul
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                cur[i] = (cur[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else ul)) & 255
        rows.append(bytes(cur))
        prev = cur
    return np.frombuffer(b"".join(rows), np.uint8).reshape(height, width)


def get(url: str, headers: dict | None = None, method: str = "GET"):
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve")
    rng = np.random.default_rng(7)
    u8 = rng.integers(0, 256, (37, 70, 131), dtype=np.uint8)
    z, y, x = np.mgrid[0:45, 0:33, 0:70] / 9.0
    f32 = (np.sin(x) * np.cos(y) + z).astype(np.float32)
    np.save(d / "u8.npy", u8)
    np.save(d / "f32.npy", f32)
    return d, u8, f32


@pytest.fixture(scope="module")
def server(volumes):
    d, u8, f32 = volumes
    srv = vf.serve({"u8": d / "u8.npy", "f32": f32, "z": (d / "f32.npy")}, port=0, chunk=32)
    yield srv
    srv.stop()


def test_zarr_view_equals_source_and_numpy_mean_levels(server, volumes):
    _, u8, f32 = volumes
    for name, a in (("u8", u8), ("f32", f32)):
        g = zarr.open_group(server.url + f"zarr/{name}.ome.zarr/", mode="r")
        ms = g.attrs["ome"]["multiscales"][0]
        assert g.attrs["ome"]["version"] == "0.5"
        paths = [ds["path"] for ds in ms["datasets"]]
        level = a
        for i, p in enumerate(paths):
            got = g[p][:]
            assert got.dtype == a.dtype and got.shape == level.shape, (name, i)
            if i == 0:
                np.testing.assert_array_equal(got, a)
            else:
                # float levels: the same mean in another summation order
                np.testing.assert_allclose(got, level, rtol=1e-6, atol=1e-6)
                level = got
            tf = ms["datasets"][i]["coordinateTransformations"]
            assert tf[0]["scale"] == [float(2 ** i)] * 3  # every axis halves at each level here
            assert tf[1]["translation"] == [(2 ** i - 1) / 2] * 3  # centres of the blocks
            level = mean_down(level) if i + 1 < len(paths) else level
        assert max(g[paths[-1]].shape) <= 32  # coarsened until one chunk holds a level


def test_ome_zarr_sources_serve_their_own_levels(tmp_path):
    ome_writer = pytest.importorskip("ome_zarr.writer")
    ome_io = pytest.importorskip("ome_zarr.io")
    a = np.arange(40 * 30 * 20, dtype=np.uint16).reshape(40, 30, 20)
    store = tmp_path / "img.ome.zarr"
    root = zarr.open_group(str(store), mode="w")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ome_writer.write_image(a, root, axes="zyx", scaler=ome_writer.Scaler(max_layer=1, method="nearest"))
    del ome_io
    src = zarr.open_group(str(store), mode="r")
    ome = src.attrs.get("ome", src.attrs)
    stored = [src[ds["path"]][:] for ds in ome["multiscales"][0]["datasets"]]
    assert len(stored) == 2
    with vf.serve([store], port=0, chunk=16) as srv:
        assert srv.fields == ["img"]
        g = zarr.open_group(srv.url + "zarr/img.ome.zarr/", mode="r")
        n = len(g.attrs["ome"]["multiscales"][0]["datasets"])
        np.testing.assert_array_equal(g["0"][:], stored[0])
        np.testing.assert_array_equal(g["1"][:], stored[1])  # the source's own level, as stored
        # below the stored levels: means of the last stored one
        np.testing.assert_array_equal(g["2"][:], mean_down(stored[1]))
        assert n >= 3
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(srv.url + "api/fields", timeout=5)


def test_models_are_served_as_their_fields(tmp_path):
    z, y, x = np.mgrid[0:20, 0:18, 0:22] / 20.0
    a = (10 + 5 * np.sin(3 * x) * np.cos(2 * y) + 3 * z).astype(np.float32)
    m = vf.compress(a, epochs=3, batch=256, log2_table=10, levels=8, width=32)
    m.save(tmp_path / "m.vxn")
    rng = np.random.default_rng(1)
    pts = rng.random((300, 3)) * [4, 3, 2]
    rbf = vf.RBFInterpolator(pts, np.sin(pts).sum(1), points_per_cell=300)
    rbf.save(tmp_path / "fit.vxr")
    with vf.serve({"m": tmp_path / "m.vxn", "fit": (tmp_path / "fit.vxr", (9, 7, 5))}, port=0, chunk=16) as srv:
        g = zarr.open_group(srv.url + "zarr/m.ome.zarr/", mode="r")
        model = vf.open(tmp_path / "m.vxn")
        want = model.grid(*[np.arange(n, dtype=float) for n in a.shape], dtype=np.float64)
        got = g["0"][:]
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
        # a coarse level is the network at the coarse voxels' centres, not a mean
        c = [np.arange(n) * 2 + 0.5 for n in g["1"].shape]
        np.testing.assert_allclose(g["1"][:], model.grid(*c, dtype=np.float64), rtol=1e-5, atol=1e-4)
        r = zarr.open_group(srv.url + "zarr/fit.ome.zarr/", mode="r")
        lo = pts.min(0)
        nodes = [np.linspace(lo[k], pts.max(0)[k], n) for k, n in enumerate((9, 7, 5))]
        xi = np.stack(np.meshgrid(*nodes, indexing="ij"), axis=-1).reshape(-1, 3)
        np.testing.assert_allclose(r["0"][:].ravel(), rbf(xi), rtol=1e-5, atol=1e-5)
        scale = r.attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
        np.testing.assert_allclose(scale, [(pts.max(0)[k] - lo[k]) / (n - 1) for k, n in enumerate((9, 7, 5))])


def test_tensorstore_reads_precomputed_transposed(server, volumes):
    ts = pytest.importorskip("tensorstore")
    _, u8, _ = volumes
    t = ts.open({"driver": "neuroglancer_precomputed",
                 "kvstore": server.url + "precomputed/u8/", "scale_index": 0}).result()
    got = np.asarray(t.read().result())
    assert got.shape == u8.shape[::-1] + (1,)
    np.testing.assert_array_equal(got[..., 0], u8.transpose(2, 1, 0))  # x, y, z = axes 2, 1, 0
    t1 = ts.open({"driver": "neuroglancer_precomputed",
                  "kvstore": server.url + "precomputed/u8/", "scale_index": 1}).result()
    np.testing.assert_array_equal(np.asarray(t1.read().result())[..., 0], mean_down(u8).transpose(2, 1, 0))


def test_ranges_head_etag_and_cors(server, volumes):
    _, u8, _ = volumes
    url = server.url + "zarr/u8.ome.zarr/0/c/0/1/4"  # at the far edge of axis 2: padded
    status, h, full = get(url)
    assert status == 200 and len(full) == 32 ** 3
    chunk = np.frombuffer(full, np.uint8).reshape(32, 32, 32)
    np.testing.assert_array_equal(chunk[:, :, :3], u8[:32, 32:64, 128:])
    assert not chunk[:, :, 3:].any()  # the fill value
    status, h2, part = get(url, {"Range": "bytes=0-99"})
    assert status == 206 and part == full[:100] and h2["Content-Range"] == f"bytes 0-99/{len(full)}"
    status, _, part = get(url, {"Range": "bytes=-10"})
    assert status == 206 and part == full[-10:]
    status, _, part = get(url, {"Range": f"bytes={len(full) - 5}-"})
    assert status == 206 and part == full[-5:]
    status, h3, _ = get(url, {"Range": f"bytes={len(full)}-{len(full) + 10}"})
    assert status == 416 and h3["Content-Range"] == f"bytes */{len(full)}"
    status, h4, body = get(url, method="HEAD")
    assert status == 200 and body == b"" and int(h4["Content-Length"]) == len(full)
    status, _, body = get(url, {"If-None-Match": h["ETag"]})
    assert status == 304 and body == b""
    status, h5, _ = get(url, {"Origin": "http://viewer.example"})
    assert h5["Access-Control-Allow-Origin"] == "*"
    status, h6, _ = get(url, {"Origin": "http://viewer.example", "Access-Control-Request-Method": "GET",
                              "Access-Control-Request-Headers": "range"}, method="OPTIONS")
    assert status == 200 and "GET" in h6["Access-Control-Allow-Methods"]
    assert h6["Access-Control-Allow-Origin"] == "*"
    # gzip when accepted, identical bytes after decoding
    import gzip
    status, h7, z = get(url, {"Accept-Encoding": "gzip"})
    assert h7.get("Content-Encoding") == "gzip" and gzip.decompress(z) == full


def test_pictures_and_values(server, volumes):
    _, u8, f32 = volumes
    status, h, body = get(server.url + "render/u8.png?azimuth=30&elevation=20&size=96x64")
    assert status == 200 and h["Content-Type"] == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
    status, _, body = get(server.url + "slice/f32.png?axis=1&index=5&window=0,2")
    assert status == 200
    img = gray_png(body)
    height, width = img.shape
    want = np.round(np.clip(f32[:, 5, :] / 2.0, 0, 1) * 255)
    assert img.shape == want.shape
    assert np.abs(img.astype(int) - want).max() <= 1
    status, _, body = get(server.url + "value/u8?index=3,4,5")
    assert status == 200 and json.loads(body)["value"] == float(u8[3, 4, 5])
    fields = json.loads(get(server.url + "api/fields")[2])["fields"]
    assert [f["name"] for f in fields] == ["u8", "f32", "z"]
    assert fields[0]["shape"] == list(u8.shape) and fields[0]["dtype"] == "uint8"
    lo, hi = fields[1]["window"]  # the coarsest level's range: inside the field's
    assert f32.min() <= lo < hi <= f32.max()
    status, _, body = get(server.url + "view/u8")
    assert status == 200 and b"viewer.js" in body
    # options a picture does not take are refused, not ignored
    status, _, body = get(server.url + "slice/u8.png?axis=0&azimuth=30")
    assert status == 400 and b"azimuth" in body
    status, _, body = get(server.url + "render/u8.png?mode=mip&opacity=0:0,1:1")
    assert status == 400 and b"opacity" in body


@pytest.mark.parametrize("path,code", [
    ("zarr/u8.ome.zarr/../../etc/passwd", 400),
    ("zarr/u8.ome.zarr/0%2F..%2F/zarr.json", 400),
    ("zarr/u8.ome.zarr/0/c/a/0/0", 400),
    ("zarr/u8.ome.zarr/0/c/-1/0/0", 400),
    ("zarr/u8.ome.zarr/0/c/99/0/0", 404),
    ("zarr/u8.ome.zarr/9/zarr.json", 404),
    ("zarr/nope.ome.zarr/zarr.json", 404),
    ("precomputed/u8/0/0-1000_0-1000_0-1000", 404),
    ("precomputed/u8/0/0-64_0-64_0-1000000000", 404),
    ("precomputed/u8/0/5-2_0-1_0-1", 400),
    ("precomputed/u8/0/0-1_0-1", 400),
    ("precomputed/u8/x/0-1_0-1_0-1", 400),
    ("render/u8.png?size=100000", 400),
    ("slice/u8.png?axis=7", 400),
    ("value/u8?index=1,2,99999", 404),
    ("etc/passwd", 404),
])
def test_hostile_requests_are_4xx(server, path, code):
    status, _, body = get(server.url + path)
    assert status == code, (path, status, body)
    assert body.strip()  # a message


def test_huge_chunk_keys_are_refused_before_work(tmp_path):
    big = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.uint8, shape=(600, 600, 600))
    del big
    with vf.serve({"big": tmp_path / "big.npy"}, port=0) as srv:
        t = time.time()
        status, _, body = get(srv.url + "precomputed/big/0/0-600_0-600_0-600")
        assert status == 400 and b"over the" in body and time.time() - t < 5


def test_dropped_connections_leave_the_server_answering(server):
    host, port = server.url.split("//")[1].split("/")[0].split(":")
    socks = []
    for i in range(2000):
        s = socket.create_connection((host, int(port)), timeout=5)
        if i % 2:
            s.sendall(b"GET /zarr/u8.ome.zarr/0/c/0/0/0 HTTP/1.1\r\nHost: x\r\n")  # never finished
        socks.append(s)
        if len(socks) >= 200:
            for s in socks:
                s.close()
            socks = []
    for s in socks:
        s.close()
    t = time.time()
    status, _, body = get(server.url + "zarr/u8.ome.zarr/zarr.json")
    assert status == 200 and time.time() - t < 5


def test_concurrent_readers_get_equal_bytes(server):
    url = server.url + "zarr/u8.ome.zarr/1/c/0/0/1"
    out, errors = [], []

    def read():
        try:
            out.append(get(url)[2])
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=read) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(out)) == 1 and len(out) == 32


def test_tokens_and_bad_options(volumes):
    d, _, _ = volumes
    with vf.serve({"u8": d / "u8.npy"}, bind="127.0.0.1", port=0, token="abcdef123456") as srv:
        assert srv.url.endswith("/abcdef123456/")
        root = srv.url.rsplit("abcdef123456/", 1)[0]
        status, _, body = get(root + "zarr/u8.ome.zarr/zarr.json")
        assert status == 403 and b"token" in body
        assert get(srv.url + "zarr/u8.ome.zarr/zarr.json")[0] == 200
    with vf.serve({"u8": d / "u8.npy"}, bind="0.0.0.0", port=0) as srv:
        token = srv.url.rstrip("/").rsplit("/", 1)[1]
        assert len(token) == 32  # made, since the address is not loopback
    with pytest.raises(ValueError, match="token"):
        vf.serve({"u8": d / "u8.npy"}, port=0, token="short")
    with pytest.raises(ValueError, match="name"):
        vf.serve({"../x": d / "u8.npy"}, port=0)
    with pytest.raises(ValueError, match="chunk"):
        vf.serve({"u8": d / "u8.npy"}, port=0, chunk=1024)
    with pytest.raises(ValueError, match="shape applies to RBF"):
        vf.serve({"u8": (d / "u8.npy", (4, 4, 4))}, port=0)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        vf.serve({"x": d / "missing.npy"}, port=0)


def test_zstd_chunks(volumes):
    d, u8, _ = volumes
    with vf.serve({"u8": d / "u8.npy"}, port=0, codec="zstd") as srv:
        g = zarr.open_group(srv.url + "zarr/u8.ome.zarr/", mode="r")
        assert any(c["name"] == "zstd" for c in g["0"].metadata.to_dict()["codecs"])
        np.testing.assert_array_equal(g["0"][:], u8)


def test_cli_serve_prints_urls_and_stops_on_ctrl_c(volumes):
    import os
    import signal
    import subprocess
    cli = os.environ.get("VOXFIELD_CLI")
    if not cli:
        pytest.skip("VOXFIELD_CLI is not set")
    d, u8, _ = volumes
    p = subprocess.Popen([cli, "serve", str(d / "u8.npy"), "--name", f"other={d / 'f32.npy'}", "--port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        assert first.startswith("serving http://127.0.0.1:"), first
        url = first.split()[1]
        lines = [p.stdout.readline() for _ in range(2)]
        assert "u8:" in lines[0] and "view/u8" in lines[0]
        g = zarr.open_group(url + "zarr/u8.ome.zarr/", mode="r")
        np.testing.assert_array_equal(g["0"][:], u8)
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    assert p.returncode == 0 and "stopped" in err
    bad = subprocess.run([cli, "serve", str(d / "u8.npy"), "--port", "0", "--shape", "4,4,4"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "--shape" in bad.stderr


def test_precomputed_jpeg_for_uint8():
    ts = pytest.importorskip("tensorstore")
    z, y, x = np.mgrid[0:40, 0:50, 0:70]
    a = (127 + 100 * np.sin(x / 9) * np.cos(y / 7) + z).astype(np.uint8)
    f = (a / 255).astype(np.float32)
    with vf.serve({"a": a, "f": f}, port=0, jpeg=95) as srv:
        info = json.loads(get(srv.url + "precomputed/a/info")[2])
        assert {s["encoding"] for s in info["scales"]} == {"jpeg"}
        assert json.loads(get(srv.url + "precomputed/f/info")[2])["scales"][0]["encoding"] == "raw"
        t = ts.open({"driver": "neuroglancer_precomputed", "kvstore": srv.url + "precomputed/a/",
                     "scale_index": 0}).result()
        got = np.asarray(t.read().result())[..., 0].astype(int)
        err = np.abs(got - a.transpose(2, 1, 0).astype(int))
        assert err.mean() < 1.5 and err.max() <= 16, (err.mean(), err.max())  # lossy, but the same picture
    with pytest.raises(ValueError, match="jpeg"):
        vf.serve({"a": a}, port=0, jpeg=0)


def test_oblique_slices_equal_the_fields_plane(server, volumes):
    d, _, f32 = volumes
    origin, u, v = [3.0, 2.5, 4.0], [0.2, 0.9, 0.1], [0.7, -0.1, 0.5]
    q = "origin=3,2.5,4&u=0.2,0.9,0.1&v=0.7,-0.1,0.5&size=40x30&window=0,2"
    status, _, body = get(server.url + "slice/f32.png?" + q)
    assert status == 200
    img = gray_png(body)
    want = vf.open(d / "f32.npy").plane(origin, u, v, (30, 40), dtype=np.float64)
    assert img.shape == want.shape == (30, 40)
    inside = np.isfinite(want)
    assert inside.any() and (~inside).any()  # the plane leaves the volume: black there
    w = np.round(np.clip(want[inside] / 2.0, 0, 1) * 255)
    assert np.abs(img[inside].astype(int) - w).max() <= 1
    assert (img[~inside] == 0).all()
    for bad in ["origin=1,2,3&u=1,0,0&v=2,0,0&size=8", "origin=1,2&u=1,0,0&v=0,1,0", "origin=1,2,3&u=1,0,0",
                "origin=1,2,3&u=1,0,0&v=0,1,0&axis=1", "axis=1&size=8", "origin=1,2,3&u=1,0,0&v=0,1,0&size=9999"]:
        status, _, body = get(server.url + "slice/f32.png?" + bad)
        assert status == 400 and body.strip(), (bad, body)


def test_stalled_clients_are_dropped_after_the_header_timeout(volumes):
    d, _, _ = volumes
    with vf.serve({"u8": d / "u8.npy"}, port=0, header_timeout=0.5) as srv:
        host, port = srv.url.split("//")[1].split("/")[0].split(":")
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"GET /zarr/u8.ome.zarr/zarr.json HTTP/1.1\r\nHost: x\r\n")  # never finished
        t = time.time()
        closed = s.recv(4096)  # the server closes (possibly after a 408)
        assert time.time() - t < 5 and (closed == b"" or b"408" in closed.split(b"\r\n")[0])
        s.close()
        assert get(srv.url + "zarr/u8.ome.zarr/zarr.json")[0] == 200


def test_cli_serve_refuses_hostile_inputs_and_options(tmp_path):
    import os
    import subprocess
    cli = os.environ.get("VOXFIELD_CLI")
    if not cli:
        pytest.skip("VOXFIELD_CLI is not set")
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((8, 8, 8), np.uint8))
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    trunc = tmp_path / "trunc.npy"
    trunc.write_bytes(good.read_bytes()[:-100])
    forged = tmp_path / "forged.npy"  # a header claiming 10^12 elements over 512 bytes
    head = good.read_bytes()
    hdr = head[10:10 + int.from_bytes(head[8:10], "little")].replace(b"(8, 8, 8)", b"(10000, 10000, 10000)")
    hdr = hdr.rstrip(b" \n") + b" " * ((64 - (10 + len(hdr.rstrip(b" \n")) + 1) % 64) % 64) + b"\n"
    forged.write_bytes(head[:8] + len(hdr).to_bytes(2, "little") + hdr + head[10 + int.from_bytes(head[8:10], "little"):])
    rng = np.random.default_rng(0)
    pts = rng.random((60, 3))
    vf.RBFInterpolator(pts, pts.sum(1)).save(tmp_path / "fit.vxr")
    cases = [
        ([str(fifo)], "pipe.npy"),
        (["/dev/zero"], "/dev/zero"),
        ([str(trunc)], "trunc.npy"),
        ([str(forged)], "forged.npy"),
        ([str(tmp_path / "missing.npy")], "missing.npy"),
        ([str(good), "--workers", "100000000000000000"], "workers"),
        ([str(good), "--workers", "0"], "workers"),
        ([str(good), "--timeout", "0"], "timeout"),
        ([str(good), "--timeout", "99999999999"], "timeout"),
        ([str(good), "--chunk", "100000"], "chunk"),
        ([str(good), "--jpeg", "0"], "jpeg"),
        ([str(good), "--codec", "lz77"], "codec"),
        ([str(good), "--token", "abc"], "token"),
        ([str(good), "--bind", "not-an-ip"], "bind"),
        ([str(tmp_path / "fit.vxr"), "--shape", "1000000,1000000,1000000"], "2^40"),
        ([str(good), "--name", f"../x={good}"], "name"),
        ([str(good), "--name", f"good={good}"], "two fields"),
    ]
    for args, said in cases:
        t = time.time()
        r = subprocess.run([cli, "serve", *args, "--port", "0"], capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and said in r.stderr, (args, r.returncode, r.stderr)
        assert "panicked" not in r.stderr and time.time() - t < 30, args
    assert os.path.exists(fifo) and good.read_bytes() == head  # nothing destroyed


def test_a_corrupt_chunk_is_an_error_never_data(tmp_path):
    a = np.arange(40 * 40 * 40, dtype=np.uint16).reshape(40, 40, 40)
    store = tmp_path / "c.zarr"
    z = zarr.create_array(str(store), shape=a.shape, chunks=(20, 20, 20), dtype=a.dtype,
                          compressors=[zarr.codecs.Crc32cCodec()], fill_value=0)
    z[:] = a
    chunk = store / "c" / "0" / "0" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[100] ^= 0xFF  # a flipped bit under a valid-looking store: crc32c must catch it
    chunk.write_bytes(bytes(raw))
    with vf.serve({"c": store}, port=0, chunk=20) as srv:
        for path in ["zarr/c.ome.zarr/0/c/0/0/0", "precomputed/c/0/0-20_0-20_0-20", "zarr/c.ome.zarr/1/c/0/0/0",
                     "slice/c.png?axis=0&index=3", "value/c?index=1,1,1"]:
            status, _, body = get(srv.url + path)
            assert status >= 500 and b"c.zarr" in body, (path, status, body[:200])
        ok = get(srv.url + "zarr/c.ome.zarr/0/c/1/1/1")  # an intact chunk still reads
        assert ok[0] == 200 and np.array_equal(np.frombuffer(ok[2], np.uint16).reshape(20, 20, 20),
                                               a[20:, 20:, 20:])


def test_python_serve_refuses_absurd_options(volumes):
    d, _, _ = volumes
    for kw, said in [(dict(workers=10 ** 19), "workers"), (dict(timeout=0.0), "timeout"),
                     (dict(timeout=float("nan")), "timeout"), (dict(header_timeout=-1.0), "header_timeout"),
                     (dict(cache_mb=-1), ""), (dict(port=70000), "")]:
        with pytest.raises((ValueError, OverflowError, TypeError), match=said):
            vf.serve({"u8": d / "u8.npy"}, **kw)


def test_paths_get_the_cli_s_default_names(tmp_path):
    """Python names a served path exactly as `voxfield serve` does (one rule, in voxfield-serve)."""
    np.save(tmp_path / "scan v2.npy", np.zeros((4, 4, 4), np.uint8))
    with vf.serve([tmp_path / "scan v2.npy"], port=0) as srv:
        assert srv.fields == ["scan_v2"]
    assert vf._stem("/data/brain.nii.gz") == "brain"
    assert vf._stem("s3://bucket/img.ome.zarr/") == "img"
    assert vf._stem("/x/cells.hdf5") == "cells" and vf._stem("/x/a+b.raw") == "a_b"

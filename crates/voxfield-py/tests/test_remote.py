"""Remote Zarr / OME-Zarr (issue 13): stores written by zarr-python and ome-zarr-py, served by a real
HTTP server started here (byte ranges, request log, injected faults) and by an S3-compatible server
(moto), sampled by voxfield and compared with the same store read locally."""

import http.server
import os
import re
import threading
import time

import numpy as np
import pytest

import voxfield as vf

zarr = pytest.importorskip("zarr")


class Server:
    """Serves `root` over HTTP/1.1 with byte ranges; logs every request; injects faults by path."""

    def __init__(self, root, latency=0.0):
        self.root = str(root)
        self.log = []  # (path, range header, status)
        self.faults = {}  # path suffix -> list of actions, consumed in order
        self.latency = latency  # seconds added to every response (an object store's round trip)
        self.sent = 0  # body bytes sent
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, a kept-alive connection
            # waits for the client's delayed ACK (40 ms) before the body. Object stores and
            # nginx set TCP_NODELAY; so does this server.
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_HEAD(self):
                self.reply(head=True)

            def do_GET(self):
                self.reply(head=False)

            def reply(self, head):
                path = self.path.split("?")[0]
                rng = self.headers.get("Range")
                if server.latency:
                    time.sleep(server.latency)
                action = None
                for suffix, actions in server.faults.items():
                    if path.endswith(suffix) and actions:
                        action = actions.pop(0)
                        break
                if action == "hang":
                    server.log.append((path, rng, "hang"))
                    time.sleep(8)
                    return
                if action in (403, 404, 503):
                    server.log.append((path, rng, action))
                    body = b"injected"
                    self.send_response(action)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                full = os.path.join(server.root, path.lstrip("/"))
                if not os.path.isfile(full):
                    server.log.append((path, rng, 404))
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = open(full, "rb").read()
                status, start, end = 200, 0, len(data)
                if rng:
                    m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
                    a, b = m.group(1), m.group(2)
                    if a == "":
                        start = max(0, len(data) - int(b))
                    else:
                        start, end = int(a), (int(b) + 1 if b else len(data))
                    end = min(end, len(data))
                    status = 206
                body = data[start:end]
                if action == "truncate":  # a body shorter than the bytes stored
                    body = body[: len(body) // 2]
                server.log.append((path, rng, status))
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                if action == "huge":  # claims 8 GiB, sends a few bytes and hangs up
                    self.send_header("Content-Length", str(8 << 30))
                    self.end_headers()
                    self.wfile.write(body[:100])
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)
                    server.sent += len(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def paths(self):
        return [p for p, _, _ in self.log]

    def close(self):
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A v3 array, a v2 array, a sharded v3 array and an OME-Zarr image, written by zarr-python /
    ome-zarr-py, with the numpy volume they hold."""
    root = tmp_path_factory.mktemp("served")
    rng = np.random.default_rng(0)
    vol = rng.random((40, 50, 60)).astype(np.float32)
    a = zarr.create_array(str(root / "v3.zarr"), shape=vol.shape, chunks=(16, 16, 16), dtype=vol.dtype)
    a[...] = vol
    a = zarr.create_array(str(root / "v2.zarr"), shape=vol.shape, chunks=(16, 16, 16), dtype=vol.dtype,
                          zarr_format=2)
    a[...] = vol
    a = zarr.create_array(str(root / "sharded.zarr"), shape=vol.shape, chunks=(8, 8, 8), shards=(32, 32, 32),
                          dtype=vol.dtype)
    a[...] = vol
    ome_writer = pytest.importorskip("ome_zarr.writer")
    grp = zarr.open_group(str(root / "image.ome.zarr"), mode="w")
    ome_writer.write_image(vol, grp, axes="zyx", scaler=None, storage_options={"chunks": (16, 16, 16)})
    for name, consolidated in (("group.zarr", True), ("plain.zarr", False)):
        g = zarr.open_group(str(root / name), mode="w")
        g.create_array("a", shape=(4, 5, 6), chunks=(2, 5, 6), dtype="u2")
        g.create_group("sub").create_array("b", shape=(7, 8), chunks=(7, 8), dtype="f8")
        if consolidated:
            with __import__("warnings").catch_warnings():
                __import__("warnings").simplefilter("ignore")  # "not part of the v3 spec" (it is a convention)
                zarr.consolidate_metadata(str(root / name))
    server = Server(root)
    yield server, root, vol
    server.close()


def points_in(shape, n, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, 3)) * (np.array(shape) - 1)


@pytest.mark.parametrize("name", ["v3.zarr", "v2.zarr", "sharded.zarr", "image.ome.zarr"])
def test_remote_sampling_equals_local(stores, name):
    server, root, vol = stores
    pts = points_in(vol.shape, 500)
    local = vf.open(str(root / name)).sample(pts)
    remote = vf.open(f"{server.url}/{name}").sample(pts)
    np.testing.assert_array_equal(remote, local)
    assert np.isfinite(remote).all()


def test_only_touched_chunks_are_fetched(stores):
    server, root, vol = stores
    pts = np.array([[1.0, 1.0, 1.0], [2.4, 3.6, 4.4], [20.0, 20.0, 20.0]])  # chunks (0,0,0) and (1,1,1)
    server.log.clear()
    v = vf.open(f"{server.url}/v3.zarr")
    got = v.sample(pts, method="nearest")
    np.testing.assert_array_equal(got, vol[tuple(np.rint(pts).astype(int).T)])
    chunks = sorted(p for p in server.paths() if "/c/" in p)
    assert chunks == ["/v3.zarr/c/0/0/0", "/v3.zarr/c/1/1/1"], server.log
    # Metadata: each document once (one round trip to open an array, two for an OME-Zarr image).
    assert [p for p in server.paths() if "/c/" not in p] == ["/v3.zarr/zarr.json"], server.log
    server.log.clear()
    vf.open(f"{server.url}/image.ome.zarr")
    assert server.paths() == ["/image.ome.zarr/zarr.json", "/image.ome.zarr/s0/zarr.json"], server.log
    # The open volume keeps its decoded chunks across requests: sampling again fetches nothing.
    server.log.clear()
    np.testing.assert_array_equal(v.sample(pts[::-1], method="nearest"), got[::-1])
    assert server.log == [], server.log
    # Sharded: the shard index and the inner chunks' byte ranges, never a whole shard.
    server.log.clear()
    got = vf.open(f"{server.url}/sharded.zarr").sample(pts, method="nearest")
    np.testing.assert_array_equal(got, vol[tuple(np.rint(pts).astype(int).T)])
    shard_reqs = [(p, r) for p, r, _ in server.log if "/c/" in p]
    assert shard_reqs and all(r is not None for _, r in shard_reqs), server.log
    stored = os.path.getsize(root / "sharded.zarr" / "c" / "0" / "0" / "0")
    fetched = 0
    for _, r in shard_reqs:
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", r)
        fetched += (int(m.group(2)) - int(m.group(1)) + 1) if m.group(1) else int(m.group(2))
    assert fetched < stored / 4, (fetched, stored)


def test_transient_errors_are_retried(stores):
    server, root, vol = stores
    pts = np.array([[30.0, 30.0, 30.0]])
    server.log.clear()
    server.faults = {"/v3.zarr/c/1/1/1": [503, 503]}
    got = vf.open(f"{server.url}/v3.zarr").sample(pts, method="nearest")
    assert got[0] == vol[30, 30, 30]
    assert [s for p, _, s in server.log if p.endswith("/c/1/1/1")] == [503, 503, 200]
    server.faults = {}


def test_hangs_404_403_and_truncated_bodies_are_clear_errors(stores, monkeypatch):
    server, root, vol = stores
    pts = np.array([[30.0, 30.0, 30.0]])
    monkeypatch.setenv("VOXFIELD_HTTP_TIMEOUT", "1")
    monkeypatch.setenv("VOXFIELD_HTTP_RETRIES", "1")
    url = f"{server.url}/v3.zarr"
    server.faults = {"/v3.zarr/c/1/1/1": ["hang", "hang"]}
    t = time.perf_counter()
    with pytest.raises(Exception) as e:
        vf.open(url).sample(pts)
    assert time.perf_counter() - t < 7, "the timeout did not cut the hanging request"
    msg = str(e.value).lower()
    assert "v3.zarr" in msg and "timed out" in msg, msg
    server.faults = {"/v3.zarr/c/1/1/1": [403]}
    with pytest.raises(Exception) as e:
        vf.open(url).sample(pts)
    assert "403" in str(e.value) and "v3.zarr" in str(e.value), str(e.value)
    with pytest.raises(Exception) as e:
        vf.open(f"{server.url}/missing.zarr")
    assert "missing.zarr" in str(e.value) and "not a Zarr array or group" in str(e.value)
    server.faults = {"/v3.zarr/zarr.json": [403]}
    with pytest.raises(Exception) as e:
        vf.open(url)
    assert "403" in str(e.value) and "v3.zarr" in str(e.value), str(e.value)
    server.faults = {"/v3.zarr/c/1/1/1": ["truncate", "truncate", "truncate"]}
    with pytest.raises(Exception) as e:
        vf.open(url).sample(pts)
    assert "v3.zarr" in str(e.value), str(e.value)
    # A body claiming 8 GiB is refused before anything is allocated for it.
    server.faults = {"/v3.zarr/c/1/1/1": ["huge"] * 3}
    with pytest.raises(Exception) as e:
        vf.open(url).sample(pts)
    assert "8589934592 bytes" in str(e.value) and "VOXFIELD_MAX_OBJECT_MB" in str(e.value), str(e.value)
    server.faults = {}
    # The store is unharmed: a fresh open reads the right value; absurd settings are clamped, not fatal.
    monkeypatch.setenv("VOXFIELD_HTTP_TIMEOUT", "1e300")
    monkeypatch.setenv("VOXFIELD_HTTP_RETRIES", "1e300")
    assert vf.open(url).sample(pts, method="nearest")[0] == vol[30, 30, 30]
    monkeypatch.setenv("VOXFIELD_MAX_OBJECT_MB", "1e300")
    assert vf.open(url).sample(pts, method="nearest")[0] == vol[30, 30, 30]
    monkeypatch.setenv("VOXFIELD_HTTP_TIMEOUT", "nan")
    monkeypatch.setenv("VOXFIELD_HTTP_RETRIES", "-3")
    monkeypatch.setenv("VOXFIELD_MAX_OBJECT_MB", "nan")
    assert vf.open(url).sample(pts, method="nearest")[0] == vol[30, 30, 30]


def test_hostile_remote_metadata_and_urls(stores, tmp_path):
    """An array whose zarr.json claims 10^12 voxels per axis (over 2^56 bytes) is refused when opened, naming
    the store, not read as the wrong chunk; one claiming 10^5 per axis (2.4·10^11 chunks) reads only the chunk asked for (the fill
    value: nothing is stored); URLs without a bucket or a store are clear errors."""
    import json

    server, root, vol = stores
    big = root / "huge.zarr"
    big.mkdir(exist_ok=True)
    meta = json.loads((root / "v3.zarr" / "zarr.json").read_text())
    meta["shape"] = [10**12] * 3
    (big / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match="2\\^56 bytes") as e:
        vf.open(f"{server.url}/huge.zarr")
    assert "huge.zarr" in str(e.value)
    meta["shape"] = [10**5] * 3
    (big / "zarr.json").write_text(json.dumps(meta))
    server.log.clear()
    v = vf.open(f"{server.url}/huge.zarr")
    np.testing.assert_array_equal(v.sample(np.array([[5e4, 5e4, 5e4]]), method="nearest"), [0.0])
    assert [p for p in server.paths() if "/c/" in p] == ["/huge.zarr/c/3125/3125/3125"], server.log
    for url, msg in (("s3:///x.zarr", "bucket"), (f"{server.url}/", "not a Zarr array or group")):
        with pytest.raises(Exception) as e:
            vf.open(url)
        assert msg in str(e.value), str(e.value)


def test_remote_groups_are_listed(stores):
    server, root, vol = stores
    with pytest.raises(Exception) as e:
        vf.open(f"{server.url}/group.zarr")
    msg = str(e.value)
    assert "is a Zarr group" in msg and "a [4, 5, 6] uint16" in msg and "sub/b [7, 8] float64" in msg, msg
    with pytest.raises(Exception) as e:
        vf.open(f"{server.url}/plain.zarr")
    assert "without consolidated metadata" in str(e.value) and "plain.zarr" in str(e.value)
    got = vf.open(f"{server.url}/group.zarr/sub/b").sample(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(got, [0.0])  # never written: the fill value


def test_s3_compatible_server(stores, tmp_path, monkeypatch):
    """The same stores uploaded to a moto S3 server in a bucket created here."""
    server, root, vol = stores
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    s3 = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    s3.start()
    try:
        host, port = s3.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}.items():
            monkeypatch.setenv(k, v)
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="vox")
        for name in ("v3.zarr", "sharded.zarr", "image.ome.zarr", "plain.zarr"):
            for dirpath, _, files in os.walk(root / name):
                for f in files:
                    full = os.path.join(dirpath, f)
                    client.upload_file(full, "vox", "data/" + os.path.relpath(full, root))
        pts = points_in(vol.shape, 300, seed=4)
        for name in ("v3.zarr", "sharded.zarr", "image.ome.zarr"):
            remote = vf.open(f"s3://vox/data/{name}", endpoint_url=endpoint).sample(pts)
            np.testing.assert_array_equal(remote, vf.open(str(root / name)).sample(pts))
        with pytest.raises(Exception) as e:  # S3 lists a group without consolidated metadata
            vf.open("s3://vox/data/plain.zarr", endpoint_url=endpoint)
        assert "a [4, 5, 6] uint16" in str(e.value) and "sub/b [7, 8] float64" in str(e.value), str(e.value)
        with pytest.raises(Exception) as e:
            vf.open("s3://vox/data/absent.zarr", endpoint_url=endpoint)
        assert "absent.zarr" in str(e.value)
        with pytest.raises(Exception) as e:
            vf.open("s3://nobucket/x.zarr", endpoint_url=endpoint)
        assert "nobucket" in str(e.value)
    finally:
        s3.stop()


@pytest.mark.skipif(not os.environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_cli_verbs_take_urls(stores, tmp_path):
    """`info`, `sample` and `slice` on an http:// OME-Zarr equal the same verbs on the local copy."""
    import subprocess

    server, root, vol = stores
    cli = os.environ["VOXFIELD_CLI"]
    pts = points_in(vol.shape, 200, seed=7)
    np.save(tmp_path / "p.npy", pts)
    for src, tag in ((str(root / "image.ome.zarr"), "local"), (f"{server.url}/image.ome.zarr", "remote")):
        r = subprocess.run([cli, "sample", src, "--points", tmp_path / "p.npy", "--out", tmp_path / f"{tag}.npy"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([cli, "slice", src, "--origin", "20,0,0", "--u", "0,1,0", "--v", "0,0,1",
                            "--size", "50,60", "--out", tmp_path / f"{tag}_plane.npy"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([cli, "info", src], capture_output=True, text=True)
        assert r.returncode == 0 and "40" in r.stdout, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "remote.npy"), np.load(tmp_path / "local.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "remote_plane.npy"), np.load(tmp_path / "local_plane.npy"))
    r = subprocess.run([cli, "info", f"{server.url}/group.zarr"], capture_output=True, text=True)
    assert r.returncode == 0 and "sub/b" in r.stdout and "a" in r.stdout, r.stderr
    r = subprocess.run([cli, "info", f"{server.url}/nothing.zarr"], capture_output=True, text=True)
    assert r.returncode != 0 and "nothing.zarr" in r.stderr and "panicked" not in r.stderr


def test_a_store_whose_every_chunk_is_missing_warns(stores):
    """Issue 22: a remote store answering 404 for every chunk sampled to fill values with no word."""
    import warnings

    server, root, vol = stores
    pts = np.array([[30.0, 30.0, 30.0]])
    url = f"{server.url}/v3.zarr"
    server.faults = {"/v3.zarr/c/1/1/1": [404]}
    with pytest.warns(UserWarning, match=r"none of the 1 chunks read from .*v3\.zarr exists"):
        got = vf.open(url).sample(pts, method="nearest")
    assert got[0] == 0.0
    server.faults = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert vf.open(url).sample(pts, method="nearest")[0] == vol[30, 30, 30]
    # Sharded: a shard the server does not have.
    url = f"{server.url}/sharded.zarr"
    server.faults = {"/sharded.zarr/c/0/0/0": [404] * 4}
    with pytest.warns(UserWarning, match=r"none of the 1 chunks read from .*sharded\.zarr exists"):
        assert vf.open(url).sample(pts, method="nearest")[0] == 0.0
    server.faults = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert vf.open(url).sample(pts, method="nearest")[0] == vol[30, 30, 30]


def test_render_reads_only_the_level_it_needs(stores, tmp_path):
    """Issue 23: a remote multiscale OME-Zarr renders from the level matching the pixels; no chunk of a
    finer level is requested, and the picture equals the same render of the local copy."""
    import subprocess

    server, root, vol = stores
    cli = os.environ["VOXFIELD_CLI"]
    big = np.random.default_rng(4).random((64, 64, 64)).astype(np.float32)
    np.save(tmp_path / "big.npy", big)
    pyr = root / "pyramid.ome.zarr"
    if not pyr.exists():
        r = subprocess.run([cli, "convert", tmp_path / "big.npy", pyr, "--levels", "4", "--chunks", "16,16,16"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    server.log.clear()
    args = ["--mode", "mip", "--size", "12,12", "--azimuth", "20", "--elevation", "10"]
    r = subprocess.run([cli, "render", f"{server.url}/pyramid.ome.zarr", *args, "-o", tmp_path / "remote.npy"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    chunks = [p for p in server.paths() if "/c/" in p]
    levels = {p.split("/pyramid.ome.zarr/")[1].split("/")[0] for p in chunks}
    # 12 pixels over the bounding sphere: about 9 voxels per pixel, so level 3 (spacing 8).
    assert levels == {"3"}, sorted(set(chunks))
    r = subprocess.run([cli, "render", pyr, *args, "-o", tmp_path / "local.npy"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "remote.npy"), np.load(tmp_path / "local.npy"))
    # Python picks the same level through the same door.
    server.log.clear()
    got = vf.render(vf.open(f"{server.url}/pyramid.ome.zarr"), mode="mip", size=(12, 12), azimuth=20, elevation=10,
                    dtype=np.float32)
    assert {p.split("/pyramid.ome.zarr/")[1].split("/")[0] for p in server.paths() if "/c/" in p} == {"3"}
    np.testing.assert_array_equal(got, np.load(tmp_path / "local.npy"))

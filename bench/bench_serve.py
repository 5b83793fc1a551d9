"""`voxfield serve` side by side with neuroglancer's Python `LocalVolume` (Tornado, the array in
memory) and a static file server (Python's ThreadingHTTPServer) over the same data written as a
Zarr v3 array (64³ chunks, uncompressed) — nginx (Debian's nginx-light: `apt-get install nginx-light`)
and, for reference, Python's http.server — in one run:

- 64³ chunk throughput of level 0 with 1 client (one keep-alive connection, sequential) and 32
  concurrent clients, by curl (`--parallel`), medians of 3 passes after one warm pass;
- voxfield's computed level 1 (mean of 2×2×2 blocks) cold (fresh server) and warm (cached);
- render latency of 512² frames (DVR, changing azimuth) with 4 concurrent viewers, p50/p95.

Volumes: nilearn's MNI152 T1 (197×233×189 u8) and a 512³ uint16 volume (smooth + noise).

    .venv-render/bin/python -c "import sys; sys.path.insert(0, 'bench'); import _mni; _mni.mni()"
    cargo build --release -p voxfield-cli
    .venv/bin/python bench/bench_serve.py            # the test env: zarr, neuroglancer, numpy

Every server is started by this script on a free port and stopped at the end.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
CLI = ROOT / "target" / "release" / "voxfield"
C = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, timeout: float = 60.0) -> None:
    t = time.time()
    while time.time() - t < timeout:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:  # noqa: BLE001
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def curl(urls: list[str], parallel: int) -> tuple[float, int]:
    """Seconds and bytes to fetch every URL (`parallel` connections; 1: one keep-alive connection)."""
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as f:
        for u in urls:
            f.write(f'url = "{u}"\noutput = "/dev/null"\n')
        cfg = f.name
    args = ["curl", "-s", "-f", "-K", cfg, "-w", "%{size_download}\n"]
    if parallel > 1:
        args[1:1] = ["--parallel", "--parallel-immediate", "--parallel-max", str(parallel)]
    t = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True)
    dt = time.perf_counter() - t
    os.unlink(cfg)
    if out.returncode != 0:
        raise RuntimeError(f"curl failed ({out.returncode}): {out.stderr[:300]}")
    return dt, sum(int(x) for x in out.stdout.split())


def chunk_boxes(shape):
    for i in range(0, shape[0], C):
        for j in range(0, shape[1], C):
            for k in range(0, shape[2], C):
                yield (i, j, k), tuple(min(C, n - s) for n, s in zip(shape, (i, j, k)))


def throughput(urls: list[str], parallel: int, voxel_bytes: int, passes: int = 3) -> dict:
    """Chunks/s and MB/s of voxels delivered (`voxel_bytes` in all the URLs' boxes; a
    compressed response counts the voxels it holds)."""
    curl(urls, parallel)  # warm: caches, page cache, first-use work
    reps = max(1, 480 // len(urls))  # at least ~500 requests per pass: a small volume repeats its chunks
    runs = [curl(urls * reps, parallel) for _ in range(passes)]
    t = statistics.median(r[0] for r in runs)
    return {"chunks_per_s": reps * len(urls) / t, "MB_per_s": reps * voxel_bytes / t / 1e6, "seconds": t,
            "chunks": reps * len(urls), "wire_bytes": runs[0][1]}


def start_voxfield(npy: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    p = subprocess.Popen([str(CLI), "serve", str(npy), "--port", str(port)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    url = p.stdout.readline().split()[1]
    wait_up(url + "api/fields")
    return p, url


NGINX = """
worker_processes 2; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{port}; root {root}; location / {{ }} }}
}}
"""


def start_nginx(zroot: Path) -> tuple[subprocess.Popen, str]:
    """nginx (Debian's nginx-light, 2 workers, sendfile) over the Zarr directory."""
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    atexit.register(shutil.rmtree, tmp, True)  # its config, pid and temp paths
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX.format(tmp=tmp, port=port, root=zroot))
    p = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    wait_up(url + "mni_t1.zarr/zarr.json")
    return p, url


def start_static(zroot: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                          "--directory", str(zroot)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    wait_up(url)
    return p, url


LOCALVOLUME = r"""
import sys, time, numpy as np, neuroglancer
neuroglancer.set_server_bind_address("127.0.0.1", int(sys.argv[2]))
a = np.load(sys.argv[1], mmap_mode="r")
a = np.ascontiguousarray(a)
v = neuroglancer.LocalVolume(a, dimensions=neuroglancer.CoordinateSpace(
    names=["z", "y", "x"], units="nm", scales=[1, 1, 1]))
viewer = neuroglancer.Viewer()
with viewer.txn() as s:
    s.layers["a"] = neuroglancer.ImageLayer(source=v)
# a volume is addressed as VIEWER_TOKEN.VOLUME_TOKEN once a layer of the viewer uses it
print(neuroglancer.server.global_server.server_url, viewer.token + "." + v.token, flush=True)
while True:
    time.sleep(3600)
"""


def start_localvolume(npy: Path) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    p = subprocess.Popen([sys.executable, "-c", LOCALVOLUME, str(npy), str(port)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    url, token = p.stdout.readline().split()
    info = json.loads(urllib.request.urlopen(f"{url}/neuroglancer/info/{token}", timeout=60).read())
    return p, url, token, info


def render_latency(url: str, name: str, viewers: int = 4, frames: int = 15) -> dict:
    lat, errors = [], []

    def viewer(v):
        for f in range(frames):
            az = (v * 90 + f * 7) % 360
            u = f"{url}render/{name}.png?azimuth={az}&elevation=20&size=512"
            t = time.perf_counter()
            try:
                urllib.request.urlopen(u, timeout=120).read()
                lat.append(time.perf_counter() - t)
            except Exception as e:  # noqa: BLE001
                errors.append(str(e))
    urllib.request.urlopen(f"{url}render/{name}.png?size=64", timeout=300).read()  # lattice built once
    threads = [threading.Thread(target=viewer, args=(v,)) for v in range(viewers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    q = np.percentile(np.array(lat) * 1e3, [50, 95])
    return {"p50_ms": float(q[0]), "p95_ms": float(q[1]), "frames": len(lat)}


def volumes(args) -> list[tuple[str, Path]]:
    out = []
    t1 = DATA / "mni_t1.npy"
    if not t1.exists():
        sys.path.insert(0, str(ROOT / "bench"))
        import _mni
        t1 = _mni.mni()
    out.append(("mni_t1", t1))
    big = DATA / f"vol{args.size}.npy"
    if not big.exists():
        n = args.size
        rng = np.random.default_rng(0)
        a = np.lib.format.open_memmap(big, mode="w+", dtype=np.uint16, shape=(n, n, n))
        x = np.linspace(0, 6, n)
        for i in range(n):
            a[i] = (20000 + 10000 * np.sin(x[None, :] + i / 40) * np.cos(x[:, None])
                    + rng.normal(0, 500, (n, n))).astype(np.uint16)
        a.flush()
        del a
    out.append((f"vol{args.size}", big))
    return out


def write_static(name: str, npy: Path) -> Path:
    import zarr
    root = DATA / "static"
    path = root / f"{name}.zarr"
    if not (path / "zarr.json").exists():
        a = np.load(npy, mmap_mode="r")
        z = zarr.create_array(str(path), shape=a.shape, chunks=(C, C, C), dtype=a.dtype, compressors=None,
                              fill_value=0, overwrite=True,
                              config={"write_empty_chunks": True})  # a static server 404s a missing chunk
        for i in range(0, a.shape[0], C):
            z[i:i + C] = a[i:i + C]
    return root


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "serve.json")
    args = ap.parse_args()
    if not CLI.exists():
        sys.exit(f"{CLI} is missing: cargo build --release -p voxfield-cli")
    results = {}
    for name, npy in volumes(args):
        arr = np.load(npy, mmap_mode="r")
        shape, itemsize = arr.shape, arr.dtype.itemsize
        del arr
        boxes = list(chunk_boxes(shape))
        row = {"shape": list(shape)}
        static_root = write_static(name, npy)

        p, url = start_voxfield(npy)
        try:
            field = npy.stem
            grid = [-(-n // C) for n in shape]
            v_urls = [f"{url}zarr/{field}.ome.zarr/0/c/{i // C}/{j // C}/{k // C}" for (i, j, k), _ in boxes]
            vb = int(np.prod(shape)) * itemsize  # voxels in level 0 (edge chunks clipped)
            vb_full = len(boxes) * C ** 3 * itemsize  # Zarr's chunks are full, padded at the edges
            row["voxfield_1"] = throughput(v_urls, 1, vb_full)
            row["voxfield_32"] = throughput(v_urls, 32, vb_full)
            shape1 = [-(-n // 2) for n in shape]
            l1 = [f"{url}zarr/{field}.ome.zarr/1/c/{i}/{j}/{k}" for i in range(-(-shape1[0] // C))
                  for j in range(-(-shape1[1] // C)) for k in range(-(-shape1[2] // C))]
            row["render"] = render_latency(url, field)
        finally:
            p.terminate()
            p.wait()
        # computed level 1: cold on a fresh server (each chunk computed from level 0), then warm
        p, url = start_voxfield(npy)
        try:
            l1 = [u.replace(u.split("/zarr/")[0] + "/", url) for u in l1]
            vb1 = len(l1) * C ** 3 * itemsize
            t, b = curl(l1, 32)
            row["voxfield_level1_cold_32"] = {"chunks_per_s": len(l1) / t, "MB_per_s": vb1 / t / 1e6, "seconds": t}
            row["voxfield_level1_warm_32"] = throughput(l1, 32, vb1)
        finally:
            p.terminate()
            p.wait()
        del grid

        for server, start in (("nginx", start_nginx), ("pyhttp", start_static)):
            p, surl = start(static_root)
            try:
                s_urls = [f"{surl}{name}.zarr/c/{i // C}/{j // C}/{k // C}" for (i, j, k), _ in boxes]
                row[f"{server}_1"] = throughput(s_urls, 1, vb_full)
                row[f"{server}_32"] = throughput(s_urls, 32, vb_full)
            finally:
                p.terminate()
                p.wait()

        p, lurl, token, info = start_localvolume(npy)
        try:
            assert info["shape"] == list(shape), info
            # Boxes in the array's axis order; the scale key is the downsampling factor per axis.
            # npz (zlib'd .npy) is LocalVolume's default encoding and what Neuroglancer fetches; its
            # `raw` fails under numpy 2 (it calls the removed ndarray.tostring).
            l_urls = [f"{lurl}/neuroglancer/npz/{token}/1,1,1/{i},{j},{k}/{i + s[0]},{j + s[1]},{k + s[2]}"
                      for (i, j, k), s in boxes]
            row["localvolume_1"] = throughput(l_urls, 1, vb)
            row["localvolume_32"] = throughput(l_urls, 32, vb)
            b1 = list(chunk_boxes(shape1))
            l1_urls = [f"{lurl}/neuroglancer/npz/{token}/2,2,2/{i},{j},{k}/{i + s[0]},{j + s[1]},{k + s[2]}"
                       for (i, j, k), s in b1]
            row["localvolume_level1_32"] = throughput(l1_urls, 32, int(np.prod(shape1)) * itemsize)
        finally:
            p.terminate()
            p.wait()
        results[name] = row
        print(f"== {name} {shape}")
        for k, v in row.items():
            if isinstance(v, dict):
                print(f"  {k:26s} " + "  ".join(f"{a}={b:.1f}" if isinstance(b, float) else f"{a}={b}"
                                                 for a, b in v.items()))
        print(f"  ratio level 1 voxfield cold/LocalVolume (32): "
              f"{row['voxfield_level1_cold_32']['chunks_per_s'] / row['localvolume_level1_32']['chunks_per_s']:.2f}x")
        for c in (1, 32):
            print(f"  ratio voxfield/LocalVolume ({c}): "
                  f"{row[f'voxfield_{c}']['chunks_per_s'] / row[f'localvolume_{c}']['chunks_per_s']:.2f}x   "
                  f"voxfield/nginx ({c}): {row[f'voxfield_{c}']['chunks_per_s'] / row[f'nginx_{c}']['chunks_per_s']:.2f}x   "
                  f"voxfield/http.server ({c}): "
                  f"{row[f'voxfield_{c}']['chunks_per_s'] / row[f'pyhttp_{c}']['chunks_per_s']:.2f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

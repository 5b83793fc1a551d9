"""Remote sampling (issue 13): voxfield and zarr-python + dask side by side on the same OME-Zarr
served over HTTP by a local server (byte ranges, a request log, and an added per-request latency
that stands in for an object store's round trip), then `voxfield.dask.to_dask` on a LocalCluster
with 1 and 2 worker processes of one core each (RAYON_NUM_THREADS=1).

    .venv/bin/python bench/bench_remote.py [--shape 256,512,512] [--chunk 64] [--latency-ms 0,20]
        [--repeats 5] [--only points,plane,cluster]

Rows: 1e3 and 1e5 uniform random points (linear), 1e3 points along a smooth curve (a tract or probe
track, touching a few chunks), and a 1000² axial plane. Each repeat opens the
store afresh (cold cache on both sides). The anchor is what a dask user writes: `da.from_zarr`
over fsspec's HTTP store, points grouped by chunk, each group's bounding box computed by dask
(threads) and interpolated with `scipy.ndimage.map_coordinates(order=1)`. Outputs are checked
equal first. Reported: median seconds, ratio, chunk objects fetched, bytes moved against the stored
bytes of the chunks the points touch. Data go to bench/data/remote (ignored).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "remote")
sys.path.insert(0, os.path.join(HERE, "..", "crates", "voxfield-py", "tests"))


def make_volume(shape, chunk):
    import zarr
    from ome_zarr.writer import write_image

    path = os.path.join(DATA, f"vol_{'x'.join(map(str, shape))}_{chunk}.ome.zarr")
    if os.path.exists(os.path.join(path, "zarr.json")):
        return path
    os.makedirs(DATA, exist_ok=True)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    rng = np.random.default_rng(0)
    vol = (1000 * (np.sin(z / 17.0) + np.cos(y / 23.0) * np.sin(x / 29.0)) + 2000).astype(np.uint16)
    vol += rng.integers(0, 64, shape, dtype=np.uint16)
    grp = zarr.open_group(path, mode="w")
    write_image(vol, grp, axes="zyx", scaler=None, storage_options={"chunks": (chunk,) * 3})
    return path


def touched_bytes(root, name, log):
    """Stored bytes of the distinct chunk objects requested."""
    keys = {p for p, _, s in log if "/c/" in p and s in (200, 206)}
    return len(keys), sum(os.path.getsize(os.path.join(root, k.lstrip("/"))) for k in keys)


def anchor_points(url, pts):
    """zarr-python + dask: the chunks the points touch, then scipy per chunk group."""
    import dask
    import dask.array as da
    import zarr
    from scipy.ndimage import map_coordinates

    z = zarr.open_array(url, mode="r")
    a = da.from_zarr(z)
    cs = np.array(z.chunks)
    key = np.floor(pts / cs).astype(np.int64)
    order = np.lexsort(key.T[::-1])
    k = key[order]
    cuts = np.flatnonzero(np.any(np.diff(k, axis=0) != 0, axis=1)) + 1
    groups = np.split(order, cuts)
    boxes = []
    for g in groups:
        lo = np.maximum(np.floor(pts[g].min(0)).astype(int), 0)
        hi = np.minimum(np.floor(pts[g].max(0)).astype(int) + 2, z.shape)
        boxes.append((lo, hi))
    blocks = dask.compute(*[a[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] for lo, hi in boxes], scheduler="threads")
    out = np.empty(len(pts))
    for g, (lo, _), b in zip(groups, boxes, blocks):
        out[g] = map_coordinates(b.astype(np.float64), (pts[g] - lo).T, order=1, mode="nearest")
    return out


def run_points(server, root, rel, shape, n, repeats, plane=False):
    import voxfield as vf

    url = f"{server.url}/{rel}"
    rng = np.random.default_rng(n)
    if plane == "path":  # a smooth curve (a tract, a probe track): few chunks touched
        t = np.linspace(0, 1, n)
        c = np.array(shape) / 2
        pts = np.stack([c[0] + 0.3 * c[0] * np.sin(6 * t), c[1] * (0.5 + 0.6 * t), c[2] + 0.3 * c[2] * np.cos(4 * t)],
                       axis=1)
        plane = False
    elif plane:
        j, i = np.mgrid[0:1000, 0:1000]
        pts = np.stack([np.full(j.size, shape[0] / 2 + 0.3), j.ravel() * (shape[1] - 1) / 999.0,
                        i.ravel() * (shape[2] - 1) / 999.0], axis=1)
    else:
        pts = rng.uniform(0, 1, (n, 3)) * (np.array(shape) - 1)

    def ours():
        v = vf.open(url)
        if plane:
            return v.plane([shape[0] / 2 + 0.3, 0, 0], [0, 0, (shape[2] - 1) / 999.0],
                           [0, (shape[1] - 1) / 999.0, 0], (1000, 1000), dtype=np.float64).ravel()
        return v.sample(pts, dtype=np.float64)

    import json

    with open(os.path.join(root, rel, "zarr.json")) as f:
        level0 = json.load(f)["attributes"]["ome"]["multiscales"][0]["datasets"][0]["path"]

    def theirs():
        return anchor_points(f"{url}/{level0}", pts)

    a, b = ours(), theirs()
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    row = {}
    for name, f in (("voxfield", ours), ("anchor", theirs)):
        ts = []
        for _ in range(repeats):
            server.log.clear()
            server.sent = 0
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        chunks, stored = touched_bytes(root, rel, server.log)
        row[name] = (statistics.median(ts), len(server.log), chunks, server.sent, stored)
    return row


def cluster_scaling(path, repeats):
    import distributed
    import voxfield.dask as vd

    out = {}
    for workers in (1, 2):
        # One core per worker (voxfield's own thread pool too), so 2 workers can be 2× one.
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=40,
                                      env={"RAYON_NUM_THREADS": "1"}) as c, distributed.Client(c):
            arr = vd.to_dask(path, shape=(512, 512, 512), bounds=(0, 255, 0, 511, 0, 511), chunks=(64, 512, 512))
            arr.sum().compute()  # warm: workers open the store
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                arr.sum().compute()
                ts.append(time.perf_counter() - t)
            out[workers] = statistics.median(ts)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="256,512,512")
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--latency-ms", default="0,20")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", default="points,plane,cluster")
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    only = set(args.only.split(","))
    path = make_volume(shape, args.chunk)
    from test_remote import Server

    root, rel = os.path.dirname(path), os.path.basename(path)
    print(f"volume {shape} uint16, chunks {args.chunk}³, {sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 2**20:.1f} MiB stored")
    print("| latency | case | voxfield s | anchor s | × | voxfield requests / chunks / MiB sent (touched MiB) | anchor requests / MiB sent |")
    print("|---|---|---|---|---|---|---|")
    for lat in (float(x) for x in args.latency_ms.split(",")):
        server = Server(root, latency=lat / 1000)
        cases = []
        if "points" in only:
            cases += [("1e3 points", 1000, False), ("1e5 points", 100000, False),
                      ("1e3 points on a path", 1000, "path")]
        if "plane" in only:
            cases += [("1000² plane", 0, True)]
        for name, n, plane in cases:
            r = run_points(server, root, rel, shape, n, args.repeats, plane)
            v, a = r["voxfield"], r["anchor"]
            print(f"| {lat:.0f} ms | {name} | {v[0]:.3f} | {a[0]:.3f} | {a[0] / v[0]:.1f} | {v[1]} / {v[2]} / "
                  f"{v[3] / 2**20:.2f} ({v[4] / 2**20:.2f}, {v[3] / max(v[4], 1):.2f}×) | {a[1]} / {a[3] / 2**20:.2f} |",
                  flush=True)
        server.close()
    if "cluster" in only:
        t = cluster_scaling(path, args.repeats)
        print(f"\nto_dask 512³ linear grid (.sum()), LocalCluster 1 worker: {t[1]:.2f} s, 2 workers: {t[2]:.2f} s; "
              f"speed-up {t[1] / t[2]:.2f} (ideal 2; within {2 / (t[1] / t[2]):.2f}× of ideal)")


if __name__ == "__main__":
    main()

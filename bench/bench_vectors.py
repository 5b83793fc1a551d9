"""Vector pyramids (issue 12): zarr-vectors 0.9.2 and voxfield.vectors side by side in one run
on the seed tutorial's cases — 500k points (uniform in [0, 2000)³, intensity + label; chunk 200,
bin 50; pyramid 3 × (2, 1)) and 10k streamlines (normal(0, 30) steps, 30–120 vertices; chunk 100,
bin 25; pyramid (2,1), (2,4), (2,4)) — writes, pyramids (zarr-vectors' defaults: explicit ±1
cross-level links; voxfield reproducing its draws with single_seed so both stores are equal),
whole-level and bounding-box reads, each unsharded and with Zarr v3 sharding (4³ cells per shard)
on both sides; then --big points from an .npy through the release CLI (`vectors write` +
`build-pyramid`, throughput with the level-0 write included, peak RSS of each command, files per
level), with zarr-vectors run on the same points where they fit (--anchor-max).

    .venv/bin/python bench/bench_vectors.py [--points 500000] [--streamlines 10000] [--repeats 3]
        [--big 5000000] [--anchor-max 5000000] [--only write,pyramid,read,big]

Issue 27 rows (--only remote,select,zstd,validate,million,lines): remote bounding-box reads of level 0
and of the coarsest level over a local HTTP server (requests, bytes fetched against the bytes of the
cells the box touches, time) for zarr-vectors (fsspec) and voxfield; selection of 100 objects out
of --select-lines streamlines; write_points with compressor="zstd"; validate (level 3); write +
3-level pyramid of a 1 M-point cloud; time and peak RSS of the CLI's polyline pyramid of
--pyramid-lines streamlines (default 10^6, ~75 M vertices, 3 GB store; target < 1 GiB).

Medians of --repeats; every row first checks the two libraries' outputs are identical.
Stores are written under bench/data/ (ignored).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
from _timing import median_time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


def report(name, t_zv, t_vf, note=""):
    ratio = f"{t_zv / t_vf:8.1f}×" if t_zv else "       -"
    zv = f"{t_zv * 1e3:10.1f} ms" if t_zv else "           -"
    print(f"{name:60} {zv} {t_vf * 1e3:9.1f} ms {ratio}  {note}", flush=True)


def points_data(n, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 2000, (n, 3)).astype(np.float32)
    return p, {"intensity": rng.random(n).astype(np.float32), "label": rng.integers(0, 16, n).astype(np.int32)}


def streamline_data(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 30, (int(rng.integers(30, 120)), 3)).cumsum(0).astype(np.float32) for _ in range(n)]


class FreshPaths:
    """A new store path for every timed repeat (`setup`), the stores deleted only by `clear()` after
    the timing: this disk is mounted with online discard, and thousands of deletions just before a run
    slowed the next one up to 5× (measured), whichever library it was."""

    def __init__(self, base):
        self.base, self.made = base, []

    def setup(self):
        self.made.append(f"{self.base}.{len(self.made)}")
        shutil.rmtree(self.made[-1], ignore_errors=True)
        os.sync()

    @property
    def last(self):
        return self.made[-1]

    def clear(self):
        for p in self.made:
            shutil.rmtree(p, ignore_errors=True)


def files_per_level(store):
    out = {}
    for lv in sorted(d for d in os.listdir(store) if d.isdigit()):
        out[int(lv)] = sum(len(f) for _, _, f in os.walk(os.path.join(store, lv)))
    return out


def run_measured(cmd):
    """Runs cmd; returns (seconds, peak anonymous memory in MiB: RssAnon sampled every 5 ms, which leaves
    out the pages of a memory-mapped input that the page cache holds)."""
    t = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                peak = max([peak] + [int(x.split()[1]) for x in f if x.startswith("RssAnon:")])
        except OSError:
            pass
        time.sleep(0.005)
    secs = time.perf_counter() - t
    _, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"{cmd} failed: {err}")
    return secs, peak / 1024


def anchor_child(npy, store):
    """zarr-vectors writing and coarsening the --big points (its defaults), timed in this process."""
    from zarr_vectors.multiresolution.coarsen import build_pyramid
    from zarr_vectors.types.points import write_points

    t = np.load(npy, mmap_mode="r")
    p, w = np.ascontiguousarray(t[:, :3]), np.ascontiguousarray(t[:, 3])
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.perf_counter()
    write_points(store, p, chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50), vertex_attributes={"w": w})
    t1 = time.perf_counter()
    build_pyramid(store, factors=[(2, 1)] * 3)
    print(json.dumps({"write": t1 - t0, "total": time.perf_counter() - t0}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=500_000)
    ap.add_argument("--streamlines", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big", type=int, default=5_000_000)
    ap.add_argument("--only", default="write,pyramid,read,big")
    ap.add_argument("--anchor-max", type=int, default=5_000_000)
    ap.add_argument("--anchor-child", nargs=2)
    ap.add_argument("--select-lines", type=int, default=100_000)
    ap.add_argument("--pyramid-lines", type=int, default=1_000_000)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    a = ap.parse_args()
    if a.anchor_child:
        warnings.simplefilter("ignore")
        return anchor_child(*a.anchor_child)
    only = set(a.only.split(","))
    warnings.simplefilter("ignore")
    from zarr_vectors.multiresolution.coarsen import build_pyramid
    from zarr_vectors.types.points import read_points, write_points
    from zarr_vectors.types.polylines import read_polylines, write_polylines

    from voxfield import vectors as vv

    os.makedirs(DATA, exist_ok=True)
    p, attrs = points_data(a.points)
    lines = streamline_data(a.streamlines)
    nv = sum(len(x) for x in lines)
    d = {k: os.path.join(DATA, f"{k}.zarrvectors") for k in ("pz", "pv", "lz", "lv", "pbase", "lbase", "psbase",
                                                           "lsbase")}
    print(f"{'row':60} {'zarr-vectors':>13} {'voxfield':>12} {'speed-up':>9}")

    def fresh(path, base=None):
        # Untimed: a fresh copy, flushed to disk so its writeback does not land in the timed run.
        def f():
            shutil.rmtree(path, ignore_errors=True)
            if base:
                shutil.copytree(base, path)
            os.sync()
        return f

    # Level 0 writes (and the bases the pyramids start from).
    shutil.rmtree(d["pbase"], ignore_errors=True)
    vv.write_points(d["pbase"], p, chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50), vertex_attributes=attrs)
    shutil.rmtree(d["lbase"], ignore_errors=True)
    vv.write_polylines(d["lbase"], lines, chunk_shape=(100, 100, 100), bin_shape=(25, 25, 25))
    if "write" in only:
        fz = lambda: write_points(d["pz"], p, chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50),  # noqa: E731
                                  vertex_attributes=attrs)
        fv = lambda: vv.write_points(d["pv"], p, chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50),  # noqa: E731
                                     vertex_attributes=attrs)
        t_zv = median_time(fz, a.repeats, setup=fresh(d["pz"]))
        t_vf = median_time(fv, a.repeats, setup=fresh(d["pv"]))
        a_z, a_v = (read_points(s, attribute_names=["intensity", "label"]) for s in (d["pz"], d["pv"]))
        np.testing.assert_array_equal(a_z["positions"], a_v["positions"])
        np.testing.assert_array_equal(a_z["vertex_attributes"]["label"], a_v["vertex_attributes"]["label"])
        report(f"write_points {a.points} + 2 attributes", t_zv, t_vf)
        fz = lambda: write_polylines(d["lz"], lines, chunk_shape=(100, 100, 100), bin_shape=(25, 25, 25))  # noqa
        fv = lambda: vv.write_polylines(d["lv"], lines, chunk_shape=(100, 100, 100), bin_shape=(25, 25, 25))  # noqa
        t_zv = median_time(fz, a.repeats, setup=fresh(d["lz"]))
        t_vf = median_time(fv, a.repeats, setup=fresh(d["lv"]))
        for x, y in zip(read_polylines(d["lz"])["polylines"], vv.read_polylines(d["lv"])["polylines"]):
            np.testing.assert_array_equal(np.concatenate(x), y)
        report(f"write_polylines {a.streamlines} streamlines ({nv} vertices)", t_zv, t_vf)
        for shard in (4,):
            fz = lambda: write_points(d["pz"], p, chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50),  # noqa: E731
                                      vertex_attributes=attrs, shard_shape=shard)
            fv = lambda: vv.write_points(d["pv"], p, chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50),  # noqa
                                         vertex_attributes=attrs, shard_shape=shard)
            t_zv = median_time(fz, a.repeats, setup=fresh(d["pz"]))
            t_vf = median_time(fv, a.repeats, setup=fresh(d["pv"]))
            np.testing.assert_array_equal(read_points(d["pz"])["positions"], read_points(d["pv"])["positions"])
            report(f"  sharded {shard}³: write_points", t_zv, t_vf, f"files {files_per_level(d['pv'])}")
            fz = lambda: write_polylines(d["lz"], lines, chunk_shape=(100, 100, 100), bin_shape=(25, 25, 25),  # noqa
                                         shard_shape=shard)
            fv = lambda: vv.write_polylines(d["lv"], lines, chunk_shape=(100, 100, 100),  # noqa: E731
                                            bin_shape=(25, 25, 25), shard_shape=shard)
            t_zv = median_time(fz, a.repeats, setup=fresh(d["lz"]))
            t_vf = median_time(fv, a.repeats, setup=fresh(d["lv"]))
            for x, y in zip(read_polylines(d["lz"])["polylines"], read_polylines(d["lv"])["polylines"]):
                np.testing.assert_array_equal(np.concatenate(x), np.concatenate(y))
            report(f"  sharded {shard}³: write_polylines", t_zv, t_vf, f"files {files_per_level(d['lv'])}")
    if "pyramid" in only:
        shutil.rmtree(d["psbase"], ignore_errors=True)
        write_points(d["psbase"], p, chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50), vertex_attributes=attrs,
                     shard_shape=4)
        shutil.rmtree(d["lsbase"], ignore_errors=True)
        write_polylines(d["lsbase"], lines, chunk_shape=(100, 100, 100), bin_shape=(25, 25, 25), shard_shape=4)
        for name, base, factors in [(f"build_pyramid 3×(2,1), {a.points} points", "pbase", [(2, 1)] * 3),
                                    (f"build_pyramid (2,1),(2,4),(2,4), {a.streamlines} streamlines", "lbase",
                                     [(2, 1), (2, 4), (2, 4)]),
                                    ("  sharded 4³: points pyramid (store written by zarr-vectors)", "psbase",
                                     [(2, 1)] * 3),
                                    ("  sharded 4³: streamline pyramid (store written by zarr-vectors)", "lsbase",
                                     [(2, 1), (2, 4), (2, 4)])]:
            z, v = (d["pz"], d["pv"]) if base.startswith("p") else (d["lz"], d["lv"])
            t_copy = median_time(lambda: None, a.repeats, setup=fresh(v, d[base]))
            t_zv = median_time(lambda: build_pyramid(z, factors=factors, sparsity_seed=42), a.repeats, setup=fresh(z, d[base]))
            t_vf = median_time(lambda: vv.build_pyramid(v, factors=factors, sparsity_seed=42, single_seed=True), a.repeats,
                               setup=fresh(v, d[base]))
            for lv in (1, 2, 3):
                np.testing.assert_array_equal(read_points(z, level=lv)["positions"],
                                              vv.read_points(v, level=lv)["positions"])
            counts = [read_points(v, level=lv)["vertex_count"] for lv in (1, 2, 3)]
            report(name, t_zv, t_vf, f"vertices {counts}; files/level {files_per_level(v)}")
            del t_copy
    if "read" in only:
        if not os.path.exists(os.path.join(d["pv"], "3")):
            fresh(d["pv"], d["pbase"])()
            vv.build_pyramid(d["pv"], factors=[(2, 1)] * 3, sparsity_seed=42, single_seed=True)
        s = d["pv"]

        def row(name, f_zv, f_vf):
            w, g = f_zv(), f_vf()
            np.testing.assert_array_equal(g["positions"], w["positions"])
            report(name, median_time(f_zv, a.repeats), median_time(f_vf, a.repeats), f"({g['vertex_count']} vertices)")
        row(f"read level 0, {a.points} points + 2 attributes",
            lambda: read_points(s, attribute_names=["intensity", "label"]),
            lambda: vv.read_points(s, attribute_names=["intensity", "label"]))
        row("read coarsest level (3)", lambda: read_points(s, level=3), lambda: vv.read_points(s, level=3))
        for lo, hi in [((400, 600, 400), (600, 800, 600)), ((0, 0, 0), (2000, 2000, 100)),
                       ((420, 0, 0), (430, 2000, 2000))]:
            lo, hi = np.array(lo, float), np.array(hi, float)
            row(f"read bbox {tuple(int(x) for x in lo)}-{tuple(int(x) for x in hi)} + 2 attributes",
                lambda: read_points(s, bbox=(lo, hi), attribute_names=["intensity", "label"]),
                lambda: vv.read_points(s, bbox=(lo, hi), attribute_names=["intensity", "label"]))
    if only & {"remote", "select", "zstd", "validate", "million", "lines"}:
        issue27(a, only, p, attrs, d, write_points, read_points, build_pyramid, vv)
    if "big" in only and a.big:
        cli = os.path.join(os.path.dirname(HERE), "target", "release", "voxfield")
        npy = os.path.join(DATA, f"big_{a.big}.npy")
        if not os.path.exists(npy):
            rng = np.random.default_rng(1)
            table = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32, shape=(a.big, 4))
            for s0 in range(0, a.big, 1 << 22):
                s1 = min(a.big, s0 + (1 << 22))
                table[s0:s1, :3] = rng.uniform(0, 2000, (s1 - s0, 3))
                table[s0:s1, 3] = rng.random(s1 - s0)
            table.flush()
            del table
        for shard, links in ((None, "none"), (None, "explicit"), (4, "none"), (4, "explicit")):
            store = os.path.join(DATA, "big.zarrvectors")
            shutil.rmtree(store, ignore_errors=True)
            extra = ["--shard", str(shard)] if shard else []
            t_w, rss_w = run_measured([cli, "vectors", "write", npy, "-o", store, "--chunk", "200,200,200", "--bin",
                                       "50,50,50", "--attributes", "w", *extra])
            t_p, rss_p = run_measured([cli, "vectors", "build-pyramid", store, "--factors", "2,2,2", "--links", links])
            print(f"voxfield CLI, {a.big} points + 1 attribute, {'sharded 4³' if shard else 'unsharded'}, links {links}:"
                  f" write {t_w:.2f} s (peak RssAnon {rss_w:.0f} MiB) + 3-level pyramid {t_p:.2f} s (peak RssAnon {rss_p:.0f}"
                  f" MiB) = {a.big / (t_w + t_p) / 1e6:.2f} M points/s; files/level {files_per_level(store)}",
                  flush=True)
        if a.big <= a.anchor_max:
            store = os.path.join(DATA, "big_zv.zarrvectors")
            r = subprocess.run([sys.executable, "-c", "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:],"
                                " capture_output=True, text=True); print(r.stdout.strip()); "
                                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.stderr.write(r.stderr)",
                                sys.executable, __file__, "--anchor-child", npy, store], capture_output=True, text=True)
            out = r.stdout.strip().splitlines()
            res, rss = json.loads(out[-2]), int(out[-1]) / 1024
            print(f"zarr-vectors 0.9.2, same points: write {res['write']:.2f} s + 3-level pyramid (explicit links) "
                  f"{res['total'] - res['write']:.2f} s = {a.big / res['total'] / 1e6:.2f} M points/s; peak RSS "
                  f"{rss:.0f} MiB", flush=True)
            shutil.rmtree(store, ignore_errors=True)
        else:
            print(f"zarr-vectors not run at {a.big} points (--anchor-max {a.anchor_max}): it holds a level in Python "
                  f"dicts (1.8 GiB peak at 5M points in ../shared/reference)")


class Served:
    """DATA over HTTP/1.1 (index pages for folders, as fsspec and voxfield list a plain server), every
    request logged with the bytes sent."""

    def __init__(self, root, latency=0.0):
        import functools
        import http.server
        import threading
        self.log = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.translate_path(self.path)
                server.log.append((self.path, os.path.getsize(path) if os.path.isfile(path) else 0))
                if latency:
                    time.sleep(latency)  # an object store's round trip
                super().do_GET()

            def do_HEAD(self):
                server.log.append((self.path, 0))
                super().do_HEAD()

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 128  # both clients open many connections at once (socketserver's default is 5)

        self.httpd = Server(("127.0.0.1", 0), functools.partial(Handler, directory=root))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def touched_bytes(store, level, lo, hi, arrays):
    """Bytes of the cells of `arrays` that the box touches (what a reader must fetch at least)."""
    meta = json.load(open(os.path.join(store, str(level), "vertices", "zarr.json")))
    cs = json.load(open(os.path.join(store, str(level), "zarr.json")))["attributes"]["zarr_vectors_level"].get(
        "chunk_shape") or json.load(open(os.path.join(store, "zarr.json")))["attributes"]["zarr_vectors"]["chunk_shape"]
    origin = meta["attributes"].get("chunk_grid_origin", [0, 0, 0])
    c_lo, c_hi = np.floor(np.asarray(lo) / cs).astype(int), np.floor(np.asarray(hi) / cs).astype(int)
    total = 0
    for k in meta["attributes"]["nonempty_chunks"]:
        c = np.array([int(x) for x in k.split(".")])
        if np.all(c >= c_lo) and np.all(c <= c_hi):
            rel = "/".join(str(v) for v in c - origin)
            for arr in arrays:
                f = os.path.join(store, str(level), arr, "c", rel)
                total += os.path.getsize(f) if os.path.exists(f) else 0
    return total


def issue27(a, only, p, attrs, d, write_points, read_points, build_pyramid, vv):
    from zarr_vectors.validate import validate as zv_validate

    if "remote" in only or "validate" in only:
        if not os.path.exists(os.path.join(d["pv"], "3")):
            shutil.rmtree(d["pv"], ignore_errors=True)
            shutil.copytree(d["pbase"], d["pv"])
            vv.build_pyramid(d["pv"], factors=[(2, 1)] * 3, sparsity_seed=42, single_seed=True)
    for latency in ([0.0, a.latency_ms / 1e3] if "remote" in only else []):
        remote_rows(a, d, read_points, vv, latency)
    if "zstd" in only:
        fz, fv = FreshPaths(d["pz"] + "_zstd"), FreshPaths(d["pv"] + "_zstd")
        kw = dict(chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50), vertex_attributes=attrs, compressor="zstd")
        t_zv = median_time(lambda: write_points(fz.last, p, **kw), a.repeats, setup=fz.setup)
        t_vf = median_time(lambda: vv.write_points(fv.last, p, **kw), a.repeats, setup=fv.setup)
        z, v = fz.last, fv.last
        import numcodecs
        cells = [f for f in (os.path.relpath(os.path.join(r, x), z) for r, _, fs in os.walk(z) for x in fs)
                 if not f.endswith("zarr.json")]
        differ = [f for f in cells if open(os.path.join(z, f), "rb").read() != open(os.path.join(v, f), "rb").read()]
        decoded = all(numcodecs.Zstd().decode(open(os.path.join(z, f), "rb").read())
                      == numcodecs.Zstd().decode(open(os.path.join(v, f), "rb").read()) for f in differ)
        fz.clear()
        fv.clear()
        report(f"write_points {a.points} + 2 attributes, compressor=zstd", t_zv, t_vf,
               f"{len(cells) - len(differ)} of {len(cells)} cell files byte-identical, the rest equal decoded: "
               f"{decoded} (libzstd 1.5.7 here, 1.5.6 in numcodecs)")
    if "validate" in only:
        s = d["pv"]
        r_zv = zv_validate(s, level=3)
        r_vf = vv.validate(s, level=3)
        assert r_zv.ok and r_vf["ok"]
        report(f"validate level 3, {a.points}-point store with 3 coarse levels",
               median_time(lambda: zv_validate(s, level=3), a.repeats),
               median_time(lambda: vv.validate(s, level=3), a.repeats), "both pass")
    if "million" in only:
        m = 1_000_000
        pm, am = points_data(m, seed=3)
        z, v = os.path.join(DATA, "m_zv.zarrvectors"), os.path.join(DATA, "m_vf.zarrvectors")
        kw = dict(chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50), vertex_attributes=am)

        fz, fv = FreshPaths(z), FreshPaths(v)
        t_zv = median_time(lambda: (write_points(fz.last, pm, **kw),
                                    build_pyramid(fz.last, factors=[(2, 1)] * 3, sparsity_seed=42)),
                           a.repeats, setup=fz.setup)
        t_vf = median_time(lambda: (vv.write_points(fv.last, pm, **kw), vv.build_pyramid(
            fv.last, factors=[(2, 1)] * 3, sparsity_seed=42, single_seed=True)), a.repeats, setup=fv.setup)
        for lv in (1, 2, 3):
            np.testing.assert_array_equal(read_points(fz.last, level=lv)["positions"],
                                          vv.read_points(fv.last, level=lv)["positions"])
        fz.clear()
        fv.clear()
        report("write + 3-level pyramid, 1 M points + 2 attributes", t_zv, t_vf, "levels equal")
    if "select" in only:
        n = a.select_lines
        store = lines_store(n)
        from zarr_vectors.types.points import read_points as zv_read
        ids = sorted(np.random.default_rng(6).choice(n, 100, replace=False).tolist())
        w = zv_read(store, object_ids=ids)
        g = vv.select(store, objects=ids)
        assert w["vertex_count"] == g["vertex_count"]
        report(f"select 100 objects of {n} streamlines", median_time(lambda: zv_read(store, object_ids=ids), a.repeats),
               median_time(lambda: vv.select(store, objects=ids), a.repeats), f"{g['vertex_count']} vertices")
    if "lines" in only:
        n = a.pyramid_lines
        store = lines_store(n)
        cli = os.environ.get("VOXFIELD_CLI") or os.path.join(os.path.dirname(HERE), "target", "release", "voxfield")
        work = store + "_pyr"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(store, work)
        t, rss = run_measured([cli, "vectors", "build-pyramid", work, "--factors", "2:1,2:4,2:4"])
        print(f"voxfield CLI polyline pyramid (2:1,2:4,2:4) of {n} streamlines: {t:.1f} s, peak RssAnon {rss:.0f} MiB;"
              f" files/level {files_per_level(work)}", flush=True)
        shutil.rmtree(work, ignore_errors=True)


def lines_store(n):
    """A store of n random-walk streamlines (chunk 100), written once under bench/data."""
    from voxfield import vectors as vv

    store = os.path.join(DATA, f"lines_{n}.zarrvectors")
    if not os.path.exists(store):
        vv.write_polylines(store, streamline_data(n, seed=5), chunk_shape=(100, 100, 100))
    return store


def remote_rows(a, d, read_points, vv, latency):
    """Remote bbox reads of level 0 and level 3 over a local server, with `latency` seconds added to
    each request (an object store's round trip) or none."""
    if True:
        server = Served(DATA, latency)
        url = f"{server.url}/pv.zarrvectors"
        names = ["intensity", "label"]
        for level, (lo, hi), arrays in [(0, ((400, 600, 400), (600, 800, 600)),
                                         ["vertices", "vertex_attributes/intensity", "vertex_attributes/label"]),
                                        (3, ((0, 0, 0), (1000, 1000, 1000)), ["vertices"])]:
            lo, hi = np.array(lo, float), np.array(hi, float)
            kw = {"attribute_names": names} if level == 0 else {}
            w = read_points(url, level=level, bbox=(lo, hi), **kw)
            g = vv.read_points(url, level=level, bbox=(lo, hi), **kw)
            np.testing.assert_array_equal(g["positions"], w["positions"])
            stats = {}
            for who, fn in (("zv", lambda: read_points(url, level=level, bbox=(lo, hi), **kw)),
                            ("vf", lambda: vv.read_points(url, level=level, bbox=(lo, hi), **kw))):
                server.log.clear()
                fn()
                cells = sum(n for path, n in server.log if "/c/" in path)
                stats[who] = (len(server.log), sum(n for _, n in server.log), cells)
                stats[who + "_t"] = median_time(fn, a.repeats)
            touched = touched_bytes(d["pv"], level, lo, hi, arrays)
            report(f"remote (HTTP{f', +{latency * 1e3:.0f} ms a request' if latency else ''}) bbox level {level}"
                   f"{' + 2 attributes' if level == 0 else ''}",
                   stats["zv_t"], stats["vf_t"],
                   f"requests zv {stats['zv'][0]} / vf {stats['vf'][0]}; bytes zv {stats['zv'][1]} / vf "
                   f"{stats['vf'][1]}, of which cells zv {stats['zv'][2]} / vf {stats['vf'][2]} = "
                   f"{stats['vf'][2] / touched:.2f}× the {touched} bytes of the touched cells; "
                   f"{g['vertex_count']} vertices")
        server.close()


if __name__ == "__main__":
    main()

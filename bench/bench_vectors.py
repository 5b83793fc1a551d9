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
        t_zv = median_time(fz, a.repeats, fresh(d["pz"]))
        t_vf = median_time(fv, a.repeats, fresh(d["pv"]))
        a_z, a_v = (read_points(s, attribute_names=["intensity", "label"]) for s in (d["pz"], d["pv"]))
        np.testing.assert_array_equal(a_z["positions"], a_v["positions"])
        np.testing.assert_array_equal(a_z["vertex_attributes"]["label"], a_v["vertex_attributes"]["label"])
        report(f"write_points {a.points} + 2 attributes", t_zv, t_vf)
        fz = lambda: write_polylines(d["lz"], lines, chunk_shape=(100, 100, 100), bin_shape=(25, 25, 25))  # noqa
        fv = lambda: vv.write_polylines(d["lv"], lines, chunk_shape=(100, 100, 100), bin_shape=(25, 25, 25))  # noqa
        t_zv = median_time(fz, a.repeats, fresh(d["lz"]))
        t_vf = median_time(fv, a.repeats, fresh(d["lv"]))
        for x, y in zip(read_polylines(d["lz"])["polylines"], vv.read_polylines(d["lv"])["polylines"]):
            np.testing.assert_array_equal(np.concatenate(x), y)
        report(f"write_polylines {a.streamlines} streamlines ({nv} vertices)", t_zv, t_vf)
        for shard in (4,):
            fz = lambda: write_points(d["pz"], p, chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50),  # noqa: E731
                                      vertex_attributes=attrs, shard_shape=shard)
            fv = lambda: vv.write_points(d["pv"], p, chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50),  # noqa
                                         vertex_attributes=attrs, shard_shape=shard)
            t_zv = median_time(fz, a.repeats, fresh(d["pz"]))
            t_vf = median_time(fv, a.repeats, fresh(d["pv"]))
            np.testing.assert_array_equal(read_points(d["pz"])["positions"], read_points(d["pv"])["positions"])
            report(f"  sharded {shard}³: write_points", t_zv, t_vf, f"files {files_per_level(d['pv'])}")
            fz = lambda: write_polylines(d["lz"], lines, chunk_shape=(100, 100, 100), bin_shape=(25, 25, 25),  # noqa
                                         shard_shape=shard)
            fv = lambda: vv.write_polylines(d["lv"], lines, chunk_shape=(100, 100, 100),  # noqa: E731
                                            bin_shape=(25, 25, 25), shard_shape=shard)
            t_zv = median_time(fz, a.repeats, fresh(d["lz"]))
            t_vf = median_time(fv, a.repeats, fresh(d["lv"]))
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
            t_copy = median_time(lambda: None, a.repeats, fresh(v, d[base]))
            t_zv = median_time(lambda: build_pyramid(z, factors=factors, sparsity_seed=42), a.repeats, fresh(z, d[base]))
            t_vf = median_time(lambda: vv.build_pyramid(v, factors=factors, sparsity_seed=42, single_seed=True), a.repeats,
                       fresh(v, d[base]))
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


if __name__ == "__main__":
    main()

"""Vector pyramids (issue 12): zarr-vectors 0.9.2 and voxfield.vectors side by side in one run
on the seed tutorial's cases — 500k points (uniform in [0, 2000)³, intensity + label; chunk 200,
bin 50; pyramid 3 × (2, 1)) and 10k streamlines (normal(0, 30) steps, 30–120 vertices; chunk 100,
bin 25; pyramid (2,1), (2,4), (2,4)) — writes, pyramids (zarr-vectors' defaults: explicit ±1
cross-level links; voxfield reproducing its draws with single_seed so both stores are equal),
whole-level and bounding-box reads; then voxfield alone at --big points (throughput, peak RSS in
a child process, files per level).

    .venv/bin/python bench/bench_vectors.py [--points 500000] [--streamlines 10000] [--repeats 3]
        [--big 5000000] [--only write,pyramid,read,big]

Medians of --repeats; every row first checks the two libraries' outputs are identical.
Stores are written under bench/data/ (ignored).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


def med(f, repeats, setup=None):
    ts = []
    for _ in range(repeats):
        if setup:
            setup()
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


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


def big_child(n, store):
    """Runs in a child process: write + 3-level pyramid of n points; prints JSON with times."""
    from voxfield import vectors as vv

    p, attrs = points_data(n, 1)
    shutil.rmtree(store, ignore_errors=True)
    t = time.perf_counter()
    vv.write_points(store, p, chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50), vertex_attributes=attrs)
    t_write = time.perf_counter() - t
    vv.build_pyramid(store, factors=[(2, 1)] * 3, cross_level_storage="none")
    t_all = time.perf_counter() - t
    import resource

    print(json.dumps({"write": t_write, "total": t_all,
                      "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "input_mib": (p.nbytes + sum(a.nbytes for a in attrs.values())) / 2 ** 20}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=500_000)
    ap.add_argument("--streamlines", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big", type=int, default=5_000_000)
    ap.add_argument("--only", default="write,pyramid,read,big")
    ap.add_argument("--child", nargs=2)
    a = ap.parse_args()
    if a.child:
        return big_child(int(a.child[0]), a.child[1])
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
    d = {k: os.path.join(DATA, f"{k}.zarrvectors") for k in ("pz", "pv", "lz", "lv", "pbase", "lbase")}
    print(f"{'row':60} {'zarr-vectors':>13} {'voxfield':>12} {'speed-up':>9}")

    def fresh(path, base=None):
        def f():
            shutil.rmtree(path, ignore_errors=True)
            if base:
                shutil.copytree(base, path)
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
        t_zv = med(fz, a.repeats, fresh(d["pz"]))
        t_vf = med(fv, a.repeats, fresh(d["pv"]))
        a_z, a_v = (read_points(s, attribute_names=["intensity", "label"]) for s in (d["pz"], d["pv"]))
        np.testing.assert_array_equal(a_z["positions"], a_v["positions"])
        np.testing.assert_array_equal(a_z["vertex_attributes"]["label"], a_v["vertex_attributes"]["label"])
        report(f"write_points {a.points} + 2 attributes", t_zv, t_vf)
        fz = lambda: write_polylines(d["lz"], lines, chunk_shape=(100, 100, 100), bin_shape=(25, 25, 25))  # noqa
        fv = lambda: vv.write_polylines(d["lv"], lines, chunk_shape=(100, 100, 100), bin_shape=(25, 25, 25))  # noqa
        t_zv = med(fz, a.repeats, fresh(d["lz"]))
        t_vf = med(fv, a.repeats, fresh(d["lv"]))
        for x, y in zip(read_polylines(d["lz"])["polylines"], vv.read_polylines(d["lv"])["polylines"]):
            np.testing.assert_array_equal(np.concatenate(x), y)
        report(f"write_polylines {a.streamlines} streamlines ({nv} vertices)", t_zv, t_vf)
    if "pyramid" in only:
        for name, base, factors in [(f"build_pyramid 3×(2,1), {a.points} points", "pbase", [(2, 1)] * 3),
                                    (f"build_pyramid (2,1),(2,4),(2,4), {a.streamlines} streamlines", "lbase",
                                     [(2, 1), (2, 4), (2, 4)])]:
            z, v = (d["pz"], d["pv"]) if base == "pbase" else (d["lz"], d["lv"])
            t_copy = med(lambda: None, a.repeats, fresh(v, d[base]))
            t_zv = med(lambda: build_pyramid(z, factors=factors, sparsity_seed=42), a.repeats, fresh(z, d[base]))
            t_vf = med(lambda: vv.build_pyramid(v, factors=factors, sparsity_seed=42, single_seed=True), a.repeats,
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
            report(name, med(f_zv, a.repeats), med(f_vf, a.repeats), f"({g['vertex_count']} vertices)")
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
        store = os.path.join(DATA, f"big_{a.big}.zarrvectors")
        r = subprocess.run([sys.executable, __file__, "--child", str(a.big), store], capture_output=True, text=True)
        if r.returncode:
            print(r.stderr)
            return
        res = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"voxfield alone, {a.big} points + 2 attributes: write {res['write']:.2f} s, write + 3-level pyramid "
              f"{res['total']:.2f} s = {a.big / res['total'] / 1e6:.2f} M points/s; peak RSS {res['rss_mib']:.0f} MiB "
              f"(input arrays {res['input_mib']:.0f} MiB); files/level {files_per_level(store)}")


if __name__ == "__main__":
    main()

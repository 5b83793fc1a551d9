"""Vector pyramids (issue 12): zarr-vectors 0.9.2 and voxfield.vectors reading the same
stores in one run — whole levels and bounding boxes of a 500k-point pyramid (written and
coarsened by zarr-vectors itself) and of 10k streamlines.

    .venv/bin/python bench/bench_vectors.py [--points 500000] [--streamlines 10000] [--repeats 5]

Medians of --repeats; every row first checks the two reads are identical.
Stores are written under bench/data/ (ignored).
"""
import argparse
import os
import statistics
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def med(f, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=500_000)
    ap.add_argument("--streamlines", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    from zarr_vectors.multiresolution.coarsen import build_pyramid
    from zarr_vectors.types.points import read_points, write_points
    from zarr_vectors.types.polylines import write_polylines

    from voxfield import vectors as vv

    data = os.path.join(HERE, "data")
    os.makedirs(data, exist_ok=True)
    rng = np.random.default_rng(0)
    pts_store = os.path.join(data, f"points_{a.points}.zarrvectors")
    if not os.path.exists(pts_store):
        p = rng.uniform(0, 1000, (a.points, 3)).astype(np.float32)
        t = time.perf_counter()
        write_points(pts_store, p, chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50),
                     vertex_attributes={"intensity": rng.random(a.points).astype(np.float32)})
        build_pyramid(pts_store, factors=[(2, 1), (2, 4)])
        print(f"(zarr-vectors wrote and coarsened {a.points} points in {time.perf_counter() - t:.1f} s)")
    sl_store = os.path.join(data, f"streamlines_{a.streamlines}.zarrvectors")
    if not os.path.exists(sl_store):
        lines = [np.cumsum(rng.normal(0, 2, (int(rng.integers(20, 150)), 3)), axis=0).astype(np.float32) + 500
                 for _ in range(a.streamlines)]
        write_polylines(sl_store, lines, chunk_shape=(100, 100, 100))
    print(f"{'row':58} {'zarr-vectors':>13} {'voxfield':>11} {'speed-up':>9}")

    def row(name, f_zv, f_vf):
        w, g = f_zv(), f_vf()
        np.testing.assert_array_equal(g["positions"], w["positions"])
        t_zv, t_vf = med(f_zv, a.repeats), med(f_vf, a.repeats)
        print(f"{name:58} {t_zv * 1e3:10.1f} ms {t_vf * 1e3:8.1f} ms {t_zv / t_vf:8.1f}×  ({g['vertex_count']} vertices)",
              flush=True)

    for level in vv.list_resolution_levels(pts_store):
        row(f"read_points, {a.points} points, level {level}",
            lambda: read_points(pts_store, level=level), lambda: vv.read_points(pts_store, level=level))
    for lo, hi in [((100, 100, 100), (300, 300, 300)), ((0, 0, 0), (1000, 1000, 100)), ((420, 0, 0), (430, 1000, 1000))]:
        lo, hi = np.array(lo, float), np.array(hi, float)
        row(f"read_points bbox {tuple(int(x) for x in lo)}-{tuple(int(x) for x in hi)}",
            lambda: read_points(pts_store, bbox=(lo, hi)), lambda: vv.read_points(pts_store, bbox=(lo, hi)))
    row(f"read vertices, {a.streamlines} streamlines",
        lambda: read_points(sl_store), lambda: vv.read_points(sl_store))
    # Writing the same point cloud (level 0, with one attribute); zarr-vectors reads both back equal.
    import shutil
    p = rng.uniform(0, 1000, (a.points, 3)).astype(np.float32)
    w = rng.random(a.points).astype(np.float32)
    out_zv, out_vf = os.path.join(data, "write_zv.zarrvectors"), os.path.join(data, "write_vf.zarrvectors")

    def zv_write():
        shutil.rmtree(out_zv, ignore_errors=True)
        write_points(out_zv, p, chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50), vertex_attributes={"w": w})

    def vf_write():
        shutil.rmtree(out_vf, ignore_errors=True)
        vv.write_points(out_vf, p, chunk_shape=(200, 200, 200), bin_shape=(50, 50, 50), vertex_attributes={"w": w})
    zv_write()
    vf_write()
    np.testing.assert_array_equal(read_points(out_vf, attribute_names=["w"])["vertex_attributes"]["w"],
                                  read_points(out_zv, attribute_names=["w"])["vertex_attributes"]["w"])
    t_zv, t_vf = med(zv_write, a.repeats), med(vf_write, a.repeats)
    print(f"{'write_points, ' + str(a.points) + ' points + 1 attribute':58} {t_zv * 1e3:10.1f} ms {t_vf * 1e3:8.1f} ms "
          f"{t_zv / t_vf:8.1f}×", flush=True)
    # A 3-level pyramid (factors (2,1), (2,4), (2,4)) of the same level 0, without cross-level links
    # for both (voxfield does not write links yet), from fresh copies each time.
    base = os.path.join(data, "pyr_base.zarrvectors")
    shutil.rmtree(base, ignore_errors=True)
    write_points(base, p, chunk_shape=(200, 200, 200), bin_shape=(25, 25, 25))
    factors = [(2, 1), (2, 4), (2, 4)]
    pz, pv = os.path.join(data, "pyr_zv.zarrvectors"), os.path.join(data, "pyr_vf.zarrvectors")

    def zv_pyr():
        shutil.rmtree(pz, ignore_errors=True)
        shutil.copytree(base, pz)
        build_pyramid(pz, factors=factors, cross_level_storage="none")

    def vf_pyr():
        shutil.rmtree(pv, ignore_errors=True)
        shutil.copytree(base, pv)
        vv.build_pyramid(pv, factors=factors)
    zv_pyr()
    vf_pyr()
    for level in (1, 2, 3):
        np.testing.assert_array_equal(vv.read_points(pv, level=level)["positions"],
                                      read_points(pz, level=level)["positions"])
    t_zv, t_vf = med(zv_pyr, a.repeats), med(vf_pyr, a.repeats)
    t_copy = med(lambda: (shutil.rmtree(pv, ignore_errors=True), shutil.copytree(base, pv)), a.repeats)
    print(f"{'build_pyramid 3 levels, ' + str(a.points) + ' points (incl. ' + f'{t_copy * 1e3:.0f}' + ' ms copy)':58} "
          f"{t_zv * 1e3:10.1f} ms {t_vf * 1e3:8.1f} ms {(t_zv - t_copy) / (t_vf - t_copy):8.1f}× (net of the copy)",
          flush=True)


if __name__ == "__main__":
    main()

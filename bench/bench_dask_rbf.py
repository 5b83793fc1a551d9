"""voxfield.dask.fit_rbf on a LocalCluster (issue 13): N scattered 3-D samples stored in a Zarr
array, fitted by 1 worker and by 2 workers (one thread each, RAYON_NUM_THREADS=1, so a worker is
one core), against the local one-process fit of the same samples with one thread (the ideal for
one worker) — times, the speed-up, and a check that the models evaluate identically.

    RAYON_NUM_THREADS=1 .venv/bin/python bench/bench_dask_rbf.py [--n 5000000] [--repeats 2]
"""
import argparse
import os

import numpy as np
from _timing import timed

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


def samples(n: int) -> str:
    """N uniform 3-D points with a Franke-like field, as a Zarr group (points, values)."""
    import zarr

    path = os.path.join(DATA, f"rbf_samples_{n}.zarr")
    if not os.path.exists(os.path.join(path, "values")):
        rng = np.random.default_rng(0)
        p = rng.random((n, 3))
        x, y, z = p.T
        v = (0.75 * np.exp(-((9 * x - 2) ** 2 + (9 * y - 2) ** 2) / 4) + 0.5 * np.exp(-((9 * x - 7) ** 2
             + (9 * y - 3) ** 2) / 4)) * (1 + 0.5 * np.sin(3 * z))
        g = zarr.open_group(path, mode="w")
        g.create_array("points", data=p, chunks=(250_000, 3))
        g.create_array("values", data=v, chunks=(250_000,))
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5_000_000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if os.environ.get("RAYON_NUM_THREADS") != "1":
        raise SystemExit("run with RAYON_NUM_THREADS=1 (one core per worker)")
    import dask.array as da
    import distributed
    import zarr
    import voxfield as vf
    import voxfield.dask as vd

    path = samples(args.n)
    g = zarr.open_group(path, mode="r")
    q = np.random.default_rng(1).random((20_000, 3))
    t_local, local = timed(lambda: vf.rbf.RBFInterpolator(g["points"][...], g["values"][...]), 1)
    print(f"{args.n} samples; local fit, one process, 1 thread: {t_local:.1f} s ({local.info['cells']} cells)")
    times = {}
    for workers in (1, 2):
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=40) as c, distributed.Client(c):
            pts, vals = da.from_zarr(path, component="points"), da.from_zarr(path, component="values")
            t, model = timed(lambda: vd.fit_rbf(pts, vals), args.repeats)
            same = np.array_equal(model(q), local(q))
            times[workers] = t
            print(f"fit_rbf on {workers} worker(s): {t:.1f} s (median of {args.repeats}); {model.fit_report}; "
                  f"evaluations equal to the local fit: {same}")
    s = times[1] / times[2]
    print(f"speed-up 2 workers over 1: {s:.2f} (ideal 2; within {2 / s:.2f}× of ideal); "
          f"1 worker over the local fit: {times[1] / t_local:.2f}×; 2 workers over local 1-thread ideal/2: "
          f"{times[2] / (t_local / 2):.2f}×")


if __name__ == "__main__":
    main()

"""Task overhead of voxfield.dask on a LocalCluster (issue 13, for SCALING.md): bytes a task
carries, the per-task cost of tiny tasks, and the rate of sampling tasks of 1e5 points.

    .venv/bin/python bench/bench_tasks.py
"""
import os
import pickle
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main():
    import dask.array as da
    import distributed
    import voxfield as vf
    import voxfield.dask as vd
    from bench_remote import make_volume

    path = make_volume((256, 512, 512), 64)
    vol = vf.open(path)
    print(f"pickled description of a local OME-Zarr volume: {len(pickle.dumps(vol))} bytes; "
          f"of an s3:// one: {len(pickle.dumps(vf.open(path)._desc[1] | {'endpoint_url': 'http://x:9000'}))}+ bytes")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as c, distributed.Client(c) as client:
        tiny = da.ones((4000,), chunks=1)
        tiny.sum().compute()
        ts = []
        for _ in range(3):
            t = time.perf_counter()
            (tiny + 1).sum().compute()
            ts.append(time.perf_counter() - t)
        ntasks = len((tiny + 1).sum().__dask_graph__())
        print(f"tiny tasks: {ntasks} tasks in {statistics.median(ts):.2f} s = "
              f"{statistics.median(ts) / ntasks * 1e3:.2f} ms per task (2 workers)")
        pts = np.random.default_rng(0).uniform(0, 1, (2_000_000, 3)) * (np.array([256, 512, 512]) - 1)
        for rows in (10_000, 100_000):
            arr = vd.sample(path, da.from_array(pts, chunks=(rows, 3)))
            arr.sum().compute()
            ts = []
            for _ in range(3):
                t = time.perf_counter()
                arr.sum().compute()
                ts.append(time.perf_counter() - t)
            n = len(pts) // rows
            local = []
            for _ in range(3):
                t = time.perf_counter()
                vol.sample(pts)
                local.append(time.perf_counter() - t)
            print(f"sample 2e6 points in {n} tasks of {rows}: {statistics.median(ts):.2f} s on 2 workers "
                  f"({len(pts) / statistics.median(ts) / 1e6:.2f} M points/s; one process, 2 threads: "
                  f"{statistics.median(local):.2f} s); bytes in per task {rows * 24 + 400}, out {rows * 4}")


if __name__ == "__main__":
    main()

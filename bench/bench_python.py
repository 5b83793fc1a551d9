"""The Python API, side by side in one run with scipy and with the Rust library
itself (the harness binaries of bench_sampling.py / bench_chunked.py), to measure
the Python layer's overhead. Reuses bench/data/ from those scripts.

    .venv/bin/pip install ./crates/voxfield-py   (MATURIN_PEP517_ARGS="--features hdf5" for HDF5)
    cargo build --release -p voxfield-sample --example bench_sample
    .venv/bin/python bench/bench_python.py [--repeats 7]
"""
import argparse
import json
import os
import subprocess
import time

import numpy as np
from scipy.ndimage import map_coordinates

import voxfield
from _timing import warm_median

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
SAMPLE_BIN = os.path.join(os.path.dirname(HERE), "target", "release", "examples", "bench_sample")


def thread_rows(vol, all_pts, repeats, res):
    """8 Python threads sharing one Volume vs the same calls in series; each thread samples
    1.6M points in calls of the given size, so one run lasts long enough to time."""
    import threading
    for size in (2_000, 12_500, 125_000):
        parts = [all_pts[k * size:(k + 1) * size] for k in range(8)]
        calls = 1_600_000 // size

        def work(p):
            for _ in range(calls):
                vol.sample(p)

        def threaded():
            ts = [threading.Thread(target=work, args=(p,)) for p in parts]
            for t in ts:
                t.start()
            for t in ts:
                t.join()

        serial = warm_median(lambda: [work(p) for p in parts], repeats)
        par = warm_median(threaded, repeats)
        row = {"points_per_call": size, "calls_per_thread": calls, "serial_s": serial, "eight_threads_s": par,
               "speedup": serial / par}
        res[f"threads_8_vs_serial_{size}"] = row
        print("threads", size, json.dumps(row), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", choices=["threads"], help="run only the thread-scaling rows")
    a = ap.parse_args()
    res = {}
    path = os.path.join(DATA, "u8_1300x900x2300.npy")
    mm = np.load(path, mmap_mode="r")
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass
    t = time.perf_counter()
    vol = voxfield.open(mm)
    res["open_memmap_s"] = time.perf_counter() - t
    if a.only == "threads":
        thread_rows(vol, np.load(os.path.join(DATA, "points_u8_1000000.npy")), a.repeats, res)
        return
    for n in [1000, 1_000_000]:
        ppath = os.path.join(DATA, f"points_u8_{n}.npy")
        pts = np.load(ppath)
        coords = np.ascontiguousarray(pts.T)
        inner = 100 if n <= 1000 else 1
        py = warm_median(lambda: vol.sample(pts), a.repeats, inner)
        mc = warm_median(lambda: map_coordinates(mm, coords, order=1, mode="constant", cval=np.nan, output=np.float32),
                 a.repeats, inner)
        lib = json.loads(subprocess.run([SAMPLE_BIN, path, "--points", ppath, "--repeats", str(a.repeats)],
                                        check=True, capture_output=True, text=True).stdout)["median_s"]
        row = {"python_s": py, "library_s": lib, "python_overhead": py / lib - 1,
               "python_overhead_us": (py - lib) * 1e6, "map_coordinates_s": mc, "ratio_vs_map_coordinates": mc / py}
        res[f"memmap_points_{n}"] = row
        print("memmap", n, json.dumps(row), flush=True)
    thread_rows(vol, np.load(os.path.join(DATA, "points_u8_1000000.npy")), a.repeats, res)
    # scipy's RegularGridInterpolator on the float32 memmap (it would copy the uint8 one to float64).
    from scipy.interpolate import RegularGridInterpolator
    f32 = np.load(os.path.join(DATA, "f32_650x450x1150.npy"), mmap_mode="r")
    t = time.perf_counter()
    rgi = RegularGridInterpolator(tuple(np.arange(n, dtype=float) for n in f32.shape), f32, bounds_error=False,
                                  fill_value=np.nan)
    rgi_init = time.perf_counter() - t
    t = time.perf_counter()
    fvol = voxfield.open(f32)
    vf_init = time.perf_counter() - t
    pts = np.load(os.path.join(DATA, "points_f32_1000000.npy"))
    rg = warm_median(lambda: rgi(pts), 3)
    py = warm_median(lambda: fvol.sample(pts), a.repeats)
    row = {"rgi_init_s": rgi_init, "voxfield_open_s": vf_init, "rgi_1e6_s": rg, "python_1e6_s": py, "ratio": rg / py}
    res["rgi_f32_1e6"] = row
    print("rgi", json.dumps(row), flush=True)
    # The oblique plane of bench_sampling.py.
    from scipy.spatial.transform import Rotation
    r = Rotation.from_euler("xyz", [30, -45, 5], degrees=True).as_matrix()
    u, v = r[:, 2], r[:, 1]
    origin = (np.array(mm.shape) - 1) / 2 - 499.5 * u - 499.5 * v
    j, i = np.mgrid[0:1000, 0:1000]
    pc = (origin[:, None, None] + i[None] * u[:, None, None] + j[None] * v[:, None, None]).reshape(3, -1)
    py = warm_median(lambda: vol.plane(origin, u, v, (1000, 1000)), a.repeats)
    plane_arg = ",".join(repr(float(x)) for x in list(origin) + list(u) + list(v) + [1000, 1000])
    lib = json.loads(subprocess.run([SAMPLE_BIN, path, "--plane", plane_arg, "--repeats", str(a.repeats)],
                                    check=True, capture_output=True, text=True).stdout)["median_s"]
    mc = warm_median(lambda: map_coordinates(mm, pc, order=1, mode="constant", cval=np.nan, output=np.float32), a.repeats)
    row = {"python_s": py, "library_s": lib, "python_overhead": py / lib - 1, "map_coordinates_s": mc,
           "ratio_vs_map_coordinates": mc / py}
    res["memmap_plane_1000x1000"] = row
    print("memmap plane", json.dumps(row), flush=True)
    # Sparse 100³ and 500³ at density 0.01 (index built once when opening the in-memory COO).
    import sparse
    for n in (100, 500):
        p = os.path.join(DATA, f"sparse_{n}_0.01.npz")
        if not os.path.exists(p):
            sparse.save_npz(p, sparse.random((n, n, n), density=0.01, random_state=5, format="coo"))
        sp = sparse.load_npz(p)
        t = time.perf_counter()
        svol = voxfield.open(sp)
        build = time.perf_counter() - t
        for npts in (1000, 100_000):
            pts = np.random.default_rng(4).uniform(0, n - 1, size=(npts, 3))
            py = warm_median(lambda: svol.sample(pts), a.repeats)
            dm = warm_median(lambda: map_coordinates(sp.todense(), pts.T, order=1, mode="constant", cval=np.nan,
                                             output=np.float32), max(3, a.repeats // 2))
            row = {"index_build_s": build, "python_s": py, "densify_plus_mc_s": dm, "ratio": dm / py}
            res[f"sparse_{n}_{npts}"] = row
            print("sparse", n, npts, json.dumps(row), flush=True)
    # HDF5 512³ 8³ lzf through an h5py.Dataset, end to end (open included) vs load + map_coordinates.
    import h5py
    f = h5py.File(os.path.join(DATA, "vol512_lzf8.h5"), "r")
    load = warm_median(lambda: f["vol"][...], 3)
    dense = f["vol"][...]
    for npts in (1000, 10_000):
        pts = np.random.default_rng(9).uniform(0, 511, size=(npts, 3))
        py = warm_median(lambda: voxfield.open(f["vol"]).sample(pts), a.repeats)
        mc = warm_median(lambda: map_coordinates(dense, pts.T, order=1, mode="constant", cval=np.nan, output=np.float32),
                 a.repeats)
        row = {"python_e2e_s": py, "load_plus_mc_s": load + mc, "ratio": (load + mc) / py}
        res[f"hdf5_lzf8_{npts}"] = row
        print("hdf5", npts, json.dumps(row), flush=True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "python.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()

"""Issue 9 side by side, whole processes (start-up included), medians of --repeats:

* `voxfield --version` start-up (HDF5 is in every build now, read without libhdf5);
* 1e3 random points from a 256³ float32 HDF5 file (8³ chunks, lzf): `voxfield sample`
  vs a Python process doing h5py load + scipy map_coordinates(order=1);
* a 4-level OME-Zarr pyramid of a 1 GiB float32 volume (.npy): `voxfield convert`
  vs ome-zarr-py's `write_image` (dask, mean downsampling via scale_factors), time
  and peak RSS of each process.

    cargo build --release -p voxfield-cli
    .venv/bin/pip install numpy scipy h5py hdf5plugin ome-zarr
    .venv/bin/python bench/bench_issue9.py [--repeats 5] [--only startup,h5points,pyramid]

The HDF5 Bitshuffle+LZ4 rows are in bench_chunked.py (--only h5bslz4).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
CLI = os.path.join(ROOT, "target", "release", "voxfield")
PY = sys.executable

# Runs a command and prints its wall time, the child's peak RSS (KiB; it counts the
# pages of memory-mapped inputs) and its peak private memory (RssAnon polled every
# 2 ms from /proc) as JSON.
MEASURE = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
anon = 0
while p.poll() is None:
    try:
        for line in open(f"/proc/{p.pid}/status"):
            if line.startswith("RssAnon:"):
                anon = max(anon, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.002)
dt = time.perf_counter() - t
err = p.stderr.read().decode()
if p.returncode:
    sys.exit(err)
print(json.dumps({"s": dt, "rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "anon_kib": anon}))
"""


def measure(cmd):
    out = subprocess.run([PY, "-c", MEASURE, *cmd], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{cmd}: {out.stderr}")
    return json.loads(out.stdout)


def med(cmd, repeats, before=None):
    runs = []
    for _ in range(repeats):
        if before:
            before()
        runs.append(measure(cmd))
    return {"median_s": statistics.median(r["s"] for r in runs),
            "peak_rss_mib": max(r["rss_kib"] for r in runs) / 1024,
            "peak_anon_mib": max(r["anon_kib"] for r in runs) / 1024}


def startup(repeats, results):
    # Timed in-process over many runs (a Python wrapper would add its own start-up).
    ts = []
    for _ in range(max(20, repeats)):
        t = time.perf_counter()
        subprocess.run([CLI, "--version"], check=True, capture_output=True)
        ts.append(time.perf_counter() - t)
    true_ts = []
    for _ in range(max(20, repeats)):
        t = time.perf_counter()
        subprocess.run(["/bin/true"], check=True)
        true_ts.append(time.perf_counter() - t)
    ldd = subprocess.run(["ldd", CLI], capture_output=True, text=True).stdout.strip().splitlines()
    row = {"voxfield_version_ms": 1e3 * statistics.median(ts), "bin_true_ms": 1e3 * statistics.median(true_ts),
           "shared_libraries": len(ldd)}
    results["startup"] = row
    print("startup", json.dumps(row), flush=True)


def h5points(repeats, results):
    import h5py
    p = os.path.join(DATA, "vol256_lzf8.h5")
    if not os.path.exists(p):
        rng = np.random.default_rng(3)
        with h5py.File(p + ".partial", "w") as f:
            d = f.create_dataset("vol", shape=(256,) * 3, dtype=np.float32, chunks=(8, 8, 8), compression="lzf")
            for z in range(0, 256, 64):
                slab = rng.standard_normal((64, 256, 256), dtype=np.float32)
                slab[rng.random(slab.shape) >= 0.1] = 0
                d[z:z + 64] = slab
        os.rename(p + ".partial", p)
    pts = np.random.default_rng(9).uniform(0, 255, size=(1000, 3))
    pp = os.path.join(DATA, "pts256_1000.npy")
    np.save(pp, pts)
    out = os.path.join(DATA, "out_h5points.npy")
    anchor = ("import h5py, numpy as np, sys; from scipy.ndimage import map_coordinates as mc; "
              "v = h5py.File(sys.argv[1], 'r')['vol'][...]; p = np.load(sys.argv[2]); "
              "np.save(sys.argv[3], mc(v, p.T, order=1, mode='constant', cval=np.nan, output=np.float32))")
    ref = os.path.join(DATA, "ref_h5points.npy")
    a = med([PY, "-c", anchor, p, pp, ref], repeats)
    v = med([CLI, "sample", p + ":/vol", "--points", pp, "--out", out], repeats)
    diff = float(np.nanmax(np.abs(np.load(out) - np.load(ref))))
    row = {"anchor_h5py_load_mc_s": a["median_s"], "voxfield_sample_s": v["median_s"],
           "ratio": a["median_s"] / v["median_s"], "max_abs_diff": diff}
    results["h5_256_lzf8_1e3_points_whole_process"] = row
    print("h5points", json.dumps(row), flush=True)


def pyramid(repeats, results):
    src = os.path.join(DATA, "vol1g.npy")
    shape = (512, 512, 1024)
    if not os.path.exists(src):
        a = np.lib.format.open_memmap(src + ".partial.npy", mode="w+", dtype=np.float32, shape=shape)
        rng = np.random.default_rng(1)
        for z in range(0, 512, 64):
            a[z:z + 64] = rng.standard_normal((64, 512, 1024), dtype=np.float32)
        a.flush()
        del a
        os.rename(src + ".partial.npy", src)
    dst_v = os.path.join(DATA, "pyr_voxfield.ome.zarr")
    dst_o = os.path.join(DATA, "pyr_omezarr.ome.zarr")
    anchor = ("import numpy as np, zarr, sys, dask.array as da; from ome_zarr.writer import write_image; "
              "a = da.from_array(np.load(sys.argv[1], mmap_mode='r'), chunks=(64, 64, 64)); "
              "root = zarr.open_group(sys.argv[2], mode='w', zarr_format=3); "
              "write_image(a, root, axes='zyx', scale_factors=[2, 4, 8], chunks=(64, 64, 64))")
    clean = lambda d: (lambda: shutil.rmtree(d, ignore_errors=True))
    o = med([PY, "-c", anchor, src, dst_o], repeats, before=clean(dst_o))
    v = med([CLI, "convert", src, dst_v, "--levels", "4", "--chunks", "64,64,64"], repeats, before=clean(dst_v))
    shapes_v = [json.load(open(os.path.join(dst_v, str(k), "zarr.json")))["shape"] for k in range(4)]
    row = {"ome_zarr_py_s": o["median_s"], "ome_zarr_py_peak_rss_mib": o["peak_rss_mib"],
           "ome_zarr_py_peak_anon_mib": o["peak_anon_mib"],
           "voxfield_s": v["median_s"], "voxfield_peak_rss_mib": v["peak_rss_mib"],
           "voxfield_peak_anon_mib": v["peak_anon_mib"],
           "speed_ratio": o["median_s"] / v["median_s"], "rss_ratio": o["peak_rss_mib"] / v["peak_rss_mib"],
           "anon_ratio": o["peak_anon_mib"] / v["peak_anon_mib"],
           "voxfield_level_shapes": shapes_v}
    results["pyramid_1gib_4_levels"] = row
    print("pyramid", json.dumps(row), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", default="startup,h5points,pyramid")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "issue9.json"))
    a = ap.parse_args()
    if not os.path.exists(CLI):
        sys.exit("build first: cargo build --release -p voxfield-cli")
    os.makedirs(DATA, exist_ok=True)
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    results = {"repeats": a.repeats}
    only = a.only.split(",")
    if "startup" in only:
        startup(a.repeats, results)
    if "h5points" in only:
        h5points(a.repeats, results)
    if "pyramid" in only:
        pyramid(max(1, a.repeats // 2), results)
    with open(a.json, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

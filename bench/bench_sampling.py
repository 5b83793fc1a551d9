"""Volume sampling, side by side: voxfield vs scipy.ndimage.map_coordinates(order=1,
mode='constant', cval=nan) and RegularGridInterpolator, on the same memmapped .npy
volumes in the same run. Medians of --repeats runs after a warm-up; ratios are
anchor time / voxfield time.

    python3 -m venv .venv && .venv/bin/pip install -r bench/requirements.txt
    cargo build --release -p voxfield-sample --example bench_sample
    .venv/bin/python bench/bench_sampling.py [--repeats 5] [--quick]

Data (created once in bench/data/, reused): a (1300, 900, 2300) uint8 volume of
random bytes (2.5 GiB) and a (650, 450, 1150) float32 one (1.25 GiB). Warm page cache.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
from scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation
from _timing import warm_median

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
BIN = os.path.join(ROOT, "target", "release", "examples", "bench_sample")


def make_volume(path, shape, dtype, seed):
    if os.path.exists(path):
        return
    print(f"creating {path} ...", flush=True)
    rng = np.random.default_rng(seed)
    tmp = path + ".partial.npy"
    m = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
    for i in range(0, shape[0], 16):
        sl = m[i:i + 16]
        if np.dtype(dtype) == np.uint8:
            sl[...] = rng.integers(0, 256, size=sl.shape, dtype=np.uint8)
        else:
            sl[...] = rng.standard_normal(sl.shape, dtype=np.float32)
    m.flush()
    del m
    os.rename(tmp, path)


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def voxfield(volume, repeats, threads=None, points=None, plane=None):
    cmd = [BIN, volume, "--repeats", str(repeats)]
    if points:
        cmd += ["--points", points]
    if plane:
        cmd += ["--plane", ",".join(repr(float(x)) for x in plane)]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def oblique_plane(shape, n=1000):
    r = Rotation.from_euler("xyz", [30, -45, 5], degrees=True).as_matrix()
    u, v = r[:, 2], r[:, 1]
    c = (np.array(shape) - 1) / 2
    h = (n - 1) / 2
    origin = c - h * u - h * v
    return list(origin) + list(u) + list(v) + [n, n]


def plane_coords(p):
    o, u, v, nu, nv = np.array(p[0:3]), np.array(p[3:6]), np.array(p[6:9]), int(p[9]), int(p[10])
    j, i = np.mgrid[0:nv, 0:nu]
    return (o[:, None, None] + i[None] * u[:, None, None] + j[None] * v[:, None, None]).reshape(3, -1)


RGI_PROBE = r"""
import json, resource, sys, time
import numpy as np
from scipy.interpolate import RegularGridInterpolator
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]) << 30, int(sys.argv[2]) << 30))
vol = np.load(sys.argv[1], mmap_mode="r")
pts = np.load(sys.argv[3])
res = {}
try:
    t = time.perf_counter()
    rgi = RegularGridInterpolator(tuple(np.arange(s, dtype=float) for s in vol.shape), vol,
                                  bounds_error=False, fill_value=np.nan)
    res["init_s"] = time.perf_counter() - t
    rgi(pts)
    ts = []
    for _ in range(3):
        t = time.perf_counter(); rgi(pts); ts.append(time.perf_counter() - t)
    res["eval_s"] = sorted(ts)[1]
except MemoryError as e:
    res["error"] = "MemoryError (address space capped at %s GiB)" % sys.argv[2]
res["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(res))
"""


def rgi(volume, points, cap_gib):
    out = subprocess.run([sys.executable, "-c", RGI_PROBE, volume, str(cap_gib), points],
                         capture_output=True, text=True)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except Exception:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="only the float32 volume")
    ap.add_argument("--rgi-cap-gib", type=int, default=16)
    ap.add_argument("--json", default=os.path.join(HERE, "results", "sampling.json"))
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"build the harness first: cargo build --release -p voxfield-sample --example bench_sample ({BIN})")
    os.makedirs(DATA, exist_ok=True)
    vols = [("u8", (1300, 900, 2300), np.uint8), ("f32", (650, 450, 1150), np.float32)]
    if a.quick:
        vols = vols[1:]
    results = {"repeats": a.repeats, "volumes": {}}
    rng = np.random.default_rng(1)
    for tag, shape, dtype in vols:
        path = os.path.join(DATA, f"{tag}_{'x'.join(map(str, shape))}.npy")
        make_volume(path, shape, dtype, seed=len(tag))
        warm(path)
        vol = np.load(path, mmap_mode="r")
        res = results["volumes"][tag] = {"shape": shape, "dtype": np.dtype(dtype).name,
                                         "gib": os.path.getsize(path) / 2**30}
        for npts in [1000, 1_000_000]:
            pts = rng.uniform(0, np.array(shape) - 1, size=(npts, 3))
            ppath = os.path.join(DATA, f"points_{tag}_{npts}.npy")
            np.save(ppath, pts)
            coords = np.ascontiguousarray(pts.T)
            if npts <= 1000:
                mc = warm_median(lambda: map_coordinates(vol, coords, order=1, mode="constant", cval=np.nan, output=np.float32),
                                  a.repeats, 200)
            else:
                mc = warm_median(lambda: map_coordinates(vol, coords, order=1, mode="constant", cval=np.nan, output=np.float32),
                                 a.repeats)
            vf = voxfield(path, a.repeats, points=ppath)
            vf1 = voxfield(path, a.repeats, points=ppath, threads=1)
            ref = map_coordinates(vol, coords, order=1, mode="constant", cval=np.nan, output=np.float32)
            row = {"map_coordinates_s": mc, "voxfield_s": vf["median_s"], "voxfield_1thread_s": vf1["median_s"],
                   "ratio": mc / vf["median_s"], "ratio_1thread": mc / vf1["median_s"],
                   "voxfield_threads": vf["threads"], "checksum_rel_diff":
                       abs(vf["checksum"] - float(np.nansum(ref))) / max(1.0, abs(float(np.nansum(ref))))}
            if npts == 1_000_000:
                flat = vol.reshape(-1)
                i0 = np.floor(pts).astype(np.int64)
                i0 = np.minimum(i0, np.array(shape) - 2)
                st = np.array([shape[1] * shape[2], shape[2], 1])
                base = i0 @ st
                idx = (base[:, None] + np.array([a_ * st[0] + b * st[1] + c for a_ in (0, 1) for b in (0, 1)
                                                 for c in (0, 1)])[None]).reshape(-1)
                floor = warm_median(lambda: flat[idx], a.repeats)
                row.update({"gather_floor_s": floor, "voxfield_over_floor": vf["median_s"] / floor,
                            "rss_anon_peak_mib": vf["rss_anon_peak_kib"] / 1024,
                            "rss_anon_base_mib": vf["rss_anon_base_kib"] / 1024,
                            "output_mib": vf["output_bytes"] / 2**20})
                row["rgi"] = rgi(path, ppath, a.rgi_cap_gib)
            res[f"points_{npts}"] = row
            print(tag, npts, json.dumps(row), flush=True)
        plane = oblique_plane(shape)
        pc = plane_coords(plane)
        mc = warm_median(lambda: map_coordinates(vol, pc, order=1, mode="constant", cval=np.nan, output=np.float32), a.repeats)
        vf = voxfield(path, a.repeats, plane=plane)
        vf1 = voxfield(path, a.repeats, plane=plane, threads=1)
        ref = map_coordinates(vol, pc, order=1, mode="constant", cval=np.nan, output=np.float32)
        row = {"map_coordinates_s": mc, "voxfield_s": vf["median_s"], "voxfield_1thread_s": vf1["median_s"],
               "ratio": mc / vf["median_s"], "ratio_1thread": mc / vf1["median_s"],
               "nan_scipy": int(np.isnan(ref).sum()), "nan_voxfield": vf["nan"]}
        res["plane_1000x1000"] = row
        print(tag, "plane", json.dumps(row), flush=True)
        del vol
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(results, f, indent=1)
    print("wrote", a.json)


if __name__ == "__main__":
    main()

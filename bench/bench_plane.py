"""Issue 23, part 2: the shared sampling kernel on an oblique plane, side by side with scipy.

An oblique 2000x2000 plane (rotated 30/-45/5 degrees about the centre, spanning the largest side) through
nilearn's MNI152 2009a T1 (197x233x189 uint8, memory-mapped .npy), linear interpolation, constant
mode with NaN outside, float32 output:
- scipy.ndimage.map_coordinates in process (coordinates made beforehand, not timed);
- `voxfield slice ... -o plane.npy` as a whole process (start, map, sample, write), and the
  sampling time it reports itself; with every core and with one thread.
Medians of --repeats runs; the outputs are compared (max abs difference).

    .venv-render/bin/python bench/bench_plane.py [--repeats 7] [--size 2000]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation

from _mni import mni
from _timing import median_time

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
CLI = os.environ.get("VOXFIELD_CLI", str(ROOT / "target" / "release" / "voxfield"))


def plane(shape, n):
    """A plane through the centre whose n x n pixels span the volume's largest side."""
    r = Rotation.from_euler("xyz", [30, -45, 5], degrees=True).as_matrix()
    u, v = r[:, 2] * max(shape) / n, r[:, 1] * max(shape) / n
    o = (np.array(shape) - 1) / 2 - (n - 1) / 2 * (u + v)
    j, i = np.mgrid[0:n, 0:n]
    coords = (o[:, None, None] + i[None] * u[:, None, None] + j[None] * v[:, None, None]).reshape(3, -1)
    return o, u, v, coords


def voxfield(path, o, u, v, n, out, threads=None):
    fmt = lambda x: ",".join(repr(float(c)) for c in x)
    cmd = [CLI, "slice", str(path), f"--origin={fmt(o)}", f"--u={fmt(u)}", f"--v={fmt(v)}",
           "--size", f"{n},{n}", "--out", str(out)]
    if threads:
        cmd += ["--threads", str(threads)]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    inner = float(re.search(r"in ([0-9.]+) ms", r.stderr).group(1)) / 1e3
    return wall, inner


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--size", type=int, default=2000)
    a = ap.parse_args()
    path = mni()
    vol = np.load(path, mmap_mode="r")
    n = a.size
    o, u, v, coords = plane(vol.shape, n)
    scipy_s = median_time(lambda: map_coordinates(vol, coords, order=1, mode="constant", cval=np.nan,
                                                  output=np.float32), a.repeats)
    want = map_coordinates(vol, coords, order=1, mode="constant", cval=np.nan, output=np.float32).reshape(n, n)
    out = DATA / "plane.npy"
    rows = {"scipy_map_coordinates_s": scipy_s}
    for label, threads in (("all_cores", None), ("one_thread", 1)):
        runs = [voxfield(path, o, u, v, n, out, threads) for _ in range(a.repeats)]
        wall = statistics.median(r[0] for r in runs)
        inner = statistics.median(r[1] for r in runs)
        got = np.load(out)
        diff = float(np.nanmax(np.abs(got - want)))
        same_nan = bool(np.array_equal(np.isnan(got), np.isnan(want)))
        rows[label] = {"whole_process_s": wall, "sampling_s": inner, "msamples_per_s": n * n / inner / 1e6,
                       "scipy_over_whole_process": scipy_s / wall, "scipy_over_sampling": scipy_s / inner,
                       "max_abs_diff": diff, "same_nan": same_nan}
    out.unlink()
    print(json.dumps({"plane": f"{n}x{n}", "volume": list(vol.shape), "cores": os.cpu_count(), **rows}, indent=1))


if __name__ == "__main__":
    main()

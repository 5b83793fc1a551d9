"""Scattered-data interpolation, side by side in one run: voxfield's subdivided RBF
vs scipy's RBFInterpolator(neighbors=50, kernel='thin_plate_spline') and
CloughTocher2DInterpolator (griddata 'cubic').

    .venv/bin/python bench/bench_rbf.py [--repeats 3] [--only franke,jacksboro,terrain1m,field3d] [--big]

Each (method, data set) runs in its own process so peak memory is its own
(ru_maxrss, including the loaded data). scipy's local RBF costs 50-200 µs per
evaluation point, so it evaluates the first --scipy-points of the 1e6 random
points and its 1e6 time is that time scaled (labelled "extrapolated"); its 512²
grid is timed on a 64-row band and scaled the same way. Held-out errors are
against the true function (synthetic) or held-out DEM cells (Jacksboro).
--big adds the 6.7M-point synthetic terrain fitted and evaluated on a 2048² grid.
Results: bench/results/rbf.json and a table on stdout.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from _timing import median_time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
RESULTS = os.path.join(HERE, "results")
N_EVAL = 1_000_000


def franke(x, y):
    return (0.75 * np.exp(-((9 * x - 2) ** 2 + (9 * y - 2) ** 2) / 4)
            + 0.75 * np.exp(-(9 * x + 1) ** 2 / 49 - (9 * y + 1) / 10)
            + 0.5 * np.exp(-((9 * x - 7) ** 2 + (9 * y - 3) ** 2) / 4)
            - 0.2 * np.exp(-(9 * x - 4) ** 2 - (9 * y - 7) ** 2))


def terrain(x, y):
    """Six octaves of randomly oriented sines (finest wavelength 1/64) plus a hill."""
    rng = np.random.default_rng(1234)
    z = 1.5 * np.exp(-((x - 0.6) ** 2 + (y - 0.4) ** 2) / 0.05)
    for k in range(6):
        f = 2.0 ** (k + 1)
        a = rng.uniform(0, np.pi)
        ph = rng.uniform(0, 2 * np.pi)
        z = z + np.sin(2 * np.pi * f * (np.cos(a) * x + np.sin(a) * y) + ph) / f
    return z


def field3(p):
    return franke(p[:, 0], p[:, 1]) * (1 + 0.5 * np.sin(3 * p[:, 2]))


def make(name):
    """Writes bench/data/rbf_<name>.npz (train, held-out test with truth, eval points, grid bounds)."""
    path = os.path.join(DATA, f"rbf_{name}.npz")
    if os.path.exists(path):
        return path
    rng = np.random.default_rng(7)
    if name in ("franke", "terrain1m", "terrain6m"):
        n = {"franke": 131_044, "terrain1m": 1_000_000, "terrain6m": 6_743_176}[name]
        f = (lambda p: franke(p[:, 0], p[:, 1])) if name == "franke" else (lambda p: terrain(p[:, 0], p[:, 1]))
        tx = rng.random((n, 2))
        ev = rng.uniform(0.01, 0.99, size=(N_EVAL, 2))
        test = ev[:200_000]
        out = dict(train_x=tx, train_v=f(tx), test_x=test, test_v=f(test), eval_x=ev, lo=[0, 0], hi=[1, 1])
    elif name == "field3d":
        tx = rng.random((200_000, 3))
        ev = rng.uniform(0.01, 0.99, size=(N_EVAL, 3))
        test = ev[:200_000]
        out = dict(train_x=tx, train_v=field3(tx), test_x=test, test_v=field3(test), eval_x=ev, lo=[0, 0, 0],
                   hi=[1, 1, 1])
    elif name == "jacksboro":
        src = os.path.join(DATA, "jacksboro_fault_dem.npz")
        if not os.path.exists(src):
            raise SystemExit(f"{src} missing: pip download matplotlib --no-deps -d bench/data/wheels and unzip "
                             "mpl-data/sample_data/jacksboro_fault_dem.npz from the wheel into bench/data")
        d = np.load(src)
        z = d["elevation"].astype(np.float64)
        ny, nx = z.shape
        lat0 = 0.5 * (float(d["ymin"]) + float(d["ymax"]))
        # Kilometres east and north of the south-west corner (rows run north to south).
        x = np.arange(nx) * float(d["dx"]) * 111.32 * np.cos(np.radians(lat0))
        y = (ny - 1 - np.arange(ny)) * float(d["dy"]) * 110.57
        X, Y = np.meshgrid(x, y)
        pts = np.c_[X.ravel(), Y.ravel()]
        vals = z.ravel()
        perm = rng.permutation(len(vals))
        k = int(0.05 * len(vals))
        test, train = perm[:k], perm[k:]
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        ev = lo + (hi - lo) * rng.uniform(0.01, 0.99, size=(N_EVAL, 2))
        out = dict(train_x=pts[train], train_v=vals[train], test_x=pts[test], test_v=vals[test], eval_x=ev,
                   lo=list(lo), hi=list(hi))
    else:
        raise SystemExit(f"unknown data set {name}")
    np.savez(path, **out)
    return path


def errors(pred, truth):
    ok = np.isfinite(pred)
    d = pred[ok] - truth[ok]
    return {"rmse": float(np.sqrt(np.mean(d ** 2))), "max_err": float(np.abs(d).max()),
            "nan_frac": float(1 - ok.mean())}


def timed_1e6(fn, ev, points):
    """Evaluates the first `points` of `ev` once; returns the time scaled to N_EVAL points."""
    m = min(points, len(ev))
    t = time.perf_counter()
    fn(ev[:m])
    return {"eval_points_timed": m, "eval_1e6_s": (time.perf_counter() - t) * N_EVAL / m,
            "eval_extrapolated": m < N_EVAL}


def held_out(fn, test_x, test_v, k=20_000):
    """Errors on the first k held-out points (the same points for every method)."""
    k = min(len(test_v), k)
    return {**errors(fn(test_x[:k]), test_v[:k]), "error_points": k}


def worker(method, name, repeats, scipy_points, big_grid):
    d = np.load(make(name))
    tx, tv, test_x, test_v, ev = d["train_x"], d["train_v"], d["test_x"], d["test_v"], d["eval_x"]
    lo, hi = list(d["lo"]), list(d["hi"])
    dim = tx.shape[1]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    r = {"method": method, "data": name, "n_train": len(tv), "dim": dim,
         "threads": os.environ.get("RAYON_NUM_THREADS", "all")}
    if method.startswith("voxfield"):
        import voxfield
        # "voxfield" = defaults; "voxfield_ppcN" = N points per domain (smaller, faster cells).
        kw = {"points_per_cell": int(method[len("voxfield_ppc"):])} if method.startswith("voxfield_ppc") else {}
        t = time.perf_counter()
        rbf = voxfield.RBFInterpolator(tx, tv, **kw)
        first_fit = time.perf_counter() - t
        r["fit_s"] = first_fit if repeats == 1 or len(tv) > 2_000_000 else float(np.median(
            [first_fit] + [median_time(lambda: voxfield.RBFInterpolator(tx, tv, **kw), 1) for _ in range(repeats - 1)]))
        r["cells"] = rbf.info["cells"]
        r["mean_cell_points"] = rbf.info["cell_points"] / rbf.info["cells"]
        if not big_grid:
            r["eval_1e6_s"] = median_time(lambda: rbf(ev), repeats)
            if dim == 2:
                r["grid_512_s"] = median_time(lambda: rbf.grid((512, 512), bounds=[lo[0], hi[0], lo[1], hi[1]]), repeats)
        else:
            t = time.perf_counter()
            g = rbf.grid((2048, 2048), bounds=[lo[0], hi[0], lo[1], hi[1]])
            r["grid_2048_s"] = time.perf_counter() - t
            r["grid_2048_finite"] = float(np.isfinite(g).mean())
            del g
        # Errors on the same held-out points as scipy's local RBF (the first 20,000), and on all.
        r.update(held_out(rbf, test_x, test_v))
        r["rmse_all_test"] = errors(rbf(test_x), test_v)["rmse"]
    elif method == "scipy_local":
        from scipy.interpolate import RBFInterpolator
        t = time.perf_counter()
        rbf = RBFInterpolator(tx, tv, neighbors=50, kernel="thin_plate_spline")
        r["fit_s"] = time.perf_counter() - t
        r.update(timed_1e6(rbf, ev, scipy_points))
        if dim == 2:
            ys = np.linspace(lo[1], hi[1], 512)
            xs = np.linspace(lo[0], hi[0], 512)[:64]
            band = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1).reshape(-1, 2)
            t = time.perf_counter()
            rbf(band)
            r["grid_512_s"] = (time.perf_counter() - t) * 8
        r.update(held_out(rbf, test_x, test_v))
    elif method == "griddata_cubic":
        from scipy.interpolate import CloughTocher2DInterpolator
        t = time.perf_counter()
        ct = CloughTocher2DInterpolator(tx, tv)
        r["fit_s"] = time.perf_counter() - t
        r.update(timed_1e6(ct, ev, scipy_points))
        X, Y = np.meshgrid(np.linspace(lo[0], hi[0], 512), np.linspace(lo[1], hi[1], 512), indexing="ij")
        r["grid_512_s"] = median_time(lambda: ct(X, Y), repeats)
        r.update(held_out(ct, test_x, test_v))
    r["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    r["data_rss_mb"] = base
    print(json.dumps(r), flush=True)


def run(method, name, a, threads=None, big_grid=False):
    env = dict(os.environ)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = "1"
    cmd = [sys.executable, __file__, "--worker", method, name, "--repeats", str(a.repeats),
           "--scipy-points", str(a.scipy_points)] + (["--big-grid"] if big_grid else [])
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        raise SystemExit(f"{method} on {name} failed")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["wall_s"] = time.perf_counter() - t
    print(json.dumps(r), flush=True)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="franke,jacksboro,terrain1m,field3d")
    ap.add_argument("--scipy-points", type=int, default=50_000)
    ap.add_argument("--big", action="store_true")
    ap.add_argument("--worker", nargs=2)
    ap.add_argument("--big-grid", action="store_true")
    ap.add_argument("--out", default="rbf.json", help="results file name under bench/results")
    a = ap.parse_args()
    if a.worker:
        return worker(a.worker[0], a.worker[1], a.repeats, a.scipy_points, a.big_grid)
    os.makedirs(RESULTS, exist_ok=True)
    rows = []
    for name in a.only.split(","):
        make(name)
        methods = ["voxfield", "voxfield_ppc300", "voxfield_ppc150", "scipy_local"] + (["griddata_cubic"] if name != "field3d" else [])
        got = {m: run(m, name, a) for m in methods}
        one = run("voxfield", name, a, threads=1)
        v, s = got["voxfield"], got["scipy_local"]
        f, a3 = got["voxfield_ppc150"], got["voxfield_ppc300"]
        summary = {
            "data": name,
            "speedup_fit_plus_1e6_vs_scipy_local": (s["fit_s"] + s["eval_1e6_s"]) / (v["fit_s"] + v["eval_1e6_s"]),
            "rmse_ratio_scipy_over_voxfield": s["rmse"] / v["rmse"],
            "speedup_ppc150": (s["fit_s"] + s["eval_1e6_s"]) / (f["fit_s"] + f["eval_1e6_s"]),
            "rmse_ratio_scipy_over_ppc150": s["rmse"] / f["rmse"],
            "speedup_ppc300": (s["fit_s"] + s["eval_1e6_s"]) / (a3["fit_s"] + a3["eval_1e6_s"]),
            "rmse_ratio_scipy_over_ppc300": s["rmse"] / a3["rmse"],
            "threads_2_over_1": (one["fit_s"] + one["eval_1e6_s"]) / (v["fit_s"] + v["eval_1e6_s"]),
        }
        print("summary", json.dumps(summary), flush=True)
        rows.append({"runs": got, "one_thread": one, "summary": summary})
    if a.big:
        make("terrain6m")
        r = run("voxfield", "terrain6m", argparse.Namespace(repeats=1, scipy_points=a.scipy_points), big_grid=True)
        rows.append({"big": r})
    with open(os.path.join(RESULTS, a.out), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

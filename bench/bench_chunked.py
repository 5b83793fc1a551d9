"""Chunked and sparse volumes, side by side, end to end from the file: voxfield
(open + decode only the touched chunks + sample) vs the anchor (load the whole
array with h5py / zarr-python, or densify a PyData sparse array, then
scipy.ndimage.map_coordinates(order=1)). Medians of --repeats.

    .venv/bin/pip install -r bench/requirements.txt
    cargo build --release -p voxfield --example bench_field
    .venv/bin/python bench/bench_chunked.py [--repeats 3] [--only h5lzf,h5gzip,h5bslz4,zarr,sparse]

Data (created once in bench/data/): 512³ float32 with 10 % non-zeros as HDF5
(8³ chunks, lzf), HDF5 (64³ chunks, gzip), HDF5 Bitshuffle+LZ4 (hdf5plugin; 8³ and 64³
chunks) and Zarr v3 (64³ chunks, zstd); sparse COO
500³ at density 0.01 and 1500³ at density 0.001 (`sparse.save_npz`).
The anchor's load is timed once per repeat and added to each workload's
map_coordinates time (end to end = load + map_coordinates).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation
from _timing import median_time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
BIN = os.path.join(ROOT, "target", "release", "examples", "bench_field")


def volume512():
    rng = np.random.default_rng(3)
    for z in range(0, 512, 64):
        slab = rng.standard_normal((64, 512, 512), dtype=np.float32)
        slab[rng.random((64, 512, 512)) >= 0.1] = 0
        yield z, slab


def make_h5(path, chunks, **kw):
    import h5py
    if os.path.exists(path):
        return
    print("creating", path, flush=True)
    with h5py.File(path + ".partial", "w") as f:
        d = f.create_dataset("vol", shape=(512, 512, 512), dtype=np.float32, chunks=chunks, **kw)
        for z, slab in volume512():
            d[z:z + 64] = slab
    os.rename(path + ".partial", path)


def make_zarr(path):
    import zarr
    if os.path.exists(path):
        return
    print("creating", path, flush=True)
    z = zarr.create_array(path + ".partial", shape=(512, 512, 512), chunks=(64, 64, 64), dtype=np.float32,
                          compressors=zarr.codecs.ZstdCodec(level=3), fill_value=0)
    for zz, slab in volume512():
        z[zz:zz + 64] = slab
    os.rename(path + ".partial", path)


def make_sparse(path, n, density):
    import sparse
    if os.path.exists(path):
        return
    print("creating", path, flush=True)
    s = sparse.random((n, n, n), density=density, random_state=5, format="coo")
    sparse.save_npz(path, s)


def voxfield(source, repeats, points=None, plane=None):
    cmd = [BIN, source, "--repeats", str(repeats)]
    if points:
        cmd += ["--points", points]
    if plane:
        cmd += ["--plane", ",".join(repr(float(x)) for x in plane)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def oblique_plane(shape, n=1000):
    r = Rotation.from_euler("xyz", [30, -45, 5], degrees=True).as_matrix()
    u, v = r[:, 2] * shape[0] / n, r[:, 1] * shape[0] / n  # spans the volume
    c = (np.array(shape) - 1) / 2
    h = (n - 1) / 2
    return list(c - h * u - h * v) + list(u) + list(v) + [n, n]


def plane_coords(p):
    o, u, v, nu, nv = np.array(p[0:3]), np.array(p[3:6]), np.array(p[6:9]), int(p[9]), int(p[10])
    j, i = np.mgrid[0:nv, 0:nu]
    return (o[:, None, None] + i[None] * u[:, None, None] + j[None] * v[:, None, None]).reshape(3, -1)


def mc(vol, coords):
    return map_coordinates(vol, coords, order=1, mode="constant", cval=np.nan, output=np.float32)


def dense_case(name, source, loader, repeats, counts, results):
    """loader() -> ndarray: the anchor's full load."""
    loads = []
    vol = None
    for _ in range(repeats):
        t = time.perf_counter()
        vol = loader()
        loads.append(time.perf_counter() - t)
    load = statistics.median(loads)
    res = results[name] = {"load_s": load, "workloads": {}}
    rng = np.random.default_rng(9)
    for n in counts:
        pts = rng.uniform(0, 511, size=(n, 3))
        ppath = os.path.join(DATA, f"pts_{n}.npy")
        np.save(ppath, pts)
        coords = np.ascontiguousarray(pts.T)
        m = median_time(lambda: mc(vol, coords), repeats)
        vf = voxfield(source, repeats, points=ppath)
        ref = mc(vol, coords)
        row = {"load_plus_mc_s": load + m, "mc_s": m, "voxfield_s": vf["median_s"], "voxfield_warm_s": vf["warm_median_s"],
               "ratio": (load + m) / vf["median_s"], "rss_anon_peak_mib": vf["rss_anon_peak_kib"] / 1024,
               "checksum_rel_diff": abs(vf["checksum"] - float(np.nansum(ref))) / max(1, abs(float(np.nansum(ref))))}
        res["workloads"][str(n)] = row
        print(name, n, json.dumps(row), flush=True)
    plane = oblique_plane((512, 512, 512))
    pc = plane_coords(plane)
    m = median_time(lambda: mc(vol, pc), repeats)
    vf = voxfield(source, repeats, plane=plane)
    ref = mc(vol, pc)
    row = {"load_plus_mc_s": load + m, "mc_s": m, "voxfield_s": vf["median_s"], "ratio": (load + m) / vf["median_s"],
           "nan_scipy": int(np.isnan(ref).sum()), "nan_voxfield": vf["nan"]}
    res["workloads"]["plane_1000x1000"] = row
    print(name, "plane", json.dumps(row), flush=True)


def sparse_case(name, path, shape, repeats, results):
    """Anchor: sparse.load_npz + todense + map_coordinates (end to end), and
    todense + map_coordinates on the loaded COO (in memory). voxfield: open + index
    + sample (end to end), and the same request again on the open source (warm)."""
    import sparse
    rng = np.random.default_rng(4)
    res = results[name] = {"workloads": {}}
    coo = sparse.load_npz(path)
    dense_mib = np.prod(shape) * coo.dtype.itemsize / 2**20
    for n in [1000, 100_000]:
        pts = rng.uniform(0, np.array(shape) - 1, size=(n, 3))
        ppath = os.path.join(DATA, f"spts_{name}_{n}.npy")
        np.save(ppath, pts)
        coords = np.ascontiguousarray(pts.T)
        row = {"dense_mib": dense_mib}
        try:
            row["anchor_e2e_s"] = median_time(lambda: mc(sparse.load_npz(path).todense(), coords), repeats)
            row["anchor_inmem_s"] = median_time(lambda: mc(coo.todense(), coords), repeats)
            ref = float(np.nansum(mc(coo.todense(), coords)))
        except MemoryError as e:
            row["anchor_error"] = f"MemoryError: {e}"
            ref = None
        vf = voxfield(path, repeats, points=ppath)
        row.update({"voxfield_e2e_s": vf["median_s"], "voxfield_warm_s": vf["warm_median_s"],
                    "voxfield_rss_anon_peak_mib": vf["rss_anon_peak_kib"] / 1024})
        if ref is not None:
            row["ratio_e2e"] = row["anchor_e2e_s"] / vf["median_s"]
            row["ratio_inmem_vs_warm"] = row["anchor_inmem_s"] / vf["warm_median_s"]
            row["checksum_rel_diff"] = abs(vf["checksum"] - ref) / max(1, abs(ref))
        res["workloads"][str(n)] = row
        print(name, n, json.dumps(row), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="h5lzf,h5gzip,zarr,sparse")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "chunked.json"))
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release -p voxfield --example bench_field")
    os.makedirs(DATA, exist_ok=True)
    only = a.only.split(",")
    results = {"repeats": a.repeats}
    counts = [1000, 10_000, 100_000, 1_000_000]
    import h5py
    if "h5lzf" in only:
        p = os.path.join(DATA, "vol512_lzf8.h5")
        make_h5(p, (8, 8, 8), compression="lzf")
        dense_case("hdf5_lzf_8", p + ":/vol", lambda: h5py.File(p, "r")["vol"][...], a.repeats, counts, results)
    if "h5bslz4" in only:
        import hdf5plugin
        for c in (8, 64):
            p = os.path.join(DATA, f"vol512_bslz4_{c}.h5")
            make_h5(p, (c, c, c), **hdf5plugin.Bitshuffle(cname="lz4"))
            dense_case(f"hdf5_bitshuffle_lz4_{c}", p + ":/vol", lambda: h5py.File(p, "r")["vol"][...], a.repeats,
                       [1000, 100_000], results)
    if "h5gzip" in only:
        p = os.path.join(DATA, "vol512_gzip64.h5")
        make_h5(p, (64, 64, 64), compression="gzip", compression_opts=4)
        dense_case("hdf5_gzip_64", p + ":/vol", lambda: h5py.File(p, "r")["vol"][...], a.repeats, counts, results)
    if "zarr" in only:
        import zarr
        p = os.path.join(DATA, "vol512_zstd64.zarr")
        make_zarr(p)
        dense_case("zarr_zstd_64", p, lambda: zarr.open_array(p, mode="r")[...], a.repeats, counts, results)
    if "sparse" in only:
        for n, d in [(500, 0.01), (1500, 0.001)]:
            p = os.path.join(DATA, f"sparse_{n}_{d}.npz")
            make_sparse(p, n, d)
            sparse_case(f"sparse_{n}", p, (n, n, n), a.repeats, results)
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(results, f, indent=1)
    print("wrote", a.json)


if __name__ == "__main__":
    main()

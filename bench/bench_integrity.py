"""What checksum verification costs: a whole chunked HDF5 volume read by voxfield and by h5py
(libhdf5), stored plain and with the fletcher32 filter, in one run (medians of 5).

    .venv/bin/python bench/bench_integrity.py [EDGE]   # default 256: 256³ float32, 64 MiB

voxfield reads the volume with `Volume.grid` on the voxel centres: every chunk decoded once."""

import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

import voxfield
from _timing import median_time

EDGE = int(sys.argv[1]) if len(sys.argv) > 1 else 256


with tempfile.TemporaryDirectory() as d:
    a = np.random.default_rng(0).random((EDGE,) * 3, dtype=np.float32)
    rows = {}
    for name, kw in (("plain", {}), ("fletcher32", {"fletcher32": True})):
        p = Path(d) / f"{name}.h5"
        with h5py.File(p, "w") as f:
            f.create_dataset("v", data=a, chunks=(32, 32, 32), **kw)

        def vox():
            v = voxfield.open(f"{p}:/v", cache_mb=8)
            ax = np.arange(EDGE, dtype=np.float64)
            out = v.grid(ax, ax, ax, method="nearest", dtype=np.float32)
            assert out.shape == (EDGE,) * 3

        def h5():
            with h5py.File(p, "r") as f:
                f["v"][...]

        rows[name] = (median_time(vox, 5), median_time(h5, 5))
    print(f"{EDGE}^3 float32 in 32^3 chunks, medians of 5 (s):")
    print(f"{'storage':<12} {'voxfield':>9} {'h5py':>9}")
    for name, (v, h) in rows.items():
        print(f"{name:<12} {v:9.3f} {h:9.3f}")
    print(f"fletcher32 cost: voxfield {rows['fletcher32'][0] / rows['plain'][0] - 1:+.1%}, "
          f"h5py {rows['fletcher32'][1] / rows['plain'][1] - 1:+.1%}")

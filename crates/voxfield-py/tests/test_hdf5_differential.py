"""Differential testing against libhdf5: random HDF5 files written by h5py + hdf5plugin (dtypes and
byte orders, ranks 1-3, shapes, contiguous or chunked layouts, chunk shapes, filter chains, fill
values with chunks left unwritten, fixed or unlimited maxshape, libver earliest or latest, user
blocks) must read in voxfield exactly as h5py reads them. VOXFIELD_H5_FILES sets how many
(default 500; run thousands by hand)."""

import os

import h5py
import hdf5plugin
import numpy as np
import pytest

import voxfield
from _voxels import full

DTYPES = ["i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8"]
FILTERS = [
    ("none", lambda dt: {}),
    ("gzip", lambda dt: {"compression": "gzip", "compression_opts": 4}),
    ("shuffle+gzip", lambda dt: {"compression": "gzip", "shuffle": True}),
    ("lzf", lambda dt: {"compression": "lzf"}),
    ("fletcher32", lambda dt: {"fletcher32": True}),
    ("shuffle+fletcher32+gzip", lambda dt: {"compression": "gzip", "shuffle": True, "fletcher32": True}),
    ("blosc-lz4", lambda dt: dict(hdf5plugin.Blosc(cname="lz4", shuffle=hdf5plugin.Blosc.SHUFFLE))),
    ("blosc-zstd", lambda dt: dict(hdf5plugin.Blosc(cname="zstd", clevel=3, shuffle=hdf5plugin.Blosc.BITSHUFFLE))),
    ("lz4", lambda dt: dict(hdf5plugin.LZ4())),
    ("zstd", lambda dt: dict(hdf5plugin.Zstd())),
    ("bitshuffle", lambda dt: dict(hdf5plugin.Bitshuffle(cname="none"))),
    ("bitshuffle-lz4", lambda dt: dict(hdf5plugin.Bitshuffle(cname="lz4"))),
    ("bzip2", lambda dt: dict(hdf5plugin.BZip2())),
]


def random_file(path, rng):
    """Writes one random dataset '/d' (maybe in a group); returns (dataset path, what it is)."""
    rank = int(rng.integers(1, 4))
    shape = tuple(int(n) for n in rng.integers(1, 14, rank))
    dt = np.dtype(rng.choice(["<", ">"]) + rng.choice(DTYPES))
    if dt.kind == "f":
        data = (rng.standard_normal(shape) * 100).astype(dt)
    else:
        info = np.iinfo(dt)
        data = rng.integers(max(info.min, -1000), min(info.max, 1000), shape, endpoint=True).astype(dt)
    libver = str(rng.choice(["earliest", "latest"]))
    userblock = int(rng.choice([0, 0, 512, 1024]))
    chunked = rng.random() < 0.8
    kw = {}
    fname = "contiguous"
    if chunked:
        kw["chunks"] = tuple(int(rng.integers(1, n + 1)) for n in shape)
        fname, filt = FILTERS[int(rng.integers(len(FILTERS)))]
        kw.update(filt(dt))
        if rng.random() < 0.3:
            kw["maxshape"] = tuple(None if rng.random() < 0.5 else n for n in shape)
    if rng.random() < 0.4:
        kw["fillvalue"] = dt.type(7)
    fkw = {"libver": libver}
    if userblock:
        fkw["userblock_size"] = userblock
    with h5py.File(path, "w", **fkw) as f:
        g = f.create_group("g") if rng.random() < 0.5 else f
        d = g.create_dataset("d", shape=shape, dtype=dt, **kw)
        if chunked and "fillvalue" in kw and rng.random() < 0.5:
            # Only some chunks written: the rest read as the fill value.
            half = tuple(slice(0, max(1, n // 2)) for n in shape)
            d[half] = data[half]
        else:
            d[...] = data
        name = d.name
    return name, f"rank {rank} {shape} {dt.str} {fname} chunks {kw.get('chunks')} maxshape " \
                 f"{kw.get('maxshape')} fill {kw.get('fillvalue')} {libver} userblock {userblock}"


def test_random_files_read_as_libhdf5_reads_them(tmp_path):
    n = int(os.environ.get("VOXFIELD_H5_FILES", "500"))
    rng = np.random.default_rng(2026)
    failures = []
    for k in range(n):
        p = tmp_path / f"r{k}.h5"
        name, what = random_file(p, rng)
        with h5py.File(p, "r") as f:
            want = f[name][...].astype(np.float64)
        try:
            got = full(voxfield.open(f"{p}:{name}"), want.shape)
        except Exception as e:  # noqa: BLE001 (every refusal of a valid file is a failure)
            failures.append(f"{what}: refused: {e}")
            continue
        if not np.array_equal(got, want):
            failures.append(f"{what}: {int((got != want).sum())} values differ")
        p.unlink()
    assert not failures, f"{len(failures)} of {n} files:\n" + "\n".join(failures[:20])

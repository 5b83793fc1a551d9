"""Writes the seed corpus of every fuzz target (fuzz/corpus/TARGET/seed-*): small valid
files made by the reference libraries (numpy, nibabel, pynrrd, h5py + hdf5plugin, zarr-python,
laspy, trx-python) and by voxfield's CLI (models, environment pairs, PLY). Run from the
repository root with the test environment's Python and VOXFIELD_CLI naming a built voxfield:

    VOXFIELD_CLI=target/debug/voxfield .venv/bin/python fuzz/make_seeds.py
"""

import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import hdf5plugin
import laspy
import nibabel as nib
import nrrd
import numpy as np
import zarr

ROOT = Path(__file__).resolve().parent / "corpus"
CLI = os.environ["VOXFIELD_CLI"]
rng = np.random.default_rng(0)
vol = (rng.random((6, 5, 4)) * 100).astype(np.float32)


def seed(target, name, data):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data)


def packed(first, rest):
    """Two files in one input: a little-endian u32 length, the first file, the second."""
    return struct.pack("<I", len(first)) + first + rest


def cli(*args):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"voxfield {' '.join(map(str, args))}: {r.stderr}")


with tempfile.TemporaryDirectory() as t:
    t = Path(t)
    for dt in ("<f4", ">i2", "|u1"):
        np.save(t / "v.npy", vol.astype(dt))
        seed("npy", dt.strip("<>|"), (t / "v.npy").read_bytes())
    np.save(t / "f.npy", np.asfortranarray(vol))
    seed("npy", "fortran", (t / "f.npy").read_bytes())

    img = nib.Nifti1Image(vol, np.diag([2.0, 2.0, 3.0, 1.0]))
    img.header.set_qform(np.diag([2.0, 2.0, 3.0, 1.0]), code=1)
    nib.save(img, t / "v.nii")
    seed("nifti", "qform", (t / "v.nii").read_bytes())
    scaled = nib.Nifti1Image(vol.astype(">i2"), np.eye(4))
    scaled.header.set_slope_inter(0.5, 3.0)
    nib.save(scaled, t / "s.nii")
    seed("nifti", "big-endian-scaled", (t / "s.nii").read_bytes())

    nrrd.write(str(t / "v.nrrd"), vol, {"space": "RAS", "space directions": np.eye(3),
                                          "space origin": np.zeros(3)})
    seed("nrrd", "raw", (t / "v.nrrd").read_bytes())
    nrrd.write(str(t / "g.nrrd"), vol.astype(np.int16), {"encoding": "gzip"})
    seed("nrrd", "gzip", (t / "g.nrrd").read_bytes())

    fixtures = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "chunked"
    for name in ("sparse.npz", "sparse_fill.npz"):
        seed("sparse-npz", name, (fixtures / name).read_bytes())

    with h5py.File(t / "v.h5", "w") as f:
        f.create_dataset("c", data=vol, chunks=(3, 5, 2), compression="gzip", shuffle=True, fletcher32=True)
        f.create_dataset("d", data=vol.astype(np.int16))
    seed("hdf5", "default", (t / "v.h5").read_bytes())
    with h5py.File(t / "l.h5", "w", libver="latest") as f:
        g = f.create_group("g", track_order=True)
        for k in range(12):
            g.create_dataset(f"x{k}", data=np.full(2, k))
        g.create_dataset("v", data=vol, chunks=(2, 2, 2), **hdf5plugin.Zstd())
        e = f.create_dataset("e", shape=(0, 5, 4), maxshape=(None, 5, 4), chunks=(1, 5, 4), dtype="f4")
        e.resize((6, 5, 4))
        e[...] = vol
    seed("hdf5", "latest", (t / "l.h5").read_bytes())
    with h5py.File(t / "b.h5", "w") as f:
        f.create_dataset("b", data=vol.astype(np.uint32), chunks=(3, 5, 4), **hdf5plugin.Bitshuffle(cname="lz4"))
        f.create_dataset("z", data=vol, chunks=(6, 5, 4), **hdf5plugin.Blosc(cname="lz4"))
    seed("hdf5", "plugins", (t / "b.h5").read_bytes())

    for name, kwargs in (("plain", {}), ("sharded", {"shards": (6, 5, 4)})):
        z = zarr.create_array(store=str(t / f"{name}.zarr"), shape=vol.shape, chunks=(6, 5, 4), dtype="f4",
                              **kwargs)
        z[...] = vol
        meta = (t / f"{name}.zarr" / "zarr.json").read_bytes()
        chunk = (t / f"{name}.zarr" / "c" / "0" / "0" / "0").read_bytes()
        seed("zarr", name, packed(meta, chunk))

    np.save(t / "s.npy", vol)
    cli("compress", t / "s.npy", "-o", t / "m.vxn", "--epochs", "1", "--log2-table", "6", "--levels", "2",
        "--width", "8")
    seed("vxn", "small", (t / "m.vxn").read_bytes())
    pts = rng.random((200, 3)) * 10
    np.save(t / "p.npy", np.column_stack([pts[:, :2], np.sin(pts[:, 0])]))
    cli("rbf", "fit", t / "p.npy", "-o", t / "m.vxr")
    seed("vxr", "tps", (t / "m.vxr").read_bytes())

    tt = np.arange(600) / 30.0
    walk = np.cumsum(rng.normal(0, 0.5, (600, 2)), axis=0)
    np.save(t / "pos.npy", np.column_stack([tt, walk]))
    np.savez(t / "spk.npz", a=np.sort(rng.uniform(0, tt[-1], 50)))
    cli("env", "rate-maps", t / "pos.npy", t / "spk.npz", "--bin-size", "1", "-o", t / "r.npy", "--env",
        t / "arena")
    seed("env", "grid", packed((t / "arena.json").read_bytes(), (t / "arena.npz").read_bytes()))

    np.save(t / "cloud.npy", np.column_stack([pts, rng.random(200)]))
    cli("vectors", "write", t / "cloud.npy", "-o", t / "c.zarrvectors", "--attributes", "w")
    cli("vectors", "read", t / "c.zarrvectors", "-o", t / "c.ply")
    seed("ply", "binary", (t / "c.ply").read_bytes())
    seed("ply", "ascii", b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
                         b"property float z\nend_header\n0 0 0\n1 2 3\n")

    las = laspy.LasData(laspy.LasHeader(point_format=3, version="1.2"))
    las.x, las.y, las.z = pts[:, 0], pts[:, 1], pts[:, 2]
    las.write(t / "c.las")
    seed("las", "pf3", (t / "c.las").read_bytes())

    lines = [rng.random((n, 3)).astype(np.float32) * 20 for n in (3, 7, 2)]
    tg = nib.streamlines.Tractogram(lines, affine_to_rasmm=np.eye(4))
    nib.streamlines.save(tg, str(t / "s.tck"))
    seed("tck", "three", (t / "s.tck").read_bytes())
    hdr = {nib.streamlines.Field.VOXEL_TO_RASMM: np.eye(4), nib.streamlines.Field.DIMENSIONS: (20, 20, 20),
           nib.streamlines.Field.VOXEL_SIZES: (1.0, 1.0, 1.0)}
    nib.streamlines.TrkFile(tg, header=hdr).save(str(t / "s.trk"))
    seed("trk", "three", (t / "s.trk").read_bytes())

    cli("vectors", "write", t / "s.tck", "-o", t / "s.zarrvectors")
    cli("vectors", "read", t / "s.zarrvectors", "-o", t / "s.trx")
    seed("trx", "three", (t / "s.trx").read_bytes())

    # A zarr-vectors store as the `vectors` harness builds it (40 points, 8 chunks); each seed is
    # one of its files, led by the byte that names which (VECTORS_FILES in voxfield-fuzzing).
    vpts = np.array([[(i * 7 % 10) + 0.5, (i * 3 % 10) + 0.5, (i * 5 % 10) + 0.5] for i in range(40)], np.float32)
    np.save(t / "vp.npy", vpts)
    cli("vectors", "write", t / "vp.npy", "-o", t / "v.zarr", "--chunk", "5,5,5")
    for i, f in enumerate(["zarr.json", "0/zarr.json", "0/vertices/zarr.json", "0/vertices/c/0/0/0",
                           "0/vertex_fragments/zarr.json", "0/vertex_fragments/c/0/0/0"]):
        seed("vectors", f.replace("/", "-"), bytes([i]) + (t / "v.zarr" / f).read_bytes())

print(f"seeds written under {ROOT}")

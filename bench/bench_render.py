"""Rendering benchmark (issue 23): voxfield against VTK's CPU ray caster (vtkFixedPointVolumeRayCastMapper
through PyVista, headless by EGL), yt's volume renderer and numpy, on nilearn's MNI152 T1 (197×233×189 u8),
in one run. Same transfer function (grey ramp over 0..255, opacity ramp 0 -> 1 per voxel of path), the same
1-voxel sample distance, 512×512 pictures.

    python3 -m venv .venv-render && .venv-render/bin/pip install vtk pyvista yt nilearn nibabel numpy
    cargo build --release -p voxfield-cli
    VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow .venv-render/bin/python bench/bench_render.py [--no-yt] [--vxn] [--ome]

voxfield is timed as the user runs it: the CLI, whole process, with its own per-frame times (--json).
"Re-render" is the median frame of a 36-frame turntable (10° between frames) after the first.
--vxn also compresses the brain (ratio 50, at most 120 s of training) and renders the model.
--ome also writes a 1 GiB volume (1024³ u8) as a 4-level OME-Zarr and times a 512² render of it
(voxfield reads the level that matches the pixels)."""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _mni import mni

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
CLI = os.environ.get("VOXFIELD_CLI", str(ROOT / "target" / "release" / "voxfield"))
SIZE = 512


def voxfield_run(path, *args):
    t = time.perf_counter()
    r = subprocess.run([CLI, "render", str(path), "--json", *map(str, args)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    return json.loads(r.stdout), wall


def voxfield_rows(path):
    rows = {}
    out = DATA / "render.png"
    common = ["--size", f"{SIZE},{SIZE}", "--window", "0,255", "--elevation", "20", "-o", out]
    for mode in ("dvr", "mip"):
        j, wall = voxfield_run(path, "--mode", mode, "--frames", "36", *common)
        ms = j["frame_ms"]
        rows[mode] = dict(first=ms[0], rerender=statistics.median(ms[1:]), read=j["read_seconds"] * 1e3,
                          wall_36=wall, samples=j["samples"], skipped=j["skipped"], terminated=j["terminated"])
        j, wall = voxfield_run(path, "--mode", mode, "--frames", "12", *common)
        rows[mode]["wall_12"] = wall
        j, wall = voxfield_run(path, "--mode", mode, *common)
        rows[mode]["wall_1"] = wall
    return rows


def vtk_rows(a):
    import pyvista as pv
    import vtk

    grid = pv.ImageData(dimensions=a.shape[::-1])
    grid.point_data["v"] = a.ravel()  # C order: x (fastest) is numpy's last axis
    rows = {}
    for mode, blend in (("dvr", "composite"), ("mip", "maximum")):
        t0 = time.perf_counter()
        pl = pv.Plotter(off_screen=True, window_size=(SIZE, SIZE))
        opacity = np.linspace(0, 255, 256)  # PyVista: 0..255, or the picture is silently black
        actor = pl.add_volume(grid, scalars="v", mapper="fixed_point", cmap="gray", clim=(0, 255),
                              opacity=opacity, blending=blend, show_scalar_bar=False)
        m = actor.mapper
        m.SetAutoAdjustSampleDistances(False)
        m.SetSampleDistance(1.0)
        m.SetInteractiveSampleDistance(1.0)
        actor.prop.SetScalarOpacityUnitDistance(1.0)
        actor.prop.SetInterpolationTypeToLinear()
        pl.camera.elevation = 20
        t1 = time.perf_counter()
        pl.show(auto_close=False, interactive=False)  # the first frame (and the GL context)
        first = time.perf_counter() - t1
        times = []
        for _ in range(12):
            pl.camera.Azimuth(10)
            t = time.perf_counter()
            pl.render()
            times.append(time.perf_counter() - t)
        total = time.perf_counter() - t0
        pl.screenshot(str(DATA / f"vtk_{mode}.png"))
        pl.close()
        rows[mode] = dict(first=first * 1e3, rerender=statistics.median(times) * 1e3, setup_and_13=total)
    return rows, vtk.vtkVersion.GetVTKVersion()


def yt_row(a):
    import yt

    yt.set_log_level(50)
    ds = yt.load_uniform_grid({"v": a.astype(np.float64)}, a.shape, length_unit=1)
    sc = yt.create_scene(ds, field=("stream", "v"))
    src = sc[0]
    src.log_field = False
    src.tfh.set_bounds((0, 255))
    src.tfh.set_log(False)
    src.tfh.grey_opacity = True
    cam = sc.camera
    cam.resolution = (SIZE, SIZE)
    src.set_sampling_rate = None
    times = []
    for i in range(3):
        cam.rotate(np.deg2rad(10))
        t = time.perf_counter()
        sc.render()
        times.append(time.perf_counter() - t)
    return dict(first=times[0] * 1e3, rerender=statistics.median(times[1:]) * 1e3), yt.__version__


def numpy_mip(path):
    times = []
    for _ in range(5):
        t = time.perf_counter()
        a = np.load(path, mmap_mode="r")
        a.max(axis=0)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def axis_mip(path):
    walls, frames = [], []
    for _ in range(5):
        j, wall = voxfield_run(path, "--mode", "mip", "--view", "axis0", "-o", DATA / "axis.npy")
        walls.append(wall)
        frames.append(j["frame_ms"][0] + j["read_seconds"] * 1e3)
    want = np.load(path).max(axis=0)
    assert np.array_equal(np.load(DATA / "axis.npy"), want.astype(np.float32))
    return statistics.median(walls) * 1e3, statistics.median(frames)


def neural_rows(path):
    """A .vxn of the same brain (ratio 50, trained for at most 120 s), rendered from its decoded
    lattice (the default) and by evaluating the network at every sample (--direct)."""
    vxn = DATA / "mni_t1.vxn"
    if not vxn.exists():
        r = subprocess.run([CLI, "compress", str(path), "-o", str(vxn), "--ratio", "50", "--epochs", "100",
                            "--time-limit", "120"], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(r.stderr)
    out = DATA / "render.png"
    common = ["--size", f"{SIZE},{SIZE}", "--window", "0,255", "--elevation", "20", "-o", out]
    j, wall = voxfield_run(vxn, "--frames", "12", *common)
    lattice = dict(decode=j["read_seconds"] * 1e3, first=j["frame_ms"][0], rerender=statistics.median(j["frame_ms"][1:]),
                   wall=wall)
    j, wall = voxfield_run(vxn, "--direct", "--step", "2", *common)
    direct = dict(first=j["frame_ms"][0], wall=wall, samples=j["samples"])
    return lattice, direct


def ome_row():
    """A 1 GiB volume (1024³ u8) as a 4-level OME-Zarr; a 512² render reads the level whose voxels
    match the pixels."""
    store = DATA / "big.ome.zarr"
    if not store.exists():
        n = 1024
        raw = DATA / "big.npy"
        a = np.lib.format.open_memmap(raw, mode="w+", dtype=np.uint8, shape=(n, n, n))
        i = np.arange(n, dtype=np.float32)
        for z in range(n):
            a[z] = (127 + 120 * np.sin(i[:, None] / 37 + z / 53) * np.cos(i[None, :] / 29)).astype(np.uint8)
        a.flush()
        del a
        r = subprocess.run([CLI, "convert", str(raw), str(store), "--levels", "4"], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        raw.unlink()
    j, wall = voxfield_run(store, "--mode", "mip", "--size", f"{SIZE},{SIZE}", "--azimuth", "30", "--elevation", "20",
                           "-o", DATA / "big.png")
    return dict(read=j["read_seconds"] * 1e3, frame=j["frame_ms"][0], wall=wall, how=j["read"])


def main():
    path = mni()
    a = np.load(path)
    print(f"MNI152 T1 {a.shape} {a.dtype}, {SIZE}x{SIZE}, 1-voxel steps, elevation 20°, 10° orbits")
    vx = voxfield_rows(path)
    vt, vtk_version = vtk_rows(a)
    print(f"\nVTK {vtk_version} fixed-point ray caster (in process) vs voxfield CLI (whole process):")
    print(f"{'':6} {'VTK first':>10} {'VTK re':>8} {'vox first':>10} {'vox re':>8} {'ratio re':>9} "
          f"{'vox 12-frame wall':>18} {'VTK 13 frames+setup':>20}")
    for m in ("dvr", "mip"):
        print(f"{m:6} {vt[m]['first']:9.0f}ms {vt[m]['rerender']:6.0f}ms {vx[m]['first']:8.1f}ms "
              f"{vx[m]['rerender']:6.1f}ms {vt[m]['rerender'] / vx[m]['rerender']:8.2f}x "
              f"{vx[m]['wall_12']:16.2f} s {vt[m]['setup_and_13']:18.2f} s")
    for m in ("dvr", "mip"):
        r = vx[m]
        pos = r["samples"] + r["skipped"]
        print(f"voxfield {m}: lattice read {r['read']:.0f} ms; 36 frames: {r['samples']} samples taken, "
              f"{r['skipped']} skipped ({100 * r['skipped'] / pos:.0f}%), {r['terminated']} rays stopped early; "
              f"one frame, whole process {r['wall_1']:.2f} s")
    n = numpy_mip(path)
    w, f = axis_mip(path)
    print(f"\naxis-aligned MIP (== numpy, checked): numpy max(axis=0) on a memmap {n:.1f} ms; "
          f"voxfield read+frame {f:.1f} ms, whole process {w:.1f} ms")
    if "--vxn" in sys.argv:
        lat, direct = neural_rows(path)
        print(f"\n.vxn of the brain: lattice decoded by the row decoder in {lat['decode']:.0f} ms, first frame "
              f"{lat['first']:.0f} ms (first picture {lat['decode'] + lat['first']:.0f} ms), re-render "
              f"{lat['rerender']:.0f} ms; whole process for 12 frames {lat['wall']:.2f} s. "
              f"Direct network evaluation (step 2): {direct['first'] / 1e3:.1f} s for {direct['samples']} samples")
    if "--ome" in sys.argv:
        o = ome_row()
        print(f"\n1 GiB OME-Zarr (4 levels), 512² MIP: {o['how']}; read {o['read']:.0f} ms, frame "
              f"{o['frame']:.0f} ms, whole process {o['wall']:.2f} s")
    if "--no-yt" not in sys.argv:
        y, yv = yt_row(a)
        print(f"\nyt {yv} volume render (in process): first {y['first']:.0f} ms, re-render {y['rerender']:.0f} ms "
              f"(voxfield dvr re-render {vx['dvr']['rerender']:.1f} ms: {y['rerender'] / vx['dvr']['rerender']:.0f}x)")


if __name__ == "__main__":
    main()

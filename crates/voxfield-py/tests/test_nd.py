"""N-D sources (issue 9, item 1): 1-D to 5-D arrays in every format, with the non-spatial
axes selected by index; fixtures written here by numpy, nibabel, zarr-python, ome-zarr-py
and h5py, and every sample checked against scipy on the selected sub-array."""
import json
import os
import subprocess

import numpy as np
import pytest
from scipy.ndimage import map_coordinates as scipy_mc

import voxfield

CLI = os.environ.get("VOXFIELD_CLI")


def pts_for(shape, rng, n=300):
    s = np.array(shape, float)
    p = rng.uniform(-0.5, s - 0.5, size=(n, len(shape)))
    p[::5] = np.round(p[::5])
    return p


def check(vol, sub, rng, world=False):
    """Sampling `vol` equals scipy's order-1 map_coordinates on the numpy sub-array."""
    assert vol.shape == sub.shape
    p = pts_for(sub.shape, rng)
    want = scipy_mc(sub.astype(np.float64), p.T, order=1, mode="nearest")
    got = vol.sample(p, mode="nearest", dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def tczyx(rng, shape=(3, 2, 5, 6, 7), dtype=np.float32):
    return (rng.standard_normal(shape) * 10).astype(dtype)


def test_numpy_arrays_of_every_rank(tmp_path):
    rng = np.random.default_rng(0)
    a = tczyx(rng)
    check(voxfield.open(a, index={"axis0": 2, "axis1": 1}), a[2, 1], rng)
    check(voxfield.open(a, index=(1, 0)), a[1, 0], rng)
    check(voxfield.open(a[0], index=(1,)), a[0, 1], rng)
    img = a[0, 0, 0]
    check(voxfield.open(img), img, rng)  # 2-D image, (N, 2) points
    line = img[0]
    check(voxfield.open(line), line, rng)
    # Length-1 leading axes default to 0 (bioformats-style TCZYX with t = c = 1).
    one = a[:1, :1]
    check(voxfield.open(one), one[0, 0], rng)
    with pytest.raises(ValueError, match=r"axis0=0\.\.2.*axis1=0\.\.1"):
        voxfield.open(a)
    with pytest.raises(ValueError, match="out of range"):
        voxfield.open(a, index=(3, 0))
    # .npy memmaps of rank 4 and 2, by path.
    np.save(tmp_path / "a.npy", a[:, 0])
    check(voxfield.open(tmp_path / "a.npy", index={"axis0": 2}), a[2, 0], rng)
    np.save(tmp_path / "img.npy", img)
    v = voxfield.open(tmp_path / "img.npy")
    assert v.ndim == 2 and v.shape == img.shape
    check(v, img, rng)


def test_two_d_planes_grids_and_map_coordinates():
    rng = np.random.default_rng(1)
    img = rng.standard_normal((40, 50))
    v = voxfield.open(img)
    # A rotated, scaled resampling of the image equals scipy on the same coordinates.
    ang = np.deg2rad(30)
    u, w = np.array([np.sin(ang), np.cos(ang)]) * 0.7, np.array([np.cos(ang), -np.sin(ang)]) * 0.7
    origin = np.array([5.0, 3.0])
    got = v.plane(origin, u, w, (20, 30), mode="nearest", dtype=np.float64)
    jj, ii = np.mgrid[0:20, 0:30]
    c = origin[:, None, None] + ii * u[:, None, None] + jj * w[:, None, None]
    np.testing.assert_allclose(got, scipy_mc(img, c, order=1, mode="nearest"), atol=1e-9)
    g = v.grid([1.5, 2.0], [0.0, 3.25, 7.0], dtype=np.float64)
    yy, xx = np.meshgrid([1.5, 2.0], [0.0, 3.25, 7.0], indexing="ij")
    np.testing.assert_allclose(g, scipy_mc(img, [yy, xx], order=1, mode="constant", cval=np.nan), atol=1e-9)
    c = rng.uniform(-1, 45, size=(2, 7, 3))
    for order in (0, 1):
        for mode in ("constant", "nearest", "mirror", "wrap"):
            np.testing.assert_allclose(voxfield.map_coordinates(img, c, order=order, mode=mode),
                                       scipy_mc(img, c, order=order, mode=mode), atol=1e-9)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        v.sample(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="slab needs a 3-D"):
        v.slab(origin, u, w, (4, 4), thickness=2.0)


def test_all_index_samples_every_time_point():
    rng = np.random.default_rng(2)
    a = tczyx(rng)
    v = voxfield.open(a, index={"axis1": 1, "axis0": 0})
    p = pts_for(a.shape[2:], rng, 50)
    got = v.sample(p, mode="nearest", dtype=np.float64, all_index="axis0")
    assert got.shape == (3, 50)
    for t in range(3):
        np.testing.assert_allclose(got[t], scipy_mc(a[t, 1].astype(np.float64), p.T, order=1, mode="nearest"),
                                   atol=1e-5)
    assert v.at(axis0=2).index == {"axis0": 2, "axis1": 1}
    with pytest.raises(ValueError, match="no non-spatial axis"):
        v.sample(p, all_index="z")


def test_nifti_4d_time_series(tmp_path):
    nib = pytest.importorskip("nibabel")
    rng = np.random.default_rng(3)
    data = (rng.standard_normal((6, 7, 5, 4)) * 100).astype(np.int16)
    aff = np.diag([2.0, 2.5, 3.0, 1.0])
    aff[:3, 3] = [-10, 4, 2]
    img = nib.Nifti1Image(data, aff)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, tmp_path / "bold.nii")
    nib.save(img, tmp_path / "bold.nii.gz")
    for name in ("bold.nii", "bold.nii.gz"):
        v = voxfield.open(tmp_path / name, index={"t": 3})
        check(v, data[..., 3], rng)
        np.testing.assert_allclose(v.affine, aff)
        axes = v.axes
        assert [a["name"] for a in axes] == ["x", "y", "z", "t"]
        assert axes[0]["unit"] == "millimeter" and axes[3]["unit"] == "second" and axes[3]["length"] == 4
        with pytest.raises(ValueError, match=r"t=0\.\.3"):
            voxfield.open(tmp_path / name)


def test_zarr_nd_arrays_and_ome_zarr_tczyx(tmp_path):
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(4)
    a = tczyx(rng)
    for fmt in (2, 3):
        z = zarr.create_array(str(tmp_path / f"a{fmt}.zarr"), shape=a.shape, chunks=(2, 1, 3, 4, 5), dtype=a.dtype,
                              zarr_format=fmt)
        z[...] = a
        check(voxfield.open(str(tmp_path / f"a{fmt}.zarr"), index=(2, 1)), a[2, 1], rng)
        check(voxfield.open(z, index=(1, 0)), a[1, 0], rng)
    img = a[0, 0, 0]
    z = zarr.create_array(str(tmp_path / "img.zarr"), shape=img.shape, chunks=(4, 4), dtype=img.dtype)
    z[...] = img
    check(voxfield.open(str(tmp_path / "img.zarr")), img, rng)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_written_by_ome_zarr_py(tmp_path, version):
    pytest.importorskip("ome_zarr")
    from ome_zarr.writer import write_image
    from ome_zarr.format import FormatV04, FormatV05
    import zarr
    rng = np.random.default_rng(5)
    a = tczyx(rng, (2, 3, 8, 12, 16))
    path = str(tmp_path / f"img{version}.ome.zarr")
    fmt = FormatV04() if version == "0.4" else FormatV05()
    root = zarr.open_group(path, mode="w", zarr_format=2 if version == "0.4" else 3)
    write_image(a, root, axes="tczyx", fmt=fmt, scale={"z": 2.0, "y": 0.5, "x": 0.5}, scale_factors=[],
                chunks=(1, 1, 4, 6, 8))
    v = voxfield.open(path, index={"t": 1, "c": 2})
    check(v, a[1, 2], rng)
    assert [x["name"] for x in v.axes] == ["t", "c", "z", "y", "x"]
    assert [x["type"] for x in v.axes] == ["time", "channel", "space", "space", "space"]
    np.testing.assert_allclose(np.diag(v.affine), [2.0, 0.5, 0.5, 1.0])
    with pytest.raises(ValueError, match="choose an index"):
        voxfield.open(path)
    # World coordinates go through the spatial part of the transform.
    p = np.array([[2.0, 1.0, 3.0]])
    np.testing.assert_allclose(v.sample(p, world=True, dtype=np.float64),
                               v.sample(p / [2.0, 0.5, 0.5], dtype=np.float64))


def test_hdf5_nd_datasets(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(6)
    a = tczyx(rng)
    p = tmp_path / "nd.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("chunked", data=a, chunks=(2, 1, 3, 4, 5), compression="gzip")
        f.create_dataset("contig", data=a[0])
        f.create_dataset("img", data=a[0, 0, 0], chunks=(3, 3))
    try:
        v = voxfield.open(f"{p}:/chunked", index=(2, 1))
    except ValueError as e:
        if "not compiled in" in str(e):
            pytest.skip("built without HDF5")
        raise
    check(v, a[2, 1], rng)
    check(voxfield.open(f"{p}:/contig", index=(1,)), a[0, 1], rng)
    check(voxfield.open(f"{p}:/img"), a[0, 0, 0], rng)


@pytest.mark.skipif(CLI is None, reason="VOXFIELD_CLI names the built voxfield binary")
def test_cli_index_and_all_index(tmp_path):
    rng = np.random.default_rng(7)
    a = tczyx(rng)
    np.save(tmp_path / "a.npy", a)
    p = pts_for(a.shape[2:], rng, 20)
    np.save(tmp_path / "p.npy", p)
    run = lambda *args: subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    r = run("sample", tmp_path / "a.npy", "--index", "axis0=2,axis1=1", "--points", tmp_path / "p.npy",
            "--out", tmp_path / "o.npy", "--mode", "nearest", "--dtype", "f64")
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"),
                               scipy_mc(a[2, 1].astype(float), p.T, order=1, mode="nearest"), atol=1e-5)
    r = run("sample", tmp_path / "a.npy", "--index", "axis1=1", "--all-index", "axis0", "--points",
            tmp_path / "p.npy", "--out", tmp_path / "all.npy", "--mode", "nearest", "--dtype", "f64")
    assert r.returncode == 0, r.stderr
    allv = np.load(tmp_path / "all.npy")
    assert allv.shape == (3, 20)
    np.testing.assert_allclose(allv[2], np.load(tmp_path / "o.npy"))
    r = run("sample", tmp_path / "a.npy", "--points", tmp_path / "p.npy", "--out", tmp_path / "x.npy")
    assert r.returncode == 1 and "axis0=0..2" in r.stderr
    r = run("info", tmp_path / "a.npy", "--index", "1,1", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert [x["name"] for x in info["axes"]] == ["axis0", "axis1", "z", "y", "x"]
    img = a[0, 0, 0].astype(np.float64)
    np.save(tmp_path / "img.npy", img)
    np.save(tmp_path / "p2.npy", p[:, 1:])
    r = run("sample", tmp_path / "img.npy", "--points", tmp_path / "p2.npy", "--out", tmp_path / "o2.npy",
            "--mode", "nearest", "--dtype", "f64")
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "o2.npy"), scipy_mc(img, p[:, 1:].T, order=1, mode="nearest"))
    r = run("slice", tmp_path / "img.npy", "--origin", "0,0", "--u", "0,1", "--v", "1,0", "--size", "6,5",
            "--out", tmp_path / "s.npy", "--dtype", "f64")
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), img[:5, :6])


@pytest.mark.skipif(CLI is None, reason="VOXFIELD_CLI names the built voxfield binary")
def test_all_index_over_a_declared_2_to_32_axis(tmp_path):
    """A Zarr declaring a 2^32-long time axis (one chunk written): `--all-index` over it streams
    row by row, stops on Ctrl-C leaving nothing behind; one whose output cannot fit on disk is
    refused before any read. (Each index once walked the whole store: 35 ms per index.)"""
    import signal
    import time

    zarr = pytest.importorskip("zarr")
    store = tmp_path / "t.zarr"
    a = zarr.create_array(str(store), shape=(2**32, 4, 4, 4), chunks=(1, 4, 4, 4), dtype="f4")
    a[1] = 7.0
    np.save(tmp_path / "p.npy", np.array([[1.0, 1.0, 1.0], [2.5, 2.0, 1.0]]))
    out = tmp_path / "out" / "o.npy"
    out.parent.mkdir()
    proc = subprocess.Popen([CLI, "sample", str(store), "--points", str(tmp_path / "p.npy"),
                             "--all-index", "axis0", "--out", str(out)], stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "not written" in err, err
    assert list(out.parent.iterdir()) == []
    big = tmp_path / "big.zarr"
    zarr.create_array(str(big), shape=(2**40, 4, 4, 4), chunks=(1, 4, 4, 4), dtype="f4")
    r = subprocess.run([CLI, "sample", str(big), "--points", str(tmp_path / "p.npy"), "--all-index", "axis0",
                        "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "o.npy" in r.stderr and "panicked" not in r.stderr, r.stderr
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_spline_orders_match_scipy_in_every_mode_on_lazy_chunked_volumes(tmp_path, order):
    """map_coordinates(order=2..5) equals scipy's (global prefilter) on a Zarr volume read
    lazily brick by brick (several 64³ bricks, so interior halos are exercised)."""
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(order)
    a = rng.standard_normal((150, 40, 70)).astype(np.float32)
    z = zarr.create_array(str(tmp_path / "v.zarr"), shape=a.shape, chunks=(32, 16, 32), dtype=a.dtype)
    z[...] = a
    vol = voxfield.open(str(tmp_path / "v.zarr"))
    p = np.concatenate([rng.uniform(-3, np.array(a.shape) + 2, size=(1500, 3)),
                        rng.uniform(0, np.array(a.shape) - 1, size=(1500, 3))])
    p[::9] = np.round(p[::9])
    a64 = a.astype(np.float64)
    for mode in ["constant", "grid-constant", "nearest", "reflect", "mirror", "wrap"]:
        want = scipy_mc(a64, p.T, order=order, mode=mode, cval=0.5)
        got = voxfield.map_coordinates(vol, p.T, order=order, mode=mode, cval=0.5, output=np.float64)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=f"order {order} mode {mode}")
    # prefilter=False: the values are taken as coefficients, as scipy does.
    small = a64[:20, :9, :11]
    q = rng.uniform(-1, 12, size=(3, 200))
    for mode in ["mirror", "nearest", "grid-constant"]:
        np.testing.assert_allclose(voxfield.map_coordinates(small, q, order=order, mode=mode, prefilter=False),
                                   scipy_mc(small, q, order=order, mode=mode, prefilter=False), atol=1e-12)


def test_map_coordinates_has_scipys_signature_and_default_order():
    rng = np.random.default_rng(9)
    a = rng.random((9, 10, 11))
    c = rng.uniform(0, 8, size=(3, 40))
    np.testing.assert_allclose(voxfield.map_coordinates(a, c), scipy_mc(a, c), atol=1e-12)  # order 3
    out = np.empty(40)
    assert voxfield.map_coordinates(a, c, out, 1) is out
    np.testing.assert_allclose(out, scipy_mc(a, c, order=1), atol=1e-12)
    # The local Catmull-Rom cubic stays available by its own name, and differs from the B-spline.
    local = voxfield.open(a).sample(c.T, method="cubic", dtype=np.float64)
    assert np.abs(local - scipy_mc(a, c, order=3)).max() > 1e-3
    with pytest.raises(NotImplementedError, match="orders 0 and 1"):
        voxfield.map_coordinates(np.zeros((2, 3, 4, 5)), np.zeros((4, 1)), order=3)


@pytest.mark.parametrize("shape", [(3, 5, 6, 7), (2, 3, 4, 5, 6), (1, 5, 6, 7)])
def test_map_coordinates_on_4d_and_5d_arrays_matches_scipy(shape):
    rng = np.random.default_rng(len(shape))
    a = rng.standard_normal(shape)
    c = np.stack([rng.uniform(-1.5, n + 0.5, size=400) for n in shape])
    c[:, ::7] = np.round(c[:, ::7])
    for order in (0, 1):
        for mode in ["constant", "grid-constant", "nearest", "reflect", "mirror", "wrap"]:
            np.testing.assert_allclose(voxfield.map_coordinates(a, c, order=order, mode=mode, cval=-2.5),
                                       scipy_mc(a, c, order=order, mode=mode, cval=-2.5), atol=1e-12,
                                       err_msg=f"{shape} order {order} {mode}")


def test_nrrd_time_series_and_vector_volumes_written_by_pynrrd(tmp_path):
    nrrd = pytest.importorskip("nrrd")
    rng = np.random.default_rng(11)
    # pynrrd's default index order is Fortran: data[x, y, z, t] with x fastest on disk.
    ts = rng.random((6, 5, 4, 3)).astype(np.float32)
    nrrd.write(str(tmp_path / "ts.nrrd"), ts, {"kinds": ["domain", "domain", "domain", "time"],
                                              "space directions": [[2, 0, 0], [0, 3, 0], [0, 0, 4], [np.nan] * 3],
                                              "space": "right-anterior-superior", "space origin": [1, 2, 3]})
    v = voxfield.open(tmp_path / "ts.nrrd", index={"t": 2})
    assert [x["name"] for x in v.axes] == ["x", "y", "z", "t"]
    check(v, ts[..., 2], rng)
    np.testing.assert_allclose(np.diag(v.affine), [2, 3, 4, 1])
    with pytest.raises(ValueError, match=r"t=0\.\.2"):
        voxfield.open(tmp_path / "ts.nrrd")
    vec = rng.random((3, 6, 5, 4)).astype(np.float32)
    nrrd.write(str(tmp_path / "vec.nrrd"), vec, {"kinds": ["vector", "domain", "domain", "domain"]})
    check(voxfield.open(tmp_path / "vec.nrrd", index={"c": 1}), vec[1], rng)


def test_sparse_4d_arrays_select_a_slice_of_their_non_zeros():
    sparse = pytest.importorskip("sparse")
    rng = np.random.default_rng(12)
    s = sparse.random((3, 8, 9, 10), density=0.05, random_state=4, format="coo")
    v = voxfield.open(s, index={"axis0": 2})
    dense = s.todense()[2]
    p = rng.uniform(0, 7, size=(300, 3))
    np.testing.assert_allclose(v.sample(p, dtype=np.float64),
                               scipy_mc(dense, p.T, order=1, mode="constant", cval=np.nan), atol=1e-12)
    with pytest.raises(ValueError, match=r"axis0=0\.\.2"):
        voxfield.open(s)

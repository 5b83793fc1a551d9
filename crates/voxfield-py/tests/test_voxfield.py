"""The Python package against scipy, numpy, zarr-python and h5py (fixtures are made
here with those libraries)."""
import os
import threading

import numpy as np
import pytest
from scipy.ndimage import map_coordinates as scipy_mc

import voxfield
from voxfield.compat import LeanVolumeInterpolator

MODES = ["constant", "grid-constant", "nearest", "reflect", "mirror", "wrap"]
DTYPES = [np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64, np.float32,
          np.float64]
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "fixtures")


def volume(rng, dtype, shape=(7, 5, 6)):
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    if dt.kind in "ui":
        return rng.integers(0, 100, size=shape).astype(dt)
    return (rng.standard_normal(shape) * 10).astype(dt)


def points(rng, shape, n=400):
    s = np.array(shape, float)
    p = rng.uniform(-1.5, s + 0.5, size=(n, 3))
    p[::7] = np.round(p[::7])  # grid nodes, the upper edge, exact borders
    p[1] = s - 1
    return p


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_sample_and_map_coordinates_match_scipy(dtype, mode):
    rng = np.random.default_rng(abs(hash((str(dtype), mode))) % 2**32)
    vol = volume(rng, dtype)
    pts = points(rng, vol.shape)
    v = voxfield.open(vol)
    for order, method in [(0, "nearest"), (1, "linear")]:
        want = scipy_mc(vol, pts.T, order=order, mode=mode, cval=-7.5, output=np.float64)
        got = v.sample(pts, method=method, mode=mode, cval=-7.5, dtype=np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
        got = voxfield.map_coordinates(vol, pts.T, order=order, mode=mode, cval=-7.5, output=np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_map_coordinates_default_output_is_the_volume_dtype_like_scipy():
    rng = np.random.default_rng(1)
    vol = volume(rng, np.int16)
    c = points(rng, vol.shape, 50).T
    want = scipy_mc(vol, c, order=1, mode="nearest")
    got = voxfield.map_coordinates(vol, c, order=1, mode="nearest")
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_tuple_inputs_give_their_shape_and_n3_gives_n():
    rng = np.random.default_rng(2)
    vol = voxfield.open(volume(rng, np.float32))
    x, y, z = (rng.uniform(0, 4, size=(3, 4, 2)) for _ in range(3))
    out = vol.sample((x, y, z))
    assert out.shape == (3, 4, 2) and out.dtype == np.float32
    flat = vol.sample(np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1))
    np.testing.assert_array_equal(out.ravel(), flat)
    assert vol.sample([1.0, 2.0, 3.0]).shape == (1,)


@pytest.mark.parametrize("make", [
    lambda a: np.asfortranarray(a),
    lambda a: a[::2, ::-1, 1:],
    lambda a: a.astype(a.dtype.newbyteorder(">")),
    lambda a: np.swapaxes(a, 0, 2),
])
def test_layouts_are_used_in_place(make):
    rng = np.random.default_rng(3)
    base = volume(rng, np.float64, (9, 8, 7))
    arr = make(base)
    pts = points(rng, arr.shape)
    want = scipy_mc(np.ascontiguousarray(arr), pts.T, order=1, mode="mirror", output=np.float64)
    got = voxfield.open(arr).sample(pts, mode="mirror", dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_memmap_and_npy_paths(tmp_path):
    rng = np.random.default_rng(4)
    arr = volume(rng, np.uint16, (10, 11, 12))
    p = tmp_path / "v.npy"
    np.save(p, arr)
    pts = points(rng, arr.shape)
    want = scipy_mc(arr, pts.T, order=1, mode="reflect", output=np.float64)
    for obj in (np.load(p, mmap_mode="r"), str(p), p):
        got = voxfield.open(obj).sample(pts, mode="reflect", dtype=np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_zarr_arrays_in_local_stores(tmp_path):
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(5)
    arr = volume(rng, np.float32, (13, 9, 7))
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=arr.shape, chunks=(4, 3, 2), dtype=arr.dtype)
    z[...] = arr
    pts = points(rng, arr.shape)
    want = scipy_mc(arr, pts.T, order=1, mode="nearest", output=np.float64)
    v = voxfield.open(z)
    assert v.chunks == (4, 3, 2)
    np.testing.assert_allclose(v.sample(pts, mode="nearest", dtype=np.float64), want, rtol=1e-6)


def test_h5py_datasets_are_read_by_voxfield(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(6)
    arr = volume(rng, np.float32, (12, 10, 8))
    p = tmp_path / "v.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("lzf", data=arr, chunks=(4, 4, 4), compression="lzf")
        f.create_dataset("gzip", data=arr, chunks=(5, 5, 5), compression="gzip", shuffle=True)
    pts = points(rng, arr.shape)
    want = scipy_mc(arr, pts.T, order=1, mode="constant", cval=0.0, output=np.float64)
    f = h5py.File(p, "r")
    for name in ("lzf", "gzip"):
        try:
            v = voxfield.open(f[name])
        except ValueError as e:
            assert "not compiled in" in str(e)
            pytest.skip("this build of voxfield has no HDF5 support")
        np.testing.assert_allclose(v.sample(pts, cval=0.0, dtype=np.float64), want, rtol=1e-6)
    ds = f["lzf"]
    f.close()
    with pytest.raises(ValueError, match="closed"):
        voxfield.open(ds)


def test_planes_grids_and_slabs_equal_point_lists():
    rng = np.random.default_rng(7)
    v = voxfield.open(volume(rng, np.float64, (20, 18, 16)))
    o, u, w = np.array([1.0, -2.0, 3.5]), np.array([0.3, 0.1, 0.05]), np.array([-0.05, 0.4, 0.2])
    plane = v.plane(o, u, w, (30, 40), dtype=np.float64)
    j, i = np.mgrid[0:30, 0:40]
    pts = o + i[..., None] * u + j[..., None] * w
    np.testing.assert_array_equal(plane, v.sample(pts.reshape(-1, 3), dtype=np.float64).reshape(30, 40))
    x, y, z = np.linspace(-1, 20, 5), np.linspace(0, 17, 4), np.linspace(2, 15, 3)
    g = v.grid(x, y, z, dtype=np.float64)
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    np.testing.assert_array_equal(g, v.sample((X, Y, Z), dtype=np.float64))
    slab = v.slab(o, u, w, (30, 40), thickness=2.0, step=0.5, reduce="max", dtype=np.float64)
    assert slab.shape == (30, 40) and np.nanmax(slab) >= np.nanmax(plane) - 1e-12


def test_threads_share_a_volume_and_the_gil_is_released():
    rng = np.random.default_rng(8)
    v = voxfield.open(volume(rng, np.float32, (64, 64, 64)))
    pts = rng.uniform(0, 63, size=(400_000, 3))
    serial = [v.sample(pts[k::8]) for k in range(8)]
    results = [None] * 8

    def work(k):
        results[k] = v.sample(pts[k::8])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for a, b in zip(results, serial):
        np.testing.assert_array_equal(a, b)

    # While one long call runs, this thread keeps running Python: the call does
    # not hold the GIL (held, it would block this loop for the whole call).
    big = rng.uniform(0, 63, size=(3_000_000, 3))
    worker = threading.Thread(target=lambda: v.sample(big, method="cubic"))
    ticks = 0
    worker.start()
    while worker.is_alive():
        ticks += 1
    worker.join()
    assert ticks > 10_000, ticks


def test_compat_lean_interpolator_fixes_the_reference_edge_bugs():
    v = np.arange(125, dtype=np.float32).reshape(5, 5, 5)  # v[i,j,k] = 25i + 5j + k
    interp = LeanVolumeInterpolator(v)
    x = np.array([2.5, 4.0, 4.2, -0.5, -1e-9, np.nan])
    y = np.full_like(x, 0.0)
    z = np.full_like(x, 0.0)
    got = interp((x, y, z))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got[:2], [62.5, 100.0])  # upper edge n-1 is inside
    assert np.isnan(got[2:]).all()  # beyond the edge, (-1, 0), NaN: outside
    # The same call shape as the reference: a tuple of equally shaped arrays.
    grid = np.mgrid[0:5, 0:5, 0:5].astype(float)
    np.testing.assert_array_equal(interp(tuple(grid)), v)


def test_sparse_coo_and_dok_are_indexed_not_densified():
    sparse = pytest.importorskip("sparse")
    from voxfield.compat import SparseLeanVolumeInterpolator

    rng = np.random.default_rng(10)
    s = sparse.random((30, 25, 20), density=0.02, random_state=3, format="coo") * 5
    dense = s.todense()
    pts = points(rng, dense.shape)
    want = scipy_mc(dense, pts.T, order=1, mode="constant", cval=-1.0, output=np.float64)
    for obj in (s, sparse.DOK(s)):
        got = voxfield.open(obj).sample(pts, cval=-1.0, dtype=np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # A batch that touches no stored voxel gives 0, not the fill value of the reference's bug.
    empty = sparse.COO(np.array([[0], [0], [0]]), np.array([9.0]), shape=(10, 10, 10))
    interp = SparseLeanVolumeInterpolator(empty)
    np.testing.assert_array_equal(interp((np.array([5.5, 7.0]), np.array([5.0, 2.5]), np.array([5.0, 8.0]))), [0, 0])
    filled = sparse.COO(np.array([[0], [0], [0]]), np.array([9.0]), shape=(10, 10, 10), fill_value=2.5)
    assert voxfield.open(filled).sample([[5.0, 5.0, 5.0]])[0] == 2.5


def test_bad_input_raises_the_right_exception(tmp_path):
    v = voxfield.open(np.zeros((3, 4, 5), np.float32))
    with pytest.raises(FileNotFoundError, match="nope.npy"):
        voxfield.open(str(tmp_path / "nope.npy"))
    with pytest.raises(ValueError, match="0-d"):
        voxfield.open(np.zeros(()))
    with pytest.raises(TypeError, match="dtype"):
        voxfield.open(np.zeros((2, 2, 2), dtype=np.complex64))
    with pytest.raises(TypeError):
        voxfield.open(np.zeros((2, 2, 2), dtype=object))
    with pytest.raises(TypeError, match="numeric"):
        v.sample(np.array([["a", "b", "c"]]))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        v.sample(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="unknown mode"):
        v.sample(np.zeros((1, 3)), mode="bogus")
    with pytest.raises(ValueError, match="cval"):
        v.sample(np.zeros((1, 3)), dtype=np.uint8)
    with pytest.raises(ValueError, match="parallel"):
        v.plane([0, 0, 0], [1, 0, 0], [2, 0, 0], (2, 2))
    with pytest.raises(TypeError, match="cannot open"):
        voxfield.open(42)
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY not really")
    with pytest.raises(ValueError, match="bad.npy"):
        voxfield.open(str(bad))


def test_zero_copy_memmap_keeps_private_memory_small(tmp_path):
    # A 2 GiB float32 .npy that is a hole: opening and sampling 1e6 points must not copy it.
    p = tmp_path / "big.npy"
    shape = (1024, 1024, 512)
    with open(p, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        f.truncate(f.tell() + 4 * 1024 * 1024 * 512)

    def rss_anon_mib():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024

    pts = np.random.default_rng(9).uniform(0, 511, size=(1_000_000, 3))
    before = rss_anon_mib()
    out = voxfield.open(np.load(p, mmap_mode="r")).sample(pts)
    grew = rss_anon_mib() - before
    assert out.shape == (1_000_000,) and (out == 0).all()
    assert grew < 64 + out.nbytes / 2**20, f"private memory grew {grew:.1f} MiB"


def test_compat_classes_on_the_reference_readme_usage():
    """The reference README's two usage examples (dense with a rotated mgrid slice, and
    sparse with linspace vectors), checked against scipy on the same coordinates."""
    from scipy.spatial.transform import Rotation
    from voxfield.compat import SparseLeanVolumeInterpolator
    sparse = pytest.importorskip("sparse")

    test_vol = np.random.default_rng(11).random((100, 100, 100))
    lean_interp = LeanVolumeInterpolator(test_vol, extrap_val=np.nan, dtype=np.float32)
    single = lean_interp((51.5, 13.1, 10.5))
    assert single.shape == () and single.dtype == np.float32
    want = scipy_mc(test_vol, [[51.5], [13.1], [10.5]], order=1, mode="constant", cval=np.nan)[0]
    assert abs(float(single) - want) < 1e-6
    X, Y, Z = np.mgrid[0:100, 0:100, 50:51]
    XYZ = np.vstack((X.ravel(), Y.ravel(), Z.ravel())).T
    XYZrot = Rotation.from_rotvec([30, -45, 5], degrees=True).apply(XYZ)
    rot_slice = lean_interp((XYZrot[:, 0], XYZrot[:, 1], XYZrot[:, 2])).reshape(X.shape)
    want = scipy_mc(test_vol, XYZrot.T, order=1, mode="constant", cval=np.nan).reshape(X.shape)
    np.testing.assert_allclose(rot_slice, want, rtol=1e-6, atol=1e-6)
    assert np.isnan(rot_slice).sum() == np.isnan(want).sum()

    test_vol_sparse = sparse.random((100, 100, 100), density=0.1, random_state=2)
    sparse_interp = SparseLeanVolumeInterpolator(test_vol_sparse, extrap_val=np.nan, dtype=np.float32)
    c = np.linspace(0, 50, 150)
    vals = sparse_interp((c, c, c))
    want = scipy_mc(test_vol_sparse.todense(), np.stack([c, c, c]), order=1, mode="constant", cval=np.nan)
    assert vals.shape == (150,) and vals.dtype == np.float32
    np.testing.assert_allclose(vals, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["nearest", "reflect", "constant", "wrap", "mirror", "grid-constant"])
def test_splines_on_an_in_memory_array_larger_than_a_mebibyte(mode):
    """Issue 22: a 61×47×53 float64 array (1.2 MB) was refused with "chunks need more than the 1 MiB
    allowed": an in-memory array had no room for its spline coefficients."""
    import scipy.ndimage as ndi

    a = np.random.default_rng(4).random((61, 47, 53))
    c = np.random.default_rng(5).random((3, 200)) * np.array([[66], [52], [58]]) - 2.5
    for order in (2, 3, 5):
        got = voxfield.map_coordinates(a, c, order=order, mode=mode)
        want = ndi.map_coordinates(a, c, order=order, mode=mode)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-7, err_msg=f"order {order}")

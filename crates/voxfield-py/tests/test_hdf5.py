"""HDF5 read by voxfield's own parser (issue 9, item 2): every plugin filter written by
h5py + hdf5plugin, fill values of unwritten chunks, the libver="latest" chunk indexes,
new-style groups, and clear errors; values checked against h5py's own reads."""
import numpy as np
import pytest
from scipy.ndimage import map_coordinates as scipy_mc

import voxfield
from _voxels import full

h5py = pytest.importorskip("h5py")
hdf5plugin = pytest.importorskip("hdf5plugin")


FILTERS = {
    "blosc_lz4": hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE),
    "blosc_lz4hc": hdf5plugin.Blosc(cname="lz4hc", shuffle=hdf5plugin.Blosc.BITSHUFFLE),
    "blosc_blosclz": hdf5plugin.Blosc(cname="blosclz", shuffle=hdf5plugin.Blosc.NOSHUFFLE),
    "blosc_zlib": hdf5plugin.Blosc(cname="zlib", shuffle=hdf5plugin.Blosc.SHUFFLE),
    "blosc_zstd": hdf5plugin.Blosc(cname="zstd", shuffle=hdf5plugin.Blosc.BITSHUFFLE),
    "bitshuffle": hdf5plugin.Bitshuffle(cname="none"),
    "bitshuffle_lz4": hdf5plugin.Bitshuffle(cname="lz4"),
    "bitshuffle_zstd": hdf5plugin.Bitshuffle(cname="zstd"),
    "bitshuffle_lz4_block": hdf5plugin.Bitshuffle(nelems=256, cname="lz4"),
    "lz4": hdf5plugin.LZ4(),
    "lz4_small_blocks": hdf5plugin.LZ4(nbytes=512),
    "zstd": hdf5plugin.Zstd(clevel=3),
    "bzip2": hdf5plugin.BZip2(blocksize=5),
    "gzip_shuffle_fletcher": dict(compression="gzip", shuffle=True, fletcher32=True),
}


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_every_plugin_filter_reads_what_h5py_reads(tmp_path, name, dtype):
    rng = np.random.default_rng(abs(hash((name, str(dtype)))) % 2**32)
    shape = (13, 11, 37)  # chunks (8, 8, 27): edge chunks, element counts not multiples of 8
    base = np.cumsum(rng.integers(-3, 4, size=shape), axis=2) + 50
    a = base.astype(dtype) if np.dtype(dtype).kind != "f" else (base * 0.37).astype(dtype)
    p = tmp_path / "f.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("v", data=a, chunks=(8, 8, 27), **FILTERS[name])
        f.create_dataset("be", data=a.astype(a.dtype.newbyteorder(">")), chunks=(8, 8, 27), **FILTERS[name])
    with h5py.File(p, "r") as f:
        ref = f["v"][...]
    for ds in ("v", "be"):
        v = voxfield.open(f"{p}:/{ds}")
        np.testing.assert_array_equal(full(v), ref.astype(np.float64))


def test_bitshuffle_lz4_eiger_style_uint32_images(tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.poisson(3.0, size=(4, 64, 96)).astype(np.uint32)
    p = tmp_path / "eiger.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("entry/data/data", data=frames, chunks=(1, 64, 96), **hdf5plugin.Bitshuffle(cname="lz4"))
    v = voxfield.open(f"{p}:/entry/data/data")
    pts = rng.uniform(0, [3, 63, 95], size=(500, 3))
    np.testing.assert_allclose(v.sample(pts, dtype=np.float64),
                               scipy_mc(frames.astype(float), pts.T, order=1), rtol=1e-12)


def test_unwritten_chunks_take_the_fill_value(tmp_path):
    p = tmp_path / "fill.h5"
    with h5py.File(p, "w") as f:
        d = f.create_dataset("v", shape=(16, 16, 16), chunks=(4, 4, 4), dtype=np.float32, fillvalue=-2.5,
                             compression="gzip")
        d[:4, :4, :4] = 1.0
        d[8:12, 4:8, 12:16] = 7.0
        g = f.create_dataset("i", shape=(8, 8, 8), chunks=(4, 4, 4), dtype=np.int16, fillvalue=-9)
        g[:4] = 3
        f.create_dataset("nofill", shape=(8, 8, 8), chunks=(4, 4, 4), dtype=np.uint8)
    with h5py.File(p, "r") as f:
        for ds in ("v", "i", "nofill"):
            np.testing.assert_array_equal(full(voxfield.open(f"{p}:/{ds}")), f[ds][...].astype(np.float64))


@pytest.mark.parametrize("case", ["fixed_paged", "single", "implicit", "contiguous", "track_order"])
def test_latest_format_indexes_and_new_style_groups(tmp_path, case):
    rng = np.random.default_rng(2)
    p = tmp_path / "latest.h5"
    a = rng.standard_normal((20, 24, 28)).astype(np.float32)
    with h5py.File(p, "w", libver="latest") as f:
        g = f.create_group("g", track_order=True)
        for k in range(300):  # dense link storage: a fractal heap and a B-tree of depth > 0
            g.create_dataset(f"x{k}", data=np.full(3, k))
        if case == "fixed_paged":  # 5 * 6 * 7 * ... > 1024 chunks: the fixed array is paged
            d = g.create_dataset("v", data=a, chunks=(2, 2, 2), compression="gzip")
        elif case == "single":
            d = g.create_dataset("v", data=a, chunks=a.shape, compression="lzf")
        elif case == "implicit":
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_chunk((5, 6, 7))
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            sid = h5py.h5s.create_simple(a.shape)
            dsid = h5py.h5d.create(g.id, b"v", h5py.h5t.NATIVE_FLOAT, sid, dcpl=dcpl)
            d = h5py.Dataset(dsid)
            d[...] = a
        elif case == "contiguous":
            d = g.create_dataset("v", data=a)
        else:
            d = g.create_dataset("v", data=a, chunks=(7, 8, 9), **hdf5plugin.Zstd())
    v = voxfield.open(f"{p}:/g/v")
    np.testing.assert_array_equal(full(v), a.astype(np.float64))
    assert voxfield.open(f"{p}:/g/x271").sample([[2.0]])[0] == 271


def test_errors_name_the_file_dataset_and_filter(tmp_path):
    p = tmp_path / "e.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("zfp", data=np.zeros((8, 8, 8), np.float32), chunks=(4, 4, 4),
                         **hdf5plugin.Zfp(rate=8))
        f.create_dataset("text", data=np.array([b"abc", b"de"]))
        f.create_group("grp")
    with pytest.raises(ValueError, match=r"zfp.*32013"):
        voxfield.open(f"{p}:/zfp")
    with pytest.raises(ValueError, match="not a number"):
        voxfield.open(f"{p}:/text")
    with pytest.raises(ValueError, match="is a group"):
        voxfield.open(f"{p}:/grp")
    with pytest.raises(ValueError, match="name a dataset"):
        voxfield.open(str(p))
    cut = tmp_path / "cut.h5"
    cut.write_bytes(p.read_bytes()[:3000])
    with pytest.raises(ValueError, match="truncated"):
        voxfield.open(f"{cut}:/zfp")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5" * 100)
    with pytest.raises(ValueError, match="HDF5"):
        voxfield.open(f"{junk}:/x")


def test_resizable_latest_format_datasets_use_the_extensible_array(tmp_path):
    """Datasets with an unlimited axis written with libver='latest': the extensible-array
    index, its super blocks, paged data blocks (> 65,520 chunks) and swizzled chunk order
    (unlimited axis not first); finite maxshape beyond the shape in the fixed array."""
    p = tmp_path / "ea.h5"
    rng = np.random.default_rng(5)
    a = rng.standard_normal((300, 4, 5)).astype(np.float32)
    b = np.arange(4 * 300, dtype=np.float32).reshape(4, 300)
    c = rng.standard_normal((3, 5, 70)).astype(np.float32)
    big = (np.arange(2 * 70000) % 30011).astype(np.int16).reshape(2, 70000)
    with h5py.File(p, "w", libver="latest") as f:
        f.create_dataset("frames", data=a, chunks=(1, 4, 5), maxshape=(None, 4, 5))
        f.create_dataset("gz", data=a, chunks=(2, 2, 5), maxshape=(None, 4, 5), compression="gzip")
        f.create_dataset("swizzled", data=b, chunks=(2, 1), maxshape=(4, None))
        f.create_dataset("maxbig", data=c, chunks=(2, 2, 3), maxshape=(9, None, 70), **hdf5plugin.LZ4())
        f.create_dataset("fixedmax", data=c, chunks=(2, 2, 3), maxshape=(9, 8, 70))
        f.create_dataset("paged", data=big, chunks=(2, 1), maxshape=(2, None))
        # Two unlimited axes: the version-2 B-tree index.
        f.create_dataset("bt2", data=c, chunks=(2, 2, 7), maxshape=(None, None, 70))
        f.create_dataset("bt2z", data=c, chunks=(2, 2, 7), maxshape=(None, None, None), compression="gzip")
    for ds, ref in [("frames", a), ("gz", a), ("swizzled", b), ("maxbig", c), ("fixedmax", c), ("bt2", c),
                    ("bt2z", c)]:
        np.testing.assert_array_equal(full(voxfield.open(f"{p}:/{ds}")), ref.astype(np.float64), err_msg=ds)
    v = voxfield.open(f"{p}:/paged")
    q = np.array([[0, 0], [1, 5], [0, 65519], [1, 65521], [1, 69999], [0, 40000]], float)
    np.testing.assert_array_equal(v.sample(q, method="nearest", dtype=np.float64),
                                  big[q[:, 0].astype(int), q[:, 1].astype(int)])

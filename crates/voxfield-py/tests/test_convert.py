"""`voxfield convert` to OME-Zarr 0.5 pyramids and plain Zarr (issue 9, item 3): read back
by ome-zarr-py and zarr-python, levels against numpy downsamples, geometry kept, automatic
level choice for slices, and a memory bound on a volume larger than the budget."""
import json
import os
import subprocess

import numpy as np
import pytest

import voxfield

CLI = os.environ.get("VOXFIELD_CLI")
pytestmark = pytest.mark.skipif(CLI is None, reason="VOXFIELD_CLI names the built voxfield binary")
nib = pytest.importorskip("nibabel")
zarr = pytest.importorskip("zarr")


def run(*args):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def block_reduce(a, how):
    """numpy reference: 2x2x2 blocks (partial at odd edges), mean rounded half to even / mode / first."""
    out = np.empty(tuple((n + 1) // 2 for n in a.shape), dtype=a.dtype)
    for idx in np.ndindex(out.shape):
        blk = a[tuple(slice(2 * i, 2 * i + 2) for i in idx)].ravel()
        if how == "mean":
            m = blk.astype(np.float64).mean()
            out[idx] = np.rint(m) if a.dtype.kind in "iu" else m
        elif how == "mode":
            vals, counts = np.unique(blk, return_counts=True)
            out[idx] = vals[np.argmax(counts)]
        else:
            out[idx] = blk[0]
    return out


@pytest.fixture
def nifti(tmp_path):
    rng = np.random.default_rng(0)
    a = (rng.random((37, 30, 21)) * 1000).astype(np.int16)
    aff = np.diag([2.0, 2.5, 3.0, 1.0])
    aff[:3, 3] = [-10, 4, 2]
    img = nib.Nifti1Image(a, aff)
    img.header.set_xyzt_units("mm", "sec")
    p = tmp_path / "a.nii"
    nib.save(img, p)
    return p, a, aff


@pytest.mark.parametrize("how", ["mean", "mode", "nearest"])
def test_ome_zarr_pyramid_read_by_ome_zarr_py(tmp_path, nifti, how):
    pytest.importorskip("ome_zarr")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader
    p, a, aff = nifti
    if how == "mode":
        a = (a // 300).astype(np.int16)  # labels
        img = nib.Nifti1Image(a, aff)
        img.header.set_xyzt_units("mm", "sec")
        nib.save(img, p)
    dst = tmp_path / "a.ome.zarr"
    run("convert", p, dst, "--chunks", "8,8,8", "--downsample", how)
    node = list(Reader(parse_url(str(dst)))())[0]
    shapes = [d.shape for d in node.data]
    assert shapes == [(37, 30, 21), (19, 15, 11), (10, 8, 6), (5, 4, 3)]
    np.testing.assert_array_equal(np.asarray(node.data[0]), a)
    want = a
    for k in range(1, 4):
        want = block_reduce(want, how)
        np.testing.assert_array_equal(np.asarray(node.data[k]), want, err_msg=f"level {k}")
    ct = node.metadata["coordinateTransformations"]
    assert ct[0][0]["scale"] == [2.0, 2.5, 3.0] and ct[0][1]["translation"] == [-10.0, 4.0, 2.0]
    assert ct[1][0]["scale"] == [4.0, 5.0, 6.0]
    shift = 0.0 if how == "nearest" else 0.5
    np.testing.assert_allclose(ct[1][1]["translation"], [-10 + 2 * shift, 4 + 2.5 * shift, 2 + 3 * shift])
    assert [x["unit"] for x in node.metadata["axes"]] == ["millimeter"] * 3
    # voxfield reads it back with the same geometry at every level.
    v0 = voxfield.open(dst)
    np.testing.assert_allclose(v0.affine, aff)
    v1 = voxfield.open(dst, level=1)
    centre = v1.affine @ [0, 0, 0, 1]
    np.testing.assert_allclose(centre[:3], [-10 + 2 * shift, 4 + 2.5 * shift, 2 + 3 * shift])


def test_levels_option_and_2d_images(tmp_path):
    rng = np.random.default_rng(1)
    img = rng.random((50, 70)).astype(np.float32)
    np.save(tmp_path / "img.npy", img)
    dst = tmp_path / "img.zarr"
    run("convert", tmp_path / "img.npy", dst, "--levels", "3", "--chunks", "16,16,16")
    meta = json.loads((dst / "zarr.json").read_text())["attributes"]["ome"]["multiscales"][0]
    assert [d["path"] for d in meta["datasets"]] == ["0", "1", "2"]
    assert [x["name"] for x in meta["axes"]] == ["y", "x"]
    l1 = zarr.open_array(str(dst / "1"))[...]
    np.testing.assert_allclose(l1, block_reduce(img, "mean"), rtol=1e-6)
    r = subprocess.run([CLI, "convert", tmp_path / "img.npy", tmp_path / "x.ome.zarr", "--levels", "40"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "levels" in r.stderr


def test_plain_zarr_keeps_the_affine(tmp_path, nifti):
    p, a, aff = nifti
    dst = tmp_path / "a.zarr"
    run("convert", p, dst, "--chunks", "16,16,16")
    v = voxfield.open(dst)
    np.testing.assert_allclose(v.affine, aff)
    z = zarr.open_array(str(dst))
    np.testing.assert_array_equal(z[...], a)
    assert np.allclose(z.attrs["voxfield"]["affine"], aff)


def test_a_rotated_affine_is_refused_for_ome_zarr(tmp_path):
    a = np.zeros((8, 8, 8), np.float32)
    aff = np.eye(4)
    aff[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    nib.save(nib.Nifti1Image(a, aff), tmp_path / "r.nii")
    r = subprocess.run([CLI, "convert", tmp_path / "r.nii", tmp_path / "r.ome.zarr"], capture_output=True, text=True)
    assert r.returncode == 1 and "rotates" in r.stderr
    assert not (tmp_path / "r.ome.zarr").exists()
    run("convert", tmp_path / "r.nii", tmp_path / "r.zarr")  # plain Zarr keeps the full affine
    np.testing.assert_allclose(voxfield.open(tmp_path / "r.zarr").affine, aff)


def test_slice_picks_the_level_matching_the_pixel_spacing(tmp_path, nifti):
    p, a, aff = nifti
    dst = tmp_path / "a.ome.zarr"
    run("convert", p, dst, "--chunks", "8,8,8")
    for step, level in [(1, 0), (2, 1), (4, 2), (8, 3), (100, 3)]:
        r = run("slice", dst, "--origin", "0,0,10", "--u", f"{step},0,0", "--v", f"0,{step},0", "--size", "4,3",
                "--out", tmp_path / "s.npy")
        assert f"using level {level}" in r.stderr.splitlines()[-2 if level else 0], r.stderr
    # The auto level samples what that level holds (index space of level 0).
    run("slice", dst, "--origin", "0,0,8", "--u", "4,0,0", "--v", "0,4,0", "--size", "3,3", "--out", tmp_path / "s.npy",
        "--method", "nearest")
    l2 = zarr.open_array(str(dst / "2"))[...]
    got = np.load(tmp_path / "s.npy")
    # level-0 index 4k+1.5 is level-2 index k: nearest takes a voxel of level 2; the first
    # row and column lie before level 2's first voxel centre (constant mode: NaN).
    assert got.shape == (3, 3)
    ok = ~np.isnan(got)
    assert ok.sum() == 4 and np.isin(got[ok], l2).all()


def test_ome_metadata_errors_name_the_real_cause(tmp_path):
    a = np.zeros((4, 5, 6), np.float32)
    dst = tmp_path / "x.ome.zarr"
    run("convert", np.save(tmp_path / "a.npy", a) or tmp_path / "a.npy", dst, "--levels", "1")
    meta = json.loads((dst / "zarr.json").read_text())
    ms = meta["attributes"]["ome"]["multiscales"][0]
    ms["datasets"][0]["coordinateTransformations"][0]["scale"] = ["a", 1.0, 1.0]
    (dst / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="non-numeric"):
        voxfield.open(dst)
    ms["datasets"][0]["coordinateTransformations"][0]["scale"] = [1.0, 1.0]
    (dst / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="2 values for an image of 3 axes"):
        voxfield.open(dst)


def test_sharded_pyramids_open_in_ome_zarr_py_and_voxfield(tmp_path, nifti):
    pytest.importorskip("ome_zarr")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader
    p, a, aff = nifti
    dst = tmp_path / "s.ome.zarr"
    run("convert", p, dst, "--chunks", "8,8,8", "--shard", "2")
    meta = json.loads((dst / "0" / "zarr.json").read_text())
    assert meta["codecs"][0]["name"] == "sharding_indexed"
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [16, 16, 16]
    node = list(Reader(parse_url(str(dst)))())[0]
    np.testing.assert_array_equal(np.asarray(node.data[0]), a)
    np.testing.assert_array_equal(np.asarray(node.data[1]), block_reduce(a, "mean"))
    v = voxfield.open(dst, level=1)
    assert v.chunks == (8, 8, 8)  # read by inner chunk
    np.testing.assert_allclose(v.sample([[3.0, 4.0, 5.0]], method="nearest"), block_reduce(a, "mean")[3, 4, 5])


def test_python_plane_reads_the_level_matching_its_pixels(tmp_path, nifti):
    p, a, aff = nifti
    dst = tmp_path / "a.ome.zarr"
    run("convert", p, dst, "--chunks", "8,8,8")
    vol = voxfield.open(dst)
    for step, level in [(1, 0), (4, 2), (8, 3)]:
        got = vol.plane([2, 3, 10], [step, 0, 0], [0, step, 0], (3, 4))
        lk = voxfield.open(dst, level=level)
        # The same plane through level `level`, in that level's own indices.
        m = np.linalg.inv(lk.affine) @ vol.affine
        o = m @ [2, 3, 10, 1]
        want = lk.plane(o[:3], m[:3, :3] @ [step, 0, 0], m[:3, :3] @ [0, step, 0], (3, 4))
        np.testing.assert_allclose(got, want, equal_nan=True, err_msg=f"step {step}")
    # World coordinates take the level's own affine; auto_level=False reads level 0.
    w = vol.plane(aff[:3, 3], [8, 0, 0], [0, 10, 0], (2, 2), world=True)
    np.testing.assert_allclose(w, voxfield.open(dst, level=2).plane(aff[:3, 3], [8, 0, 0], [0, 10, 0], (2, 2),
                                                                     world=True), equal_nan=True)
    full = vol.plane([2, 3, 10], [4, 0, 0], [0, 4, 0], (3, 4), auto_level=False)
    np.testing.assert_allclose(full, voxfield.open(dst, level=0).plane([2, 3, 10], [4, 0, 0], [0, 4, 0], (3, 4)))

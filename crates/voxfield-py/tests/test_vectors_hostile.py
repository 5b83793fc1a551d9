"""Hostile input for issue 27's readers and options: forged claims (a blosc frame over the decode cap,
object tables and group ranges of 10^12 rows, a chunk shape that overflows the cross-level anchor),
FIFOs, /dev/zero and device nodes as inputs or outputs, NaN and out-of-range values. Each a clear
error (never a panic: pyo3's PanicException is not an Exception), bounded memory, nothing destroyed."""

import json
import os
import stat
import struct
import warnings

import numpy as np
import pytest

from _stores import edit_json, first_cell, zv
from voxfield import vectors as vv

zv_points = pytest.importorskip("zarr_vectors.types.points")
from zarr_vectors.multiresolution.coarsen import build_pyramid  # noqa: E402


@pytest.fixture
def objects_store(tmp_path):
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 100, (2000, 3)).astype(np.float32)
    s = tmp_path / "o.zarrvectors"
    vv.write_points(s, p, chunk_shape=(50, 50, 50), object_ids=rng.integers(0, 9, 2000), groups={0: [1, 2]})
    return s


def test_a_blosc_frame_claiming_more_than_the_cap_is_refused(tmp_path):
    s = tmp_path / "b.zarrvectors"
    vv.write_points(s, np.random.default_rng(1).uniform(0, 10, (500, 3)), chunk_shape=(20, 20, 20),
                    compressor="blosc")
    cell = first_cell(s / "0" / "vertices")
    raw = bytearray(cell.read_bytes())
    struct.pack_into("<I", raw, 4, 0x7FFF_FFFF)  # nbytes: 2 GiB decoded
    cell.write_bytes(bytes(raw))
    with pytest.raises(Exception) as e:
        vv.read_points(s)
    assert "blosc" in str(e.value) and cell.name in str(e.value), str(e.value)


def test_object_tables_and_groups_claiming_billions_are_refused(objects_store):
    s = objects_store
    for arr in ("manifests", "object_ids"):
        meta = s / "0" / "object_index" / arr / "zarr.json"
        saved = meta.read_text()
        edit_json(meta, lambda j: j.update(shape=[10 ** 12]))
        with pytest.raises(ValueError, match="object rows|manifests for"):
            vv.select(s, objects=[1])
        meta.write_text(saved)
    edit_json(s / "0" / "groups" / "zarr.json",
              lambda j: j["attributes"].update(group_ranges={"0": [0, 10 ** 12]}))
    with pytest.raises(ValueError, match="at most"):
        vv.select(s, groups=[0])
    assert vv.select(s, objects=[1])["vertex_count"] > 0  # the store itself is intact


def test_nan_conditions_and_overflowing_anchors(tmp_path, objects_store):
    with pytest.raises(ValueError, match="NaN"):
        vv.select(objects_store, where={"w": float("nan")})
    s = tmp_path / "p.zarrvectors"
    p = np.random.default_rng(2).uniform(0, 100, (3000, 3)).astype(np.float32)
    zv(zv_points.write_points, str(s), p, chunk_shape=(20, 20, 20), bin_shape=(5, 5, 5))
    zv(build_pyramid, str(s), factors=[(2, 1)])
    edit_json(s / "0" / "zarr.json",
              lambda j: j["attributes"]["zarr_vectors_level"].update(chunk_shape=[1e300] * 3))
    with pytest.raises(ValueError):
        vv.parents(s, 0)
    assert not vv.validate(s)["ok"]


def test_swc_inputs_that_are_not_files_or_lie(tmp_path):
    fifo = tmp_path / "in.swc"
    os.mkfifo(fifo)
    with pytest.raises(Exception, match="in.swc"):
        vv.import_file(fifo, tmp_path / "a.zarrvectors")
    zero = tmp_path / "zero.swc"
    os.symlink("/dev/zero", zero)
    with pytest.raises(Exception, match="zero.swc"):
        vv.import_file(zero, tmp_path / "b.zarrvectors")
    for text, msg in (("1 4294967296 0 0 0 1 -1\n", "32-bit"), ("1e20 1 0 0 0 1 -1\n", "2\\^53")):
        bad = tmp_path / "bad.swc"
        bad.write_text(text)
        with pytest.raises(ValueError, match=msg):
            vv.import_file(bad, tmp_path / "c.zarrvectors")
    assert not any((tmp_path / n).exists() for n in ("a.zarrvectors", "b.zarrvectors", "c.zarrvectors"))


def test_export_to_device_nodes_and_symlinks(tmp_path):
    g = tmp_path / "g.zarrvectors"
    vv.write_graph(g, np.eye(3) * 5, np.array([[0, 1], [1, 2]]))
    dev = tmp_path / "null.swc"
    os.mknod(dev, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    with pytest.raises(Exception, match="device"):
        vv.export(g, dev)
    assert stat.S_ISCHR(os.lstat(dev).st_mode)
    real, link = tmp_path / "real.swc", tmp_path / "link.swc"
    real.write_text("old")
    os.symlink(real, link)
    vv.export(g, link)
    assert link.is_symlink() and real.read_text().startswith("# SWC")


def test_a_fifo_in_place_of_metadata_does_not_hang_validate_or_reads(tmp_path):
    s = tmp_path / "f.zarrvectors"
    vv.write_points(s, np.random.default_rng(3).uniform(0, 10, (100, 3)), chunk_shape=(5, 5, 5))
    meta = s / "0" / "vertices" / "zarr.json"
    meta.unlink()
    os.mkfifo(meta)
    r = vv.validate(s)
    assert not r["ok"] and any("zarr.json" in e for e in r["errors"]), r["errors"]
    with pytest.raises(Exception, match="zarr.json"):
        vv.read_points(s)


def test_pyramids_of_forged_object_stores_refuse_and_leave_level_zero(objects_store, monkeypatch):
    """The streamed object pyramid meets an object table claiming 10^12 rows and a manifest naming
    fragment 2^40 (zstd-valid): each a clear error before a level is published, the store unchanged;
    absurd spill budgets (0, junk, 10^9 MiB) are clamped and build the same files."""
    import numcodecs

    s = objects_store
    before = sorted(str(f.relative_to(s)) for f in s.rglob("*"))
    meta = s / "0" / "object_index" / "manifests" / "zarr.json"
    saved = meta.read_text()
    edit_json(meta, lambda j: j.update(shape=[10 ** 12]))
    with pytest.raises(ValueError, match="object rows|manifests for"):
        vv.build_pyramid(s, factors=[(2, 1)])
    meta.write_text(saved)
    cell = s / "0" / "object_index" / "manifests" / "c" / "0"
    good = cell.read_bytes()
    raw = bytearray(numcodecs.Zstd().decode(good))
    # vlen chunk: item count, then the first item's length, then its manifest: block count, chunk, mode 0, fragment.
    assert struct.unpack_from("<B", raw, 12 + 24)[0] == 0
    struct.pack_into("<q", raw, 12 + 24 + 1, 1 << 40)
    cell.write_bytes(numcodecs.Zstd(level=0).encode(bytes(raw)))
    with pytest.raises(ValueError, match=r"vertex_fragments.*has no fragment 1099511627776"):
        vv.build_pyramid(s, factors=[(2, 1)])
    assert sorted(str(f.relative_to(s)) for f in s.rglob("*")) == before
    cell.write_bytes(good)
    built = {}
    for mb in ("0", "junk", str(10 ** 9), None):
        copy = s.parent / f"spill{mb}.zarrvectors"
        import shutil
        shutil.copytree(s, copy)
        if mb is None:
            monkeypatch.delenv("VOXFIELD_SPILL_MB", raising=False)
        else:
            monkeypatch.setenv("VOXFIELD_SPILL_MB", mb)
        vv.build_pyramid(copy, factors=[(2, 1), (2, 2)], sparsity_seed=1)
        built[mb] = {str(f.relative_to(copy)): f.read_bytes() for f in copy.rglob("*")
                     if f.is_file() and f.name != "zarr.json"}
    assert built["0"] == built["junk"] == built[str(10 ** 9)] == built[None]


def test_text_table_imports_meet_fifos_devices_lies_and_bad_ids(tmp_path):
    """Text tables and object ids from a column: a FIFO and /dev/zero refused without blocking, an
    .npy claiming 10^12 rows refused before allocation, ids of 1e300, -1 and NaN named, outputs
    that are a device node or a symlink refused and left as they were."""
    os.mkfifo(tmp_path / "fifo.csv")
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    for src in ("fifo.csv", "zero.csv"):
        with pytest.raises(ValueError, match="not a regular file"):
            vv.import_file(tmp_path / src, tmp_path / "x.zarrvectors")
    hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 5), }"
    hdr = hdr + " " * (118 - len(hdr)) + "\n"
    (tmp_path / "huge.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + bytes(80))
    for kw in ({}, {"object_ids": "id"}):
        with pytest.raises(ValueError, match="truncated"):
            vv.import_file(tmp_path / "huge.npy", tmp_path / "x.zarrvectors", attribute_names=["id", "w"], **kw)
    for bad, msg in [(1e300, "1e300"), (-1, "-1.0"), (float("nan"), "NaN")]:
        np.savetxt(tmp_path / "b.csv", np.array([[1, 2, 3, 0], [4, 5, 6, bad]]), delimiter=",")
        with pytest.raises(ValueError, match=f"point 1: object id {msg} is not a whole number"):
            vv.import_file(tmp_path / "b.csv", tmp_path / "x.zarrvectors", attribute_names=["id"], object_ids="id")
    assert not (tmp_path / "x.zarrvectors").exists()
    np.savetxt(tmp_path / "ok.csv", np.array([[1, 2, 3, 0], [4, 5, 6, 1]]), delimiter=",")
    (tmp_path / "dev.zarrvectors").symlink_to("/dev/null")
    (tmp_path / "real").mkdir()
    (tmp_path / "link.zarrvectors").symlink_to(tmp_path / "real")
    for out in ("dev.zarrvectors", "link.zarrvectors"):
        with pytest.raises(ValueError, match="already exists"):
            vv.import_file(tmp_path / "ok.csv", tmp_path / out, attribute_names=["id"], object_ids="id")
        assert (tmp_path / out).is_symlink()
    assert list((tmp_path / "real").iterdir()) == []

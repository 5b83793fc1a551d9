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

from voxfield import vectors as vv

zv_points = pytest.importorskip("zarr_vectors.types.points")
from zarr_vectors.multiresolution.coarsen import build_pyramid  # noqa: E402


def zv(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def first_cell(array):
    return next(f for f in sorted((array / "c").rglob("*")) if f.is_file())


def edit_json(path, fn):
    j = json.loads(path.read_text())
    fn(j)
    path.write_text(json.dumps(j))


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

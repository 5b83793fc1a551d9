"""`validate` (issue 27) against zarr-vectors 0.9.2's own validator: good stores pass both, and each
class of defect (missing cell, wrong count, broken link, broken object reference, bad metadata, a gap in
the pyramid) fails both, with the problem named; the one class zarr-vectors misses (a wrong
vertex_count: it reads the count from the level's top-level attributes, where it never is) is said."""

import json
import os
import shutil
import struct
import subprocess
import warnings

import numpy as np
import pytest

from _stores import edit_json, first_cell, zv
from voxfield import vectors as vv

zv_points = pytest.importorskip("zarr_vectors.types.points")
from zarr_vectors.multiresolution.coarsen import build_pyramid  # noqa: E402
from zarr_vectors.types.polylines import write_polylines  # noqa: E402
from zarr_vectors.validate import validate as zv_validate  # noqa: E402

CLI = os.environ.get("VOXFIELD_CLI")


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("valid")
    rng = np.random.default_rng(0)
    zv(zv_points.write_points, str(root / "pts.zarrvectors"), rng.uniform(0, 100, (3000, 3)).astype(np.float32),
       chunk_shape=(25, 25, 25), bin_shape=(12.5, 12.5, 12.5))
    zv(build_pyramid, str(root / "pts.zarrvectors"), factors=[(2, 1), (2, 1)])
    lines = [rng.normal(0, 15, (int(rng.integers(2, 30)), 3)).cumsum(0).astype(np.float32) for _ in range(100)]
    zv(write_polylines, str(root / "lines.zarrvectors"), lines, chunk_shape=(20, 20, 20))
    vv.write_points(root / "mine.zarrvectors", rng.uniform(-5, 5, (500, 3)), chunk_shape=(2, 2, 2),
                    compressor="blosc")
    vv.build_pyramid(root / "mine.zarrvectors", factors=[(2, 1)])
    return root


def test_good_stores_pass_both(good):
    for name in ("pts", "lines", "mine"):
        assert zv(zv_validate, str(good / f"{name}.zarrvectors"), level=5).ok, name
        for level in (1, 3, 5):
            r = vv.validate(good / f"{name}.zarrvectors", level=level)
            assert r["ok"] and r["passed"], (name, level, r["errors"])
    assert "PASS" in vv.validate(good / "pts.zarrvectors")["summary"]


def defects(good, tmp_path):
    """(name, store, what our first error says, whether zarr-vectors finds it too)."""
    out = []

    def copy(src, name):
        d = tmp_path / f"{name}.zarrvectors"
        shutil.copytree(good / f"{src}.zarrvectors", d)
        return d

    d = copy("pts", "missing_cell")
    first_cell(d / "0" / "vertices").unlink()
    out.append((d, "has no cell", True))
    d = copy("pts", "missing_level_array")
    shutil.rmtree(d / "1" / "vertices")
    out.append((d, "1/vertices/ missing", True))
    d = copy("pts", "wrong_count")
    edit_json(d / "0" / "zarr.json", lambda j: j["attributes"]["zarr_vectors_level"].update(vertex_count=3001))
    out.append((d, "vertex_count=3001, actual=3000", False))
    d = copy("pts", "bad_convention")
    edit_json(d / "zarr.json", lambda j: j["attributes"]["zarr_vectors"].update(links_convention="zigzag"))
    out.append((d, "Unknown links_convention: 'zigzag'", True))
    d = copy("pts", "bad_bins")
    edit_json(d / "zarr.json", lambda j: j["attributes"]["zarr_vectors"].update(base_bin_shape=[10, 10, 10]))
    out.append((d, "not integer multiple of base_bin_shape", True))
    d = copy("pts", "no_marker")
    edit_json(d / "zarr.json", lambda j: j["attributes"].pop("zarr_vectors"))
    out.append((d, "No root metadata found", True))
    d = copy("lines", "record_count")
    edit_json(d / "0" / "links" / "0" / "zarr.json", lambda j: j["attributes"].update(
        num_physical_records=j["attributes"]["num_physical_records"] + 3))
    out.append((d, "num_physical_records", True))
    d = copy("lines", "broken_reference")
    # An object's manifest names a fragment its chunk does not have.
    import numcodecs
    m = first_cell(d / "0" / "object_index" / "manifests")
    raw = bytearray(numcodecs.Zstd().decode(m.read_bytes()))
    n = struct.unpack_from("<I", raw, 0)[0]
    first_len = struct.unpack_from("<I", raw, 4)[0]
    blob = raw[8:8 + first_len]
    assert blob[4 + 24] in (0, 1)  # the first block's mode: one fragment or a range
    struct.pack_into("<q", blob, 4 + 24 + 1, 9999)
    raw[8:8 + first_len] = blob
    m.write_bytes(numcodecs.Zstd(level=0).encode(bytes(raw)))
    assert n > 1
    out.append((d, "fragment_idx=9999", True))
    d = copy("pts", "level_gap")
    shutil.move(d / "1", d / "3")
    out.append((d, "expected [0, 1, 2]", True))
    return out


def test_each_defect_fails_as_in_zarr_vectors(good, tmp_path):
    for store, says, zv_finds in defects(good, tmp_path):
        ours = vv.validate(store, level=5)
        theirs = zv(zv_validate, str(store), level=5)
        assert not ours["ok"], (store.name, ours)
        assert any(says in e for e in ours["errors"]), (store.name, ours["errors"])
        assert theirs.ok == (not zv_finds), (store.name, theirs.errors)
        assert "FAIL" in ours["summary"]


def test_broken_link_rows_and_hostile_stores(good, tmp_path):
    d = tmp_path / "rows.zarrvectors"
    shutil.copytree(good / "lines.zarrvectors", d)
    arr = next(a for a in sorted((d / "0" / "links" / "0").iterdir()) if a.is_dir())
    cell = first_cell(arr)
    raw = bytearray(cell.read_bytes())
    # vlen item (u32 count, u32 len), then the ragged blob: i64 k, i64 offsets[k], then the rows.
    k = struct.unpack_from("<q", raw, 8)[0]
    at = 8 + 8 + 8 * k + 8  # the first record's first vertex (after its perm index)
    struct.pack_into("<q", raw, at, 10 ** 6)
    cell.write_bytes(bytes(raw))
    r = vv.validate(d)
    assert not r["ok"] and any("names row 1000000" in e for e in r["errors"]), r["errors"]
    # A cell that does not decode is a named error, not a crash.
    d2 = tmp_path / "garbage.zarrvectors"
    shutil.copytree(good / "pts.zarrvectors", d2)
    first_cell(d2 / "0" / "vertex_fragments").write_bytes(b"\x01\x00\x00\x00\x10\x00\x00\x00garbage")
    r = vv.validate(d2)
    assert not r["ok"] and any("fragment index" in e for e in r["errors"]), r["errors"]
    with pytest.raises(ValueError, match="1-5"):
        vv.validate(d2, level=9)
    r = vv.validate(tmp_path / "absent.zarrvectors")
    assert not r["ok"] and "Cannot open store" in r["errors"][0]


@pytest.mark.skipif(not CLI, reason="VOXFIELD_CLI names the built voxfield")
def test_cli_validate_exit_status(good, tmp_path):
    r = subprocess.run([CLI, "vectors", "validate", good / "pts.zarrvectors", "--level", "5"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "Level 5 validation: PASS" in r.stdout, r.stderr
    d = tmp_path / "bad.zarrvectors"
    shutil.copytree(good / "pts.zarrvectors", d)
    first_cell(d / "0" / "vertices").unlink()
    r = subprocess.run([CLI, "vectors", "validate", d, "--json"], capture_output=True, text=True)
    assert r.returncode == 1 and "problem" in r.stderr
    rep = json.loads(r.stdout)
    assert not rep["ok"] and any("has no cell" in e for e in rep["errors"])

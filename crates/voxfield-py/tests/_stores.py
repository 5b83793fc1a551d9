"""Helpers the zarr-vectors store tests share: quiet calls into zarr-vectors, a store's files, its
first cell, editing a zarr.json, and comparing two stores file for file."""

import json
import pathlib
import warnings


def zv(fn, *a, **k):
    """Calls zarr-vectors with its warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def files(root):
    return sorted(str(f.relative_to(root)) for f in pathlib.Path(root).rglob("*") if f.is_file())


def first_cell(array):
    return next(f for f in sorted((pathlib.Path(array) / "c").rglob("*")) if f.is_file())


def edit_json(path, fn):
    j = json.loads(path.read_text())
    fn(j)
    path.write_text(json.dumps(j))


def assert_identical(mine, theirs, *, zstd_decoded="object_index", ignore_row_shape=False):
    """Every file of both stores: cells byte-identical, every zarr.json equal as JSON (the root's store
    name aside). zstd frames are compared decoded in the object index (`zstd_decoded="object_index"`)
    or everywhere (`"any"`): libzstd 1.5.7 here and numcodecs' 1.5.6 frame some chunks differently.
    `ignore_row_shape`: zarr-vectors' polyline writer records multi-channel attributes as row_shape []."""
    import numcodecs

    mine, theirs = pathlib.Path(mine), pathlib.Path(theirs)
    assert files(mine) == files(theirs)
    for f in files(theirs):
        a, b = (mine / f).read_bytes(), (theirs / f).read_bytes()
        if f.endswith("zarr.json"):
            ja, jb = json.loads(a), json.loads(b)
            for j in (ja, jb):
                if f == "zarr.json":
                    j["attributes"].get("ome", {}).pop("name", None)
                elif ignore_row_shape:
                    j.get("attributes", {}).pop("row_shape", None)
            assert ja == jb, f
        elif (zstd_decoded == "any" or "/object_index/" in f) and a[:4] == b[:4] == b"\x28\xb5\x2f\xfd":
            assert numcodecs.Zstd().decode(a) == numcodecs.Zstd().decode(b), f
        else:
            assert a == b, f

"""Multi-resolution vector pyramids: zarr-vectors 0.9.x stores read and written in Rust.

``read_points(store, level=0, bbox=None)`` returns what zarr-vectors'
``read_points`` returns (``positions``, ``vertex_attributes``, ``vertex_count``)
for any level of a point, polyline or graph store, reading only the chunks a
bounding box touches; ``list_resolution_levels`` lists the levels. Stores of a
format older than 0.9.0 are refused, as zarr-vectors does. ``write_points`` writes a
point cloud laid out as zarr-vectors' own ``write_points`` lays it out (the same cells,
bins and fragment indices), so zarr-vectors 0.9.2 reads it.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np

from . import _voxfield


def _array(raw: tuple[str, str, int, bytes]) -> np.ndarray:
    _, dtype, width, data = raw
    a = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype, copy=False)
    return a.reshape(-1, width) if width > 1 else a


def list_resolution_levels(store_path: Any) -> list[int]:
    """The store's resolution levels (child groups named by integers), ascending."""
    return [int(x) for x in _voxfield.vectors_levels(os.fspath(store_path))]


def remove_resolution_level(store_path: Any, level: int) -> None:
    """Remove a coarse level (never level 0), as zarr-vectors does."""
    _voxfield.vectors_remove_level(os.fspath(store_path), int(level))


def info(store_path: Any) -> dict[str, Any]:
    """The root ``zarr_vectors`` metadata and, per level, its metadata and attribute names."""
    return json.loads(_voxfield.vectors_info(os.fspath(store_path)))


def _box(bbox: Any) -> tuple[list[float], list[float]] | None:
    if bbox is None:
        return None
    lo, hi = (np.asarray(c, dtype=np.float64).ravel() for c in bbox)
    return lo.tolist(), hi.tolist()


_OPS = ("==", "!=", "<", "<=", ">", ">=")


def _conditions(where: Any) -> list[tuple[str, str, float]]:
    """``where={"w": (">", 0.5), "label": 3}``: a value alone means equality."""
    if where is None:
        return []
    if not isinstance(where, dict):
        raise ValueError(f"where must be a dict of attribute name -> value or (op, value), got {where!r}")
    out = []
    for name, term in where.items():
        op, value = term if isinstance(term, tuple) else ("==", term)
        if op not in _OPS:
            raise ValueError(f"where {name!r}: operator {op!r} is not one of {', '.join(_OPS)}")
        out.append((str(name), op, float(value)))
    return out


def _ids(v: Any, what: str) -> list[int] | None:
    if v is None:
        return None
    a = np.asarray(v).ravel()
    if a.size and a.dtype.kind not in "iu":
        raise ValueError(f"{what} must be integer ids, got {a.dtype}")
    return [int(x) for x in a]


def select(store_path: Any, *, level: int = 0, bbox: Any = None, near: Any = None, objects: Any = None,
           groups: Any = None, where: dict[str, Any] | None = None, limit: int | None = None,
           attribute_names: Sequence[str] | None = None) -> dict[str, Any]:
    """zarr-vectors 0.9's selection (``Level.select``) on any level, local or remote: every term
    narrows. ``bbox`` = (min, max) inclusive; ``near`` = (centre, radius), a ball; ``objects``
    and ``groups`` ids; ``where`` = {attribute: value or (op, value)} on scalar vertex or object
    attributes; ``limit`` the first n vertices in reading order (chunks ascending, or object by
    object when objects are selected). Only the chunks the terms can touch are read. Returns
    ``positions``, ``vertex_attributes``, ``vertex_count``, ``object_ids`` (per vertex, when an
    object term was given) and ``truncated``."""
    ctr = None
    if near is not None:
        c, r = near
        ctr = ([float(x) for x in np.asarray(c, dtype=np.float64).ravel()], float(r))
    if limit is not None and int(limit) < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    names = [] if attribute_names is None else [str(n) for n in attribute_names]
    pos, attrs, ids, truncated = _voxfield.vectors_select(
        os.fspath(store_path), int(level), _box(bbox), ctr, _ids(objects, "objects"), _ids(groups, "groups"),
        _conditions(where), None if limit is None else int(limit), names)
    positions = _array(pos)
    if positions.ndim == 1:
        positions = positions.reshape(-1, 1)
    out = {"positions": positions, "vertex_attributes": {a[0]: _array(a) for a in attrs},
           "vertex_count": len(positions), "truncated": bool(truncated)}
    if ids is not None:
        out["object_ids"] = np.asarray(ids, dtype=np.int64)
    return out


def read_points(store_path: Any, *, level: int = 0, bbox: Any = None,
                attribute_names: Sequence[str] | None = None, object_ids: Any = None,
                group_ids: Any = None) -> dict[str, Any]:
    """The vertices of ``level`` (all, or those with min ≤ p ≤ max inside ``bbox`` =
    (min corner, max corner)) and the vertex attributes named in ``attribute_names`` (none
    by default, as zarr-vectors), in zarr-vectors' order: chunks ascending, rows as stored.
    ``object_ids`` / ``group_ids`` read those objects' vertices (object by object, with an
    ``object_ids`` entry per vertex), as zarr-vectors' ``read_points`` does."""
    if object_ids is not None or group_ids is not None:
        r = select(store_path, level=level, bbox=bbox, objects=object_ids, groups=group_ids,
                   attribute_names=attribute_names)
        r.pop("truncated")
        return r
    box = _box(bbox)
    names = [] if attribute_names is None else [str(n) for n in attribute_names]
    pos, attrs = _voxfield.vectors_read_points(os.fspath(store_path), int(level), box, names)
    positions = _array(pos)
    if positions.ndim == 1:
        positions = positions.reshape(-1, 1)
    return {"positions": positions, "vertex_attributes": {a[0]: _array(a) for a in attrs},
            "vertex_count": len(positions)}


def import_file(path: Any, store_path: Any, *, kind: str | None = None,
                attribute_names: Sequence[str] | None = None, dims: int = 3,
                chunk_shape: Sequence[float] | None = None, bin_shape: Sequence[float] | None = None,
                dtype: str = "float32", shard_shape: Any = None, compressor: Any = None,
                object_ids: str | None = None) -> dict[str, Any]:
    """Write a file as a new store, as ``voxfield vectors write`` does: points from an (N, dims + k)
    ``.npy`` (its k extra columns named by ``attribute_names``) or a LAS 1.0–1.4 file (both
    streamed: larger than memory is fine), a PLY (``attribute_names`` picks its properties) or a
    text table (``.csv``, ``.tsv``, ``.txt``, ``.xyz``, ``.pts``, ``.asc``, ``.dat``: comma,
    semicolon or space separated, an optional header line, ``#`` comments; dims coordinates then
    one column per ``attribute_names``, stored as float64); streamlines from ``.trk``, ``.tck`` or ``.trx``; an SWC skeleton as a graph with ``radius`` and
    ``type`` per vertex and one object per tree. ``object_ids`` names the attribute column (or PLY
    property) holding each point's object id: the points are written in zarr-vectors' object
    layout, as ``write_points(object_ids=...)`` writes them. Returns ``{"kind", "vertex_count",
    "object_count", "chunk_count", "link_count"}``."""
    kind_, v, o, c, links = _voxfield.vectors_import(
        os.fspath(path), os.fspath(store_path), kind,
        None if attribute_names is None else [str(n) for n in attribute_names], int(dims),
        None if chunk_shape is None else [float(x) for x in chunk_shape],
        None if bin_shape is None else [float(x) for x in bin_shape], str(dtype),
        _shard(shard_shape, int(dims)), _compressor(compressor), None if object_ids is None else str(object_ids))
    return {"kind": kind_, "vertex_count": v, "object_count": o, "chunk_count": c, "link_count": links}


def export(store_path: Any, path: Any, *, level: int = 0, bbox: Any = None, near: Any = None,
           objects: Any = None, groups: Any = None, where: dict[str, Any] | None = None,
           limit: int | None = None, attribute_names: Sequence[str] | None = None,
           cell_limit: int = 5000) -> dict[str, Any]:
    """Write a level (local or remote) to a file chosen by its extension, as ``voxfield vectors
    read`` does: ``.npy`` (the selection's coordinates then its attributes as float64 columns) or
    ``.ply``; ``.trk``/``.tck``/``.trx`` (the polylines with a vertex inside ``bbox``); ``.swc`` (a
    graph that is a forest, with its ``radius`` and ``type``); ``NAME.precomputed`` (Neuroglancer
    annotations, ``cell_limit`` per spatial-index cell; every attribute unless named). Selection
    terms a format cannot honour are refused. Returns ``{"what", "count", "vertex_count"}``."""
    ctr = None
    if near is not None:
        c, r = near
        ctr = ([float(x) for x in np.asarray(c, dtype=np.float64).ravel()], float(r))
    what, count, v = _voxfield.vectors_export(
        os.fspath(store_path), os.fspath(path), int(level), _box(bbox), ctr, _ids(objects, "objects"),
        _ids(groups, "groups"), _conditions(where), None if limit is None else int(limit),
        None if attribute_names is None else [str(n) for n in attribute_names], int(cell_limit))
    return {"what": what, "count": count, "vertex_count": v}


def parents(store_path: Any, level: int) -> np.ndarray:
    """Cross-level links read back: for every vertex of ``level`` (in ``read_points(level)`` row
    order) the row of its parent metanode at ``level + 1`` (in ``read_points(level + 1)`` order), or
    -1 where it has none (a vertex of a thinned-out object)."""
    return np.asarray(_voxfield.vectors_parents(os.fspath(store_path), int(level)), dtype=np.int64)


def children(store_path: Any, level: int) -> dict[str, np.ndarray]:
    """The inverse of :func:`parents`: for every vertex of ``level`` (≥ 1), its children at
    ``level - 1`` as CSR — vertex k's rows are ``children[offsets[k]:offsets[k + 1]]``."""
    offsets, rows = _voxfield.vectors_children(os.fspath(store_path), int(level))
    return {"offsets": np.asarray(offsets, dtype=np.int64), "children": np.asarray(rows, dtype=np.int64)}


def validate(store_path: Any, *, level: int = 3) -> dict[str, Any]:
    """zarr-vectors' ``validate``: conformance levels 1 (structure) to 5 (multiresolution),
    cumulative, on a local or remote store. Returns ``{"ok", "level", "passed", "warnings",
    "errors"}``; each error names its level and array. ``summary`` is zarr-vectors' text."""
    if int(level) not in range(1, 6):
        raise ValueError(f"Conformance level must be 1-5, got {level}")
    ok, passed, warnings, errors = _voxfield.vectors_validate(os.fspath(store_path), int(level))
    lines = [f"Level {int(level)} validation: {'PASS' if ok else 'FAIL'}",
             f"  {len(passed)} passed, {len(warnings)} warnings, {len(errors)} errors"]
    lines += [f"  ERROR: {e}" for e in errors] + [f"  WARN:  {w}" for w in warnings]
    return {"ok": bool(ok), "level": int(level), "passed": list(passed), "warnings": list(warnings),
            "errors": list(errors), "summary": "\n".join(lines)}


def _pack(name: str, values: Any, rows: int) -> tuple[str, str, int, bytes]:
    """An attribute as it crosses to Rust: (name, dtype, width, little-endian bytes)."""
    a = np.asarray(values)
    if a.dtype.kind not in "biuf" or a.dtype.kind == "b":
        raise ValueError(f"attribute {name!r}: dtype {a.dtype} is not numeric")
    if a.ndim not in (1, 2) or a.shape[0] != rows:
        raise ValueError(f"attribute {name!r} has shape {a.shape}; it needs {rows} rows")
    width = 1 if a.ndim == 1 else a.shape[1]
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return str(name), a.dtype.name, width, a.tobytes()


def _compressor(compressor: Any) -> str | None:
    """zarr-vectors' ``compressor=`` shorthands: None/False/"none", "zstd", "blosc" (or "gzip")."""
    if compressor is None or compressor is False:
        return None
    if not isinstance(compressor, str):
        raise ValueError(f"compressor must be None, 'none', 'zstd', 'blosc' or 'gzip', got {compressor!r}")
    return compressor


def _shard(shard_shape: Any, dims: int) -> list[int] | None:
    """zarr-vectors' ``shard_shape``: chunk cells per shard, one int for every axis or one per axis."""
    if shard_shape is None:
        return None
    s = [int(shard_shape)] * dims if np.ndim(shard_shape) == 0 else [int(x) for x in shard_shape]
    return s


def write_points(store_path: Any, positions: Any, *, chunk_shape: Sequence[float] | None = None,
                 bin_shape: Sequence[float] | None = None, vertex_attributes: dict[str, Any] | None = None,
                 dtype: str = "float32", shard_shape: Any = None, compressor: Any = None,
                 object_ids: Any = None, object_attributes: dict[str, Any] | None = None,
                 groups: dict[int, Sequence[int]] | None = None) -> dict[str, Any]:
    """Write (n, 2|3) ``positions`` and per-vertex attributes (arrays of n rows) as a new
    zarr-vectors 0.9.2 store (level 0). Returns ``{"vertex_count", "chunk_count"}``.
    With ``object_ids`` (one per point), ``object_attributes`` (one row per distinct id,
    ascending) or ``groups`` (``{group_id: [object ids]}``, ids from 0) the store gets
    zarr-vectors' object layout: one fragment per object per chunk, an object index, groups
    (held in memory, unlike the streamed plain writer)."""
    if object_ids is not None or object_attributes is not None or groups is not None:
        return _write_point_objects(store_path, positions, chunk_shape, bin_shape, vertex_attributes, dtype,
                                    shard_shape, compressor, object_ids, object_attributes, groups)
    p = np.asarray(positions)
    if p.dtype not in (np.float32, np.float64):
        p = p.astype(np.float64)
    p = np.ascontiguousarray(p, dtype=p.dtype.newbyteorder("="))
    if p.ndim != 2 or p.shape[1] not in (2, 3):
        raise ValueError(f"positions must have shape (n, 2) or (n, 3), got {p.shape}")
    attrs = []
    for name, values in (vertex_attributes or {}).items():
        a = np.asarray(values)
        if a.dtype.kind not in "iuf":
            raise ValueError(f"attribute {name!r}: dtype {a.dtype} is not numeric")
        if a.ndim not in (1, 2) or a.shape[0] != p.shape[0]:
            raise ValueError(f"attribute {name!r} has shape {a.shape}; it needs {p.shape[0]} rows")
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        attrs.append((str(name), a.dtype.name, 1 if a.ndim == 1 else a.shape[1], a.reshape(-1).view(np.uint8)))
    chunks = _voxfield.vectors_write_points(
        os.fspath(store_path), p, p.shape[1], attrs,
        None if chunk_shape is None else [float(c) for c in chunk_shape],
        None if bin_shape is None else [float(b) for b in bin_shape], str(dtype), _shard(shard_shape, p.shape[1]),
        _compressor(compressor))
    return {"vertex_count": int(p.shape[0]), "chunk_count": int(chunks)}


def _write_point_objects(store_path, positions, chunk_shape, bin_shape, vertex_attributes, dtype, shard_shape,
                         compressor, object_ids, object_attributes, groups):
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] not in (2, 3):
        raise ValueError(f"positions must have shape (n, 2) or (n, 3), got {p.shape}")
    n = len(p)
    # As zarr-vectors: object attributes or groups without ids make each point its own object.
    ids = np.arange(n) if object_ids is None else np.asarray(object_ids).ravel()
    if ids.size and ids.dtype.kind not in "iu":
        raise ValueError(f"object_ids must be integers, got {ids.dtype}")
    if len(ids) != n:
        raise ValueError(f"{len(ids)} object ids for {n} points")
    n_obj = len(np.unique(ids))
    vattrs = [_pack(name, values, n) for name, values in (vertex_attributes or {}).items()]
    oattrs = [_pack(name, values, n_obj) for name, values in (object_attributes or {}).items()]
    gl = []
    if groups:
        if min(groups) < 0:
            raise ValueError("group ids must be ≥ 0")
        gl = [[int(m) for m in groups.get(g, [])] for g in range(max(groups) + 1)]
    v, chunks, objects, ng = _voxfield.vectors_write_point_objects(
        os.fspath(store_path), np.ascontiguousarray(p, dtype="<f8").tobytes(), p.shape[1], vattrs,
        [int(i) for i in ids], oattrs, gl,
        None if chunk_shape is None else [float(c) for c in chunk_shape],
        None if bin_shape is None else [float(b) for b in bin_shape], str(dtype), _shard(shard_shape, p.shape[1]),
        _compressor(compressor))
    return {"vertex_count": v, "chunk_count": chunks, "object_count": objects, "group_count": ng}


def write_polylines(store_path: Any, polylines: Sequence[Any], *, chunk_shape: Sequence[float] | None = None,
                    bin_shape: Sequence[float] | None = None,
                    vertex_attributes: dict[str, Sequence[Any]] | None = None,
                    object_attributes: dict[str, Any] | None = None, dtype: str = "float32",
                    geometry_type: str = "streamline", shard_shape: Any = None,
                    compressor: Any = None) -> dict[str, Any]:
    """Write polylines (a list of (k, 2|3) arrays) as a new zarr-vectors 0.9.2 store, laid
    out as zarr-vectors' ``write_polylines`` lays them out: cut where a polyline changes
    chunk, one fragment per run, the cuts stored as cross-chunk stitches. Vertex
    attributes are ``{name: [one array per polyline]}``, object attributes ``{name: (n,) or
    (n, C)}``. Returns zarr-vectors' summary keys."""
    lines = [np.asarray(p, dtype=np.float64) for p in polylines]
    if not lines:
        raise ValueError("no polylines: the input is empty")
    dims = lines[0].shape[1] if lines[0].ndim == 2 else 0
    for i, p in enumerate(lines):
        if p.ndim != 2 or p.shape[1] != dims or dims not in (2, 3):
            raise ValueError(f"polyline {i} has shape {p.shape}; every polyline needs shape (k, {dims or '2|3'})")
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in lines])]).astype(np.int64)
    total = int(offsets[-1])
    vattrs = []
    for name, parts in (vertex_attributes or {}).items():
        parts = list(parts)
        if len(parts) != len(lines):
            raise ValueError(f"vertex attribute {name!r} has {len(parts)} arrays for {len(lines)} polylines")
        for i, (a, p) in enumerate(zip(parts, lines)):
            if len(np.asarray(a)) != len(p):
                raise ValueError(f"vertex attribute {name!r}: polyline {i} has {len(p)} vertices and "
                                 f"{len(np.asarray(a))} values")
        vattrs.append(_pack(name, np.concatenate([np.asarray(a) for a in parts]), total))
    oattrs = [_pack(name, values, len(lines)) for name, values in (object_attributes or {}).items()]
    n, v, chunks, stitches = _voxfield.vectors_write_polylines(
        os.fspath(store_path), np.ascontiguousarray(np.concatenate(lines), dtype="<f8").tobytes(),
        offsets.tolist(), dims, vattrs, oattrs,
        None if chunk_shape is None else [float(c) for c in chunk_shape],
        None if bin_shape is None else [float(b) for b in bin_shape], str(dtype), str(geometry_type),
        _shard(shard_shape, dims), _compressor(compressor))
    return {"polyline_count": n, "vertex_count": v, "chunk_count": chunks, "cross_chunk_link_count": stitches}


def write_graph(store_path: Any, positions: Any, edges: Any, *, chunk_shape: Sequence[float] | None = None,
                bin_shape: Sequence[float] | None = None, object_ids: Any = None,
                vertex_attributes: dict[str, Any] | None = None, object_attributes: dict[str, Any] | None = None,
                dtype: str = "float32", shard_shape: Any = None, compressor: Any = None) -> dict[str, Any]:
    """Write a graph — (n, 2|3) ``positions``, (m, 2) ``edges`` of vertex indices, optional
    per-vertex ``object_ids`` — as zarr-vectors' ``write_graph`` lays it out (every edge
    stored: within a chunk as a flat row, across chunks once with its orientation).
    Returns zarr-vectors' summary keys."""
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] not in (2, 3):
        raise ValueError(f"positions must have shape (n, 2) or (n, 3), got {p.shape}")
    e = np.asarray(edges)
    if e.size == 0:
        e = e.reshape(0, 2)
    if e.ndim != 2 or e.shape[1] != 2 or (e.size and e.dtype.kind not in "iu"):
        raise ValueError(f"edges must be an (m, 2) array of vertex indices, got shape {e.shape}")
    if e.size and (e.min() < 0 or e.max() >= len(p)):
        raise ValueError(f"edges name vertices outside 0..{len(p) - 1}")
    ids = None if object_ids is None else [int(i) for i in np.asarray(object_ids).ravel()]
    n_obj = 1 if ids is None else (max(ids) + 1 if ids else 0)
    vattrs = [_pack(name, values, len(p)) for name, values in (vertex_attributes or {}).items()]
    oattrs = [_pack(name, values, n_obj) for name, values in (object_attributes or {}).items()]
    v, m, chunks, objects, intra = _voxfield.vectors_write_graph(
        os.fspath(store_path), np.ascontiguousarray(p, dtype="<f8").tobytes(), p.shape[1],
        [(int(a), int(b)) for a, b in e], ids, vattrs, oattrs,
        None if chunk_shape is None else [float(c) for c in chunk_shape],
        None if bin_shape is None else [float(b) for b in bin_shape], str(dtype), _shard(shard_shape, p.shape[1]),
        _compressor(compressor))
    return {"node_count": v, "edge_count": m, "chunk_count": chunks, "object_count": objects,
            "intra_edge_count": intra, "cross_edge_count": m - intra, "kind": "graph"}


def read_graph(store_path: Any, *, level: int = 0) -> dict[str, Any]:
    """The graph of ``level`` as zarr-vectors' ``read_graph`` returns it: ``positions`` in
    stored order and ``edges`` as (m, 2) indices into them (cross-chunk edges in their
    original orientation)."""
    dims, data, edges = _voxfield.vectors_read_graph(os.fspath(store_path), int(level))
    pos = np.frombuffer(data, dtype="<f8").reshape(-1, dims)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    return {"positions": pos, "edges": e, "node_count": len(pos), "edge_count": len(e)}


def read_polylines(store_path: Any, *, level: int = 0) -> dict[str, Any]:
    """The polylines (objects) of ``level`` with zarr-vectors' ``read_polylines`` keys:
    ``polylines`` (one (k, D) array per object, in object-index order — zarr-vectors gives
    the same vertices split into per-chunk pieces), ``object_ids``, ``polyline_count`` and
    ``vertex_count``."""
    dtype, dims, data, offsets, ids = _voxfield.vectors_read_objects(os.fspath(store_path), int(level))
    v = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype, copy=False).reshape(-1, dims)
    lines = [v[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    return {"polylines": lines, "object_ids": np.asarray(ids, dtype=np.int64), "ndim": dims,
            "polyline_count": len(lines), "vertex_count": len(v)}


def _zarr_vectors_draws(store_path: Any, factors: Sequence[tuple[float, float]],
                        seed: int | None) -> list[list[int] | None]:
    """The object rows zarr-vectors 0.9.2 keeps at each level: ``round(n / sparsity)`` of
    all n rows of level 0 drawn by ``numpy.random.default_rng(seed).choice`` — the same
    seed at every level, so deeper levels redraw from every object (its single-seed
    behaviour)."""
    index = os.path.join(os.fspath(store_path), "0", "object_index", "zarr.json")
    if not os.path.isfile(index):
        return [None] * len(factors)  # a point cloud is never thinned
    with open(index) as f:
        n = int(json.load(f)["attributes"]["num_objects"])
    draws: list[list[int] | None] = []
    for _, sparsity in factors:
        if float(sparsity) <= 1.0 or n <= 1:
            draws.append(None)
            continue
        k = max(1, round(n * (1.0 / float(sparsity))))
        if k >= n:
            draws.append(None)
            continue
        chosen = np.random.default_rng(seed).choice(n, size=k, replace=False)
        draws.append(sorted(int(c) for c in chosen))
    return draws


def build_pyramid(store_path: Any, factors: Sequence[tuple[float, float]], *,
                  sparsity_strategy: str = "random", sparsity_seed: int | None = None,
                  cross_level_depth: int = 1, cross_level_storage: str = "explicit",
                  method: str = "per_object", aggregation: str | None = None,
                  single_seed: bool = False) -> dict[str, Any]:
    """zarr-vectors 0.9.2's ``build_pyramid``: one level per (coarsen, sparsity) factor,
    each bin the previous one × coarsen, one metanode (the mean of its members) per
    occupied bin shared by the objects through it, objects keeping their ids, thinned by
    ``sparsity``; cross-level links ``+N``/``-N`` up to ``cross_level_depth`` (-1: all).

    Beyond 0.9.2: ``aggregation`` (mean|sum|min|max|mode|count|first) carries vertex
    attributes to coarse levels; ``sparsity_strategy='spatial_coverage'`` keeps one
    object per occupied bin first; random thinning draws among the objects alive at the
    source level with a fresh seed per level. ``single_seed=True`` instead reproduces
    0.9.2's draws exactly (numpy's ``default_rng(sparsity_seed)`` at every level).
    ``method='cross_object_metanode'`` keeps the metanodes alone: the kept objects'
    vertices merged per bin into a point level without object ids."""
    factors = [(float(c), float(s)) for c, s in factors]
    keep = None
    if single_seed:
        if sparsity_strategy != "random":
            raise ValueError("single_seed reproduces zarr-vectors' random draws only")
        keep = _zarr_vectors_draws(store_path, factors, sparsity_seed)
    seed = 0 if sparsity_seed is None else int(sparsity_seed)
    levels = _voxfield.vectors_build_pyramid(os.fspath(store_path), factors, str(cross_level_storage),
                                             int(cross_level_depth), str(sparsity_strategy), seed, keep,
                                             aggregation, str(method))
    return {"levels_created": len(levels), "levels": [lv for lv, _, _ in levels],
            "vertex_counts": [v for _, v, _ in levels], "objects_kept": [k for _, _, k in levels],
            "method": method, "cross_level_depth": cross_level_depth,
            "cross_level_storage": cross_level_storage}


from . import _panics  # noqa: E402  (last: guards everything above)

_panics.guard_module(__name__)

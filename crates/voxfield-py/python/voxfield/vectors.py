"""Multi-resolution vector pyramids: zarr-vectors 0.9.x stores read in Rust.

``read_points(store, level=0, bbox=None)`` returns what zarr-vectors'
``read_points`` returns (``positions``, ``vertex_attributes``, ``vertex_count``)
for any level of a point, polyline or graph store, reading only the chunks a
bounding box touches; ``list_resolution_levels`` lists the levels. Stores of a
format older than 0.9.0 are refused, as zarr-vectors does.
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


def info(store_path: Any) -> dict[str, Any]:
    """The root ``zarr_vectors`` metadata and, per level, its metadata and attribute names."""
    return json.loads(_voxfield.vectors_info(os.fspath(store_path)))


def read_points(store_path: Any, *, level: int = 0, bbox: Any = None,
                attribute_names: Sequence[str] | None = None) -> dict[str, Any]:
    """The vertices of ``level`` (all, or those with min ≤ p ≤ max inside ``bbox`` =
    (min corner, max corner)) and their vertex attributes (``attribute_names``, default all),
    in zarr-vectors' order: chunks ascending, rows as stored."""
    box = None
    if bbox is not None:
        lo, hi = (np.asarray(c, dtype=np.float64).ravel() for c in bbox)
        box = (lo.tolist(), hi.tolist())
    names = None if attribute_names is None else [str(n) for n in attribute_names]
    pos, attrs = _voxfield.vectors_read_points(os.fspath(store_path), int(level), box, names)
    positions = _array(pos)
    if positions.ndim == 1:
        positions = positions.reshape(-1, 1)
    return {"positions": positions, "vertex_attributes": {a[0]: _array(a) for a in attrs},
            "vertex_count": len(positions)}

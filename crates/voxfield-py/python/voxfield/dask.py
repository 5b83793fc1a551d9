"""Every voxfield field as Dask tasks (``pip install voxfield[dask]``).

``sample(source, points)`` samples a dask array of points block by block; ``to_dask(field,
shape, chunks, bounds)`` is a lazy dask array of a field over a grid, so ``da.to_zarr`` rasterises
or decompresses it across a cluster. A source is a path or URL (any volume ``voxfield.open``
takes, ``.vxn`` neural models included), an open ``voxfield.Volume``, or a
``voxfield.rbf.RBFInterpolator`` saved to / loaded from a ``.vxr`` file. Tasks carry the
source's description (path or URL and options), never its data, and each worker process opens
it once and keeps it open (up to 16 sources per process, least recently used dropped).
"""

from __future__ import annotations

import functools
import os
import pickle
from typing import Any, Sequence

import numpy as np

try:
    import dask.array as da
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("voxfield.dask needs dask: pip install 'voxfield[dask]'") from e

import voxfield as _vf
from voxfield import rbf as _rbf


def _describe(source: Any) -> bytes:
    """The pickled description a task carries (a few hundred bytes)."""
    if isinstance(source, (str, os.PathLike)):
        source = _vf.open(source) if not os.fspath(source).endswith(".vxr") else _rbf.load(source)
    if not isinstance(source, (_vf.Volume, _rbf.RBFInterpolator)):
        raise TypeError(f"a source is a path, URL, voxfield.Volume or RBFInterpolator, not {type(source).__name__}")
    return pickle.dumps(source)


@functools.lru_cache(maxsize=16)
def _opened(desc: bytes) -> Any:
    """The source a description names, opened once per worker process."""
    return pickle.loads(desc)


def _eval(field: Any, pts: np.ndarray, options: dict) -> np.ndarray:
    if isinstance(field, _rbf.RBFInterpolator):
        if options:
            raise TypeError(f"an RBF model takes no sampling options, got {sorted(options)}")
        return field(pts)
    return field.sample(pts, **options)


def _dtype(field: Any, options: dict) -> np.dtype:
    if isinstance(field, _rbf.RBFInterpolator):
        return np.dtype(np.float64)
    d = options.get("dtype", np.float32)
    return field.dtype if d == "source" else np.dtype(d)


def _sample_block(block: np.ndarray, desc: bytes, options: dict) -> np.ndarray:
    return _eval(_opened(desc), np.ascontiguousarray(block, dtype=np.float64), options)


def sample(source: Any, points: Any, **options: Any) -> "da.Array":
    """Values of ``source`` at ``points``, a dask (or numpy) array (N, D) in any chunking: a
    dask array (N,) chunked like the points' rows. ``options`` are ``Volume.sample``'s
    (method, mode, cval, dtype, world, affine). Equal to ``source.sample(points)`` in one
    process."""
    desc = _describe(source)
    field = _opened(desc)
    pts = da.asarray(points)
    if pts.ndim != 2:
        raise ValueError(f"points must be (N, D), got shape {pts.shape}")
    pts = pts.rechunk({1: -1})
    dtype = _dtype(field, options)
    return pts.map_blocks(_sample_block, desc, options, drop_axis=1, dtype=dtype, meta=np.empty((0,), dtype))


def _axes(field: Any, shape: Sequence[int] | None, bounds: Any) -> list[np.ndarray]:
    """The grid's coordinates per axis: ``shape[a]`` nodes from LO to HI of ``bounds``, or
    for a volume without bounds, its voxel indices."""
    if isinstance(field, _rbf.RBFInterpolator):
        dim = field.dim
        if shape is None:
            raise ValueError("to_dask of an RBF model needs shape= (nodes per axis)")
        if bounds is None:
            lo, hi = field.info["bbox_lo"], field.info["bbox_hi"]
            bounds = [v for pair in zip(lo, hi) for v in pair]
    else:
        dim = field.ndim
        if shape is None:
            if bounds is not None:
                raise ValueError("bounds= needs shape= (nodes per axis)")
            return [np.arange(n, dtype=np.float64) for n in field.shape]
        if bounds is None:
            bounds = [v for n in field.shape for v in (0.0, n - 1.0)]
    shape = [int(s) for s in shape]
    b = np.asarray(bounds, dtype=np.float64).ravel()
    if len(shape) != dim or min(shape) <= 0:
        raise ValueError(f"shape needs {dim} positive sizes, got {shape}")
    if b.size != 2 * dim or not np.isfinite(b).all():
        raise ValueError(f"bounds needs {2 * dim} finite numbers (LO, HI per axis), got {b.size}")
    return [np.linspace(b[2 * a], b[2 * a + 1], shape[a]) for a in range(dim)]


def _grid_block(desc: bytes, axes: list[np.ndarray], options: dict, block_info: Any = None) -> np.ndarray:
    loc = block_info[None]["array-location"]
    coords = [ax[lo:hi] for ax, (lo, hi) in zip(axes, loc)]
    mesh = np.meshgrid(*coords, indexing="ij")
    pts = np.stack([m.ravel() for m in mesh], axis=1)
    return _eval(_opened(desc), pts, options).reshape(mesh[0].shape)


def to_dask(field: Any, shape: Sequence[int] | None = None, chunks: Any = "auto", bounds: Any = None,
            **options: Any) -> "da.Array":
    """``field`` (a volume or model, as for :func:`sample`) as a lazy dask array over a grid:
    by default a volume's own voxels (exact stored values); with ``shape`` (and ``bounds`` =
    (LO0, HI0, LO1, HI1, ...), default the volume's index range or the RBF samples' box),
    ``shape[a]`` evenly spaced nodes per axis from LO to HI. Each block is sampled where it
    runs; ``options`` as ``Volume.sample`` (``world=True`` reads ``bounds`` in world units)."""
    desc = _describe(field)
    f = _opened(desc)
    axes = _axes(f, shape, bounds)
    full = tuple(len(a) for a in axes)
    dtype = _dtype(f, options)
    if chunks == "auto" and isinstance(f, _vf.Volume) and shape is None:
        chunks = tuple(max(c, 64) for c in f.chunks)  # whole stored chunks per task
    chunks = da.core.normalize_chunks(chunks, full, dtype=dtype)
    return da.map_blocks(_grid_block, desc, axes, options, chunks=chunks, dtype=dtype,
                         meta=np.empty((0,) * len(full), dtype))

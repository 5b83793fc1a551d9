"""Every voxfield field as Dask tasks (``pip install voxfield[dask]``).

``sample(source, points)`` samples a dask array of points block by block; ``to_dask(field,
shape, chunks, bounds)`` is a lazy dask array of a field over a grid, so ``da.to_zarr`` rasterises
or decompresses it across a cluster; ``plane`` and ``slab`` tile an oblique plane or slab of a
volume; ``fit_rbf(points, values)`` fits an RBF model to dask arrays
of samples too many for one machine's memory, its cells solved as tasks, and returns the model a
local ``RBFInterpolator`` fit of the same samples makes. A source is a path or URL (any volume ``voxfield.open``
takes, ``.vxn`` neural models included), an open ``voxfield.Volume``, or a
``voxfield.rbf.RBFInterpolator`` saved to / loaded from a ``.vxr`` file. Tasks carry the
source's description (path or URL and options), never its data, and each worker process opens
it once and keeps it open (up to 16 sources per process, least recently used dropped).
"""

from __future__ import annotations

import functools
import json
import math
import os
import pickle
import warnings
from typing import Any, Sequence

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("voxfield.dask needs dask: pip install 'voxfield[dask]'") from e

import voxfield as _vf
from voxfield import _voxfield
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
    return _eval(_opened(desc), np.require(block, np.float64, "CA"), options)


def sample(source: Any, points: Any, **options: Any) -> "da.Array":
    """Values of ``source`` at ``points``, a dask (or numpy) array (N, D) in any chunking: a
    dask array (N,) chunked like the points' rows ((N, C) for a model of C value channels). ``options`` are ``Volume.sample``'s
    (method, mode, cval, dtype, world, affine). Equal to ``source.sample(points)`` in one
    process."""
    desc = _describe(source)
    field = _opened(desc)
    pts = da.asarray(points)
    if pts.ndim != 2:
        raise ValueError(f"points must be (N, D), got shape {pts.shape}")
    pts = pts.rechunk({1: -1})
    dtype = _dtype(field, options)
    vshape = tuple(field._value_shape) if isinstance(field, _rbf.RBFInterpolator) else ()
    if vshape:  # a model of several value channels: (N, C)
        chunks = (pts.chunks[0],) + tuple((s,) for s in vshape)
        return pts.map_blocks(_sample_block, desc, options, chunks=chunks, dtype=dtype,
                              meta=np.empty((0,) * len(chunks), dtype))
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


def _plane_block(desc: bytes, origin: Any, u: Any, v: Any, slab: tuple | None, options: dict,
                 block_info: Any = None) -> np.ndarray:
    (j0, j1), (i0, i1) = block_info[None]["array-location"]
    vol = _opened(desc)
    if slab is None:
        return vol.plane(origin, u, v, (j1 - j0, i1 - i0), offset=(j0, i0), **options)
    return vol.slab(origin, u, v, (j1 - j0, i1 - i0), *slab, offset=(j0, i0), **options)


def _plane_array(source: Any, origin: Any, u: Any, v: Any, shape: Sequence[int], chunks: Any, slab: tuple | None,
                 options: dict) -> "da.Array":
    desc = _describe(source)
    vol = _opened(desc)
    if not isinstance(vol, _vf.Volume):
        raise TypeError("planes and slabs are sampled from volumes (an RBF model: use to_dask)")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) <= 0:
        raise ValueError(f"shape must be (nv, nu), two sizes > 0, got {shape}")
    vol.plane(origin, u, v, (1, 1), **options) if slab is None else vol.slab(origin, u, v, (1, 1), *slab, **options)
    dtype = _dtype(vol, options)
    chunks = da.core.normalize_chunks((1024, 1024) if chunks == "auto" else chunks, shape, dtype=dtype)
    return da.map_blocks(_plane_block, desc, origin, u, v, slab, options, chunks=chunks, dtype=dtype,
                         meta=np.empty((0, 0), dtype))


def plane(source: Any, origin: Sequence[float], u: Sequence[float], v: Sequence[float], shape: Sequence[int],
          chunks: Any = "auto", **options: Any) -> "da.Array":
    """An oblique plane of a volume as a lazy dask array of shape (nv, nu), in tiles (default
    1024²) sampled where they run; pixel (j, i) samples ``origin + i*u + j*v``, exactly as
    ``Volume.plane`` of the whole plane does (``options`` are its: method, mode, cval, dtype,
    world, affine, auto_level)."""
    return _plane_array(source, origin, u, v, shape, chunks, None, options)


def slab(source: Any, origin: Sequence[float], u: Sequence[float], v: Sequence[float], shape: Sequence[int],
         thickness: float, step: float = 1.0, reduce: str = "mean", chunks: Any = "auto",
         **options: Any) -> "da.Array":
    """A slab (a plane thickened along its normal and reduced) as a lazy dask array in tiles, equal
    to ``Volume.slab`` of the whole slab."""
    return _plane_array(source, origin, u, v, shape, chunks, (float(thickness), float(step), str(reduce)), options)


# ---- fit_rbf: a subdivided RBF fit as tasks -------------------------------------------------
#
# The samples are routed to the tiles of a coarse grid over their bounding box, so each tile's
# points (duplicates included: equal coordinates share a tile) meet in one task, which merges
# duplicates and reports the tile's census (counts, bounds, value range) and spread. The merged
# census fixes the plan (the domain grid, the kernel's shape), exactly as a local fit of the
# whole set would. Each tile then solves the domains whose centre it holds from its own points
# and its neighbours' points within a halo of 1.5 domain sizes; a domain whose cell (grown to
# reach enough points) would reach past the halo is solved again with a halo 4x wider. Every row
# carries its index in the input (its key) and cells are solved in key order, so the cells are
# those of a local fit, bit for bit.


_MAX_TILES = 4096  # tiles a fit may ask for (routing makes blocks x tiles tasks)


def _addr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _rows(p: Any, v: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.require(p, np.float64, "CA")
    v = np.require(v, np.float64, "CA")
    return p, v.reshape(len(v), -1)


def _block_bounds(p: Any, v: Any, offset: int) -> tuple:
    """A block's row count and bounding box, after refusing non-finite entries (named by
    their row in the whole input)."""
    p, v = _rows(p, v)
    for arr, what in ((p, "coordinate"), (v, "value")):
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"point {offset + i} has a non-finite {what} ({arr[i].tolist()})")
    if len(p) == 0:
        return 0, None, None
    return len(p), p.min(axis=0), p.max(axis=0)


def _route(p: Any, v: Any, offset: int, grid: str, ntiles: int) -> tuple:
    """A block's rows split by tile: per tile (keys, points, values)."""
    p, v = _rows(p, v)
    ids = np.empty(len(p), dtype=np.int64)
    _voxfield.rbf_route(grid, _addr(p), len(p), _addr(ids))
    order = np.argsort(ids, kind="stable")
    cut = np.searchsorted(ids[order], np.arange(ntiles + 1))
    keys = offset + order.astype(np.int64)
    return tuple((keys[a:b], p[order[a:b]], v[order[a:b]]) for a, b in zip(cut[:-1], cut[1:]))


def _gather(pieces: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pieces of (keys, points, values) as one set sorted by key."""
    keys = np.concatenate([k for k, _, _ in pieces])
    order = np.argsort(keys, kind="stable")
    pts = np.require(np.concatenate([p for _, p, _ in pieces])[order], None, "CA")
    vals = np.require(np.concatenate([v for _, _, v in pieces])[order], None, "CA")
    return np.require(keys[order], None, "CA"), pts, vals


def _tile(duplicates: str, lo: list, hi: list, *pieces: tuple) -> tuple:
    """A tile's points with duplicates merged, its census and spread (JSON)."""
    keys, pts, vals = _gather(pieces)
    n, dim = pts.shape
    c = vals.shape[1]
    out = (np.empty_like(pts), np.empty_like(vals), np.empty_like(keys))
    m, census, spread = _voxfield.rbf_prepare_tile(_addr(pts), n, dim, _addr(vals), c, _addr(keys), duplicates,
                                                   lo, hi, tuple(_addr(o) for o in out))
    return (out[2][:m], out[0][:m], out[1][:m]), census, spread


def _tile_meta(tile: tuple) -> tuple[str, str]:
    return tile[1], tile[2]


def _lend(tile: tuple, lo: list, hi: list) -> tuple:
    """The rows of a tile inside the box [lo, hi] (a neighbour's halo)."""
    keys, pts, vals = tile[0]
    inside = np.all((pts >= np.asarray(lo)) & (pts <= np.asarray(hi)), axis=1)
    return keys[inside], pts[inside], vals[inside]


def _solve(census: str, opts: tuple, grid: str, t: int, domains: list | None, lo: list, hi: list,
           own: tuple, *lent: tuple) -> tuple[bytes, list]:
    """The cells of tile t's domains (or of ``domains``) and the domains it could not see."""
    _, pts, vals = _gather((own[0],) + lent)
    return _voxfield.rbf_solve_tile(census, opts, grid, t, domains, lo, hi, _addr(pts), len(pts), _addr(vals))


def fit_rbf(points: Any, values: Any, *, path: str | os.PathLike | None = None, tiles: int | None = None,
            smoothing: float = 0.0, kernel: str = "thin_plate_spline", epsilon: float | None = None,
            degree: int | None = None, support: float | None = None, points_per_cell: int | None = None,
            overlap: float = 0.25, ramp: str = "smooth", duplicates: str = "merge") -> "_rbf.RBFInterpolator":
    """Fits ``values`` (N,) or (N, C) at ``points`` (N, D), dask or numpy arrays in any row
    chunking, on the current Dask scheduler (a ``distributed.Client`` if one is active): the
    model equals ``voxfield.RBFInterpolator(points, values, ...)`` of the same samples (every
    cell, hence every value, bit for bit). Options are ``RBFInterpolator``'s. ``path`` saves the
    model (a ``.vxr`` file, so it pickles to workers for :func:`sample` and :func:`to_dask`).
    ``tiles`` is how many parts the samples are split into (default about one per 250,000
    samples, each at least ~4 domains wide per axis). Peak memory: a worker holds a tile and its
    halo (about twice the tile), the driver the model's cells. ``result.fit_report`` tells the
    tiles, halo rounds and tasks run."""
    opts = _rbf._fit_args(kernel, epsilon, support, smoothing, degree, points_per_cell, overlap, ramp, duplicates)
    pts = da.asarray(points)
    if pts.ndim == 1:
        pts = pts[:, None]
    vals = da.asarray(values)
    for arr, what in ((pts, "points"), (vals, "values")):
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{what} must be numeric, got dtype {arr.dtype}")
    if pts.ndim != 2 or not 1 <= pts.shape[1] <= 3:
        raise ValueError(f"points must have shape (N, D) with D = 1, 2 or 3, got {pts.shape}")
    if any(math.isnan(c) for c in pts.chunks[0]):
        pts = pts.compute_chunk_sizes()
    if any(math.isnan(c) for c in vals.chunks[0]):
        vals = vals.compute_chunk_sizes()
    if vals.ndim == 0 or vals.shape[0] != pts.shape[0]:
        raise ValueError(f"values must have one row per point: {pts.shape[0]} points, values shape {vals.shape}")
    if pts.shape[0] == 0:
        raise ValueError("no points to fit")
    value_shape = vals.shape[1:]
    vals = vals[:, None] if vals.ndim == 1 else vals.reshape(vals.shape[0], math.prod(value_shape))
    dim, channels = pts.shape[1], vals.shape[1]
    _voxfield.rbf_check_options(dim, channels, opts)
    if tiles is not None and not 1 <= int(tiles) <= _MAX_TILES:
        raise ValueError(f"tiles must be 1 to {_MAX_TILES}, got {tiles}")
    pts = pts.rechunk({1: -1})
    vals = vals.rechunk((pts.chunks[0], -1))
    pblocks, vblocks = pts.to_delayed().ravel(), vals.to_delayed().ravel()
    offsets = np.concatenate([[0], np.cumsum(pts.chunks[0])[:-1]]).astype(np.int64).tolist()

    bounds = dask.compute(*[dask.delayed(_block_bounds)(p, v, o) for p, v, o in zip(pblocks, vblocks, offsets)])
    bounds = [b for b in bounds if b[0]]
    if not bounds:
        raise ValueError("no points to fit")
    n = sum(b[0] for b in bounds)
    lo = np.min([b[1] for b in bounds], axis=0).tolist()
    hi = np.max([b[2] for b in bounds], axis=0).tolist()
    if tiles is None:
        ppc = opts[4] or (3000 if opts[0].startswith("wendland") else 200)
        tiles = min(math.ceil(n / 250_000), _MAX_TILES, max(1, n // (ppc * 4**dim)))
    tiles = max(1, int(tiles))
    grid = _voxfield.rbf_tile_grid(lo, hi, tiles)
    ntiles = math.prod(json.loads(grid)["count"][:dim])
    if ntiles > 4 * _MAX_TILES:  # an elongated box rounds to more tiles than asked
        raise ValueError(f"the samples' box {lo} to {hi} is too elongated to split into at most "
                         f"{4 * _MAX_TILES} tiles ({ntiles})")

    route = dask.delayed(_route, nout=ntiles)
    routed = [route(p, v, o, grid, ntiles) for p, v, o in zip(pblocks, vblocks, offsets)]
    made = [dask.delayed(_tile)(opts[7], lo, hi, *[r[t] for r in routed]) for t in range(ntiles)]
    made = dask.persist(*made)
    meta = dask.compute(*[dask.delayed(_tile_meta)(t) for t in made])
    meta = [m for m in meta if json.loads(m[0])["input_points"]]  # (empty tiles have no bounds)
    census, _ = _voxfield.rbf_plan_tiles([m[0] for m in meta], [m[1] for m in meta], opts)

    blobs, report = [], {"tiles": ntiles, "rounds": 0, "unseen": [], "solve_tasks": 0}
    todo: list[tuple[int, list | None]] = [(t, None) for t in range(ntiles)]
    halo = 1.5
    while todo:
        tasks = []
        for t, domains in todo:
            lo_t, hi_t, meet = _voxfield.rbf_halo(census, opts, grid, t, halo)
            lent = [dask.delayed(_lend)(made[u], lo_t, hi_t) for u in meet if u != t]
            tasks.append(dask.delayed(_solve)(census, opts, grid, t, domains, lo_t, hi_t, made[t], *lent))
        results = dask.compute(*tasks)
        report["rounds"] += 1
        report["solve_tasks"] += len(tasks)
        todo = [(t, unseen) for (t, _), (_, unseen) in zip(todo, results) if unseen]
        report["unseen"].append(sum(len(u) for _, u in todo))
        blobs.extend(r[0] for r in results)
        halo *= 4.0
    del made
    model = _rbf.RBFInterpolator._from_model(_voxfield.rbf_assemble(census, opts, blobs))
    model._value_shape = tuple(value_shape)
    model.fit_report = report
    if model.info["merged_duplicates"]:
        warnings.warn(f"merged {model.info['merged_duplicates']} duplicate point(s) (mean value kept)", stacklevel=2)
    if path is not None:
        model.save(path)
    return model


from . import _panics  # noqa: E402  (last: guards everything above)

_panics.guard_module(__name__)

"""voxfield: lazy, exact sampling of big 3-D volumes.

numpy in, numpy out: volumes given as numpy arrays or memmaps are used in place
(no copy, no cast), files and stores are opened in O(1) and read chunk by chunk,
and every call releases the GIL.

>>> import numpy as np, voxfield
>>> vol = voxfield.open(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
>>> vol.sample([[1.0, 1.5, 2.0]])
array([29.5], dtype=float32)
"""
from __future__ import annotations

import json
import os
import warnings
from typing import Any, Sequence

import numpy as np

from . import _voxfield

__all__ = ["open", "Volume", "map_coordinates", "compress", "meta_train", "RBFInterpolator", "load", "InternalError", "render", "serve", "Server"]

# Numbers are scipy's spline orders (2 to 5: B-splines on prefiltered coefficients);
# "cubic" is voxfield's local Catmull-Rom cubic (no prefilter, lazy).
_METHODS = {0: "nearest", 1: "linear", 2: "spline2", 3: "spline3", 4: "spline4", 5: "spline5",
            "nearest": "nearest", "linear": "linear", "cubic": "cubic"}
_DTYPES = {np.dtype(t): n for t, n in [
    (np.bool_, "bool"), (np.uint8, "uint8"), (np.int8, "int8"), (np.uint16, "uint16"), (np.int16, "int16"),
    (np.uint32, "uint32"), (np.int32, "int32"), (np.uint64, "uint64"), (np.int64, "int64"),
    (np.float32, "float32"), (np.float64, "float64")]}


def _dtype_name(dt: np.dtype, what: str) -> str:
    base = np.dtype(dt).newbyteorder("=")
    if base not in _DTYPES:
        raise TypeError(f"{what} has dtype {np.dtype(dt)}; voxfield reads bool, (u)int8..64, float32 and float64")
    return _DTYPES[base]


def _index(index: Any) -> tuple[list, list]:
    """(named, positional) index lists from a dict {"t": 3}, a tuple (3, 1) or None."""
    if index is None:
        return [], []
    if isinstance(index, dict):
        return [(str(k), int(v)) for k, v in index.items()], []
    if isinstance(index, (int, np.integer)):
        return [], [int(index)]
    return [], [int(i) for i in index]


def _from_array(a: np.ndarray, index: Any = None) -> "_voxfield.Volume":
    if a.ndim == 0:
        raise ValueError("a volume must have 1 to 3 spatial axes, got a 0-d array")
    if 0 in a.shape:
        raise ValueError(f"volume shape {a.shape} has a zero-length axis")
    name = _dtype_name(a.dtype, "the array")
    endian = "big" if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and np.little_endian is False) else "little"
    base = a.__array_interface__["data"][0]
    lo = base + sum(min(0, (n - 1) * s) for n, s in zip(a.shape, a.strides))
    hi = base + sum(max(0, (n - 1) * s) for n, s in zip(a.shape, a.strides)) + a.itemsize
    named, positional = _index(index)
    return _voxfield.from_buffer(a, lo, hi - lo, list(a.shape), list(a.strides), base - lo, name, endian,
                                 named, positional)


def open(obj: Any, *, shape: Sequence[int] | None = None, dtype: Any = None, offset: int = 0, order: str = "C",
         endian: str = "little", level: int | None = None, spacing: float | None = None,
         values: str | os.PathLike | None = None, cache_mb: int = 512, index: Any = None,
         endpoint_url: str | None = None) -> "Volume":
    """Opens a volume without loading it.

    ``obj`` is a path (``.npy``, raw with ``shape``/``dtype``/``offset``/``order``/``endian``,
    ``.nii[.gz]``, ``.nrrd``, ``store.zarr[/group/array]`` (OME-Zarr: ``level`` or ``spacing``),
    ``file.h5:/dataset``, sparse ``.npz``, or (N,3) coordinates ``.npy`` with ``values`` and ``shape``),
    a remote Zarr/OME-Zarr ``http(s)://host/store.zarr[/array]`` or ``s3://bucket/store.zarr`` (AWS
    credentials, region and endpoint from the environment; ``endpoint_url`` for S3-compatible servers),
    a numpy array or memmap (used in place), an ``h5py.Dataset`` (read from its file by voxfield),
    a ``zarr.Array`` in a local store, or a PyData ``sparse.COO``/``DOK`` (coordinates copied once
    into an index, never densified).

    Arrays of rank 1 to 5 (or more) are opened: the spatial axes are the last 2 or 3 (or
    those OME-Zarr metadata marks as space; NIfTI's first 3), every other axis (time,
    channel) is fixed by ``index``: ``{"t": 3, "c": 1}`` by name or ``(3, 1)`` by position;
    a length-1 axis defaults to 0. ``vol.info["axes"]`` lists them.
    """
    if isinstance(obj, np.ndarray):
        vol = Volume(_from_array(obj, index), lambda i: _from_array(obj, i))
        vol._desc = (obj, {})  # pickles with its data: an in-memory array has no other description
        return vol
    if isinstance(obj, (str, os.PathLike)):
        raw_dtype = None if dtype is None else _dtype_name(np.dtype(dtype), "dtype")
        if raw_dtype is not None and np.dtype(dtype).byteorder == ">":
            endian = "big"
        raw_shape = None if shape is None or values is not None else [int(s) for s in shape]
        sparse_shape = None if values is None else [int(s) for s in shape]
        def at(i: Any, at_spacing: float | None = spacing) -> "_voxfield.Volume":
            return _voxfield.open_path(os.fspath(obj), raw_shape, raw_dtype, offset, order, endian, level, at_spacing,
                                       None if values is None else os.fspath(values), sparse_shape, cache_mb,
                                       *_index(i), endpoint_url)
        vol = Volume(at(index), at)
        # What pickle sends to another process: the path and options, never voxels.
        vol._desc = (os.fspath(obj), dict(shape=shape, dtype=dtype, offset=offset, order=order, endian=endian,
                                          level=level, spacing=spacing,
                                          values=None if values is None else os.fspath(values),
                                          cache_mb=cache_mb, endpoint_url=endpoint_url))
        if level is None and spacing is None:
            # A multiscale image may then be read at a coarser level by plane().
            vol._at_spacing = lambda s: at(vol.index, s)
        return vol
    kind = type(obj).__module__.split(".")[0]
    if kind == "sparse" and type(obj).__name__ in ("COO", "DOK"):
        coo = obj.to_coo() if type(obj).__name__ == "DOK" else obj
        return _open_sparse(coo, index, cache_mb)
    if kind == "h5py":
        if not obj.id.valid:
            raise ValueError("the h5py dataset's file is closed")
        return open(f"{obj.file.filename}:{obj.name}", cache_mb=cache_mb, index=index)
    if kind == "zarr":
        root = getattr(obj.store, "root", None)
        if root is None:
            raise TypeError(f"zarr array in a {type(obj.store).__name__}: voxfield reads arrays in a local store")
        path = os.path.join(os.fspath(root), obj.path) if obj.path else os.fspath(root)
        return open(path, cache_mb=cache_mb, index=index)
    raise TypeError(f"cannot open a {type(obj).__name__}: pass a path, a numpy array, an h5py.Dataset, "
                    "a zarr.Array or a sparse.COO/DOK")


def _reopen(obj: Any, kwargs: dict, index: Any) -> "Volume":
    return open(obj, index=index, **kwargs)


def compress(source: Any, ratio: float | None = None, epochs: int = 5, target_psnr: float | None = None,
             time_limit: float | None = None, seed: int = 1, log2_table: int | None = None,
             levels: int | None = None, width: int | None = None, batch: int | None = None,
             init: Any = None, bits: int = 6, loss: str = "l2", grad_loss: float = 0.0,
             steps: int | None = None, rate_weight: float | None = None) -> "Volume":
    """Trains a neural model of a volume (a multiresolution hash grid and a small MLP, on
    CPU, GIL released) and returns it as a volume: ``.sample/.plane/.grid/.slab`` evaluate
    the network, ``.save(path)`` writes a ``.vxn``, ``.psnr`` and ``.ratio`` describe it.
    ``ratio`` picks the largest network whose file is at most native bytes / ratio;
    ``init`` (a model or ``.vxn`` path from :func:`meta_train`) starts from a learned
    initialisation instead of a random one. ``bits`` (1–8) quantises the stored hash
    tables (16: f16); ``loss`` is ``"l2"`` or ``"l1"``; ``grad_loss`` (W ≥ 0) adds W × the
    mean squared error of the network's central-difference gradients against the volume's
    (``numpy.gradient``) — better gradients for a lower PSNR; ``batch`` defaults to 65536,
    fewer on small volumes; ``steps`` stops after that many Adam steps (learning curves);
    ``rate_weight`` weighs a rate term (estimated table bits) in the quantisation-aware epochs
    (default 4; refused with ``bits=16``).
    Ctrl-C stops training (KeyboardInterrupt)."""
    vol = source if isinstance(source, Volume) else open(source)
    start = None if init is None else (init if isinstance(init, Volume) else open(init))
    return Volume(_voxfield.compress(vol._v, ratio, epochs, target_psnr, time_limit, seed, log2_table, levels,
                                     width, batch, None if start is None else start._v, bits, loss,
                                     grad_loss, steps, rate_weight))


def meta_train(sources: Any, inner_steps: int = 16, meta_steps: int = 200, meta_lr: float = 1.0, seed: int = 1,
               log2_table: int | None = None, levels: int | None = None, width: int | None = None,
               batch: int | None = None) -> "Volume":
    """Reptile meta-learning of an initialisation over volumes of one kind (co-registered:
    each outer step runs on one volume the ``inner_steps`` Adam steps ``compress(init=...)``
    then runs — same optimiser, learning rate and batch; GIL released). Returns a model to
    pass as ``compress(..., init=...)`` or ``.save()`` as a ``.vxn``."""
    vols = [s if isinstance(s, Volume) else open(s) for s in sources]
    return Volume(_voxfield.meta_train([v._v for v in vols], inner_steps, meta_steps, meta_lr, seed, log2_table,
                                       levels, width, batch))


def _open_sparse(coo: Any, index: Any, cache_mb: int) -> "Volume":
    """A PyData sparse COO array: 3-D as it is; of higher rank, the leading axes
    (axis0, axis1, ...) are fixed by ``index`` and only that slice's non-zeros are indexed."""
    if coo.ndim < 3:
        raise ValueError(f"a sparse volume must have 3 or more axes, got shape {coo.shape}")
    coords, data, shape = coo.coords, coo.data, tuple(int(s) for s in coo.shape)
    if coo.ndim > 3:
        lead = coo.ndim - 3
        named, positional = _index(index)
        chosen = dict(enumerate(positional))
        for k, v in named:
            if not (k.startswith("axis") and k[4:].isdigit() and int(k[4:]) < lead):
                raise ValueError(f"no non-spatial axis named {k!r} (axes: {', '.join(f'axis{i}' for i in range(lead))})")
            chosen[int(k[4:])] = v
        for a in range(lead):
            if a not in chosen:
                if shape[a] != 1:
                    raise ValueError(f"the sparse array has leading axes {shape[:lead]}; choose an index for "
                                     f"axis{a}=0..{shape[a] - 1}")
                chosen[a] = 0
            if not 0 <= chosen[a] < shape[a]:
                raise ValueError(f"index {chosen[a]} is out of range for axis{a} of length {shape[a]}")
        keep = np.all(coords[:lead] == np.array([chosen[a] for a in range(lead)])[:, None], axis=0)
        coords, data, shape = coords[lead:, keep], data[keep], shape[lead:]
    name = _dtype_name(coo.dtype, "the sparse array")
    coords = np.require(coords, np.int64, "CA")
    data = np.require(data, np.float64, "CA")
    return Volume(_voxfield.from_sparse(coords.__array_interface__["data"][0], data.__array_interface__["data"][0],
                                        data.shape[0], list(shape), name, float(coo.fill_value), cache_mb))


def _points(points: Any, dims: int = 3) -> tuple[np.ndarray, tuple[int, ...]]:
    """(N, 3) float64 C-contiguous positions and the shape results take. Positions of
    ``dims`` < 3 coordinates (2-D images) get zeros in front (the view's padded axes)."""
    names = "(z, y, x)" if dims == 3 else "(y, x)" if dims == 2 else "(x,)"
    if isinstance(points, tuple):
        if len(points) != dims:
            raise ValueError(f"a coordinate tuple needs {dims} arrays {names}, got {len(points)}")
        arrs = [np.asarray(c) for c in points]
        if any(a.dtype.kind not in "biuf" for a in arrs):
            raise TypeError("coordinates must be numeric")
        shape = np.broadcast_shapes(*[a.shape for a in arrs])
        pts = np.zeros((int(np.prod(shape)), 3), dtype=np.float64)
        for k, a in enumerate(arrs):
            pts[:, 3 - dims + k] = np.broadcast_to(a, shape).ravel()
        return pts, tuple(shape)
    a = np.asarray(points)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"points must be numeric, got dtype {a.dtype}")
    if a.ndim == 1 and a.shape[0] == dims:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != dims:
        raise ValueError(f"points must have shape (N, {dims}) or be a {names} tuple for this {dims}-D volume, "
                         f"got shape {a.shape}")
    if dims < 3:
        full = np.zeros((a.shape[0], 3), dtype=np.float64)
        full[:, 3 - dims:] = a
        return full, (a.shape[0],)
    return np.require(a, np.float64, "CA"), (a.shape[0],)


def _lift(v: Sequence[float], dims: int, what: str) -> list[float]:
    v = [float(x) for x in v]
    if len(v) != dims:
        raise ValueError(f"{what} has {len(v)} components; this {dims}-D volume takes {dims}")
    return [0.0] * (3 - dims) + v


class Volume:
    """An open volume. Methods release the GIL; one Volume may be shared by threads."""

    def __init__(self, inner: "_voxfield.Volume", reopen: Any = None):
        self._v = inner
        self._info = inner.info()
        self._reopen = reopen
        self._at_spacing = None
        self._desc = None

    def __reduce__(self):
        """Pickles as a description (path or URL and the open options, at the current
        index), so a volume ships to Dask workers in bytes, not voxels."""
        if self._desc is None:
            raise TypeError("this volume was made in memory (e.g. by compress()): save it to a file and open "
                            "that to send it to other processes")
        obj, kwargs = self._desc
        return _reopen, (obj, kwargs, self.index or None)

    @property
    def ndim(self) -> int:
        """Number of spatial axes: the coordinates a position takes (3, or 2 for an image)."""
        return len(self._info["spatial_axes"])

    @property
    def shape(self) -> tuple[int, ...]:
        """The spatial shape sampled (the selected time point / channel of an N-D array)."""
        return tuple(self._info["shape"][3 - self.ndim:])

    @property
    def axes(self) -> list[dict]:
        """Every axis of the stored array: name, type, unit, length."""
        return [dict(a) for a in self._info["axes"]]

    @property
    def index(self) -> dict:
        """The index chosen on each non-spatial axis."""
        spatial = set(self._info["spatial_axes"])
        return {a["name"]: i for k, (a, i) in enumerate(zip(self._info["axes"], self._info["index"]))
                if k not in spatial}

    @property
    def is_model(self) -> bool:
        """Whether this is a neural model (from ``compress`` or a ``.vxn`` file)."""
        return self._v.model_record() is not None

    @property
    def psnr(self) -> float | None:
        """A neural model's PSNR estimate from training (dB; measure with ``map_coordinates``)."""
        r = self._v.model_record()
        return None if r is None else json.loads(r["record"]).get("psnr_estimate_db")

    @property
    def ratio(self) -> float | None:
        """A neural model's compression ratio: the source's native bytes / the model's bytes."""
        r = self._v.model_record()
        if r is None:
            return None
        native = int(np.prod(self._info["shape"])) * self.dtype.itemsize
        return native / r["file_bytes"]

    def save(self, path: str | os.PathLike) -> None:
        """Writes a neural model to ``path`` (``.vxn``, atomically)."""
        self._v.save_model(os.fspath(path))

    def at(self, **index: int) -> "Volume":
        """The same array at other indices of its non-spatial axes, e.g. ``vol.at(t=4)``."""
        if self._reopen is None:
            raise TypeError("this volume has no other indices to select")
        full = {**self.index, **{k: int(v) for k, v in index.items()}}
        vol = Volume(self._reopen(full), self._reopen)
        vol._desc = self._desc
        return vol

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._info["dtype"])

    @property
    def chunks(self) -> tuple[int, ...]:
        return tuple(self._info["chunks"][3 - self.ndim:])

    @property
    def affine(self) -> np.ndarray | None:
        a = self._info["affine"]
        return None if a is None else np.array(a).reshape(4, 4)

    @property
    def info(self) -> dict:
        return dict(self._info)

    def __repr__(self) -> str:
        return f"<voxfield.Volume {self._info['format']} shape={self.shape} dtype={self.dtype}>"

    def _out(self, n_shape: tuple[int, ...], dtype: Any) -> tuple[np.ndarray, str]:
        dt = self.dtype if dtype == "source" else np.dtype(dtype)
        out = np.empty(n_shape, dtype=dt.newbyteorder("="))
        return out, _dtype_name(out.dtype, "the output dtype")

    def sample(self, points: Any, method: str | None = None, mode: str | None = None, cval: float | None = None,
               dtype: Any = np.float32, world: bool = False, affine: Any = None,
               all_index: str | None = None) -> np.ndarray:
        """Samples at (N, 3) points ((N, 2) for a 2-D image), or a tuple of equally shaped
        coordinate arrays (the result then takes their shape). Index space unless ``world``
        (through the volume's affine, or ``affine``). Modes as scipy.ndimage.map_coordinates.
        A volume interpolates with ``method`` (default linear), ``mode`` (default constant)
        and ``cval`` (default nan); a neural model is its network evaluated directly, and
        giving it ``method``, ``mode`` or ``cval`` is an error, never ignored.
        ``all_index="t"`` samples the same points at every index of that axis: (T, ...)."""
        if all_index is not None:
            axis = next((a for a in self.axes if a["name"] == all_index and all_index in self.index), None)
            if axis is None:
                raise ValueError(f"all_index={all_index!r}: no non-spatial axis of that name "
                                 f"(non-spatial axes: {list(self.index)})")
            return np.stack([self.at(**{all_index: i}).sample(points, method, mode, cval, dtype, world, affine)
                             for i in range(axis["length"])])
        pts, shape = _points(points, self.ndim)
        out, name = self._out(shape, dtype)
        aff = None if affine is None else [float(x) for x in np.asarray(affine, dtype=np.float64).ravel()]
        self._v.sample_into(pts.__array_interface__["data"][0], pts.shape[0], out.__array_interface__["data"][0],
                            name, _method(method), mode, _cval(cval), bool(world), aff)
        self._warn_after_reading()
        return out

    def _warn_after_reading(self) -> None:
        """What the source says after reading (every chunk of a remote store missing, say)."""
        for w in self._v.read_warnings():
            warnings.warn(w, stacklevel=3)

    def plane(self, origin: Sequence[float], u: Sequence[float], v: Sequence[float], shape: Sequence[int],
              method: str | None = None, mode: str | None = None, cval: float | None = None, dtype: Any = np.float32,
              world: bool = False, affine: Any = None, auto_level: bool = True,
              offset: Sequence[int] = (0, 0)) -> np.ndarray:
        """An oblique plane: pixel (j, i) samples ``origin + i*u + j*v``; ``shape`` is (nv, nu).
        On a multiscale OME-Zarr image opened without a level, ``auto_level`` reads the
        coarsest level whose voxels are no larger than the pixels (positions stay in level-0
        indices, or world units with ``world``). ``offset`` = (j0, i0) makes this the tile of a
        larger plane whose pixel (0, 0) is that plane's pixel (j0, i0), sampling exactly its
        positions (``voxfield.dask.plane`` tiles a plane so)."""
        level = self._level_for(u, v, world) if auto_level and affine is None else None
        if level is not None:
            vk, m = level
            if m is not None:  # level-0 indices -> this level's indices
                d = self.ndim
                lift = lambda x, w: np.asarray(_lift(x, d, "vector"), float) @ m[:3, :3].T + w
                origin3 = lift(origin, m[:3, 3])
                u3, v3 = lift(u, 0.0), lift(v, 0.0)
                return vk.slab(origin3[3 - d:], u3[3 - d:], v3[3 - d:], shape, 0.0, 1.0, "mean", method, mode,
                               cval, dtype, False, None, offset)
            return vk.slab(origin, u, v, shape, 0.0, 1.0, "mean", method, mode, cval, dtype, True, None, offset)
        return self.slab(origin, u, v, shape, 0.0, 1.0, "mean", method, mode, cval, dtype, world, affine, offset)

    def _level_for(self, u: Sequence[float], v: Sequence[float], world: bool):
        """(the level to read, level-0 index -> level index affine or None for world), or None."""
        if self._at_spacing is None or not any(n.startswith("OME-Zarr image with") for n in self._info["notes"]):
            return None
        d = self.ndim
        a0 = self.affine if self.affine is not None else np.eye(4)
        vecs = [np.asarray(_lift(x, d, "vector"), float) for x in (u, v)]
        want = min(np.linalg.norm(x if world else a0[:3, :3] @ x) for x in vecs)
        vk = Volume(self._at_spacing(float(want)))
        ak = vk.affine if vk.affine is not None else np.eye(4)
        if np.allclose(ak, a0):
            return None
        return vk, (None if world else np.linalg.inv(ak) @ a0)

    def render(self, **kwargs: Any) -> np.ndarray:
        """Renders this field: see ``voxfield.render`` for the options."""
        return render(self, **kwargs)

    def slab(self, origin: Sequence[float], u: Sequence[float], v: Sequence[float], shape: Sequence[int],
             thickness: float, step: float = 1.0, reduce: str = "mean", method: str | None = None,
             mode: str | None = None, cval: float | None = None, dtype: Any = np.float32, world: bool = False,
             affine: Any = None, offset: Sequence[int] = (0, 0)) -> np.ndarray:
        """A plane thickened along its unit normal, sampled every ``step`` and reduced
        with ``mean`` or ``max`` (NaN samples skipped); ``offset`` as for :meth:`plane`."""
        nv, nu = (int(s) for s in shape)
        j0, i0 = (int(x) for x in offset)
        if min(j0, i0) < 0 or max(j0 + nv, i0 + nu) > 2**52:  # (pixel indices stay exact in float64)
            raise ValueError(f"offset must be two indices >= 0 with the tile below 2**52, got {tuple(offset)}")
        n = int(thickness / step + 1e-9) + 1 if thickness > 0 else 1
        depths = [(k - (n - 1) / 2) * step for k in range(n)]
        out, name = self._out((nv, nu), dtype)
        aff = None if affine is None else [float(x) for x in np.asarray(affine, dtype=np.float64).ravel()]
        if thickness > 0 and self.ndim < 3:
            raise ValueError(f"a slab needs a 3-D volume; this one is {self.ndim}-D")
        d = self.ndim
        self._v.plane_into(_lift(origin, d, "origin"), _lift(u, d, "u"), _lift(v, d, "v"), nu, nv, depths,
                           reduce, out.__array_interface__["data"][0], name, _method(method), mode,
                           _cval(cval), bool(world), aff, (i0, j0))
        self._warn_after_reading()
        return out

    def grid(self, x: Sequence[float], y: Sequence[float] | None = None, z: Sequence[float] | None = None,
             method: str | None = None, mode: str | None = None, cval: float | None = None, dtype: Any = np.float32,
             world: bool = False, affine: Any = None) -> np.ndarray:
        """The outer product of one coordinate vector per spatial axis (three for a volume,
        two for an image), shape (len(x), len(y), len(z))."""
        given = [a for a in (x, y, z) if a is not None]
        if len(given) != self.ndim:
            raise ValueError(f"grid takes {self.ndim} coordinate vectors for this {self.ndim}-D volume, "
                             f"got {len(given)}")
        axes = [np.zeros(1)] * (3 - self.ndim) + [np.asarray(a, dtype=np.float64).ravel() for a in given]
        out, name = self._out(tuple(len(a) for a in axes), dtype)
        aff = None if affine is None else [float(x) for x in np.asarray(affine, dtype=np.float64).ravel()]
        self._v.grid_into(*[a.tolist() for a in axes], out.__array_interface__["data"][0], name,
                          _method(method), mode, _cval(cval), bool(world), aff)
        self._warn_after_reading()
        return out.reshape(tuple(len(a) for a in axes[3 - self.ndim:]))


def _method(method: Any) -> str | None:
    """A method name for the engine (scipy's integer orders accepted); None: the field's choice."""
    return None if method is None else _METHODS.get(method, str(method))


def _cval(cval: Any) -> float | None:
    return None if cval is None else float(cval)


def map_coordinates(volume: Any, coordinates: Any, output: Any = None, order: int = 3, mode: str = "constant",
                    cval: float = 0.0, prefilter: bool = True) -> np.ndarray:
    """``scipy.ndimage.map_coordinates`` on any voxfield source or numpy array, with scipy's
    signature, defaults and results (arrays of 4 or more axes: orders 0 and 1): orders 0 to 5 (2 to 5 are
    B-splines; with ``prefilter`` the coefficients are computed lazily per brick with a
    halo, equal to scipy's global prefilter to rounding), every mode, ``prefilter=False``
    for already-filtered input. ``output`` is a dtype or an array to fill (default: the
    volume's dtype, as scipy). voxfield's local cubic is ``Volume.sample(method="cubic")``."""
    if isinstance(volume, np.ndarray) and volume.ndim > 3:
        return _map_coordinates_nd(volume, coordinates, output, order, mode, cval)
    vol = volume if isinstance(volume, Volume) else open(volume)
    if order not in range(6):
        raise ValueError(f"order must be 0 to 5, got {order}")
    c = np.asarray(coordinates)
    d = vol.ndim
    if c.ndim < 1 or c.shape[0] != d:
        raise ValueError(f"coordinates must have shape ({d}, ...) for a {d}-D volume, got {c.shape}")
    method = _METHODS[order] + ("" if prefilter or order < 2 else "/raw")
    vals = vol.sample(tuple(c[i] for i in range(d)), method=method, mode=mode, cval=cval, dtype=np.float64)
    return _to_output(vals, output, vol.dtype)


def _to_output(vals: np.ndarray, output: Any, default: np.dtype) -> np.ndarray:
    """f64 results as scipy writes them: into ``output`` (an array, or a dtype; default
    ``default``), integers rounded half away from zero and clipped."""
    target = output if isinstance(output, np.ndarray) else None
    dt = np.dtype(default if output is None else (output.dtype if target is not None else output))
    if dt.kind in "iu":
        info = np.iinfo(dt)
        vals = np.clip(np.where(vals > 0, vals + 0.5, vals - 0.5 if dt.kind == "i" else 0),
                       info.min, info.max).astype(dt)
    else:
        vals = vals.astype(dt, copy=False)
    if target is not None:
        target[...] = vals
        return target
    return vals


def _map_coordinate(x: np.ndarray, n: int, mode: str) -> np.ndarray:
    """scipy's map_coordinate for one leading axis (NaN: the point takes cval)."""
    x = x.astype(np.float64).copy()
    out = (x < 0) | (x > n - 1)
    if mode in ("constant",):
        x[out] = np.nan
    elif mode == "grid-constant":
        pass
    elif n <= 1:
        x[out] = 0.0
    elif mode == "nearest":
        x = np.clip(x, 0, n - 1)
    elif mode == "mirror":
        sz2 = 2 * n - 2
        lo, hi = x < 0, x > n - 1
        y = sz2 * np.trunc(-x / sz2) + x
        x = np.where(lo, np.where(y <= 1 - n, y + sz2, -y), x)
        y = x - sz2 * np.trunc(x / sz2)
        x = np.where(hi, np.where(y >= n, sz2 - y, y), x)
    elif mode == "reflect":
        sz2 = 2 * n
        lo, hi = x < 0, x > n - 1
        y = np.where(x < -sz2, sz2 * np.trunc(-x / sz2) + x, x)
        x = np.where(lo, np.where(y < -n, y + sz2, -y - 1), x)
        y = x - sz2 * np.trunc(x / sz2)
        x = np.where(hi, np.where(y >= n, sz2 - y - 1, y), x)
    elif mode == "wrap":
        sz = n - 1
        lo, hi = x < 0, x > n - 1
        x = np.where(lo, x + sz * (np.trunc(-x / sz) + 1), x)
        x = np.where(hi, x - sz * np.trunc(x / sz), x)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return x


def _tap(i: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Where integer taps of a leading axis read (-1: cval, grid-constant only)."""
    if n == 1:
        return np.where((i == 0) | (mode != "grid-constant"), 0, -1)
    inside = (i >= 0) & (i < n)
    if mode == "grid-constant":
        return np.where(inside, i, -1)
    if mode == "nearest":
        return np.clip(i, 0, n - 1)
    if mode == "reflect":
        r = np.mod(i, 2 * n)
        return np.where(r >= n, 2 * n - 1 - r, r)
    if mode == "wrap":
        return np.where(inside, i, np.mod(i, n - 1))
    r = np.mod(i, 2 * n - 2)  # mirror, constant
    return np.where(r >= n, 2 * n - 2 - r, r)


def _map_coordinates_nd(a: np.ndarray, coordinates: Any, output: Any, order: int, mode: str,
                        cval: float) -> np.ndarray:
    """map_coordinates on a 4-D or higher array (orders 0 and 1): the leading axes are
    interpolated here (scipy's edge rules), the last three by voxfield on views of the
    array (no copy), grouped by the leading taps."""
    if order > 1:
        raise NotImplementedError(f"map_coordinates on a {a.ndim}-D array supports orders 0 and 1 "
                                  f"(the spline prefilter spans every axis); got order {order}")
    c = np.asarray(coordinates, dtype=np.float64)
    if c.shape[0] != a.ndim:
        raise ValueError(f"coordinates must have shape ({a.ndim}, ...) for a {a.ndim}-D array, got {c.shape}")
    shape = c.shape[1:]
    c = c.reshape(a.ndim, -1)
    lead = a.ndim - 3
    npts = c.shape[1]
    total = np.zeros(npts)
    dead = np.zeros(npts, dtype=bool)
    finite = np.isfinite(c).all(axis=0)
    taps, weights = [], []
    for ax in range(lead):
        x = _map_coordinate(c[ax], a.shape[ax], mode)
        dead |= np.isnan(x)
        x = np.nan_to_num(x)
        if order == 0:
            taps.append([np.floor(x + 0.5).astype(np.int64)])
            weights.append([np.ones(npts)])
        else:
            f = np.floor(x)
            t = x - f
            taps.append([f.astype(np.int64), f.astype(np.int64) + 1])
            weights.append([1 - t, t])
    method = "nearest" if order == 0 else "linear"
    spatial = np.require(c[lead:].T, None, "CA")
    for combo in np.ndindex(*[len(t) for t in taps]):
        w = np.ones(npts)
        idx = []
        for ax, k in enumerate(combo):
            w = w * weights[ax][k]
            idx.append(_tap(taps[ax][k], a.shape[ax], mode))
        idx = np.stack(idx, axis=1)
        live = (w != 0) & ~dead & finite
        outside = live & (idx < 0).any(axis=1)
        total[outside] += w[outside] * cval
        live &= ~outside
        if not live.any():
            continue
        keys, inverse = np.unique(idx[live], axis=0, return_inverse=True)
        where = np.flatnonzero(live)
        for g, key in enumerate(keys):
            members = where[inverse.ravel() == g]
            vals = Volume(_from_array(a[tuple(key)])).sample(spatial[members], method=method, mode=mode,
                                                             cval=cval, dtype=np.float64)
            total[members] += w[members] * vals
    total[dead | ~finite] = cval
    return _to_output(total.reshape(shape), output, a.dtype)


from .rbf import RBFInterpolator, load  # noqa: E402  (the RBF engine's Python layer)

def render(obj: Any, *, mode: str = "dvr", iso: float | None = None, view: str = "axis0", azimuth: float = 0.0,
           elevation: float = 0.0, roll: float = 0.0, projection: str = "ortho", fov: float = 30.0,
           zoom: float = 1.0, size: Sequence[int] | None = None, world: bool = False,
           window: Sequence[float] | None = None, colormap: str | None = None, opacity: Any = None,
           step: float = 1.0, shading: bool = False, background: Any = None, frames: int | None = None,
           direct: bool = False,
           memory_mb: int | None = None, rbf_grid: int | None = None, dtype: Any = np.uint8) -> np.ndarray:
    """Renders any field by CPU ray casting, as ``voxfield render`` does (same options, same checks).

    ``obj`` is a path (any volume, a ``.vxn`` neural model, a ``.vxr`` RBF model), a ``Volume``, a numpy
    array, or an ``RBFInterpolator`` (3-D). ``mode``: dvr, mip, minip, mean, or iso (with ``iso``).
    ``view="axisK"``/``"-axisK"`` looks along index axis K (rows: the lower remaining axis); with no
    ``size`` and no angles the picture has one pixel per voxel and ``mode="mip"`` equals
    ``a.max(axis=K)``. ``opacity``: ``"v0:a0,v1:a1"`` or pairs, over the windowed value.
    ``dtype=np.uint8`` gives the PNG's pixels ((H,W) grey for scalar modes with the gray colormap,
    (H,W,3) coloured, (H,W,4) RGBA for dvr/iso); ``np.float32`` gives what ``.npy`` holds ((H,W), or
    (H,W,4) premultiplied RGBA without background). ``window``, ``colormap`` (default gray) and
    ``background`` (black, white, none or (r, g, b); default black) make pictures: they are refused
    for float32 values of the scalar modes. ``frames=N``: a turntable, (N,...) arrays.
    The work runs with the GIL released; Ctrl-C stops it.
    """
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.uint8), np.dtype(np.float32)):
        raise ValueError(f"dtype must be uint8 (picture) or float32 (values), not {dt}")
    if isinstance(obj, np.ndarray):
        obj = open(obj)
    target = obj._v if isinstance(obj, Volume) else obj._m if isinstance(obj, RBFInterpolator) else obj
    to_index = None
    if isinstance(obj, Volume) and not direct and obj._at_spacing is not None and obj.ndim == 3:
        # A multiscale image opened without a level: read the level whose voxels match the pixels
        # (as the CLI does); the camera stays in level-0 indices (or world units).
        s = _voxfield.render_pixel_spacing(obj._v, view, float(azimuth), float(elevation), float(roll), projection,
                                           float(fov), float(zoom), None if size is None else [int(x) for x in size],
                                           bool(world))
        level = obj._level_for([s, 0.0, 0.0], [0.0, s, 0.0], bool(world))
        if level is not None:
            vk, m = level
            target = vk._v
            to_index = None if m is None else [float(x) for x in np.asarray(m, float).ravel()]
    if isinstance(target, os.PathLike):
        target = os.fspath(target)
    if opacity is not None and not isinstance(opacity, str):
        opacity = ",".join(f"{float(v)!r}:{float(a)!r}" for v, a in opacity)
    if background is not None and not isinstance(background, str):
        background = ",".join(repr(float(x)) for x in background)
    data, shape, name = _voxfield.render_field(
        target, mode, None if iso is None else float(iso), view, float(azimuth), float(elevation), float(roll),
        projection, float(fov), float(zoom), None if size is None else [int(x) for x in size], bool(world),
        None if window is None else [float(x) for x in window], colormap, opacity, float(step), bool(shading),
        background, 1 if frames is None else int(frames), bool(direct), None if memory_mb is None else int(memory_mb),
        None if rbf_grid is None else int(rbf_grid),
        dt == np.float32, to_index)
    if isinstance(obj, Volume):
        obj._warn_after_reading()
    return np.frombuffer(data, dtype=name).reshape(shape).copy()




class Server:
    """A running ``voxfield.serve`` server: ``url``, ``fields``, ``stop()``; a context manager."""

    def __init__(self, inner: "_voxfield.Server", fields: list[str], keep: list):
        self._s = inner
        self.fields = fields
        self._keep = keep  # arrays served in place stay alive while served

    @property
    def url(self) -> str:
        """Root URL, ending in '/' (``url + "view/NAME"``, ``url + "zarr/NAME.ome.zarr/"``)."""
        return self._s.url

    @property
    def running(self) -> bool:
        return self._s.running

    def stop(self) -> None:
        """Stops the server (requests in flight finish); safe to call twice."""
        self._s.stop()
        self._keep = []

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<voxfield.Server {self.url} ({state}): {', '.join(self.fields)}>"


def serve(fields: Any, *, bind: str = "127.0.0.1", port: int = 0, token: str | None = None,
          no_token: bool = False, chunk: int = 64, codec: str = "raw", jpeg: int | None = None, cache_mb: int = 512,
          render_mb: int = 1024, workers: int | None = None, timeout: float = 60.0,
          header_timeout: float = 10.0) -> Server:
    """Serves fields over HTTP on a background thread and returns at once (the GIL is free
    while it serves, so it works inside a notebook).

    ``fields`` maps names to paths or URLs (every format ``open`` reads, ``.vxn``, ``.vxr``),
    numpy arrays (served in place), ``voxfield.Volume`` objects, or ``(path, shape)`` for an
    RBF model on a grid of that shape (default: 128 nodes along its box's longest side); a
    list of paths is named by file stem. Each field is offered as Zarr v3/OME-Zarr 0.5 at
    ``url + "zarr/NAME.ome.zarr/"`` (coarser levels computed on request), Neuroglancer
    precomputed at ``url + "precomputed/NAME/"`` (``jpeg=QUALITY``: uint8 chunks as JPEG), pictures at ``render/NAME.png`` and
    ``slice/NAME.png``, and a viewer page at ``url + "view/NAME"``. Off loopback (``bind``)
    a token is made unless ``no_token``; it is part of ``url``. A connection that has not sent a
    whole request head within ``header_timeout`` seconds is closed.
    """
    if not isinstance(fields, dict):
        fields = {_stem(os.fspath(p)): p for p in fields}
    items, keep = [], []
    for name, obj in fields.items():
        shape = None
        if isinstance(obj, tuple) and len(obj) == 2 and not isinstance(obj[0], (int, float)):
            obj, shape = obj
            shape = [int(x) for x in shape] + [1] * (3 - len(shape))
        if isinstance(obj, np.ndarray):
            keep.append(obj)
            obj = open(obj)
        if isinstance(obj, Volume):
            obj = obj._v
        elif isinstance(obj, os.PathLike):
            obj = os.fspath(obj)
        items.append((str(name), obj, shape))
    inner = _voxfield.serve(items, bind, int(port), token, bool(no_token), int(chunk), codec,
                            None if jpeg is None else int(jpeg), int(cache_mb),
                            int(render_mb), None if workers is None else int(workers), float(timeout),
                            float(header_timeout))
    return Server(inner, [n for n, _, _ in items], keep)


def _stem(path: str) -> str:
    """The CLI's default field name for a path (one rule, in voxfield-serve)."""
    return _voxfield.serve_default_name(path)


from . import _panics  # noqa: E402  (last: guards everything above)
from ._panics import InternalError  # noqa: E402

_panics.guard_module(__name__)

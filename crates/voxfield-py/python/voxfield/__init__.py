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

import os
from typing import Any, Sequence

import numpy as np

from . import _voxfield

__all__ = ["open", "Volume", "map_coordinates", "RBFInterpolator", "load"]

_METHODS = {0: "nearest", 1: "linear", 3: "cubic", "nearest": "nearest", "linear": "linear", "cubic": "cubic"}
_DTYPES = {np.dtype(t): n for t, n in [
    (np.bool_, "bool"), (np.uint8, "uint8"), (np.int8, "int8"), (np.uint16, "uint16"), (np.int16, "int16"),
    (np.uint32, "uint32"), (np.int32, "int32"), (np.uint64, "uint64"), (np.int64, "int64"),
    (np.float32, "float32"), (np.float64, "float64")]}


def _dtype_name(dt: np.dtype, what: str) -> str:
    base = np.dtype(dt).newbyteorder("=")
    if base not in _DTYPES:
        raise TypeError(f"{what} has dtype {np.dtype(dt)}; voxfield reads bool, (u)int8..64, float32 and float64")
    return _DTYPES[base]


def _from_array(a: np.ndarray) -> "_voxfield.Volume":
    if a.ndim != 3:
        raise ValueError(f"a volume must be a 3-D array, got shape {a.shape}")
    if 0 in a.shape:
        raise ValueError(f"volume shape {a.shape} has a zero-length axis")
    name = _dtype_name(a.dtype, "the array")
    endian = "big" if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and np.little_endian is False) else "little"
    base = a.__array_interface__["data"][0]
    lo = base + sum(min(0, (n - 1) * s) for n, s in zip(a.shape, a.strides))
    hi = base + sum(max(0, (n - 1) * s) for n, s in zip(a.shape, a.strides)) + a.itemsize
    return _voxfield.from_buffer(a, lo, hi - lo, list(a.shape), list(a.strides), base - lo, name, endian)


def open(obj: Any, *, shape: Sequence[int] | None = None, dtype: Any = None, offset: int = 0, order: str = "C",
         endian: str = "little", level: int | None = None, spacing: float | None = None,
         values: str | os.PathLike | None = None, cache_mb: int = 512) -> "Volume":
    """Opens a volume without loading it.

    ``obj`` is a path (``.npy``, raw with ``shape``/``dtype``/``offset``/``order``/``endian``,
    ``.nii[.gz]``, ``.nrrd``, ``store.zarr[/group/array]`` (OME-Zarr: ``level`` or ``spacing``),
    ``file.h5:/dataset``, sparse ``.npz``, or (N,3) coordinates ``.npy`` with ``values`` and ``shape``),
    a numpy array or memmap (used in place), an ``h5py.Dataset`` (read from its file by voxfield),
    a ``zarr.Array`` in a local store, or a PyData ``sparse.COO``/``DOK`` (coordinates copied once
    into an index, never densified).
    """
    if isinstance(obj, np.ndarray):
        return Volume(_from_array(obj))
    if isinstance(obj, (str, os.PathLike)):
        raw_dtype = None if dtype is None else _dtype_name(np.dtype(dtype), "dtype")
        if raw_dtype is not None and np.dtype(dtype).byteorder == ">":
            endian = "big"
        raw_shape = None if shape is None or values is not None else [int(s) for s in shape]
        sparse_shape = None if values is None else [int(s) for s in shape]
        return Volume(_voxfield.open_path(os.fspath(obj), raw_shape, raw_dtype, offset, order, endian, level, spacing,
                                          None if values is None else os.fspath(values), sparse_shape, cache_mb))
    kind = type(obj).__module__.split(".")[0]
    if kind == "sparse" and type(obj).__name__ in ("COO", "DOK"):
        coo = obj.to_coo() if type(obj).__name__ == "DOK" else obj
        if coo.ndim != 3:
            raise ValueError(f"a sparse volume must be 3-D, got shape {coo.shape}")
        name = _dtype_name(coo.dtype, "the sparse array")
        coords = np.ascontiguousarray(coo.coords, dtype=np.int64)
        data = np.ascontiguousarray(coo.data, dtype=np.float64)
        return Volume(_voxfield.from_sparse(coords.__array_interface__["data"][0], data.__array_interface__["data"][0],
                                            data.shape[0], [int(s) for s in coo.shape], name,
                                            float(coo.fill_value), cache_mb))
    if kind == "h5py":
        if not obj.id.valid:
            raise ValueError("the h5py dataset's file is closed")
        return open(f"{obj.file.filename}:{obj.name}", cache_mb=cache_mb)
    if kind == "zarr":
        root = getattr(obj.store, "root", None)
        if root is None:
            raise TypeError(f"zarr array in a {type(obj.store).__name__}: voxfield reads arrays in a local store")
        path = os.path.join(os.fspath(root), obj.path) if obj.path else os.fspath(root)
        return open(path, cache_mb=cache_mb)
    raise TypeError(f"cannot open a {type(obj).__name__}: pass a path, a numpy array, an h5py.Dataset, "
                    "a zarr.Array or a sparse.COO/DOK")


def _points(points: Any) -> tuple[np.ndarray, tuple[int, ...]]:
    """(N, 3) float64 C-contiguous positions and the shape results take."""
    if isinstance(points, tuple):
        if len(points) != 3:
            raise ValueError(f"a coordinate tuple needs 3 arrays (x, y, z), got {len(points)}")
        arrs = [np.asarray(c) for c in points]
        if any(a.dtype.kind not in "biuf" for a in arrs):
            raise TypeError("coordinates must be numeric")
        shape = np.broadcast_shapes(*[a.shape for a in arrs])
        pts = np.stack([np.broadcast_to(a, shape).astype(np.float64, copy=False).ravel() for a in arrs], axis=1)
        return np.ascontiguousarray(pts), tuple(shape)
    a = np.asarray(points)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"points must be numeric, got dtype {a.dtype}")
    if a.ndim == 1 and a.shape[0] == 3:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3) or be an (x, y, z) tuple, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float64), (a.shape[0],)


class Volume:
    """An open volume. Methods release the GIL; one Volume may be shared by threads."""

    def __init__(self, inner: "_voxfield.Volume"):
        self._v = inner
        self._info = inner.info()

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self._info["shape"])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._info["dtype"])

    @property
    def chunks(self) -> tuple[int, int, int]:
        return tuple(self._info["chunks"])

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

    def sample(self, points: Any, method: str = "linear", mode: str = "constant", cval: float = np.nan,
               dtype: Any = np.float32, world: bool = False, affine: Any = None) -> np.ndarray:
        """Samples at (N, 3) points, or an (x, y, z) tuple of equally shaped arrays (the
        result then takes their shape). Index space unless ``world`` (through the
        volume's affine, or ``affine``). Modes as scipy.ndimage.map_coordinates."""
        pts, shape = _points(points)
        out, name = self._out(shape, dtype)
        aff = None if affine is None else [float(x) for x in np.asarray(affine, dtype=np.float64).ravel()]
        self._v.sample_into(pts.__array_interface__["data"][0], pts.shape[0], out.__array_interface__["data"][0],
                            name, _METHODS.get(method, str(method)), mode, float(cval), bool(world), aff)
        return out

    def plane(self, origin: Sequence[float], u: Sequence[float], v: Sequence[float], shape: Sequence[int],
              method: str = "linear", mode: str = "constant", cval: float = np.nan, dtype: Any = np.float32,
              world: bool = False, affine: Any = None) -> np.ndarray:
        """An oblique plane: pixel (j, i) samples ``origin + i*u + j*v``; ``shape`` is (nv, nu)."""
        return self.slab(origin, u, v, shape, 0.0, 1.0, "mean", method, mode, cval, dtype, world, affine)

    def slab(self, origin: Sequence[float], u: Sequence[float], v: Sequence[float], shape: Sequence[int],
             thickness: float, step: float = 1.0, reduce: str = "mean", method: str = "linear",
             mode: str = "constant", cval: float = np.nan, dtype: Any = np.float32, world: bool = False,
             affine: Any = None) -> np.ndarray:
        """A plane thickened along its unit normal, sampled every ``step`` and reduced
        with ``mean`` or ``max`` (NaN samples skipped)."""
        nv, nu = (int(s) for s in shape)
        n = int(thickness / step + 1e-9) + 1 if thickness > 0 else 1
        depths = [(k - (n - 1) / 2) * step for k in range(n)]
        out, name = self._out((nv, nu), dtype)
        aff = None if affine is None else [float(x) for x in np.asarray(affine, dtype=np.float64).ravel()]
        self._v.plane_into([float(x) for x in origin], [float(x) for x in u], [float(x) for x in v], nu, nv, depths,
                           reduce, out.__array_interface__["data"][0], name, _METHODS.get(method, str(method)), mode,
                           float(cval), bool(world), aff)
        return out

    def grid(self, x: Sequence[float], y: Sequence[float], z: Sequence[float], method: str = "linear",
             mode: str = "constant", cval: float = np.nan, dtype: Any = np.float32, world: bool = False,
             affine: Any = None) -> np.ndarray:
        """The outer product of three coordinate vectors, shape (len(x), len(y), len(z))."""
        axes = [np.asarray(a, dtype=np.float64).ravel() for a in (x, y, z)]
        out, name = self._out(tuple(len(a) for a in axes), dtype)
        aff = None if affine is None else [float(x) for x in np.asarray(affine, dtype=np.float64).ravel()]
        self._v.grid_into(*[a.tolist() for a in axes], out.__array_interface__["data"][0], name,
                          _METHODS.get(method, str(method)), mode, float(cval), bool(world), aff)
        return out


def map_coordinates(volume: Any, coordinates: Any, order: int = 1, mode: str = "constant", cval: float = 0.0,
                    output: Any = None) -> np.ndarray:
    """``scipy.ndimage.map_coordinates`` for order 0 and 1 (and voxfield's local cubic
    as order 3), on any voxfield source or numpy array, with scipy's (3, ...)
    coordinate layout. ``output`` is a dtype or an array to fill (default: the
    volume's dtype, as scipy)."""
    vol = volume if isinstance(volume, Volume) else open(volume)
    if order not in (0, 1, 3):
        raise ValueError(f"order must be 0, 1 or 3 (local cubic), got {order}")
    c = np.asarray(coordinates)
    if c.ndim < 1 or c.shape[0] != 3:
        raise ValueError(f"coordinates must have shape (3, ...), got {c.shape}")
    target = output if isinstance(output, np.ndarray) else None
    dt = vol.dtype if output is None else (output.dtype if target is not None else np.dtype(output))
    float_dt = np.float64 if np.dtype(dt).kind == "f" else np.float64
    vals = vol.sample(tuple(c[i] for i in range(3)), method=_METHODS[order], mode=mode, cval=cval, dtype=float_dt)
    if np.dtype(dt).kind in "iu":
        info = np.iinfo(dt)
        vals = np.clip(np.where(vals > 0, vals + 0.5, vals - 0.5), info.min, info.max).astype(dt) if np.dtype(dt).kind == "i" \
            else np.clip(np.where(vals > 0, vals + 0.5, 0), 0, info.max).astype(dt)
    else:
        vals = vals.astype(dt, copy=False)
    if target is not None:
        target[...] = vals
        return target
    return vals


from .rbf import RBFInterpolator, load  # noqa: E402  (the RBF engine's Python layer)

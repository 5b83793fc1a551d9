"""Scattered-data RBF interpolation by space subdivision, with scipy's call shape.

``voxfield.RBFInterpolator(points, values, ...)`` is called as ``rbf(xi)`` like
``scipy.interpolate.RBFInterpolator``. Instead of one global system (O(N^2)
memory) or one small system per evaluation point (scipy's ``neighbors=k``:
slow and discontinuous), space is split into a grid of domains, each enlarged
into an overlapping cell solved once, in parallel; cells are blended with a
partition of unity, so the result is continuous and passes through every sample.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any, Sequence

import numpy as np

from . import _voxfield


def _f64_2d(a: Any, what: str, cols: int | None = None) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 1 and cols is not None and cols == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or (cols is not None and arr.shape[1] != cols):
        want = f"(N, {cols})" if cols is not None else "(N, D)"
        raise ValueError(f"{what} must have shape {want}, got {arr.shape}")
    return np.require(arr, np.float64, "CA")


def _fit_args(kernel: str, epsilon: float | None, support: float | None, smoothing: float, degree: int | None,
              points_per_cell: int | None, overlap: float, ramp: str, duplicates: str) -> tuple:
    """The fit options as the engine takes them (it parses kernel, ramp and duplicates, as it does
    for the CLI), after the scipy-style checks of epsilon and support."""
    name = str(kernel).lower().replace("_", "-")
    if np.ndim(smoothing) != 0:
        raise ValueError("smoothing must be a scalar (per-point smoothing is not supported)")
    if epsilon is not None and support is not None:
        raise ValueError("give epsilon (gaussian, multiquadric) or support (wendland), not both")
    if support is not None and not name.startswith("wendland"):
        raise ValueError(f"support= applies to the Wendland kernels, not {kernel!r}; use epsilon=")
    if epsilon is not None and name.startswith("wendland"):
        raise ValueError("the Wendland kernels take support= (a radius), not epsilon=")
    shape = epsilon if epsilon is not None else support
    return (str(kernel), None if degree is None else int(degree), float(smoothing), None if shape is None else float(shape),
            None if points_per_cell is None else int(points_per_cell), float(overlap), str(ramp), str(duplicates))


class RBFInterpolator:
    """Subdivided RBF interpolant of ``values`` at ``points`` ((N, D), D = 1, 2 or 3).

    ``kernel``: 'thin_plate_spline' (default), 'cubic', 'gaussian', 'multiquadric',
    'wendland-c2', 'wendland-c4'. ``epsilon`` is the shape parameter of gaussian and
    multiquadric (as scipy's), ``support`` the support radius of the Wendland kernels;
    both default to values from the point density. ``degree`` (−1, 0 or 1) defaults to 1
    for every kernel, so linear trends are reproduced exactly (scipy defaults to the
    kernel's minimum). ``smoothing`` is added to the kernel matrix diagonal, as in scipy
    (a scalar). ``neighbors`` is accepted for scipy compatibility and ignored: cells of
    about ``points_per_cell`` points (default 200, or 3000 for Wendland) overlapping
    by ``overlap`` of the cell size replace it. ``duplicates``: 'merge' (mean value,
    with a warning) or 'reject'. The fit runs in parallel with the GIL released.
    """

    def __init__(self, points: Any, values: Any, neighbors: int | None = None, smoothing: float = 0.0,
                 kernel: str = "thin_plate_spline", epsilon: float | None = None, degree: int | None = None,
                 *, support: float | None = None, points_per_cell: int | None = None, overlap: float = 0.25,
                 ramp: str = "smooth", duplicates: str = "merge"):
        opts = _fit_args(kernel, epsilon, support, smoothing, degree, points_per_cell, overlap, ramp, duplicates)
        pts = np.asarray(points)
        if pts.ndim == 1:
            pts = pts[:, None]
        pts = _f64_2d(pts, "points")
        vals = np.asarray(values)
        if vals.dtype.kind not in "biuf":
            raise TypeError(f"values must be numeric, got dtype {vals.dtype}")
        if vals.ndim == 0 or vals.shape[0] != pts.shape[0]:
            raise ValueError(f"values must have one row per point: {pts.shape[0]} points, values shape {vals.shape}")
        self._value_shape = vals.shape[1:]
        flat = np.require(vals.reshape(vals.shape[0], -1), np.float64, "CA")
        self._m = _voxfield.fit_rbf(pts.__array_interface__["data"][0], pts.shape[0], pts.shape[1],
                                    flat.__array_interface__["data"][0], flat.shape[1], opts)
        self._info = json.loads(self._m.info_json())
        if self._info["merged_duplicates"]:
            warnings.warn(f"merged {self._info['merged_duplicates']} duplicate point(s) (mean value kept)",
                          stacklevel=2)

    def __reduce__(self):
        """Pickles as the path of its ``.vxr`` file (saved or loaded), never as coefficients."""
        path = getattr(self, "_path", None)
        if path is None:
            raise TypeError("an RBF model pickles as the .vxr file it was saved to or loaded from: "
                            "call save(path) first")
        return load, (path,)

    @classmethod
    def _from_model(cls, m: "_voxfield.Model") -> "RBFInterpolator":
        self = cls.__new__(cls)
        self._m = m
        self._info = json.loads(m.info_json())
        c = self._info["channels"]
        self._value_shape = () if c == 1 else (c,)
        return self

    @property
    def info(self) -> dict:
        """What the fit made: dim, channels, kernel, degree, cells, grid, bounds, value range."""
        return dict(self._info)

    @property
    def dim(self) -> int:
        return self._info["dim"]

    def _points(self, xi: Any) -> np.ndarray:
        x = np.asarray(xi)
        if x.ndim == 1 and self.dim == 1:
            x = x[:, None]
        return _f64_2d(x, "xi", self.dim)

    def __call__(self, xi: Any) -> np.ndarray:
        """Values at the (Q, D) points ``xi``: shape (Q, ...) like the fitted values.
        NaN at non-finite points."""
        x = self._points(xi)
        out = np.empty((x.shape[0], self._info["channels"]), dtype=np.float64)
        self._m.eval_into(x.__array_interface__["data"][0], x.shape[0], out.__array_interface__["data"][0])
        return out.reshape((x.shape[0],) + tuple(self._value_shape))

    def gradient(self, xi: Any, channel: int = 0) -> np.ndarray:
        """The gradient of one value channel at (Q, D) points: (Q, D)."""
        x = self._points(xi)
        out = np.empty_like(x)
        self._m.gradient_into(x.__array_interface__["data"][0], x.shape[0], int(channel),
                              out.__array_interface__["data"][0])
        return out

    def grid(self, shape: Sequence[int], bounds: Sequence[float] | None = None) -> np.ndarray:
        """The regular grid of ``shape[a]`` nodes per axis from LO to HI, where ``bounds``
        = (LO0, HI0, LO1, HI1, ...) (default: the samples' bounding box). Axis a of the
        result is coordinate a (``indexing='ij'``); trailing axes are value channels."""
        shape = [int(s) for s in shape]
        if bounds is None:
            lo, hi = self._info["bbox_lo"], self._info["bbox_hi"]
        else:
            b = [float(v) for v in bounds]
            if len(b) != 2 * self.dim:
                raise ValueError(f"bounds needs {2 * self.dim} numbers (LO, HI per axis), got {len(b)}")
            lo, hi = b[0::2], b[1::2]
        if len(shape) != self.dim or min(shape, default=0) <= 0:
            raise ValueError(f"shape needs {self.dim} positive sizes, got {shape}")
        out = np.empty(tuple(shape) + (self._info["channels"],), dtype=np.float64)
        self._m.grid_into(list(lo), list(hi), shape, out.__array_interface__["data"][0])
        return out.reshape(tuple(shape) + tuple(self._value_shape))

    def render(self, **kwargs: Any) -> np.ndarray:
        """Renders this (3-D) model over its samples' box: see ``voxfield.render`` for the options."""
        from . import render

        return render(self, **kwargs)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the model to a ``.vxr`` file (atomically)."""
        self._m.save(os.fspath(path))
        self._path = os.path.abspath(os.fspath(path))

    def __repr__(self) -> str:
        i = self._info
        return (f"RBFInterpolator({i['points']} {i['dim']}-D points, kernel={i['kernel']!r}, degree={i['degree']}, "
                f"{i['cells']} cells)")


def load(path: str | os.PathLike) -> RBFInterpolator:
    """Reads a model written by ``RBFInterpolator.save`` or ``voxfield rbf fit``."""
    model = RBFInterpolator._from_model(_voxfield.load_model(os.fspath(path)))
    model._path = os.path.abspath(os.fspath(path))
    return model


from . import _panics  # noqa: E402  (last: guards everything above)

_panics.guard_module(__name__)

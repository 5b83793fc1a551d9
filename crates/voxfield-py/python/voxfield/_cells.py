"""Grid-cell and border-cell scores with neurospatial 0.6.0's names, formulas and results
(``spatial_autocorrelation``, ``grid_score``, ``border_score`` and their batch forms),
computed by voxfield-env: the autocorrelogram by FFT, the grid score over scipy's
``ndimage.rotate`` taps made once per shape, the border score over distances to the
boundary made once per environment. Re-exported by :mod:`voxfield.env`."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _voxfield

if TYPE_CHECKING:
    from .env import Environment


class BatchScoresResult:
    """neurospatial's batch result: ``scores`` (n_neurons,) and ``failures`` (True where the
    score could not be computed for a reason other than the map itself, e.g. an environment
    without a regular 2-D grid). Indexes and converts like the scores array."""

    def __init__(self, scores: np.ndarray, failures: np.ndarray):
        self.scores = scores
        self.failures = failures

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def __getitem__(self, idx: Any) -> Any:
        return self.scores[idx]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.asarray(self.scores, dtype=dtype)

    def __repr__(self) -> str:
        return f"BatchScoresResult(scores={self.scores!r}, failures={self.failures!r})"


def _rates(env: "Environment", firing_rates: Any, what: str) -> np.ndarray:
    r = np.require(firing_rates, np.float64, "CA")
    if r.ndim != 2 or r.shape[1] != env.n_bins:
        raise ValueError(f"{what}: firing_rates must have shape (n_neurons, {env.n_bins}), got {r.shape}")
    return r


def _autocorrelations(env: "Environment", rates: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(units, h, w) autocorrelograms and, per unit, '' or why it is undefined."""
    shape = env.grid_shape
    h, w = shape if len(shape) == 2 and env.layout_type != "Graph" else (0, 0)
    out = np.empty((rates.shape[0], h, w))
    _, why = env._e.autocorrelations(rates.ctypes.data, rates.shape[0], out.ctypes.data, out.size)  # refuses other shapes first
    return out, why


def spatial_autocorrelation(env: "Environment", firing_rate: Any) -> np.ndarray:
    """neurospatial 0.6.0's ``spatial_autocorrelation``: the circular 2-D autocorrelogram of a
    rate map on a regular 2-D grid (at least half its cells active), shape ``grid_shape``,
    zero lag at (h/2, w/2), 1 there. Non-finite rates count as 0 before the finite mean is
    taken off every cell (non-finite and inactive cells hold −mean). All-NaN or constant rates raise ``ValueError`` as neurospatial's."""
    r = np.asarray(firing_rate, dtype=np.float64)
    if r.shape != (env.n_bins,):
        raise ValueError(f"firing_rate.shape must be ({env.n_bins},), got {r.shape}")
    out, why = _autocorrelations(env, np.ascontiguousarray(r[None, :]))
    if why[0]:
        raise ValueError(why[0])
    return out[0]


def spatial_autocorrelations(env: "Environment", firing_rates: Any) -> np.ndarray:
    """Autocorrelograms of many maps at once, (n_neurons, h, w), in parallel; a map whose
    autocorrelogram is undefined (all NaN, constant) gives a NaN block."""
    out, _ = _autocorrelations(env, _rates(env, firing_rates, "spatial_autocorrelations"))
    return out


def _grid_scores(acs: np.ndarray, inner: float, outer: float) -> np.ndarray:
    k, h, w = acs.shape
    return np.asarray(_voxfield.grid_scores(acs.ctypes.data, k, h, w, float(inner), float(outer)))


def grid_score(autocorr_2d: Any, *, inner_radius_fraction: float = 0.2,
               outer_radius_fraction: float = 0.5) -> float | np.ndarray:
    """neurospatial 0.6.0's ``grid_score`` (Sargolini 2006): min(r60, r120) − max(r30, r90,
    r150), r the Pearson correlation inside the annulus between the fractions of the smaller
    half-side of the autocorrelogram and the same rotated by scipy's ``ndimage.rotate``
    (linear, constant 0). NaN for non-finite values, an annulus under 10 pixels or a constant
    side. A stack (k, h, w) gives k scores (in parallel)."""
    a = np.require(autocorr_2d, np.float64, "CA")
    if a.ndim == 2:
        return float(_grid_scores(a[None], inner_radius_fraction, outer_radius_fraction)[0])
    if a.ndim == 3:
        return _grid_scores(a, inner_radius_fraction, outer_radius_fraction)
    raise ValueError(f"autocorr_2d must be 2D array, got {a.ndim}D")


def batch_grid_scores(env: "Environment", firing_rates: Any, *, inner_radius_fraction: float = 0.2,
                      outer_radius_fraction: float = 0.5) -> BatchScoresResult:
    """neurospatial 0.6.0's ``batch_grid_scores``: the grid score of every map (NaN for
    all-NaN or constant maps). An environment without a regular 2-D grid (under half its
    cells active, 1-D, 3-D, a track) gives NaN for every neuron with ``failures`` False, as
    neurospatial (``spatial_autocorrelation`` itself refuses it)."""
    r = _rates(env, firing_rates, "batch_grid_scores")
    n = r.shape[0]
    try:
        acs, _ = _autocorrelations(env, r)
    except ValueError:  # no regular 2-D grid: NaN for every neuron, not failures (neurospatial's rule)
        return BatchScoresResult(np.full(n, np.nan), np.zeros(n, dtype=bool))
    scores = _grid_scores(acs, inner_radius_fraction, outer_radius_fraction)
    return BatchScoresResult(scores, np.zeros(n, dtype=bool))


def _border(env: "Environment", rates: np.ndarray, threshold: float, min_area: float, metric: str) -> np.ndarray:
    if not (0 < threshold < 1):
        raise ValueError(f"threshold must be in (0, 1), got {threshold}. Typically 0.3 (30% of peak).")
    if not (min_area >= 0):
        raise ValueError(f"min_area must be non-negative, got {min_area}")
    if metric not in ("geodesic", "euclidean"):
        raise ValueError(f"metric must be 'geodesic' or 'euclidean', got '{metric}'")
    return np.asarray(env._e.border_scores(rates.ctypes.data, rates.shape[0], float(threshold),
                                           float(min_area), metric))


def border_score(env: "Environment", firing_rate: Any, *, threshold: float = 0.3, min_area: float = 0.0,
                 metric: str = "geodesic") -> float:
    """neurospatial 0.6.0's ``border_score`` (Solstad 2008): (c − d) / (c + d), c the fraction
    of boundary bins inside the field (bins at ≥ ``threshold`` of the peak), d the field's mean
    distance to the boundary (geodesic or euclidean) over the diagonal of the bin centres'
    box; NaN when there is no rate, no field, a field under ``min_area`` or no boundary."""
    r = np.asarray(firing_rate, dtype=np.float64)
    if r.shape != (env.n_bins,):
        raise ValueError(f"firing_rate.shape must be ({env.n_bins},), got {r.shape}")
    return float(_border(env, np.ascontiguousarray(r[None, :]), threshold, min_area, metric)[0])


def batch_border_scores(env: "Environment", firing_rates: Any, *, threshold: float = 0.3, min_area: float = 0.0,
                        metric: str = "geodesic") -> BatchScoresResult:
    """neurospatial 0.6.0's ``batch_border_scores``: the border score of every map."""
    r = _rates(env, firing_rates, "batch_border_scores")
    scores = _border(env, r, threshold, min_area, metric)
    return BatchScoresResult(scores, np.zeros(r.shape[0], dtype=bool))

from . import _panics  # noqa: E402  (last: guards everything above)

_panics.guard_module(__name__)

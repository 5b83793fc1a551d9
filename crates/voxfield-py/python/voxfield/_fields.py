"""Place-field metrics with neurospatial 0.6.0's names and results: ``field_size``,
``rate_map_centroid`` (euclidean, or the geodesic medoid computed by voxfield-env: one
Dijkstra per candidate bin, in parallel, where neurospatial runs one shortest path per pair),
``field_stability`` and ``is_place_cell``. Re-exported by :mod:`voxfield.env`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .env import Environment


def _field_bins(env: "Environment", field_bins: Any) -> np.ndarray:
    b = np.asarray(field_bins)
    if b.ndim != 1 or (b.size and b.dtype.kind not in "iu"):
        raise ValueError(f"field_bins must be a 1-D array of bin indices, got shape {b.shape} dtype {b.dtype}")
    b = b.astype(np.int64)
    if b.size and (b.min() < 0 or b.max() >= env.n_bins):
        raise ValueError(f"field_bins must be in [0, {env.n_bins}), got {b.min()}..{b.max()}")
    return b


def field_size(env: "Environment", field_bins: Any) -> float:
    """The field's area (length in 1-D, volume in 3-D): the sum of its bins' sizes."""
    return float(np.sum(env.bin_sizes[_field_bins(env, field_bins)]))


def rate_map_centroid(env: "Environment", firing_rate: Any, field_bins: Any, *,
                      method: str = "euclidean") -> np.ndarray:
    """0.6.0's ``rate_map_centroid``: the rate-weighted mean of the field's bin centres
    (their plain mean at zero total rate), or with ``method='geodesic'`` the field bin whose
    rate-weighted geodesic distance to the others is least (the first such; no path counts
    as infinite)."""
    b = _field_bins(env, field_bins)
    r = np.asarray(firing_rate, dtype=np.float64)
    if r.shape != (env.n_bins,):
        raise ValueError(f"firing_rate.shape must be ({env.n_bins},), got {r.shape}")
    if b.size == 0:
        raise ValueError("field_bins is empty: a field needs at least one bin")
    pos, rates = env.bin_centers[b], r[b]
    if method == "euclidean":
        total = np.sum(rates)
        return pos.mean(axis=0) if total == 0 else np.sum(pos * rates[:, None], axis=0) / total
    if method == "geodesic":
        if b.size == 1:
            return pos[0]
        return pos[env._e.geodesic_medoid(b.tolist(), rates.tolist())]
    raise ValueError(f"Unknown method: {method}. Must be 'euclidean' or 'geodesic'.")


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (scipy's rankdata 'average')."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.r_[0, np.flatnonzero(xs[1:] != xs[:-1]) + 1]
    ends = np.r_[starts[1:], len(xs)]
    r = np.empty(len(x))
    r[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return r


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    xm, ym = x - x.mean(), y - y.mean()
    return float(np.clip(np.dot(xm, ym) / (np.linalg.norm(xm) * np.linalg.norm(ym)), -1.0, 1.0))


def field_stability(rate_map_1: Any, rate_map_2: Any, *, method: str = "pearson") -> float:
    """0.6.0's ``field_stability``: the Pearson (or Spearman) correlation of two maps over the
    bins finite in both; 0 with fewer than 2 such bins, NaN when either is constant there."""
    a, b = np.asarray(rate_map_1, dtype=np.float64), np.asarray(rate_map_2, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rate maps of shapes {a.shape} and {b.shape}")
    valid = np.isfinite(a) & np.isfinite(b)
    a, b = a[valid], b[valid]
    if len(a) < 2:
        return 0.0
    if np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    if method == "pearson":
        return _pearson(a, b)
    if method == "spearman":
        return _pearson(_ranks(a), _ranks(b))
    raise ValueError(f"Unknown method: {method}. Use 'pearson' or 'spearman'.")


def is_place_cell(env: "Environment", spike_times: Any, times: Any, positions: Any, *,
                  smoothing_method: str = "diffusion_kde", bandwidth: float = 5.0, threshold: float = 0.2,
                  min_size: int | None = None, max_mean_rate: float = 10.0, detect_subfields: bool = True) -> bool:
    """0.6.0's ``is_place_cell``: whether the unit's rate map has a place field
    (``detect_place_fields``); False when the map cannot be made."""
    from .env import compute_spatial_rate
    try:
        r = compute_spatial_rate(env, spike_times, times, positions, smoothing_method=smoothing_method,
                                 bandwidth=bandwidth)
    except (ValueError, RuntimeError):
        return False
    return r.is_place_cell(threshold=threshold, min_size=min_size, max_mean_rate=max_mean_rate,
                           detect_subfields=detect_subfields)


from . import _panics  # noqa: E402  (last: guards everything above)

_panics.guard_module(__name__)

"""Head-direction tuning with neurospatial 0.6.0's names and results:
``compute_directional_rate(s)`` (binning and the wrapped Gaussian smoothing in voxfield-env),
``DirectionalRateResult`` (preferred direction, mean vector length, Rayleigh p-value,
``is_head_direction_cell``) and ``is_head_direction_cell``. Re-exported by
:mod:`voxfield.env`."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from . import _voxfield
from ._arrays import _spike_trains


def _weighted_mean_vector(angles: np.ndarray, weights: np.ndarray) -> tuple[float, float] | None:
    """(Σ ŵ cos, Σ ŵ sin) with ŵ the normalised non-negative weights; None at zero weight."""
    if not np.isfinite(weights).all():
        raise ValueError("weights must be finite")
    if (weights < 0).any():
        raise ValueError("weights must be non-negative (interpreted as counts/frequencies)")
    total = np.sum(weights)
    if total == 0:
        return None
    w = weights / total
    return float(np.sum(w * np.cos(angles))), float(np.sum(w * np.sin(angles)))


def rayleigh_test(angles: Any, *, weights: Any = None) -> tuple[float, float]:
    """neurospatial's weighted Rayleigh test: z = n·R², p = e^−z with the small-sample
    correction below n = 50 (n the total weight, at least 3), clipped to [0, 1]."""
    a = np.asarray(angles, dtype=np.float64).ravel()
    if weights is None:
        w = np.ones_like(a)
    else:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.shape != a.shape:
            raise ValueError(f"{a.size} angles and {w.size} weights")
    keep = ~np.isnan(a)
    if not keep.any():
        raise ValueError("All angles values are NaN; cannot compute circular statistics.")
    a, w = a[keep], w[keep]
    if np.isinf(a).any():
        raise ValueError("angles contains infinite values.")
    vec = _weighted_mean_vector(a, w)
    n = float(np.sum(w))
    if vec is None or n <= 0:
        raise ValueError("Total weight (sum of weights) is zero; cannot run the weighted Rayleigh test.")
    if n < 3:
        raise ValueError(f"Need at least 3 total weight (sum of counts) for the weighted Rayleigh test. "
                         f"Got sum(weights) = {n:g}.")
    r = float(np.sqrt(vec[0] ** 2 + vec[1] ** 2))
    z = n * r ** 2
    p = float(np.exp(-z))
    if n < 50:
        p = p * (1 + (2 * z - z ** 2) / (4 * n) - (24 * z - 132 * z ** 2 + 76 * z ** 3 - 9 * z ** 4) / (288 * n ** 2))
    return float(z), float(np.clip(p, 0.0, 1.0))


def _half_width(rates: np.ndarray, peak: int, half: float, bin_size: float, step: int) -> float:
    """Distance from the peak, walking one way round the circle (at most half of it), to the
    first visited bin below ``half``, interpolated from the last visited bin before it."""
    n = len(rates)
    prev_offset, prev_rate = 0, rates[peak]
    for offset in range(1, n // 2 + 1):
        r = rates[(peak + step * offset) % n]
        if not np.isfinite(r):
            continue
        if r < half:
            denom = r - prev_rate
            frac = 0.0 if denom == 0 else (half - prev_rate) / denom
            return (prev_offset + frac * (offset - prev_offset)) * bin_size
        prev_offset, prev_rate = offset, r
    return float("nan")


class DirectionalRateResult:
    """One unit's head-direction tuning (neurospatial's ``DirectionalRateResult``):
    ``firing_rate``, ``occupancy`` (seconds), ``spike_counts`` and ``bin_centers`` per heading
    bin, ``bin_size`` and ``bandwidth`` in radians."""

    def __init__(self, firing_rate: np.ndarray, occupancy: np.ndarray, bin_centers: np.ndarray, bin_size: float,
                 bandwidth: float | None, spike_counts: np.ndarray | None = None):
        self.firing_rate, self.occupancy, self.bin_centers = firing_rate, occupancy, bin_centers
        self.bin_size, self.bandwidth, self.spike_counts = bin_size, bandwidth, spike_counts

    def _valid(self) -> tuple[np.ndarray, np.ndarray] | None:
        r = np.asarray(self.firing_rate, dtype=np.float64)
        keep = ~np.isnan(r)
        return (self.bin_centers[keep], r[keep]) if keep.any() else None

    def preferred_direction(self) -> float:
        """The rate-weighted circular mean of the bin centres (radians, in (−π, π])."""
        v = self._valid()
        vec = None if v is None else _weighted_mean_vector(*v)
        return float("nan") if vec is None else float(np.arctan2(vec[1], vec[0]))

    def preferred_direction_deg(self) -> float:
        return float(np.degrees(self.preferred_direction()))

    def peak_firing_rate(self) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(np.nanmax(self.firing_rate))

    def mean_vector_length(self) -> float:
        """The rate-weighted mean resultant length, in [0, 1]."""
        v = self._valid()
        vec = None if v is None else _weighted_mean_vector(*v)
        return float("nan") if vec is None else float(np.sqrt(vec[0] ** 2 + vec[1] ** 2))

    def tuning_width(self) -> float:
        """Half width at half maximum (radians): the mean of the two sides' distances from the
        peak to where the rate falls below half the peak (linear between bins; unvisited bins
        skipped); NaN when the rate never falls below half the peak."""
        rates = np.asarray(self.firing_rate, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            peak = int(np.nanargmax(rates))
            half = rates[peak] / 2.0
            if np.nanmin(rates) >= half:
                return float("nan")
        sides = np.array([_half_width(rates, peak, half, self.bin_size, step) for step in (-1, +1)])
        finite = sides[np.isfinite(sides)]
        return float(finite.mean()) if finite.size else float("nan")

    def tuning_width_deg(self) -> float:
        return float(np.degrees(self.tuning_width()))

    def rayleigh_pvalue(self) -> float:
        """The Rayleigh test over occupied bins with spikes (weights: spike counts, or
        rate × occupancy without them); NaN under 3 spikes there."""
        rates = np.asarray(self.firing_rate, dtype=np.float64)
        occ = np.asarray(self.occupancy, dtype=np.float64)
        counts = np.asarray(self.spike_counts, dtype=np.float64) if self.spike_counts is not None else rates * occ
        valid = np.isfinite(self.bin_centers) & np.isfinite(counts) & (counts > 0) & np.isfinite(rates) & (occ > 0)
        if counts[valid].sum() < 3:
            return float("nan")
        return rayleigh_test(self.bin_centers[valid], weights=counts[valid])[1]

    def is_head_direction_cell(self, min_mvl: float = 0.4, alpha: float = 0.05) -> bool:
        """Taube's criteria: mean vector length above ``min_mvl`` and Rayleigh p below ``alpha``."""
        return bool(self.mean_vector_length() > min_mvl and self.rayleigh_pvalue() < alpha)

    def __repr__(self) -> str:
        return f"<DirectionalRateResult: {len(self.bin_centers)} heading bins>"


def _radians(x: Any, unit: str) -> Any:
    return None if x is None else (np.radians(x) if unit == "deg" else x)


def compute_directional_rates(spike_times: Sequence[Any] | np.ndarray, times: Any, headings: Any, *,
                              bin_size: float = np.pi / 30, bandwidth: float | None = None,
                              angle_unit: str = "rad") -> list[DirectionalRateResult]:
    """One ``DirectionalRateResult`` per unit over a shared heading trajectory (the binning
    and smoothing once per unit in voxfield-env)."""
    if angle_unit not in ("rad", "deg"):
        raise ValueError(f"angle_unit must be 'rad' or 'deg', got '{angle_unit}'")
    trains = _spike_trains(spike_times)
    t = np.asarray(times, dtype=np.float64).ravel()
    h = np.asarray(_radians(np.asarray(headings, dtype=np.float64).ravel(), angle_unit))
    bs = float(_radians(bin_size, angle_unit))
    bw = _radians(bandwidth, angle_unit)
    centres, occ, counts, rates = _voxfield.directional_rates([x.tolist() for x in trains], t.tolist(), h.tolist(),
                                                              bs, None if bw is None else float(bw))
    centres, occ = np.asarray(centres), np.asarray(occ)
    n = len(centres)
    counts = np.asarray(counts).reshape(len(trains), n)
    rates = np.asarray(rates).reshape(len(trains), n)
    size = 2 * np.pi / n
    return [DirectionalRateResult(rates[u], occ, centres, size, None if bw is None else float(bw), counts[u])
            for u in range(len(trains))]


def compute_directional_rate(spike_times: Any, times: Any, headings: Any, *, bin_size: float = np.pi / 30,
                             bandwidth: float | None = None, angle_unit: str = "rad") -> DirectionalRateResult:
    """neurospatial 0.6.0's ``compute_directional_rate``: headings wrapped to [0, 2π) in
    round(2π / bin_size) bins; occupancy from each interval's start heading; each spike at the
    heading of the sample at or before it; with ``bandwidth`` (radians, or degrees with
    ``angle_unit='deg'``) counts and occupancy smoothed by scipy's wrapped Gaussian; NaN
    where the occupancy is 0."""
    return compute_directional_rates([np.asarray(spike_times, dtype=np.float64).ravel()], times, headings,
                                     bin_size=bin_size, bandwidth=bandwidth, angle_unit=angle_unit)[0]


def is_head_direction_cell(spike_times: Any, times: Any, headings: Any, *, bin_size: float = np.pi / 30,
                           bandwidth: float | None = None, angle_unit: str = "rad", min_mvl: float = 0.4,
                           alpha: float = 0.05) -> bool:
    """0.6.0's ``is_head_direction_cell``: the tuning passes Taube's criteria; False when the
    tuning cannot be computed."""
    try:
        r = compute_directional_rate(spike_times, times, headings, bin_size=bin_size, bandwidth=bandwidth,
                                     angle_unit=angle_unit)
    except (ValueError, RuntimeError):
        return False
    return r.is_head_direction_cell(min_mvl=min_mvl, alpha=alpha)


from . import _panics  # noqa: E402  (last: guards everything above)

_panics.guard_module(__name__)

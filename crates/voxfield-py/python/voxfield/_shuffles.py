"""Shuffle significance: neurospatial 0.6.0's p-value helpers and spike-time shuffles of
spatial scores computed in Rust. ``shuffle_spatial_scores`` shifts each unit's spike train
circularly in time over the trajectory's span, remakes its rate map exactly as
``compute_spatial_rates`` does and scores it (Skaggs information, sparsity, grid score,
border score), for every shift in parallel with memory bounded by one batch of maps.
Re-exported by :mod:`voxfield.env`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ._arrays import _positions, _spike_trains, _times

if TYPE_CHECKING:
    from .env import Environment

#: Shuffled maps one call makes at most (units × shuffles; each score keeps 8 bytes per map).
MAX_SHUFFLED_MAPS = 1 << 26

SCORES = ("spatial_information", "sparsity", "grid_score", "border_score")

def compute_shuffle_pvalue(observed: float, null_scores: Any, *, tail: str = "greater") -> float:
    """neurospatial's ``compute_shuffle_pvalue``: (k + 1) / (n + 1), k the null scores at least
    as extreme as ``observed`` (``tail`` 'greater', 'less' or 'two-sided': twice the smaller,
    at most 1). Non-finite null scores are dropped with a warning; a non-finite ``observed`` or
    no finite null score is refused."""
    if not np.isfinite(observed):
        raise ValueError(f"observed must be a finite value, got {observed!r}: every comparison against the "
                         "null would be False and give the floor p-value")
    null = np.asarray(null_scores, dtype=np.float64).ravel()
    finite = np.isfinite(null)
    if not finite.all():
        warnings.warn(f"Dropped {int((~finite).sum())} non-finite null score(s) out of {null.size} before "
                      f"computing the p-value.", UserWarning, stacklevel=2)
        null = null[finite]
    n = len(null)
    if n == 0:
        raise ValueError("null_scores contains no finite values; cannot compute a shuffle p-value")
    greater = (int(np.sum(null >= observed)) + 1) / (n + 1)
    less = (int(np.sum(null <= observed)) + 1) / (n + 1)
    if tail == "greater":
        return float(greater)
    if tail == "less":
        return float(less)
    if tail == "two-sided":
        return float(min(2 * min(greater, less), 1.0))
    raise ValueError(f"tail must be 'greater', 'less', or 'two-sided', got {tail!r}")


def compute_shuffle_zscore(observed: float, null_scores: Any) -> float:
    """neurospatial's ``compute_shuffle_zscore``: (observed − mean) / std of the null (population
    std); NaN when the null has no spread."""
    null = np.asarray(null_scores, dtype=np.float64)
    sd = float(np.std(null))
    return float("nan") if sd == 0.0 else float((observed - float(np.mean(null))) / sd)


@dataclass
class ShuffleTestResult:
    """neurospatial's ``ShuffleTestResult`` for one unit and score."""

    observed_score: float
    null_scores: np.ndarray
    p_value: float
    z_score: float
    shuffle_type: str
    n_shuffles: int

    @property
    def is_significant(self) -> bool:
        return self.p_value < 0.05


class SpatialShuffleResult:
    """Scores of every unit's map (``observed[name]``, shape (n_units,)) and of its shuffled
    maps (``null[name]``, shape (n_units, n_shuffles)), with the ``shifts`` (seconds, shape
    (n_units, n_shuffles)) that made them."""

    shuffle_type = "spike_time_circular"

    def __init__(self, names: Sequence[str], observed: np.ndarray, null: np.ndarray, shifts: np.ndarray):
        self.names = tuple(names)
        self.observed = {n: observed[i] for i, n in enumerate(self.names)}
        self.null = {n: null[i] for i, n in enumerate(self.names)}
        self.shifts = shifts

    @property
    def n_units(self) -> int:
        return int(self.shifts.shape[0])

    @property
    def n_shuffles(self) -> int:
        return int(self.shifts.shape[1])

    def _score(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.observed:
            raise KeyError(f"score {name!r} was not shuffled; this result has {list(self.names)}")
        return self.observed[name], self.null[name]

    def p_values(self, name: str, *, tail: str = "greater") -> np.ndarray:
        """``compute_shuffle_pvalue`` per unit over its finite null scores; NaN for a unit
        whose observed score is not finite or whose null has no finite score."""
        if tail not in ("greater", "less", "two-sided"):
            raise ValueError(f"tail must be 'greater', 'less', or 'two-sided', got {tail!r}")
        obs, null = self._score(name)
        finite = np.isfinite(null)
        n = finite.sum(axis=1)
        with np.errstate(invalid="ignore"):
            greater = (np.sum(finite & (null >= obs[:, None]), axis=1) + 1) / (n + 1)
            less = (np.sum(finite & (null <= obs[:, None]), axis=1) + 1) / (n + 1)
        p = {"greater": greater, "less": less,
             "two-sided": np.minimum(2 * np.minimum(greater, less), 1.0)}[tail]
        return np.where(np.isfinite(obs) & (n > 0), p, np.nan)

    def z_scores(self, name: str) -> np.ndarray:
        """``compute_shuffle_zscore`` per unit (NaN where the null has no spread)."""
        obs, null = self._score(name)
        sd = np.std(null, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(sd == 0, np.nan, (obs - np.mean(null, axis=1)) / sd)

    def result(self, name: str, unit: int, *, tail: str = "greater") -> ShuffleTestResult:
        """One unit's score as neurospatial's ``ShuffleTestResult``."""
        obs, null = self._score(name)
        return ShuffleTestResult(float(obs[unit]), null[unit].copy(),
                                 compute_shuffle_pvalue(float(obs[unit]), null[unit], tail=tail),
                                 compute_shuffle_zscore(float(obs[unit]), null[unit]),
                                 self.shuffle_type, self.n_shuffles)

    def __repr__(self) -> str:
        return (f"SpatialShuffleResult({self.n_units} units x {self.n_shuffles} shuffles, "
                f"scores={list(self.names)})")


def _shifts(shifts: Any, n_shuffles: int | None, min_shift: float | None, rng: Any, units: int,
            span: float) -> np.ndarray:
    """(units, n_shuffles) shifts: given (one row for all units, or one per unit), or drawn
    uniformly from [min_shift, span − min_shift] with ``np.random.default_rng(rng)``."""
    if shifts is not None:
        if rng is not None or min_shift is not None:
            raise ValueError("shifts are given: rng and min_shift do not apply")
        s = np.asarray(shifts, dtype=np.float64)
        if s.ndim == 1:
            s = np.broadcast_to(s, (units, s.shape[0]))
        if s.ndim != 2 or s.shape[0] != units:
            raise ValueError(f"shifts must have shape (n_shuffles,) or ({units}, n_shuffles), got {np.shape(shifts)}")
        if n_shuffles is not None and n_shuffles != s.shape[1]:
            raise ValueError(f"n_shuffles={n_shuffles} but {s.shape[1]} shifts per unit are given")
        if s.shape[0] * s.shape[1] > MAX_SHUFFLED_MAPS:
            raise ValueError(f"{units} units x {s.shape[1]} shuffles is over {MAX_SHUFFLED_MAPS} shuffled maps per call")
        if not np.isfinite(s).all():
            raise ValueError("shifts must be finite")
        return np.ascontiguousarray(s)
    n = 1000 if n_shuffles is None else n_shuffles
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n_shuffles must be a positive integer, got {n_shuffles!r}")
    if units * n > MAX_SHUFFLED_MAPS:
        raise ValueError(f"{units} units x {n} shuffles is over {MAX_SHUFFLED_MAPS} shuffled maps per call; "
                         "split the units or the shuffles")
    m = 20.0 if min_shift is None else float(min_shift)
    if not (m >= 0 and span - m > m):
        raise ValueError(f"min_shift {m} s leaves no shift in a session of {span} s (needs 0 <= min_shift < span / 2)")
    return np.random.default_rng(rng).uniform(m, span - m, size=(units, int(n)))


def shuffle_spatial_scores(env: "Environment", spike_times: Any, times: Any, positions: Any, *,
                           n_shuffles: int | None = None, min_shift: float | None = None, shifts: Any = None,
                           rng: Any = None, scores: Sequence[str] = ("spatial_information", "sparsity"),
                           smoothing_method: str = "diffusion_kde", bandwidth: float = 5.0,
                           min_occupancy: float = 0.0, speed: Any = None, min_speed: float | None = None,
                           max_gap: float | None = 0.5, base: float = 2.0, inner_radius_fraction: float = 0.2,
                           outer_radius_fraction: float = 0.5, threshold: float = 0.3, min_area: float = 0.0,
                           metric: str = "geodesic") -> SpatialShuffleResult:
    """Spike-time shuffle test of spatial scores. Each unit's spikes move to
    t0 + ((t − t0) + s) mod T (T the trajectory's span, numpy's ``mod``) for each shift s —
    ``n_shuffles`` (default 1000) drawn uniformly in [``min_shift`` (default 20 s), T −
    ``min_shift``] from ``np.random.default_rng(rng)``, or ``shifts`` given explicitly (one
    row for all units or one per unit) — and each shifted train's rate map is made as
    ``compute_spatial_rates(env, ..., smoothing_method, bandwidth, min_occupancy, speed,
    min_speed, max_gap)`` makes it and scored: ``scores`` among 'spatial_information' (in
    ``base``), 'sparsity', 'grid_score' (``inner/outer_radius_fraction``; a regular 2-D grid)
    and 'border_score' (``threshold``, ``min_area``, ``metric``). Returns the unshifted
    (observed) and shuffled scores; ``p_values``/``z_scores`` follow neurospatial's helpers.
    Ctrl-C stops it. Memory: the scores plus one batch of 256 maps."""
    names = tuple(scores)
    unknown = [s for s in names if s not in SCORES]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"scores {list(names)}: expected distinct names among {list(SCORES)}")
    if smoothing_method not in ("diffusion_kde", "gaussian_kde"):
        raise ValueError(f"smoothing_method {smoothing_method!r}: shuffles make 'diffusion_kde' or "
                         "'gaussian_kde' maps")
    if speed is not None and min_speed is None:
        raise ValueError("speed is only used with min_speed")
    if "grid_score" not in names and (inner_radius_fraction, outer_radius_fraction) != (0.2, 0.5):
        raise ValueError("inner/outer_radius_fraction apply to 'grid_score', which is not among scores")
    if "border_score" not in names and (threshold, min_area, metric) != (0.3, 0.0, "geodesic"):
        raise ValueError("threshold, min_area and metric apply to 'border_score', which is not among scores")
    if "spatial_information" not in names and base != 2.0:
        raise ValueError("base applies to 'spatial_information', which is not among scores")
    if "border_score" in names:
        if not (0 < threshold < 1):
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if not (min_area >= 0):
            raise ValueError(f"min_area must be non-negative, got {min_area}")
    trains = _spike_trains(spike_times)
    if not trains:
        raise ValueError("no spike trains given")
    p = _positions(positions, env.n_dims)
    t = _times(times, p.shape[0])
    if t.size > 1 and not (np.diff(t) >= 0).all():
        k = int(np.flatnonzero(np.diff(t) < 0)[0]) + 1
        raise ValueError(f"times must not decrease: sample {k} at {t[k]} follows {t[k - 1]}")
    span = float(t[-1] - t[0]) if t.size else 0.0
    s = _shifts(shifts, n_shuffles, min_shift, rng, len(trains), span)
    k = len(names)
    observed = np.empty((k, len(trains)))
    null = np.empty((k, len(trains), s.shape[1]))
    spd = None if speed is None else [float(v) for v in np.asarray(speed, dtype=np.float64).ravel()]
    order = env._e.shuffle_scores(
        [x.tolist() for x in trains], t.ctypes.data, t.shape[0], p.ctypes.data, spd,
        None if min_speed is None else float(min_speed), None if max_gap is None else float(max_gap),
        smoothing_method == "gaussian_kde", float(bandwidth), float(min_occupancy), s.ctypes.data, s.shape[1],
        float(base) if "spatial_information" in names else None, "sparsity" in names,
        (float(inner_radius_fraction), float(outer_radius_fraction)) if "grid_score" in names else None,
        (float(threshold), float(min_area), str(metric)) if "border_score" in names else None,
        observed.ctypes.data, null.ctypes.data, (observed.size, null.size))
    pick = [order.index(n) for n in names]
    return SpatialShuffleResult(names, observed[pick], null[pick], s)


from . import _panics  # noqa: E402  (last: guards everything above)

_panics.guard_module(__name__)

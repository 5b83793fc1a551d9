"""Argument parsing shared by the environment modules: positions, times, spike trains."""

from __future__ import annotations

from typing import Any

import numpy as np


def _positions(positions: Any, dims: int | None = None) -> np.ndarray:
    p = np.asarray(positions)
    if p.dtype.kind not in "biuf":
        raise TypeError(f"positions must be numeric, got dtype {p.dtype}")
    if p.ndim == 1:
        p = p[:, None] if dims in (None, 1) else p[None, :]
    if p.ndim != 2:
        raise ValueError(f"positions must have shape (n_samples, n_dims), got {p.shape}")
    if dims is not None and p.shape[1] != dims:
        raise ValueError(f"positions have {p.shape[1]} coordinates, the environment has {dims} dimensions")
    return np.require(p, np.float64, "CA")


def _times(times: Any, n: int) -> np.ndarray:
    t = np.require(np.asarray(times, dtype=np.float64).ravel(), None, "CA")
    if t.shape[0] != n:
        raise ValueError(f"{t.shape[0]} times for {n} positions")
    return t


def _spike_trains(spike_times: Any) -> list[np.ndarray]:
    """Per-unit float64 spike trains from a list of arrays, one 1-D array (one unit) or a
    NaN-padded 2-D array (one row per unit)."""
    padded = isinstance(spike_times, np.ndarray) and spike_times.ndim == 2
    if isinstance(spike_times, np.ndarray) and spike_times.ndim == 1:
        spike_times = [spike_times]
    trains = [np.asarray(s, dtype=np.float64).ravel() for s in spike_times]
    if padded:  # a 2-D array is NaN-padded per unit
        trains = [s[~np.isnan(s)] for s in trains]
    return trains

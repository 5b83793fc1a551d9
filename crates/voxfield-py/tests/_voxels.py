"""Helpers shared by the test modules (imported by name: pytest puts this folder on sys.path)."""

import numpy as np


def full(v, shape=None):
    """Every voxel of a voxfield volume (of `shape`, default its own), by nearest sampling at the
    grid nodes: the whole array as voxfield reads it."""
    shape = tuple(v.shape if shape is None else shape)
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    pts = np.stack(grids, -1).reshape(-1, len(shape))
    return v.sample(pts, method="nearest", dtype=np.float64).reshape(shape)

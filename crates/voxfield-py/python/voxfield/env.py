"""Spatial environments with neurospatial 0.6.0's names and semantics, in Rust.

``Environment.from_samples(positions, bin_size)`` bins an arena on a regular
1-3-D grid exactly as neurospatial 0.6.0 does (edges, active bins, connectivity
with diagonal neighbours by default); ``bin_at`` is O(1) per point; paths and
distances run Dijkstra on a compressed graph; ``smooth`` applies 0.6.0's
diffusion kernel as a matrix-free exponential action (never the dense n×n
kernel, so a million bins take seconds) to one field or many at once;
``occupancy`` and ``bin_sequence`` follow 0.6.0's rules. Environments are
immutable and thread-safe: many threads may query one at once, and every call
releases the GIL.

``operator='finite_volume'`` selects the maintainers' later operator, whose
``bandwidth`` is the physical σ whatever the bin size, with an ``'average'``
mode for rate maps.
"""

from __future__ import annotations

import json
import warnings
from typing import Any, Sequence

import numpy as np

from . import _voxfield
from ._arrays import _positions, _spike_trains, _times
from ._fields import _pearson, _ranks
from ._regions import Region, Regions, polygon_mask, regions_from_records

#: Cells a grid may have (as the engine's limit).
MAX_CELLS = 1 << 26
#: Largest environment ``compute_kernel`` builds a dense kernel for (n² × 8 bytes).
MAX_KERNEL_BINS = 10_000


def _neighbour_axes(dims: int, diagonal: bool, connectivity: int | None) -> int:
    """Axes a neighbour may differ in: from ``connectivity`` (neighbours of an interior bin:
    2 in 1-D; 4 or 8 in 2-D; 6, 18 or 26 in 3-D) when given, else from ``diagonal``."""
    if connectivity is None:
        return dims if diagonal else 1
    counts = {1: {2: 1}, 2: {4: 1, 8: 2}, 3: {6: 1, 18: 2, 26: 3}}.get(dims, {})
    if connectivity not in counts:
        raise ValueError(f"connectivity {connectivity} on a {dims}-D grid: expected one of {sorted(counts)}")
    return counts[connectivity]


class Environment:
    """Bins over 1-3-D space joined by a connectivity graph (see the module docs)."""

    def __init__(self, _env: Any, regions: "Regions | None" = None):
        self._e = _env
        #: Named regions (neurospatial's ``env.regions``): kept with ``to_file``/``from_file``.
        self.regions = Regions() if regions is None else regions
        self._centers = np.asarray(_env.centers, dtype=np.float64).reshape(_env.n_bins, _env.n_dims)
        self._centers.flags.writeable = False

    @classmethod
    def from_samples(cls, positions: Any, bin_size: float | Sequence[float], *, infer_active_bins: bool = True,
                     bin_count_threshold: int = 0, connect_diagonal_neighbors: bool = True,
                     dilate: bool = False, fill_holes: bool = False, close_gaps: bool = False,
                     add_boundary_bins: bool = False, connectivity: int | None = None,
                     layout: str = "RegularGrid") -> "Environment":
        """neurospatial 0.6.0's ``Environment.from_samples`` for regular grids: each axis
        spans [min − h/2, max + h/2] in ceil(span / h) equal bins; a bin is active when
        more than ``bin_count_threshold`` samples fall in it; rows with a NaN are dropped.
        In 2-D and 3-D, ``close_gaps`` (a binary closing: it also clears the grid's outer
        cells, as scipy's erosion does), ``fill_holes`` and ``dilate`` shape the active bins
        with 0.6.0's structuring element (8 neighbours in 2-D, 18 in 3-D), in that order; ``add_boundary_bins`` adds an inactive
        layer of cells around the grid. ``connectivity`` (4/8 in 2-D, 6/18/26 in 3-D)
        overrides ``connect_diagonal_neighbors``."""
        if layout.lower() not in ("regulargrid", "regular_grid", "hexagonal"):
            raise ValueError(f"layout {layout!r}: expected 'RegularGrid' or 'Hexagonal'")
        if int(bin_count_threshold) < 0:
            raise ValueError(f"bin_count_threshold {bin_count_threshold} must be ≥ 0")
        p = _positions(positions)
        if layout.lower() == "hexagonal":
            if p.shape[1] != 2:
                raise ValueError(f"a hexagonal layout needs 2-D positions, got {p.shape[1]} coordinates")
            width = np.asarray(bin_size, dtype=np.float64)
            if width.ndim != 0:
                raise ValueError("a hexagonal layout takes one bin_size (the hexagon's flat-to-flat width)")
            return cls(_voxfield.Env.from_hex(p.ctypes.data, p.shape[0], float(width),
                                              int(bin_count_threshold) if infer_active_bins else None))
        sizes = [float(b) for b in np.atleast_1d(np.asarray(bin_size, dtype=np.float64))]
        return cls(_voxfield.Env.from_samples(p.ctypes.data, p.shape[0], p.shape[1], sizes,
                                              int(bin_count_threshold) if infer_active_bins else None,
                                              _neighbour_axes(p.shape[1], connect_diagonal_neighbors, connectivity),
                                              (bool(close_gaps), bool(fill_holes), bool(dilate),
                                               bool(add_boundary_bins))))

    @classmethod
    def from_grid_mask(cls, active_mask: Any, grid_edges: Sequence[Any], *,
                       connect_diagonal_neighbors: bool = True, connectivity: int | None = None) -> "Environment":
        """An environment over explicit ``grid_edges`` (one array per axis) whose active
        cells are ``active_mask`` (shape = the number of bins per axis)."""
        arrays = [np.asarray(e, dtype=np.float64).ravel() for e in grid_edges]
        cells = int(np.prod([max(len(e) - 1, 0) for e in arrays], dtype=object))
        if cells > MAX_CELLS:
            raise ValueError(f"a grid of {cells} cells is too large (at most {MAX_CELLS})")
        mask = np.asarray(active_mask, dtype=bool)
        edges = [e.tolist() for e in arrays]
        if mask.shape != tuple(len(e) - 1 for e in edges):
            raise ValueError(f"active_mask has shape {mask.shape}, the edges make {tuple(len(e) - 1 for e in edges)}")
        axes = _neighbour_axes(len(edges), connect_diagonal_neighbors, connectivity)
        return cls(_voxfield.Env.from_mask(edges, mask.ravel().tolist(), axes))

    @classmethod
    def from_graph(cls, graph: Any, edge_order: Sequence[tuple[Any, Any]], edge_spacing: float | Sequence[float],
                   bin_size: float) -> "Environment":
        """neurospatial 0.6.0's 1-D linearised track: a networkx graph whose nodes carry
        ``pos`` and edges ``distance`` (and ``edge_id`` for ``to_linear``), its edges laid end to
        end in ``edge_order`` with ``edge_spacing`` gaps and cut into bins of at most ``bin_size``.
        Points map to the nearest bin centre; ``to_linear`` / ``linear_to_nd`` convert."""
        import json

        import networkx as nx

        order = [list(e) for e in edge_order]
        if not order:
            raise ValueError("edge_order must not be empty")
        spacing = float(edge_spacing) if np.ndim(edge_spacing) == 0 else [float(g) for g in edge_spacing]
        params = {"graph_definition": {"__nx_graph__": nx.node_link_data(graph, edges="links")},
                  "edge_order": order, "edge_spacing": spacing, "bin_size": float(bin_size)}
        return cls(_voxfield.Env.from_track(json.dumps(params, default=_jsonable)))

    @property
    def is_linearized_track(self) -> bool:
        return self.layout_type == "Graph"

    def to_linear(self, nd_position: Any) -> np.ndarray:
        """Linear positions of points on a track (nearest graph edge, as track_linearization)."""
        q = _positions(nd_position, self.n_dims)
        return np.asarray(self._e.to_linear(q.ravel().tolist()))

    def linear_to_nd(self, linear_position: Any) -> np.ndarray:
        """Points on a track at linear positions (clamped to each edge's ends)."""
        x = np.asarray(linear_position, dtype=np.float64).ravel()
        return np.asarray(self._e.linear_to_nd(x.tolist())).reshape(len(x), self.n_dims)

    @classmethod
    def from_pixel_mask(cls, image_mask: Any, pixel_size: float | Sequence[float] = 1.0, *,
                        connect_diagonal_neighbors: bool = True, connectivity: int | None = None) -> "Environment":
        """One bin per True pixel of a 2-D image (rows = y, columns = x), as neurospatial
        0.6.0: x edges ``arange(n_cols + 1) · width``, y edges ``arange(n_rows + 1) · height``."""
        m = np.asarray(image_mask)
        if m.ndim != 2:
            raise ValueError(f"image_mask must be a 2-D array, got shape {m.shape}")
        if m.dtype != np.bool_:
            raise ValueError(f"image_mask must be boolean, got dtype {m.dtype}")
        if not m.any():
            raise ValueError("image_mask must contain at least one True value")
        size = np.atleast_1d(np.asarray(pixel_size, dtype=np.float64))
        if size.shape not in ((1,), (2,)) or not (np.isfinite(size).all() and (size > 0).all()):
            raise ValueError(f"pixel_size {pixel_size!r} must be one positive number or (width, height)")
        px, py = (size[0], size[0]) if size.shape == (1,) else (size[0], size[1])
        rows, cols = m.shape
        return cls.from_grid_mask(m.T, (np.arange(cols + 1) * px, np.arange(rows + 1) * py),
                                  connect_diagonal_neighbors=connect_diagonal_neighbors, connectivity=connectivity)

    @classmethod
    def from_polygon(cls, polygon: Any, bin_size: float | Sequence[float], *,
                     connect_diagonal_neighbors: bool = True, connectivity: int | None = None) -> "Environment":
        """A 2-D grid over the polygon's bounds (``ceil(span / h)`` equal bins per axis, as
        neurospatial 0.6.0) whose active bins are those with the centre strictly inside (a
        centre on the boundary is outside, as shapely's ``contains``). ``polygon`` is a shapely
        Polygon (holes honoured) or an (n, 2) array of vertices."""
        rings = _polygon_rings(polygon)
        outer = rings[0]
        lo, hi = outer.min(axis=0), outer.max(axis=0)
        h = np.atleast_1d(np.asarray(bin_size, dtype=np.float64))
        if h.shape not in ((1,), (2,)) or not (np.isfinite(h).all() and (h > 0).all()):
            raise ValueError(f"bin_size {bin_size!r} must be one positive number or one per axis")
        h = np.broadcast_to(h, (2,))
        edges = []
        for d in range(2):
            a, b = float(lo[d]), float(hi[d])
            if np.isclose(a, b):
                a, b = a - 0.5 * h[d], b + 0.5 * h[d]
            n = max(int(np.ceil((b - a) / h[d])), 1)
            if n > MAX_CELLS:
                raise ValueError(f"axis {d} would have {n} bins: bin_size {h[d]} is too small for the polygon")
            edges.append(np.linspace(a, b, n + 1))
        cx, cy = [(e[:-1] + e[1:]) / 2 for e in edges]
        if len(cx) * len(cy) > MAX_CELLS:
            raise ValueError(f"a grid of {len(cx)} × {len(cy)} cells is too large (at most {MAX_CELLS})")
        x, y = np.meshgrid(cx, cy, indexing="ij")
        mask = _inside(rings, x.ravel(), y.ravel()).reshape(x.shape)
        if not mask.any():
            raise ValueError("no bin centre lies inside the polygon: bin_size is too large for it")
        return cls.from_grid_mask(mask, edges, connect_diagonal_neighbors=connect_diagonal_neighbors,
                                  connectivity=connectivity)

    @classmethod
    def from_file(cls, path: Any) -> "Environment":
        """Reads neurospatial 0.6.0's ``to_file`` pair (``path.json`` + ``path.npz``) of any
        grid layout; other layouts and edited graphs are refused with the reason."""
        import os

        e, regions = _voxfield.Env.from_file(os.fspath(path))
        return cls(e, regions_from_records(json.loads(regions), os.fspath(path) + ".json"))

    def to_file(self, path: Any) -> None:
        """Writes neurospatial 0.6.0's pair (``path.json`` + ``path.npz``) as a ``MaskedGrid``
        layout: neurospatial's ``Environment.from_file`` rebuilds the same bins and graph,
        and the same ``regions``."""
        import os

        self._e.to_file(os.fspath(path), json.dumps([r.to_dict() for r in self.regions.values()]))

    # Geometry -------------------------------------------------------------------------
    @property
    def n_bins(self) -> int:
        return self._e.n_bins

    @property
    def n_dims(self) -> int:
        return self._e.n_dims

    @property
    def bin_centers(self) -> np.ndarray:
        """(n_bins, n_dims) centres of the active bins, in C order of the grid."""
        return self._centers

    @property
    def layout_type(self) -> str:
        """'RegularGrid', 'Hexagonal' or 'Graph' (a track; environments from masks, polygons,
        images and files are grids)."""
        return self._e.layout_kind

    @property
    def grid_edges(self) -> tuple[np.ndarray, ...]:
        if self.layout_type == "Graph":
            return (np.asarray(self._e.linear_edges),)
        return tuple(np.asarray(e) for e in self._e.edges)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(self._e.shape)

    @property
    def active_mask(self) -> np.ndarray:
        return np.asarray(self._e.active, dtype=bool).reshape(self.grid_shape)

    @property
    def bin_sizes(self) -> np.ndarray:
        """Area (length, volume) of each bin: the product of its actual widths."""
        return np.asarray(self._e.bin_sizes())

    @property
    def dimension_ranges(self) -> list[tuple[float, float]]:
        return [(float(e[0]), float(e[-1])) for e in self.grid_edges]

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """The connectivity graph's edges (i < j) as an (n_edges, 2) array and their lengths."""
        off, nbr, dist = self._e.csr()
        off, nbr, dist = np.asarray(off), np.asarray(nbr, dtype=np.int64), np.asarray(dist)
        src = np.repeat(np.arange(self.n_bins), np.diff(off))
        keep = src < nbr
        return np.stack([src[keep], nbr[keep]], axis=1), dist[keep]

    # Queries --------------------------------------------------------------------------
    @property
    def boundary_bins(self) -> np.ndarray:
        """0.6.0's ``boundary_bins``: active bins with an inactive or missing axis neighbour
        in the cell array (grids of 2-3 dimensions, hexagonal lattices); on 1-D grids and
        tracks, bins with fewer than 2 graph neighbours."""
        return np.asarray(self._e.boundary_bins(), dtype=np.int64)

    def bin_at(self, points: Any) -> np.ndarray:
        """Active bin of each point (int64), −1 outside, on the top edge, inactive or NaN."""
        p = _positions(points, self.n_dims)
        out = np.empty(p.shape[0], dtype=np.int64)
        self._e.bin_at(p.ctypes.data, p.shape[0], out.ctypes.data)
        return out

    def contains(self, points: Any) -> np.ndarray:
        return self.bin_at(points) >= 0

    def bin_center_of(self, bin_indices: Any) -> np.ndarray:
        return self._centers[np.asarray(bin_indices)]

    def interpolate(self, field: Any, points: Any, *, mode: str = "nearest") -> np.ndarray:
        """``field`` (one value per bin) at ``points``: ``'nearest'`` takes the nearest bin's
        value (``map_points_to_bins`` with its lowest-index tie rule and 10-spacing reach,
        NaN beyond); ``'linear'`` interpolates between bin centres on any grid (NaN outside
        the centres' hull and next to inactive bins, as scipy's RegularGridInterpolator)."""
        f = np.require(np.asarray(field, dtype=np.float64), None, "CA")
        if f.ndim != 1 or f.shape[0] != self.n_bins:
            raise ValueError(f"field has shape {f.shape}; expected ({self.n_bins},)")
        if not np.isfinite(f).all():
            raise ValueError(f"field has {int((~np.isfinite(f)).sum())} NaN or infinite values; interpolation needs finite values")
        p = np.asarray(points, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != self.n_dims:
            raise ValueError(f"points have shape {p.shape}; expected (n_points, {self.n_dims})")
        if mode not in ("nearest", "linear"):
            raise ValueError(f"mode {mode!r}: expected 'nearest' or 'linear'")
        if p.shape[0] == 0:
            return np.array([], dtype=np.float64)
        if not np.isfinite(p).all():
            raise ValueError(f"points have {int((~np.isfinite(p)).sum())} non-finite coordinates (NaN or inf)")
        p = np.require(p, None, "CA")
        if mode == "nearest":
            bins = map_points_to_bins(p, self)
            out = np.full(p.shape[0], np.nan)
            out[bins >= 0] = f[bins[bins >= 0]]
            return out
        out = np.empty(p.shape[0])
        self._e.interpolate_linear(f.ctypes.data, p.ctypes.data, p.shape[0], out.ctypes.data)
        return out

    def neighbors(self, bin_index: int) -> list[int]:
        return [int(b) for b in self._e.neighbors(int(bin_index))]

    def path_between(self, source_bin: int, target_bin: int) -> list[int]:
        """A shortest path (Dijkstra on edge lengths), both ends included; [] if unreachable."""
        return list(self._e.path_between(int(source_bin), int(target_bin)))

    def distance_between(self, point1: Any, point2: Any) -> float:
        """Geodesic distance between the bins of two points (inf if either is outside)."""
        b = self.bin_at(np.stack([_positions(point1, self.n_dims)[0], _positions(point2, self.n_dims)[0]]))
        if (b < 0).any():
            return float("inf")
        return float(self._e.distance_bins(int(b[0]), int(b[1])))

    def distance_to(self, targets: Sequence[int] | str, *, metric: str = "geodesic") -> np.ndarray:
        """Distance from every bin to the nearest target bin: geodesic (multi-source
        Dijkstra) or euclidean (between centres). A region name targets the bins of that
        region's ``region_membership`` column (as 0.6.0: polygon regions only; a region with
        no bin warns and is refused)."""
        if metric not in ("euclidean", "geodesic"):
            raise ValueError(f"metric must be 'euclidean' or 'geodesic', got '{metric}'")
        if isinstance(targets, str):
            if targets not in self.regions:
                raise KeyError(f"Region '{targets}' not found. Available regions: {list(self.regions)}")
            name, region = targets, self.regions[targets]
            # The region's membership column (0.6.0's rule: points have none), alone.
            inside = polygon_mask(region.data, self._centers, True) if region.kind == "polygon" else []
            targets = np.flatnonzero(inside).tolist()
            if not targets:
                warnings.warn(f"Region '{name}' contains no bins. All distances will be inf.",
                              UserWarning, stacklevel=2)
        t = [int(x) for x in np.atleast_1d(np.asarray(targets, dtype=np.int64))]
        if not t:
            raise ValueError("targets cannot be empty. Provide at least one target bin index "
                             "or a region name containing bins.")
        if metric == "geodesic":
            return np.asarray(self._e.distance_to(t))
        for b in t:
            self._e.neighbors(b)  # range check
        c = self._centers
        return np.min(np.linalg.norm(c[:, None, :] - c[None, t, :], axis=2), axis=1)

    # Regions --------------------------------------------------------------------------
    def bins_in_region(self, region_name: str) -> np.ndarray:
        """0.6.0's ``bins_in_region``: a point region's bin (none when it falls outside), or
        the bins whose centre a polygon strictly contains."""
        region = self.regions[region_name]
        if region.kind == "point":
            point = np.asarray(region.data).reshape(1, -1)
            if point.shape[1] != self.n_dims:
                raise ValueError(f"Region point dimension {point.shape[1]} does not match environment "
                                 f"dimension {self.n_dims}.")
            b = self.bin_at(point)
            return np.asarray(b[b != -1], dtype=int)
        return np.flatnonzero(polygon_mask(region.data, self._centers, include_boundary=False))

    def region_membership(self, regions: "Regions | None" = None, *, include_boundary: bool = True) -> np.ndarray:
        """0.6.0's ``region_membership``: (n_bins, n_regions) booleans, a column per region
        in order; polygon regions cover (``include_boundary``) or contain bin centres, point
        regions' columns stay False (as 0.6.0)."""
        if regions is None:
            regions = self.regions
        elif not isinstance(regions, Regions):
            raise TypeError(f"regions must be a Regions instance or None, got {type(regions).__name__}")
        if not isinstance(include_boundary, bool):
            raise TypeError(f"include_boundary must be a bool, got {type(include_boundary).__name__}")
        out = np.zeros((self.n_bins, len(regions)), dtype=bool)
        for k, region in enumerate(regions.values()):
            if region.kind == "polygon":
                out[:, k] = polygon_mask(region.data, self._centers, include_boundary)
        return out

    def region_mask(self, regions: Any, *, include_boundary: bool = True) -> np.ndarray:
        """0.6.0's ``region_mask``: bins in any of ``regions`` (a name, a list of names or
        Regions, a Region, or Regions): a point region's bin, polygons by centre."""
        if isinstance(regions, str):
            resolved = [self.regions[regions]]
        elif isinstance(regions, list):
            resolved = [self.regions[r] if isinstance(r, str) else r for r in regions]
        elif isinstance(regions, Region):
            resolved = [regions]
        elif isinstance(regions, Regions):
            resolved = list(regions.values())
        else:
            raise TypeError(f"regions must be str, list[str], Region, or Regions; got {type(regions).__name__}.")
        if not isinstance(include_boundary, bool):
            raise TypeError(f"include_boundary must be a bool, got {type(include_boundary).__name__}")
        mask = np.zeros(self.n_bins, dtype=bool)
        for region in resolved:
            if region.kind == "point":
                b = self.bin_at(np.asarray(region.data).reshape(1, -1))
                if b[0] != -1:
                    mask[b[0]] = True
            else:
                mask |= polygon_mask(region.data, self._centers, include_boundary)
        return mask

    # Smoothing ------------------------------------------------------------------------
    def smooth(self, field: Any, bandwidth: float, *, mode: str = "density",
               operator: str = "legacy") -> np.ndarray:
        """``field`` (n_bins,) or (n_bins, k) smoothed with neurospatial 0.6.0's diffusion
        kernel (``operator='legacy'``: ``mode`` 'density' (default), 'transition' or
        'average') or the physical-σ finite-volume operator, as an exponential action."""
        f = np.asarray(field, dtype=np.float64)
        if f.shape[0:1] != (self.n_bins,) or f.ndim not in (1, 2):
            raise ValueError(f"field has shape {f.shape}; expected ({self.n_bins},) or ({self.n_bins}, k)")
        k = 1 if f.ndim == 1 else f.shape[1]
        if k == 0:
            return f.copy()
        f = np.require(f, None, "CA")
        out = np.empty_like(f)
        self._e.smooth(f.ctypes.data, k, float(bandwidth), mode, operator, out.ctypes.data)
        return out

    def compute_kernel(self, bandwidth: float, *, mode: str = "density", operator: str = "legacy",
                       cache: bool = True) -> np.ndarray:
        """The dense (n_bins, n_bins) kernel K with ``smooth(f) == K @ f``; refused above
        ``MAX_KERNEL_BINS`` bins (use ``smooth``). With ``cache`` (neurospatial's default) it
        is kept — up to 1 GiB of kernels per environment, least recently used out — and
        ``smooth`` at the same (bandwidth, mode, operator) then applies it: one product,
        the cheapest exact operator once it exists (without it, smoothing is matrix-free)."""
        n = self.n_bins
        if n > MAX_KERNEL_BINS:  # refused by the engine before it touches the (absent) output
            self._e.compute_kernel(float(bandwidth), mode, operator, MAX_KERNEL_BINS, False, 0)
        out = np.empty((n, n))
        self._e.compute_kernel(float(bandwidth), mode, operator, MAX_KERNEL_BINS, bool(cache), out.ctypes.data)
        return out

    def clear_cache(self, *, kdtree: bool = True, kernels: bool = True, cached_properties: bool = True) -> None:
        """neurospatial's ``clear_cache``: ``kernels`` drops the cached dense kernels,
        ``cached_properties`` the smoothing operators built from the graph. voxfield has no
        KD-tree (its nearest-bin index is O(n_bins), built once; an environment never
        changes), so ``kdtree`` has nothing to free."""
        self._e.clear_cache(bool(kernels), bool(cached_properties))

    # Trajectories ---------------------------------------------------------------------
    def occupancy(self, times: Any, positions: Any, *, speed: Any = None, min_speed: float | None = None,
                  max_gap: float | None = 0.5, bandwidth: float | None = None, time_allocation: str = "start",
                  return_seconds: bool = True) -> np.ndarray:
        """Seconds (or interval counts) in each bin: interval [t_i, t_i+1) goes to sample
        i's bin when inside, no longer than ``max_gap`` and with ``speed[i] ≥ min_speed``;
        ``bandwidth`` smooths it with the transition kernel (mass-conserving)."""
        if time_allocation not in ("start", "linear"):
            raise ValueError(f"time_allocation {time_allocation!r}: expected 'start' or 'linear'")
        p = _positions(positions, self.n_dims)
        t = _times(times, p.shape[0])
        s = None if speed is None else [float(v) for v in np.asarray(speed, dtype=np.float64).ravel()]
        occ = np.empty(self.n_bins)
        self._e.occupancy(t.ctypes.data, t.shape[0], p.ctypes.data, s, None if min_speed is None else float(min_speed),
                          None if max_gap is None else float(max_gap), bool(return_seconds),
                          time_allocation == "linear", occ.ctypes.data)
        if bandwidth is not None:
            occ = self.smooth(occ, bandwidth, mode="transition")
        return occ

    def bin_sequence(self, times: Any, positions: Any, *, dedup: bool = True,
                     outside_value: int | None = -1) -> np.ndarray:
        """The bins a trajectory visits (int32): −1 (``outside_value``) for samples outside,
        or those samples dropped with ``outside_value=None``; repeats collapsed with ``dedup``."""
        p = _positions(positions, self.n_dims)
        t = _times(times, p.shape[0])
        # As 0.6.0: any outside_value but None keeps −1 for outside samples.
        out = np.empty(p.shape[0], dtype=np.int32)
        n = self._e.bin_sequence(t.ctypes.data, t.shape[0], p.ctypes.data, bool(dedup), outside_value is not None,
                                 out.ctypes.data)
        return out[:n].copy()

    def bin_sequence_with_runs(self, times: Any, positions: Any, *,
                               outside_value: int | None = -1) -> "BinSequenceWithRuns":
        """The deduplicated bin sequence with each run's start sample and length in the
        original arrays (0.6.0): with ``outside_value=None`` outside samples are dropped and
        split runs."""
        empty = np.array([], dtype=np.int64)
        # Every sample's bin (the times checked as for bin_sequence).
        bins = self.bin_sequence(times, positions, dedup=False, outside_value=-1)
        if len(bins) == 0:
            return BinSequenceWithRuns(np.array([], dtype=np.int32), empty, empty)
        idx = np.arange(len(bins))
        if outside_value is None:
            keep = bins != -1
            bins, idx = bins[keep], idx[keep]
            if len(bins) == 0:
                return BinSequenceWithRuns(np.array([], dtype=np.int32), empty, empty)
        change = np.concatenate([[True], bins[1:] != bins[:-1]])
        if outside_value is None and len(idx) > 1:
            change |= np.concatenate([[False], np.diff(idx) > 1])
        pos = np.flatnonzero(change)
        starts = idx[change]
        ends = idx[np.concatenate([pos[1:], [len(idx)]]) - 1]
        return BinSequenceWithRuns(bins[change], starts.astype(np.int64), (ends - starts + 1).astype(np.int64))

    def transitions(self, bins: Any = None, *, times: Any = None, positions: Any = None, lag: int = 1,
                    allow_teleports: bool = False, method: str | None = None, bandwidth: float | None = None,
                    normalize: bool = True) -> Any:
        """A (n_bins, n_bins) ``scipy.sparse.csr_matrix`` of transitions, as 0.6.0: empirical
        counts ``bins[k] → bins[k + lag]`` (from ``bins`` or the trajectory's bin sequence; jumps
        between non-neighbours dropped unless ``allow_teleports``), rows normalised with
        ``normalize``; or a model: ``method='random_walk'`` (uniform over neighbours) or
        ``'diffusion'`` (the transition-mode kernel at ``bandwidth``, dense below
        ``MAX_KERNEL_BINS``)."""
        import scipy.sparse

        n = self.n_bins
        if method is not None:
            if bins is not None or times is not None or positions is not None:
                raise ValueError("give method (a model) or bins/times/positions (empirical), not both")
            if lag != 1 or allow_teleports:
                raise ValueError("lag and allow_teleports apply to empirical transitions only")
            if method == "random_walk":
                if bandwidth is not None:
                    raise ValueError("bandwidth applies to method='diffusion' only")
                off, cols, vals = self._e.random_walk(bool(normalize))
            elif method == "diffusion":
                if bandwidth is None:
                    raise ValueError("method='diffusion' needs a bandwidth (σ in the environment's units)")
                if not normalize:
                    raise ValueError("method='diffusion' is always normalised; normalize=False is not supported")
                return scipy.sparse.csr_matrix(self.compute_kernel(bandwidth, mode="transition"))
            else:
                raise ValueError(f"method {method!r}: expected 'random_walk' or 'diffusion'")
        else:
            if bins is None and times is None and positions is None:
                raise ValueError("give bins, or times and positions")
            if bins is not None and (times is not None or positions is not None):
                raise ValueError("give bins or times/positions, not both")
            if bins is None:
                if times is None or positions is None:
                    raise ValueError("times and positions go together")
                bins = self.bin_sequence(times, positions, dedup=False, outside_value=-1)
            b = np.asarray(bins)
            if b.dtype.kind not in "iu":
                raise ValueError(f"bins must be integers, got dtype {b.dtype}")
            if int(lag) < 1:
                raise ValueError(f"lag must be positive (got {lag})")
            off, cols, vals = self._e.transitions(b.astype(np.int64).ravel().tolist(), int(lag),
                                                  bool(allow_teleports), bool(normalize))
        return scipy.sparse.csr_matrix((np.asarray(vals), np.asarray(cols, dtype=np.int64), np.asarray(off)),
                                       shape=(n, n))

    def field(self, values: Any, *, mode: str = "linear") -> "BinMap":
        """A map over this environment (one value per bin, e.g. a smoothed rate map) read as a
        voxfield field: ``sample(points)`` and ``plane(origin, u, v, shape)`` like a volume, read
        ``'linear'`` between bin centres (grids) or from the ``'nearest'`` bin."""
        return BinMap(self, values, mode)

    def subset(self, *, bins: Any = None, region_names: Sequence[str] | None = None, polygon: Any = None,
               invert: bool = False) -> "Environment":
        """The environment of the selected bins (a boolean mask over bins, the bins whose
        centre is strictly inside a 2-D polygon or inside any of the named polygon regions),
        ``invert`` to drop them instead; regions are not carried over (as 0.6.0). A grid
        keeps its edges and neighbourhood (as 0.6.0's ``from_grid_mask``); hexagonal and
        track environments keep their layout over the remaining bins."""
        given = sum(x is not None for x in (bins, region_names, polygon))
        if given != 1:
            raise ValueError("Exactly one of {bins, region_names, polygon} must be provided.")
        if bins is not None:
            mask = np.asarray(bins)
            if mask.dtype != np.bool_:
                raise ValueError(f"bins must be a boolean array, got dtype {mask.dtype}")
            if mask.shape != (self.n_bins,):
                raise ValueError(f"bins must have shape ({self.n_bins},), got {mask.shape}")
        elif region_names is not None:
            if not isinstance(region_names, (list, tuple)):
                raise ValueError(f"region_names must be a list or tuple, got {type(region_names)}")
            if len(region_names) == 0:
                raise ValueError("region_names cannot be empty")
            for name in region_names:
                if name not in self.regions:
                    raise ValueError(f"Region '{name}' not found in environment. "
                                     f"Available regions: {list(self.regions)}")
            mask = np.zeros(self.n_bins, dtype=bool)
            for name in region_names:
                region = self.regions[name]
                if region.kind == "point":
                    raise ValueError(f"Region '{name}' is a point-type region. subset() only supports "
                                     "polygon-type regions. Use a boolean mask (bins parameter) to select "
                                     "bins containing specific points.")
                mask |= polygon_mask(region.data, self._centers, include_boundary=False)
        else:
            if self.n_dims != 2:
                raise ValueError(f"polygon selection needs a 2-D environment, this one is {self.n_dims}-D")
            c = self._centers
            mask = _inside(_polygon_rings(polygon), c[:, 0], c[:, 1])
        if invert:
            mask = ~mask
        if not mask.any():
            raise ValueError(f"no bins selected (invert={invert})")
        return Environment(self._e.subset(mask.tolist()))

    def rebin(self, factor: int | Sequence[int]) -> "Environment":
        """A grid coarsened by an integer factor per axis (0.6.0's ``rebin``: axes cut to a
        multiple of the factor with a warning, every coarse bin active)."""
        import warnings

        f = [factor] * self.n_dims if np.ndim(factor) == 0 else list(factor)
        if len(f) != self.n_dims:
            raise ValueError(f"factor has {len(f)} values for a {self.n_dims}-D environment")
        for i, x in enumerate(f):
            if not isinstance(x, (int, np.integer)) or isinstance(x, bool):
                raise ValueError(f"factor[{i}] = {x!r} must be an integer")
            if x <= 0:
                raise ValueError(f"factor[{i}] = {x} must be positive")
        if self.layout_type == "RegularGrid":
            shape = self.grid_shape
            if any(s % x for s, x in zip(shape, f)):
                warnings.warn(f"grid shape {shape} is not divisible by {tuple(f)}; it is cut to "
                              f"{tuple(s // x * x for s, x in zip(shape, f))} first", UserWarning, stacklevel=2)
        return Environment(self._e.rebin([int(x) for x in f]))

    def __repr__(self) -> str:
        return f"Environment({self.n_bins} bins, {self.n_dims}-D grid {self.grid_shape})"


class BinSequenceWithRuns:
    """Runs of a trajectory in bins: ``bins[i]`` for run i, which starts at sample
    ``run_starts[i]`` and spans ``run_lengths[i]`` samples."""

    def __init__(self, bins: np.ndarray, run_starts: np.ndarray, run_lengths: np.ndarray):
        self.bins, self.run_starts, self.run_lengths = bins, run_starts, run_lengths

    def __iter__(self):
        return iter((self.bins, self.run_starts, self.run_lengths))


class BinMap:
    """A bin map read as a field (see ``Environment.field``). Positions have the
    environment's coordinates (1-3 per point); NaN where the map cannot be read (outside
    the arena, NaN positions, next to inactive bins when linear)."""

    def __init__(self, env: Environment, values: Any, mode: str):
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (env.n_bins,):
            raise ValueError(f"values have shape {v.shape}; expected ({env.n_bins},)")
        if mode not in ("linear", "nearest"):
            raise ValueError(f"mode {mode!r}: expected 'linear' or 'nearest'")
        if mode == "linear" and env.layout_type != "RegularGrid":
            raise ValueError(f"mode='linear' needs a rectangular grid; this environment is {env.layout_type}")
        self.env, self.values, self.mode = env, v.tolist(), mode

    def _pad(self, x: Any, what: str) -> list[float]:
        a = np.asarray(x, dtype=np.float64).ravel()
        if a.shape != (self.env.n_dims,):
            raise ValueError(f"{what} must have {self.env.n_dims} coordinates, got {a.shape[0]}")
        return a.tolist() + [0.0] * (3 - self.env.n_dims)

    def sample(self, points: Any) -> np.ndarray:
        """The map at (n, n_dims) points."""
        p = np.asarray(points, dtype=np.float64)
        if p.ndim == 1:
            p = p[None, :]
        if p.ndim != 2 or p.shape[1] != self.env.n_dims:
            raise ValueError(f"points have shape {p.shape}; expected (n, {self.env.n_dims})")
        xyz = np.zeros((p.shape[0], 3))
        xyz[:, :self.env.n_dims] = p
        out = np.empty(p.shape[0])
        self.env._e.field_sample(self.values, self.mode == "linear", xyz.ctypes.data, p.shape[0], out.ctypes.data)
        return out

    def plane(self, origin: Any, u: Any, v: Any, shape: Sequence[int]) -> np.ndarray:
        """The map on a grid of points origin + i·u + j·v, as an (nv, nu) image (shape = (nv, nu))."""
        nv, nu = (int(s) for s in shape)
        if nu <= 0 or nv <= 0:
            raise ValueError(f"shape {tuple(shape)} must be positive")
        out = np.empty((nv, nu))
        self.env._e.field_plane(self.values, self.mode == "linear", self._pad(origin, "origin"),
                                self._pad(u, "u"), self._pad(v, "v"), nu, nv, out.ctypes.data)
        return out


def _jsonable(x: Any) -> Any:
    """numpy scalars and arrays (and tuples inside graphs) as JSON values."""
    if isinstance(x, (np.generic, np.ndarray)):
        return x.tolist()
    raise TypeError(f"{type(x).__name__} in the graph cannot be written as JSON")


def _polygon_rings(polygon: Any) -> list[np.ndarray]:
    """The exterior and interior rings of a shapely Polygon, or one ring of (n, 2) vertices."""
    if hasattr(polygon, "exterior"):
        rings = [np.asarray(polygon.exterior.coords, dtype=np.float64)]
        rings += [np.asarray(r.coords, dtype=np.float64) for r in polygon.interiors]
    else:
        rings = [np.asarray(polygon, dtype=np.float64)]
    for r in rings:
        if r.ndim != 2 or r.shape[1] != 2:
            raise ValueError(f"polygon vertices must have shape (n, 2), got {r.shape}")
        if not np.isfinite(r).all():
            raise ValueError("polygon vertices must be finite")
    distinct = np.unique(rings[0], axis=0)
    if len(distinct) < 3:
        raise ValueError(f"a polygon needs at least 3 distinct vertices, got {len(distinct)}")
    return rings


def _inside(rings: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Strictly inside (even-odd over all rings; points on any edge are outside)."""
    inside = np.zeros(x.shape, dtype=bool)
    boundary = np.zeros(x.shape, dtype=bool)
    for r in rings:
        a, b = r, np.roll(r, -1, axis=0)
        for (x0, y0), (x1, y1) in zip(a, b):
            if x0 == x1 and y0 == y1:
                continue
            crosses = (y0 > y) != (y1 > y)
            with np.errstate(divide="ignore", invalid="ignore"):
                xi = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
            inside ^= crosses & (x < xi)
            cross = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
            boundary |= (cross == 0) & (np.minimum(x0, x1) <= x) & (x <= np.maximum(x0, x1)) \
                & (np.minimum(y0, y1) <= y) & (y <= np.maximum(y0, y1))
    return inside & ~boundary


def map_points_to_bins(points: Any, env: Environment, *, tie_break: str = "lowest_index",
                       return_dist: bool = False, max_distance: float | None = None,
                       max_distance_factor: float | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """neurospatial 0.6.0's nearest-bin mapping: the bin whose centre is nearest each point
    (``'lowest_index'``: the lowest index among centres within 1e-10 of the nearest), −1 for
    points farther than ``max_distance``, or ``max_distance_factor`` × the typical bin spacing
    (default 10 ×). Exact nearest centres from a bucket grid, in parallel."""
    if max_distance is not None and max_distance_factor is not None:
        raise ValueError("give max_distance or max_distance_factor, not both")
    if max_distance is not None and not max_distance >= 0:
        raise ValueError(f"max_distance must be non-negative, got {max_distance}")
    if max_distance_factor is not None and not max_distance_factor > 0:
        raise ValueError(f"max_distance_factor must be positive, got {max_distance_factor}")
    if tie_break not in ("lowest_index", "closest_center"):
        raise ValueError(f"tie_break {tie_break!r}: expected 'lowest_index' or 'closest_center'")
    p = _positions(points, env.n_dims)
    bins = np.empty(p.shape[0], dtype=np.int64)
    dist = np.empty(p.shape[0])
    env._e.map_points_to_bins(p.ctypes.data, p.shape[0], tie_break == "lowest_index",
                              None if max_distance is None else float(max_distance),
                              None if max_distance_factor is None else float(max_distance_factor),
                              bins.ctypes.data, dist.ctypes.data)
    return (bins, dist) if return_dist else bins


class SpatialRates:
    """Rate maps of many units over one environment (neurospatial 0.6.0's
    ``SpatialRatesResult`` fields): ``firing_rates`` (n_units, n_bins) in Hz,
    ``occupancy`` (n_bins,) in seconds."""

    def __init__(self, firing_rates: np.ndarray, occupancy: np.ndarray, env: Environment,
                 smoothing_method: str, bandwidth: float):
        self.firing_rates, self.occupancy, self.env = firing_rates, occupancy, env
        self.smoothing_method, self.bandwidth = smoothing_method, bandwidth

    def __len__(self) -> int:
        return self.firing_rates.shape[0]

    def spatial_information(self) -> np.ndarray:
        """Skaggs information (bits per spike) of every unit."""
        return spatial_information(self.firing_rates, self.occupancy)

    def sparsity(self) -> np.ndarray:
        return sparsity(self.firing_rates, self.occupancy)

    def _single(self) -> bool:
        return hasattr(self, "firing_rate")

    def peak_locations(self) -> np.ndarray:
        """(n_units, n_dims) bin centres of each unit's highest rate (NaN for an all-NaN unit)."""
        r = self.firing_rates
        finite = np.isfinite(r).any(axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            peak = np.nanargmax(np.where(finite[:, None], r, 0.0), axis=1)
        out = self.env.bin_centers[peak].astype(np.float64, copy=True)
        out[~finite] = np.nan
        return out

    def peak_location(self) -> np.ndarray:
        """The peak's bin centre: (n_dims,) for one unit (``compute_spatial_rate``), else
        (n_units, n_dims) as ``peak_locations``."""
        p = self.peak_locations()
        return p[0] if self._single() else p

    def peak_firing_rate(self) -> np.ndarray | float:
        """The highest rate per unit (a float for one unit)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p = np.nanmax(self.firing_rates, axis=1)
        return float(p[0]) if self._single() else p

    def is_place_cell(self, *, threshold: float = 0.2, min_size: int | None = None, max_mean_rate: float = 10.0,
                      detect_subfields: bool = True) -> bool | np.ndarray:
        """Whether ``detect_place_fields`` finds a field (one bool per unit for many units)."""
        got = [len(detect_place_fields(self.env, r, threshold=threshold, min_size=min_size,
                                       max_mean_rate=max_mean_rate, detect_subfields=detect_subfields)) > 0
               for r in self.firing_rates]
        return got[0] if self._single() else np.array(got)


def compute_spatial_rates(env: Environment, spike_times: Any, times: Any, positions: Any, *,
                          smoothing_method: str = "diffusion_kde", bandwidth: float = 5.0,
                          min_occupancy: float = 0.0, fill_value: float | None = None, speed: Any = None,
                          min_speed: float | None = None, max_gap: float | None = 0.5) -> SpatialRates:
    """neurospatial 0.6.0's ``compute_spatial_rates``: spikes within the trajectory's time
    span and in valid intervals (the ones occupancy keeps) are placed by linear
    interpolation and binned; ``diffusion_kde`` divides the density-smoothed counts by
    the density-smoothed occupancy (NaN where that is ≤ ``min_occupancy``); ``gaussian_kde``
    does the same with 0.6.0's dense Euclidean Gaussian weights (ignoring walls), computed
    axis by axis on the grid, never as an n² matrix; ``binned`` smooths the raw rate with
    NaN-aware weights. One smoothing action serves all units."""
    if speed is not None and min_speed is None:
        raise ValueError("speed is only used with min_speed")
    if smoothing_method not in ("diffusion_kde", "gaussian_kde", "binned"):
        raise ValueError(f"smoothing_method {smoothing_method!r}: expected 'diffusion_kde', 'gaussian_kde' or 'binned'")
    trains = _spike_trains(spike_times)
    p = _positions(positions, env.n_dims)
    t = _times(times, p.shape[0])
    s = None if speed is None else [float(v) for v in np.asarray(speed, dtype=np.float64).ravel()]
    counts, occ = env._e.spike_counts([x.tolist() for x in trains], t.ctypes.data, t.shape[0], p.ctypes.data, s,
                                      None if min_speed is None else float(min_speed),
                                      None if max_gap is None else float(max_gap))
    n = env.n_bins
    counts = np.asarray(counts).reshape(len(trains), n)
    occ = np.asarray(occ)
    if smoothing_method in ("gaussian_kde", "diffusion_kde"):
        rates = np.asarray(env._e.kde_rates(smoothing_method == "gaussian_kde", counts.ravel().tolist(), occ.tolist(),
                                            float(bandwidth), float(min_occupancy))).reshape(len(trains), n)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.where(occ > 0, counts / occ, np.nan)
        if min_occupancy > 0:
            raw = np.where(occ >= min_occupancy, raw, np.nan)
        if bandwidth <= 0:
            rates = raw
        else:
            nan = np.isnan(raw[0]) if len(trains) else np.zeros(n, bool)
            fields = np.concatenate([np.where(np.isnan(raw), 0.0, raw).T, (~nan)[:, None].astype(float)], axis=1)
            sm = env.smooth(fields, bandwidth)
            with np.errstate(divide="ignore", invalid="ignore"):
                rates = np.where(sm[:, -1:] > 0, sm[:, :-1] / sm[:, -1:], np.nan).T
            if nan.all():
                rates = raw
    if fill_value is not None:
        rates = np.where(np.isnan(rates), fill_value, rates)
    return SpatialRates(rates, occ, env, smoothing_method, float(bandwidth))


def compute_spatial_rate(env: Environment, spike_times: Any, times: Any, positions: Any, **kwargs: Any) -> SpatialRates:
    """One unit's rate map: ``compute_spatial_rates`` with a single spike train
    (``firing_rates`` has shape (1, n_bins); ``firing_rate`` is its row)."""
    r = compute_spatial_rates(env, [np.asarray(spike_times, dtype=np.float64).ravel()], times, positions, **kwargs)
    r.firing_rate = r.firing_rates[0]
    return r


def _rate_scores(firing_rates: Any, occupancy: Any, base: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """Skaggs information and sparsity of every unit, computed by voxfield-env (one copy of the formulas)."""
    r = np.require(firing_rates, np.float64, "CA")
    o = np.require(occupancy, np.float64, "CA").ravel()
    single = r.ndim == 1
    r = np.require(np.atleast_2d(r), None, "CA")
    if r.ndim != 2 or r.shape[1] != o.shape[0]:
        raise ValueError(f"firing rates of shape {np.shape(firing_rates)} do not match {o.shape[0]} occupancy bins")
    info, sparse = np.empty(r.shape[0]), np.empty(r.shape[0])
    _voxfield.rate_scores(r.ctypes.data, r.shape[0], r.shape[1], o.ctypes.data, float(base), info.ctypes.data,
                          sparse.ctypes.data)
    return info, sparse, single


def spatial_information(firing_rates: Any, occupancy: Any, *, base: float = 2.0) -> np.ndarray | float:
    """Skaggs information per spike (0.6.0's formula: NaN as 0, 0 when degenerate, ≥ 0)."""
    info, _, single = _rate_scores(firing_rates, occupancy, base)
    return float(info[0]) if single else info


def sparsity(firing_rates: Any, occupancy: Any) -> np.ndarray | float:
    """Sparsity (Σ p·r)² / Σ p·r² in [0, 1], as 0.6.0 computes it."""
    _, sparse, single = _rate_scores(firing_rates, occupancy, 2.0)
    return float(sparse[0]) if single else sparse


def selectivity(firing_rate: Any, occupancy: Any) -> float:
    """Peak rate over the occupancy-weighted mean rate (0.6.0): inf when the mean is 0 and
    the peak is not, NaN when both are 0 or no bin is finite."""
    r, o = np.asarray(firing_rate, dtype=np.float64), np.asarray(occupancy, dtype=np.float64)
    ok = np.isfinite(r) & np.isfinite(o)
    if not ok.any():
        return float("nan")
    p = o[ok] / o[ok].sum()
    peak, mean = r[ok].max(), (p * r[ok]).sum()
    if mean == 0:
        return float("inf") if peak > 0 else float("nan")
    return float(peak / mean)


def information_per_second(firing_rate: Any, occupancy: Any, *, base: float = 2.0) -> float:
    """Skaggs information in bits per second: bits per spike × the mean rate (0.6.0)."""
    info = spatial_information(firing_rate, occupancy, base=base)
    r, o = np.asarray(firing_rate, dtype=np.float64), np.asarray(occupancy, dtype=np.float64)
    ok = np.isfinite(r) & np.isfinite(o)
    if not ok.any():
        return float("nan")
    p = o[ok] / o[ok].sum()
    return float(info * (p * r[ok]).sum())


def rate_map_coherence(firing_rate: Any, env: Environment, *, method: str = "pearson") -> float:
    """The correlation between each bin's rate and the mean rate of its graph neighbours
    (0.6.0's coherence; 'pearson' or 'spearman'); NaN when undefined."""
    r = np.asarray(firing_rate, dtype=np.float64)
    if r.shape != (env.n_bins,):
        raise ValueError(f"firing_rate.shape must be ({env.n_bins},), got {r.shape}")
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method {method!r}: expected 'pearson' or 'spearman'")
    ok = np.isfinite(r)
    if not ok.any() or np.all(r[ok] == r[ok][0]):
        return float("nan")
    off, nbr, _ = env._e.csr()
    off, nbr = np.asarray(off), np.asarray(nbr, dtype=np.int64)
    deg = np.diff(off)
    src = np.repeat(np.arange(env.n_bins), deg)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.bincount(src, weights=r[nbr], minlength=env.n_bins) / deg
    means[deg == 0] = np.nan
    ok &= np.isfinite(means)
    if ok.sum() < 2:
        return float("nan")
    a, b = r[ok], means[ok]
    if np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    if method == "spearman":
        a, b = _ranks(a), _ranks(b)
    return _pearson(a, b)


class PlaceFields(list):
    """The place fields of one unit (each an int64 array of bins), strongest first;
    ``excluded_reason`` says why a unit has none by rule (a putative interneuron)."""

    def __init__(self, fields: list, excluded_reason: str | None = None):
        super().__init__(fields)
        self.fields = list(fields)
        self.excluded_reason = excluded_reason
        self.n_excluded = 0 if excluded_reason is None else 1


def detect_place_fields(env: Environment, firing_rate: Any, *, threshold: float = 0.2,
                        min_size: int | None = None, max_mean_rate: float = 10.0,
                        detect_subfields: bool = True) -> PlaceFields:
    """neurospatial 0.6.0's place fields: from the highest remaining peak, the connected bins
    at or above ``threshold`` × peak (at least ``min_size`` bins, default 9), split into
    subfields at 0.5 / 0.7 of the peak when more than twice that size; none for a unit whose
    mean rate exceeds ``max_mean_rate`` (with a warning)."""
    import warnings

    r = np.asarray(firing_rate, dtype=np.float64)
    if r.shape[:1] != (env.n_bins,) or r.ndim != 1:
        raise ValueError(f"firing_rate shape {r.shape} does not match env.n_bins ({env.n_bins})")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    size = 9 if min_size is None else int(min_size)
    if size < 0:
        raise ValueError(f"min_size {min_size} must be ≥ 0")
    mean = float(np.nanmean(r)) if np.isfinite(r).any() or (~np.isnan(r)).any() else float("nan")
    if mean > max_mean_rate:
        warnings.warn(f"detect_place_fields: unit excluded as a putative interneuron (mean rate {mean:.2f} Hz "
                      f"> max_mean_rate {max_mean_rate} Hz)", UserWarning, stacklevel=2)
        return PlaceFields([], "mean_rate_above_threshold")
    fields = env._e.place_fields(r.tolist(), float(threshold), size, float(max_mean_rate), bool(detect_subfields))
    return PlaceFields([np.asarray(f, dtype=np.int64) for f in fields])


# Bayesian decoding ------------------------------------------------------------------
def bin_spikes_in_time(spike_trains: Sequence[Any], dt: float, t_start: float | None = None,
                       t_stop: float | None = None, *, orient: str = "time_x_neuron"
                       ) -> tuple[np.ndarray, np.ndarray]:
    """neurospatial's ``bin_spikes_in_time``: (counts int64 (n_time, n_neurons) — or
    (n_neurons, n_time) with ``orient="neuron_x_time"`` — and bin centres) on the grid
    ``t_start + dt * arange(n + 1)``, ``n = floor((t_stop - t_start) / dt + 1e-9)``; bins
    ``[edge, edge + dt)``, the last closed (numpy.histogram's rule)."""
    if orient not in ("time_x_neuron", "neuron_x_time"):
        raise ValueError(f"orient must be 'time_x_neuron' or 'neuron_x_time', got {orient!r}.")
    trains = [np.asarray(t, dtype=np.float64).ravel().tolist() for t in spike_trains]
    data, centres = _voxfield.bin_spikes_in_time(trains, float(dt), None if t_start is None else float(t_start),
                                                  None if t_stop is None else float(t_stop))
    counts = np.frombuffer(data, dtype=np.int64).reshape(len(centres), len(trains)).copy()
    return (counts.T.copy() if orient == "neuron_x_time" else counts), np.asarray(centres)


class DecodingResult:
    """neurospatial's ``DecodingResult``: ``posterior`` (n_time, n_bins), ``map_estimate``,
    ``map_position``, ``mean_position``, ``posterior_entropy`` (bits), ``times``."""

    def __init__(self, posterior: np.ndarray, env: "Environment", times: np.ndarray | None,
                 map_estimate: np.ndarray, mean_position: np.ndarray, entropy: np.ndarray):
        self.posterior = posterior
        self.env = env
        self.times = times
        self.map_estimate = map_estimate
        self.mean_position = mean_position
        self.posterior_entropy = entropy

    @property
    def n_time_bins(self) -> int:
        return self.posterior.shape[0]

    @property
    def map_position(self) -> np.ndarray:
        return self.env.bin_centers[self.map_estimate]

    def __repr__(self) -> str:
        return f"<DecodingResult: {self.n_time_bins} time bins × {self.posterior.shape[1]} bins>"

    def summary(self) -> dict[str, Any]:
        """neurospatial's ``summary``: time bins, bins, mean and maximum entropy (bits)."""
        n_bins = int(self.posterior.shape[1])
        return {"n_time_bins": self.n_time_bins, "n_bins": n_bins,
                "mean_entropy": float(np.mean(self.posterior_entropy)),
                "max_entropy": float(np.log2(n_bins)) if n_bins > 0 else 0.0}

    def error_against(self, true_times: Any, true_positions: Any, *, metric: str = "euclidean") -> np.ndarray:
        """neurospatial's ``error_against``: the MAP position's distance to the true track
        (linearly interpolated at the decode ``times``), euclidean or geodesic (``decoding_error``);
        NaN for time bins with no finite posterior."""
        if self.times is None:
            raise ValueError("error_against() requires decode times, but this DecodingResult has times=None. "
                             "Provide `times` when decoding so the decode grid can be aligned to the "
                             "ground-truth track.")
        tt = np.asarray(true_times, dtype=np.float64)
        tp = np.asarray(true_positions, dtype=np.float64)
        for name, a in (("times", np.asarray(self.times, dtype=np.float64)), ("true_times", tt),
                        ("true_positions", tp)):
            if not np.isfinite(a).all():
                raise ValueError(f"{name} must be finite (no NaN or inf)")
        if tt.ndim != 1:
            raise ValueError(f"true_times must be 1D, got shape {tt.shape}")
        if np.any(np.diff(tt) <= 0):
            raise ValueError("true_times must be strictly increasing (no duplicates): the ground truth is "
                             "aligned onto the decode times by linear interpolation")
        d = self.env.n_dims
        if tp.shape != (tt.shape[0], d):
            raise ValueError(f"true_positions must have shape ({tt.shape[0]}, {d}) to match true_times and "
                             f"the environment dimensionality, got {tp.shape}")
        decode_times = np.asarray(self.times, dtype=np.float64)
        aligned = np.stack([np.interp(decode_times, tt, tp[:, k]) for k in range(d)], axis=1)
        errors = decoding_error(self.map_position, aligned, env=self.env, metric=metric)
        undecodable = ~np.any(np.isfinite(self.posterior), axis=1)
        errors[undecodable] = np.nan
        return errors


def _decode(env: Environment, spike_counts: Any, encoding_models: Any, dt: float, prior: Any, method: str,
            times: Any, validate: bool, keep_posterior: bool) -> tuple:
    if method != "poisson":
        raise ValueError(f"method must be 'poisson', got {method!r}")
    rates = getattr(encoding_models, "firing_rates", encoding_models)
    rates = np.require(np.asarray(rates, dtype=np.float64), None, "C")
    counts_in = np.asarray(spike_counts)
    if counts_in.ndim != 2:
        raise ValueError(f"spike_counts must be 2-D with shape (n_time_bins, n_neurons), got shape {counts_in.shape}")
    if rates.ndim != 2 or rates.shape[1] != env.n_bins:
        raise ValueError(f"encoding_models has shape {rates.shape}; expected (n_neurons, {env.n_bins})")
    if counts_in.shape[1] != rates.shape[0]:
        raise ValueError(f"Neuron-count mismatch: spike_counts has {counts_in.shape[1]} neurons (axis 1) but "
                         f"encoding_models has {rates.shape[0]} neurons (axis 0).")
    if validate and np.issubdtype(counts_in.dtype, np.floating):
        if not np.all(np.isfinite(counts_in)) or np.any(counts_in != np.round(counts_in)):
            raise ValueError("spike_counts must be whole, finite numbers (cast to integer first)")
    counts = np.require(counts_in.astype(np.int64, copy=False), None, "C")
    nt, nb, d = counts.shape[0], env.n_bins, env.n_dims
    kind, p = "uniform", np.zeros(0)
    if prior is not None:
        p = np.require(np.asarray(prior, dtype=np.float64), None, "C")
        kind = {1: "stationary", 2: "time"}.get(p.ndim)
        if kind is None:
            raise ValueError(f"prior must be 1D (stationary) or 2D (time-varying), got {p.ndim}D")
        if p.shape != ((nb,) if p.ndim == 1 else (nt, nb)):
            raise ValueError(f"prior has shape {p.shape}; expected ({nb},) or ({nt}, {nb})")
    if times is not None:
        times = np.asarray(times, dtype=np.float64)
        if times.ndim != 1 or len(times) != nt:
            raise ValueError(f"Length mismatch: times has {times.shape} but posterior has {nt} time bins.")
    post = np.empty((nt, nb)) if keep_posterior else None
    mapped, mean, ent, peak = np.empty(nt, dtype=np.int64), np.empty((nt, d)), np.empty(nt), np.empty(nt)
    nonfinite = env._e.decode_position(counts.ctypes.data, nt, counts.shape[1], rates.ctypes.data, float(dt), kind,
                                       p.ctypes.data, bool(validate),
                                       (0 if post is None else post.ctypes.data, mapped.ctypes.data,
                                        mean.ctypes.data, ent.ctypes.data, peak.ctypes.data))
    if nonfinite:
        warnings.warn(f"encoding_models has {nonfinite} non-finite (neuron, bin) entries: each is excluded "
                      "from its bin's likelihood as a zero-rate observation", UserWarning, stacklevel=3)
    return post, times, mapped, mean, ent, peak


def decode_position(env: Environment, spike_counts: Any, encoding_models: Any, dt: float, *,
                    prior: Any = None, method: str = "poisson", times: Any = None,
                    validate: bool = True) -> DecodingResult:
    """neurospatial's ``decode_position``: the Poisson posterior over ``env``'s bins for each
    row of ``spike_counts`` (n_time, n_neurons) given ``encoding_models`` (n_neurons, n_bins,
    Hz; or anything with ``firing_rates``) and a uniform, stationary (n_bins,) or per-time
    (n_time, n_bins) ``prior``. Only the neurons that spiked in a time bin are visited; time
    bins run in parallel with the GIL released, straight into the returned posterior. NaN
    rates are excluded from their bin (with a warning, as neurospatial); with ``validate``
    negative counts or rates, infinite rates, fractional counts and bad priors are refused.
    (neurospatial's ``dtype``/``time_chunk`` memory knobs are not taken: for a posterior too
    large to hold use ``decode_position_summary``.)"""
    post, times, mapped, mean, ent, _ = _decode(env, spike_counts, encoding_models, dt, prior, method, times,
                                                validate, True)
    return DecodingResult(post, env, times, mapped, mean, ent)


class DecodingSummary:
    """neurospatial's ``DecodingSummary``: per-time ``map_bin`` (= ``map_estimate``),
    ``map_position``, ``mean_position``, ``posterior_entropy``, ``peak_prob``, ``times``."""

    def __init__(self, env: "Environment", times: np.ndarray | None, map_bin: np.ndarray,
                 mean_position: np.ndarray, entropy: np.ndarray, peak_prob: np.ndarray):
        self.env, self.times, self.map_bin = env, times, map_bin
        self.mean_position, self.posterior_entropy, self.peak_prob = mean_position, entropy, peak_prob
        self.map_position = env.bin_centers[map_bin]

    @property
    def map_estimate(self) -> np.ndarray:
        return self.map_bin

    def summary(self) -> dict[str, Any]:
        """neurospatial's ``summary``: time bins, bins, mean and maximum entropy, mean peak."""
        n_bins = int(self.env.n_bins)
        return {"n_time_bins": self.n_time_bins, "n_bins": n_bins,
                "mean_entropy": float(np.mean(self.posterior_entropy)) if self.posterior_entropy.size else 0.0,
                "max_entropy": float(np.log2(n_bins)) if n_bins > 0 else 0.0,
                "mean_peak_prob": float(np.mean(self.peak_prob)) if self.peak_prob.size else 0.0}

    @property
    def n_time_bins(self) -> int:
        return self.map_bin.shape[0]


def decoding_error(decoded_positions: Any, actual_positions: Any, *, env: Environment | None = None,
                   metric: str = "euclidean") -> np.ndarray:
    """neurospatial's ``decoding_error`` per time bin: the straight-line distance, or with
    ``metric='geodesic'`` the graph distance between the two positions' bins (straight-line
    where either is outside the environment, NaN where either is NaN). The graph distances
    take one Dijkstra per distinct decoded bin, never neurospatial's n² distance matrix."""
    a = np.asarray(decoded_positions, dtype=np.float64)
    b = np.asarray(actual_positions, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"Shape mismatch: decoded_positions has shape {a.shape}, but actual_positions has "
                         f"shape {b.shape}")
    if metric == "euclidean":
        return np.linalg.norm(a - b, axis=1)
    if metric != "geodesic":
        raise ValueError(f"Invalid metric '{metric}'. Must be 'euclidean' or 'geodesic'.")
    if env is None:
        raise ValueError("env is required when metric='geodesic'. Provide an Environment instance for "
                         "geodesic distance computation.")
    errors = np.full(a.shape[0], np.nan)
    valid = ~(np.isnan(a).any(axis=1) | np.isnan(b).any(axis=1))
    if valid.any():
        da, db = env.bin_at(a[valid]), env.bin_at(b[valid])
        inside = (da >= 0) & (db >= 0)
        out = np.empty(int(valid.sum()))
        out[inside] = env._e.pair_distances(da[inside].tolist(), db[inside].tolist())
        out[~inside] = np.linalg.norm(a[valid][~inside] - b[valid][~inside], axis=1)
        errors[valid] = out
    return errors


def median_decoding_error(decoded_positions: Any, actual_positions: Any) -> float:
    """neurospatial's ``median_decoding_error``: the median straight-line error, NaN ignored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmedian(decoding_error(decoded_positions, actual_positions)))


def decode_position_summary(env: Environment, spike_counts: Any, encoding_models: Any, dt: float, *,
                            prior: Any = None, method: str = "poisson", times: Any = None,
                            validate: bool = True) -> DecodingSummary:
    """neurospatial's ``decode_position_summary``: ``decode_position``'s estimates without
    ever holding the posterior — one row per thread, whatever the number of time bins
    (neurospatial's ``time_chunk`` block size has nothing to bound here and is not taken)."""
    _, times, mapped, mean, ent, peak = _decode(env, spike_counts, encoding_models, dt, prior, method, times,
                                                validate, False)
    return DecodingSummary(env, times, mapped, mean, ent, peak)


# Shuffle significance ---------------------------------------------------------------
from ._shuffles import (  # noqa: E402,F401  (shuffles live in their own file)
    ShuffleTestResult, SpatialShuffleResult, compute_shuffle_pvalue, compute_shuffle_zscore,
    shuffle_spatial_scores)
from ._regions import REGIONS_FORMAT  # noqa: E402,F401
from ._fields import field_size, field_stability, is_place_cell, rate_map_centroid  # noqa: E402,F401
from ._directional import (  # noqa: E402,F401  (head direction lives in its own file)
    DirectionalRateResult, compute_directional_rate, compute_directional_rates, is_head_direction_cell,
    rayleigh_test)
from ._cells import (  # noqa: E402,F401  (cell scores live in their own file)
    BatchScoresResult, batch_border_scores, batch_grid_scores, border_score, grid_score,
    spatial_autocorrelation, spatial_autocorrelations)
from . import _panics  # noqa: E402  (last: guards everything above)

_panics.guard_module(__name__)

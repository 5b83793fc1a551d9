"""Named regions of an environment with neurospatial 0.6.0's names and semantics:
``Region`` (a point, or a shapely polygon in 2-D) and ``Regions`` (a mapping of them, with
``add``/``update_region``/``set``/``remove``/``area``/``region_center``/``buffer`` and the
``Regions-v1`` JSON file), as neurospatial keeps them on ``env.regions``. Polygon regions
need shapely (neurospatial's own type for them); containment is shapely's ``contains_xy``
(strict) or ``covers`` (boundary included), as neurospatial calls them. Re-exported by
:mod:`voxfield.env`."""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

#: The tag of neurospatial's standalone regions file.
REGIONS_FORMAT = "Regions-v1"
#: Largest regions file read (a region is a name, a few coordinates and metadata).
MAX_REGIONS_FILE = 256 << 20


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _shapely() -> Any:
    try:
        import shapely
        import shapely.geometry  # noqa: F401
    except ImportError as e:  # pragma: no cover - shapely is in the test env
        raise ImportError("polygon regions need shapely (pip install shapely)") from e
    return shapely


@dataclass(frozen=True, slots=True)
class Region:
    """One named region: ``kind`` 'point' (``data`` a 1-D coordinate array) or 'polygon'
    (``data`` a shapely Polygon, 2-D); ``metadata`` is frozen (read-only mappings, tuples)."""

    name: str
    kind: str
    data: Any
    metadata: Mapping[str, Any] = field(default_factory=dict, repr=False)
    n_dims: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _freeze(copy.deepcopy(_thaw(self.metadata))))
        if self.kind == "point":
            data = self.data
            if hasattr(data, "coords") and not isinstance(data, np.ndarray):
                data = data.coords[0]
            arr = np.asarray(data, dtype=float)
            if arr.ndim != 1:
                raise ValueError("Point data must be a 1-D array-like.")
            object.__setattr__(self, "data", arr)
            object.__setattr__(self, "n_dims", arr.shape[0])
        elif self.kind == "polygon":
            if type(self.data).__name__ != "Polygon" or not hasattr(self.data, "exterior"):
                raise TypeError("data must be a Shapely Polygon for kind='polygon'.")
            object.__setattr__(self, "n_dims", 2)
        else:
            raise ValueError(f"Unknown kind {self.kind!r}")

    def __str__(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, Any]:
        """neurospatial's record: name, kind, geom (coordinates, or the polygon's GeoJSON
        mapping), metadata."""
        if self.kind == "point":
            geom: Any = self.data.tolist()
        else:
            geom = _shapely().geometry.mapping(self.data)
        return {"name": self.name, "kind": self.kind, "geom": geom, "metadata": _thaw(self.metadata)}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> "Region":
        kind = payload["kind"]
        if kind not in ("point", "polygon"):
            raise ValueError(f"Unknown kind {kind!r}")
        data = np.asarray(payload["geom"], dtype=float) if kind == "point" else \
            _shapely().geometry.shape(payload["geom"])
        return cls(name=payload["name"], kind=kind, data=data, metadata=payload.get("metadata", {}))


class Regions(MutableMapping):
    """Regions by name (insertion order), neurospatial's ``Regions``."""

    __slots__ = ("_store",)

    def __init__(self, items: Iterable[Region] | None = None) -> None:
        self._store: dict[str, Region] = {}
        for reg in items or ():
            self[reg.name] = reg

    def __getitem__(self, key: str) -> Region:
        return self._store[key]

    def __setitem__(self, key: str, value: Region) -> None:
        if key != value.name:
            raise ValueError(f"Key {key!r} must match Region.name {value.name!r}. "
                             f"Cannot assign region with name {value.name!r} to key {key!r}.")
        if key in self._store:
            raise KeyError(f"Region {key!r} already exists. Use Regions.update_region(...) to modify it in "
                           "place, or Regions.set(name, region) for the idempotent replace path.")
        self._store[key] = value

    def __delitem__(self, key: str) -> None:
        self._store.pop(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._store)

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return f"Regions({', '.join(f'{n}({r.kind})' for n, r in self._store.items())})"

    @staticmethod
    def _make(name: str, point: Any, polygon: Any, metadata: Any) -> Region:
        if (point is None) == (polygon is None):
            raise ValueError("Specify **one** of 'point' or 'polygon'.")
        if point is not None:
            return Region(name, "point", point, metadata or {})
        return Region(name, "polygon", polygon, metadata or {})

    def add(self, name: str, *, point: Any = None, polygon: Any = None,
            metadata: Mapping[str, Any] | None = None) -> Region:
        """A new region from one of ``point`` (coordinates or a shapely Point) or ``polygon``."""
        if (point is None) == (polygon is None):
            raise ValueError("Specify **one** of 'point' or 'polygon'.")
        if name in self:
            raise KeyError(f"Duplicate region name {name!r}.")
        region = self._make(name, point, polygon, metadata)
        self[name] = region
        return region

    def update_region(self, name: str, *, point: Any = None, polygon: Any = None,
                      metadata: Mapping[str, Any] | None = None) -> Region:
        """Replaces an existing region's geometry (and metadata, when given), keeping its place."""
        if (point is None) == (polygon is None):
            raise ValueError("Specify **one** of 'point' or 'polygon'.")
        if name not in self:
            raise KeyError(f"Region {name!r} does not exist. Use add() to create new regions.")
        old = self._store[name]
        region = self._make(name, point, polygon, metadata if metadata is not None else old.metadata)
        self._store[name] = region
        return region

    def set(self, name: str, region: Region) -> Region:
        if name != region.name:
            raise ValueError(f"Key {name!r} must match Region.name {region.name!r}.")
        self._store[name] = region
        return region

    def remove(self, name: str) -> None:
        del self._store[name]

    def list_names(self) -> list[str]:
        return list(self._store)

    def area(self, name: str) -> float:
        region = self[name]
        return float(region.data.area) if region.kind == "polygon" else 0.0

    def region_center(self, name: str) -> np.ndarray | None:
        if name not in self._store:
            raise KeyError(f"Region '{name}' not found in this collection.")
        region = self._store[name]
        if region.kind == "point":
            return np.asarray(region.data, dtype=float)
        if region.data.is_empty:
            return None
        return np.array(region.data.centroid.coords[0], dtype=float)

    def buffer(self, source: str | Any, distance: float, new_name: str, **meta: Any) -> Region:
        """A new polygon region: a 2-D point or polygon region (or raw (2,) coordinates)
        grown by ``distance`` (shapely's ``buffer``)."""
        geometry = _shapely().geometry
        if isinstance(source, str):
            src = self[source]
            if src.kind == "polygon":
                geom = src.data
            elif src.kind == "point" and src.n_dims == 2:
                geom = geometry.Point(src.data)
            else:
                raise ValueError("Can only buffer 2-D point or polygon regions.")
        else:
            arr = np.asarray(source, dtype=float)
            if arr.shape != (2,):
                raise ValueError("Raw source must be shape (2,) for buffering.")
            geom = geometry.Point(arr)
        poly = geom.buffer(distance)
        if type(poly).__name__ != "Polygon":
            raise ValueError("Buffer produced non-polygon geometry.")
        return self.add(new_name, polygon=poly, metadata=meta)

    def to_json(self, path: str | Path, *, indent: int = 2) -> None:
        """neurospatial's ``Regions-v1`` file (written under a temporary name, then renamed)."""
        out = Path(path)
        if out.is_symlink() or (out.exists() and not out.is_file()):
            raise ValueError(f"{out}: exists and is not a regular file (a link, device or folder); "
                             "not replaced")
        out.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"format": REGIONS_FORMAT, "regions": [r.to_dict() for r in self.values()]},
                          indent=indent)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out)

    @classmethod
    def from_json(cls, path: str | Path) -> "Regions":
        p = Path(path)
        # A FIFO or device would block or never end: only a regular file of bounded size is read.
        if not p.is_file():
            raise ValueError(f"{p}: not a regular file")
        if p.stat().st_size > MAX_REGIONS_FILE:
            raise ValueError(f"{p}: {p.stat().st_size} bytes is over {MAX_REGIONS_FILE} for a regions file")
        try:
            blob = json.loads(p.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{p}: not a regions file (not JSON: {e})") from e
        if not isinstance(blob, dict) or not isinstance(blob.get("regions"), list):
            raise ValueError(f"{path}: not a regions file (no 'regions' list)")
        if blob.get("format") != REGIONS_FORMAT:
            warnings.warn(f"Unrecognised format tag {blob.get('format')!r}; attempting best-effort load",
                          UserWarning, stacklevel=2)
        return regions_from_records(blob["regions"], str(path))


def regions_from_records(records: Any, where: str) -> Regions:
    """Regions from neurospatial's records (a file's ``regions`` list), errors naming ``where``."""
    if not isinstance(records, list):
        raise ValueError(f"{where}: 'regions' must be a list, got {type(records).__name__}")
    out = Regions()
    for i, rec in enumerate(records):
        try:
            out[rec["name"]] = Region.from_dict(rec)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"{where}: region {i} is not a valid region record ({type(e).__name__}: {e})") from e
    return out


def polygon_mask(polygon: Any, centres: np.ndarray, include_boundary: bool) -> np.ndarray:
    """Bins whose centre is inside a shapely polygon: shapely's ``covers`` with the boundary,
    ``contains_xy`` without (neurospatial's two calls)."""
    shapely = _shapely()
    if centres.shape[1] != 2:
        raise ValueError(f"Polygon regions are only supported for 2D environments "
                         f"(this one has {centres.shape[1]} dimensions).")
    if include_boundary:
        return np.asarray(shapely.covers(polygon, shapely.points(centres[:, 0], centres[:, 1])), dtype=bool)
    return np.asarray(shapely.contains_xy(polygon, centres[:, 0], centres[:, 1]), dtype=bool)


from . import _panics  # noqa: E402  (last: guards everything above)

_panics.guard_module(__name__)

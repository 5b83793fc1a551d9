"""Regions of voxfield.env against neurospatial 0.6.0 itself: the same Region/Regions
behaviour, bins_in_region, region_membership, region_mask, distance_to a region,
subset(region_names=), and regions kept in the to_file/from_file pair both ways."""
import warnings

import numpy as np
import pytest

from voxfield import env as ve

ns = pytest.importorskip("neurospatial")
shapely = pytest.importorskip("shapely")
from shapely.geometry import Point, Polygon, box  # noqa: E402


def both(positions, bin_size, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ns.Environment.from_samples(positions, bin_size=bin_size, **kw), \
            ve.Environment.from_samples(positions, bin_size, **kw)


def arena(seed=1):
    return np.random.default_rng(seed).uniform(0, 50, (20000, 2))


def add_regions(env):
    env.regions.add("goal", polygon=box(10.0, 10.0, 20.0, 18.0), metadata={"reward": True, "drops": [1, 2]})
    # A polygon whose edges pass through bin centres: contains and covers differ.
    xs, ys = np.unique(env.bin_centers[:, 0]), np.unique(env.bin_centers[:, 1])
    env.regions.add("edge", polygon=Polygon([(xs[1], ys[1]), (xs[5], ys[1]), (xs[5], ys[5]), (xs[1], ys[5])]))
    env.regions.add("start", point=[31.3, 44.9])
    env.regions.add("outside", polygon=box(200.0, 200.0, 210.0, 210.0))
    env.regions.add("nowhere", point=Point(-5.0, 3.0))
    env.regions.buffer("start", 4.0, "start_zone", colour="red")


def test_region_queries_match():
    a, b = both(arena(), 2.0)
    add_regions(a)
    add_regions(b)
    assert list(b.regions) == list(a.regions) and repr(b.regions) == repr(a.regions)
    for name in b.regions:
        np.testing.assert_array_equal(b.bins_in_region(name), a.bins_in_region(name))
        assert b.regions.area(name) == a.regions.area(name)
        np.testing.assert_array_equal(b.regions.region_center(name), a.regions.region_center(name))
    assert len(b.bins_in_region("goal")) > 0 and len(b.bins_in_region("outside")) == 0
    for inc in (True, False):
        np.testing.assert_array_equal(b.region_membership(include_boundary=inc),
                                      a.region_membership(include_boundary=inc))
    assert (b.region_membership()[:, 1] != b.region_membership(include_boundary=False)[:, 1]).any()
    for sel in ["goal", ["goal", "start"], ["edge", "nowhere"]]:
        for inc in (True, False):
            np.testing.assert_array_equal(b.region_mask(sel, include_boundary=inc),
                                          a.region_mask(sel, include_boundary=inc))
    np.testing.assert_array_equal(b.region_mask(b.regions), a.region_mask(a.regions))
    np.testing.assert_array_equal(b.region_mask(b.regions["goal"]), a.region_mask(a.regions["goal"]))
    for metric in ("geodesic", "euclidean"):
        np.testing.assert_allclose(b.distance_to("goal", metric=metric), a.distance_to("goal", metric=metric),
                                   rtol=1e-12)
    # As 0.6.0: a point region has no membership, so distance_to it warns and is refused.
    for env in (a, b):
        with pytest.warns(UserWarning, match="contains no bins"), pytest.raises(ValueError, match="empty"):
            env.distance_to("start")
    sa, sb = a.subset(region_names=["goal", "edge"]), b.subset(region_names=["goal", "edge"])
    np.testing.assert_allclose(sb.bin_centers, sa.bin_centers)
    assert len(sb.regions) == len(sa.regions) == 0
    sa, sb = a.subset(region_names=("goal",), invert=True), b.subset(region_names=("goal",), invert=True)
    assert sb.n_bins == sa.n_bins


def test_regions_collection_behaves_as_neurospatial():
    from neurospatial.regions import Regions as NsRegions
    for R in (ve.Regions, NsRegions):
        r = R()
        g = r.add("g", point=[1.0, 2.0], metadata={"a": [1]})
        with pytest.raises(KeyError, match="Duplicate"):
            r.add("g", point=[0.0, 0.0])
        with pytest.raises(ValueError, match="one"):
            r.add("h")
        with pytest.raises(ValueError, match="one"):
            r.add("h", point=[0.0, 0.0], polygon=box(0, 0, 1, 1))
        with pytest.raises(TypeError, match="Polygon"):
            r.add("h", polygon=[[0, 0], [1, 0], [1, 1]])
        with pytest.raises(KeyError, match="already exists"):
            r["g"] = g
        with pytest.raises(ValueError, match="must match"):
            r["x"] = g
        with pytest.raises(KeyError, match="does not exist"):
            r.update_region("zz", point=[0.0, 0.0])
        u = r.update_region("g", polygon=box(0, 0, 2, 2))
        assert u.kind == "polygon" and dict(u.metadata)["a"] == (1,) and r.list_names() == ["g"]
        with pytest.raises(TypeError):
            u.metadata["b"] = 2
        r.remove("g")
        assert len(r) == 0


def test_regions_survive_files_both_ways(tmp_path):
    a, b = both(arena(2), 2.5)
    add_regions(a)
    add_regions(b)
    b.to_file(tmp_path / "vf")
    back = ns.Environment.from_file(tmp_path / "vf")
    assert list(back.regions) == list(b.regions)
    for name in b.regions:
        assert back.regions[name].to_dict() == a.regions[name].to_dict() == b.regions[name].to_dict()
    a.to_file(tmp_path / "ns")
    mine = ve.Environment.from_file(tmp_path / "ns")
    assert list(mine.regions) == list(a.regions)
    for name in a.regions:
        assert mine.regions[name].to_dict() == a.regions[name].to_dict()
        np.testing.assert_array_equal(mine.bins_in_region(name), a.bins_in_region(name))
    # The standalone Regions-v1 file, both ways.
    b.regions.to_json(tmp_path / "r.json")
    from neurospatial.regions import Regions as NsRegions
    assert [r.to_dict() for r in NsRegions.from_json(tmp_path / "r.json").values()] == \
        [r.to_dict() for r in b.regions.values()]
    a.regions.to_json(tmp_path / "n.json")
    assert [r.to_dict() for r in ve.Regions.from_json(tmp_path / "n.json").values()] == \
        [r.to_dict() for r in a.regions.values()]


def test_bad_regions_are_refused(tmp_path):
    a, b = both(arena(3), 2.0)
    b.regions.add("p3", point=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="dimension"):
        b.bins_in_region("p3")
    with pytest.raises(KeyError):
        b.bins_in_region("missing")
    with pytest.raises(KeyError, match="not found"):
        b.distance_to("missing")
    with pytest.raises(ValueError, match="point-type"):
        b.subset(region_names=["p3"])
    with pytest.raises(ValueError, match="not found"):
        b.subset(region_names=["missing"])
    with pytest.raises(ValueError, match="cannot be empty"):
        b.subset(region_names=[])
    with pytest.raises(TypeError, match="Regions"):
        b.region_membership(regions={"a": 1})
    with pytest.raises(TypeError, match="bool"):
        b.region_mask("p3", include_boundary=1)
    # A file whose regions are not region records: refused naming the file.
    b.regions.remove("p3")
    b.to_file(tmp_path / "e")
    import json
    meta = json.loads((tmp_path / "e.json").read_text())
    meta["regions"] = [{"name": "x", "kind": "circle", "geom": [0, 0]}]
    (tmp_path / "e.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="e.json.*region 0"):
        ve.Environment.from_file(tmp_path / "e")
    meta["regions"] = {"x": 1}
    (tmp_path / "e.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="regions must be a list"):
        ve.Environment.from_file(tmp_path / "e")
    line = ve.Environment.from_samples(np.linspace(0, 10, 100)[:, None], 1.0)
    line.regions.add("poly", polygon=box(0, 0, 1, 1))
    with pytest.raises(ValueError, match="2D"):
        line.bins_in_region("poly")


def test_hostile_region_files(tmp_path):
    import os
    r = ve.Regions()
    r.add("goal", polygon=box(0, 0, 1, 1))
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for bad, msg in [(fifo, "regular"), (tmp_path, "regular")]:
        with pytest.raises(ValueError, match=msg):
            ve.Regions.from_json(bad)
    (tmp_path / "cut.json").write_text('{"format": "Regions-v1", "regions": [{"name": "g", "ki')
    with pytest.raises(ValueError, match="not JSON"):
        ve.Regions.from_json(tmp_path / "cut.json")
    with open(tmp_path / "big.json", "wb") as f:  # sparse: refused by its size, never read
        f.truncate(257 << 20)
    with pytest.raises(ValueError, match="bytes is over"):
        ve.Regions.from_json(tmp_path / "big.json")
    # Outputs that are links, devices or folders are refused and left as they were.
    target = tmp_path / "kept.txt"
    target.write_text("keep me")
    (tmp_path / "link.json").symlink_to(target)
    for out in [tmp_path / "link.json", fifo, tmp_path]:
        with pytest.raises(ValueError, match="not a regular file"):
            r.to_json(out)
    assert target.read_text() == "keep me" and (tmp_path / "link.json").is_symlink()
    r.to_json(tmp_path / "ok.json")
    assert list(ve.Regions.from_json(tmp_path / "ok.json")) == ["goal"]

"""voxfield.dask on a distributed.LocalCluster with 2 worker processes (issue 13): sampling and
rasterising volumes (local and over HTTP) and RBF models equal the same calls in one process,
sources pickle as descriptions, and a worker killed mid-computation changes nothing."""

import os
import pickle
import signal
import time

import numpy as np
import pytest

import voxfield as vf

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")
vd = pytest.importorskip("voxfield.dask")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask")
    vol = np.random.default_rng(0).random((40, 50, 60)).astype(np.float32)
    a = zarr.create_array(str(root / "v.zarr"), shape=vol.shape, chunks=(16, 16, 16), dtype=vol.dtype)
    a[...] = vol
    return root, vol


def test_sample_equals_local_on_two_workers(client, store):
    root, vol = store
    pts = np.random.default_rng(1).uniform(-1, 1, (20000, 3)) * 3 + np.array(vol.shape) / 2
    pts[::97] *= 9  # some outside: cval
    got = vd.sample(str(root / "v.zarr"), da.from_array(pts, chunks=(1500, 3)), method="linear").compute()
    np.testing.assert_array_equal(got, vf.open(str(root / "v.zarr")).sample(pts))
    assert len(client.nthreads()) == 2
    # An open Volume and a remote URL of the same store.
    from test_remote import Server

    server = Server(root)
    try:
        url = f"{server.url}/v.zarr"
        got = vd.sample(vf.open(url), da.from_array(pts, chunks=(4000, 3)), method="nearest", dtype="source")
        np.testing.assert_array_equal(got.compute(), vf.open(str(root / "v.zarr")).sample(pts, method="nearest",
                                                                                           dtype="source"))
    finally:
        server.close()


def test_to_dask_rasterises_like_local(client, store, tmp_path):
    root, vol = store
    arr = vd.to_dask(str(root / "v.zarr"))
    assert arr.shape == vol.shape and arr.chunksize == (40, 50, 60)  # stored chunks grouped to >= 64 per axis
    da.to_zarr(vd.to_dask(str(root / "v.zarr"), chunks=(16, 25, 60)), str(tmp_path / "copy.zarr"))
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "copy.zarr"))[...], vol)
    shape, bounds = (21, 17, 13), (2.5, 30.5, 0, 49, 7.25, 20)
    got = vd.to_dask(str(root / "v.zarr"), shape=shape, bounds=bounds, chunks=(8, 8, 8), method="cubic").compute()
    axes = [np.linspace(bounds[2 * a], bounds[2 * a + 1], shape[a]) for a in range(3)]
    mesh = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=1)
    want = vf.open(str(root / "v.zarr")).sample(mesh, method="cubic").reshape(shape)
    np.testing.assert_array_equal(got, want)


def test_rbf_models_sample_and_rasterise_on_workers(client, tmp_path):
    rng = np.random.default_rng(2)
    p = rng.random((3000, 3))
    model = vf.rbf.RBFInterpolator(p, np.sin(4 * p[:, 0]) + p[:, 1] * p[:, 2])
    with pytest.raises(TypeError, match="save"):
        pickle.dumps(model)
    model.save(tmp_path / "m.vxr")
    q = rng.random((5000, 3))
    np.testing.assert_array_equal(vd.sample(model, da.from_array(q, chunks=(700, 3))).compute(), model(q))
    got = vd.to_dask(str(tmp_path / "m.vxr"), shape=(12, 10, 9), chunks=(5, 5, 5)).compute()
    lo, hi = model.info["bbox_lo"], model.info["bbox_hi"]
    axes = [np.linspace(lo[a], hi[a], n) for a, n in enumerate((12, 10, 9))]
    mesh = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=1)
    np.testing.assert_array_equal(got, model(mesh).reshape(12, 10, 9))


def test_sources_pickle_as_descriptions(store):
    root, vol = store
    v = vf.open(str(root / "v.zarr"))
    blob = pickle.dumps(v)
    assert len(blob) < 1000, len(blob)
    back = pickle.loads(blob)
    pts = np.array([[1.5, 2.5, 3.5], [30.0, 40.0, 50.0]])
    np.testing.assert_array_equal(back.sample(pts), v.sample(pts))
    with pytest.raises(TypeError, match="source"):
        vd.sample(object(), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="shape"):
        vd.to_dask(str(root / "v.zarr"), bounds=(0, 1, 0, 1, 0, 1))


def _slow(block):
    time.sleep(0.02)
    return block


def test_a_killed_worker_changes_nothing(client, store):
    root, vol = store
    pts = np.random.default_rng(3).uniform(0, 39, (400 * 500, 3))
    lazy = vd.sample(str(root / "v.zarr"), da.from_array(pts, chunks=(500, 3))).map_blocks(_slow, dtype=np.float32)
    future = client.compute(lazy)
    deadline = time.time() + 30
    while time.time() < deadline:  # wait until work is spread and under way
        done = client.run_on_scheduler(lambda dask_scheduler: sum(t.state == "memory"
                                                                  for t in dask_scheduler.tasks.values()))
        if done >= 40:
            break
        time.sleep(0.05)
    pids = client.run(os.getpid)
    assert not future.done(), "the computation ended before the kill: give it more work"
    os.kill(pids[sorted(pids)[0]], signal.SIGKILL)
    got = future.result(timeout=120)
    np.testing.assert_array_equal(got, vf.open(str(root / "v.zarr")).sample(pts))


def _awkward_samples(n, dim, seed):
    """Uniform samples plus a dense cluster (split domains), a lone far point (grown cells
    that reach past a tile's halo) and exact duplicates with other values (merged)."""
    rng = np.random.default_rng(seed)
    p = np.vstack([rng.random((n, dim)), 0.3 + 0.01 * rng.random((n // 8, dim)), np.full((1, dim), 2.5)])
    p = np.vstack([p, p[::37]])
    v = np.sin(3 * p[:, 0]) + p[:, 1] ** 2 + (p[:, -1] if dim == 3 else 0)
    v[-len(p[::37]):] += 1.0
    return p, v


@pytest.mark.filterwarnings("ignore:merged")
def test_fit_rbf_on_two_workers_is_the_local_fit(client, tmp_path):
    for dim, tiles, chans in ((2, 16, 1), (3, 8, 2)):
        p, v = _awkward_samples(12000, dim, 4 + dim)
        if chans == 2:
            v = np.stack([v, np.cos(v)], axis=1)
        local = vf.rbf.RBFInterpolator(p, v, points_per_cell=60)
        model = vd.fit_rbf(da.from_array(p, chunks=(2500, dim)), da.from_array(v, chunks=3100), points_per_cell=60,
                           tiles=tiles, path=tmp_path / f"m{dim}.vxr")
        assert model.info == local.info
        rep = model.fit_report
        assert rep["tiles"] > 4 and rep["rounds"] > 1 and rep["unseen"][-1] == 0, rep
        q = np.random.default_rng(9).uniform(-0.1, 2.6, (4000, dim))
        np.testing.assert_array_equal(model(q), local(q))
        # The saved model pickles to the workers like any other.
        got = vd.sample(str(tmp_path / f"m{dim}.vxr"), da.from_array(q, chunks=(1000, dim))).compute()
        np.testing.assert_array_equal(got, local(q))
    # numpy input, one tile, the default tile count: still the local fit.
    p, v = _awkward_samples(3000, 2, 1)
    np.testing.assert_array_equal(vd.fit_rbf(p, v)(p[:500]), vf.rbf.RBFInterpolator(p, v)(p[:500]))


def test_fit_rbf_refuses_what_a_local_fit_refuses(client):
    p, v = _awkward_samples(2000, 2, 3)
    chunked = lambda a: da.from_array(a, chunks=700)  # noqa: E731
    bad = p.copy()
    bad[1500, 1] = np.nan
    with pytest.raises(ValueError, match="point 1500 has a non-finite coordinate"):
        vd.fit_rbf(chunked(bad), chunked(v), tiles=4)
    with pytest.raises(ValueError, match=r"points \d+ and \d+ have the same coordinates") as e:
        vd.fit_rbf(chunked(p), chunked(v), tiles=4, duplicates="reject")
    a, b = (int(w) for w in str(e.value).split()[1:4:2])  # named by their rows in the whole input
    assert a < b and (p[a] == p[b]).all()
    line = np.stack([np.arange(300.0), 2 * np.arange(300.0)], axis=1)
    with pytest.raises(ValueError, match="collinear"):
        vd.fit_rbf(chunked(line), chunked(np.ones(300)), tiles=4)
    with pytest.raises(ValueError, match="no points"):
        vd.fit_rbf(np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(ValueError, match="one row per point"):
        vd.fit_rbf(chunked(p), chunked(v[:-1]))
    with pytest.raises(ValueError, match="kernel"):
        vd.fit_rbf(chunked(p), chunked(v), kernel="sinc")
    with pytest.raises(ValueError, match="overlap"):
        vd.fit_rbf(chunked(p), chunked(v), overlap=0.9)
    with pytest.raises(TypeError, match="numeric"):
        vd.fit_rbf(chunked(p.astype(str)), chunked(v))
    for tiles in (0, -3, 10**12):  # absurd tile counts: refused before any task runs
        with pytest.raises(ValueError, match="tiles must be 1 to 4096"):
            vd.fit_rbf(chunked(p), chunked(v), tiles=tiles)


def test_fit_rbf_survives_a_killed_worker(client):
    import threading

    rng = np.random.default_rng(8)
    p = rng.random((150_000, 2))
    v = np.sin(5 * p[:, 0]) * p[:, 1]
    local = vf.rbf.RBFInterpolator(p, v)
    out = {}

    def fit():
        try:
            out["model"] = vd.fit_rbf(da.from_array(p, chunks=(20_000, 2)), da.from_array(v, chunks=20_000), tiles=16)
        except Exception as e:  # noqa: BLE001 - reported below
            out["error"] = e

    worker = threading.Thread(target=fit)
    worker.start()
    deadline = time.time() + 60
    while time.time() < deadline:  # kill once the tiles are persisted and cells are being solved
        solving = client.run_on_scheduler(lambda dask_scheduler: sum(
            str(k).startswith("('_solve") or str(k).startswith("_solve") for k, t in dask_scheduler.tasks.items()
            if t.state in ("processing", "memory")))
        if solving:
            break
        time.sleep(0.01)
    assert solving, "no solve task was seen"
    pids = client.run(os.getpid)
    assert worker.is_alive(), "the fit ended before the kill: give it more work"
    os.kill(pids[sorted(pids)[-1]], signal.SIGKILL)
    worker.join(180)
    assert "error" not in out, out.get("error")
    q = rng.random((3000, 2))
    np.testing.assert_array_equal(out["model"](q), local(q))


def test_plane_and_slab_tiles_equal_the_whole(client, store):
    root, vol = store
    v = vf.open(str(root / "v.zarr"))
    args = dict(origin=(2.3, -1.7, 5.1), u=(0.31, 0.77, 0.05), v=(0.6, -0.2, 0.9))
    whole = v.plane(args["origin"], args["u"], args["v"], (70, 90), method="cubic")
    tiled = vd.plane(str(root / "v.zarr"), shape=(70, 90), chunks=(16, 23), method="cubic", **args)
    assert tiled.chunks == ((16, 16, 16, 16, 6), (23, 23, 23, 21))
    np.testing.assert_array_equal(tiled.compute(), whole)
    # A tile by hand: the offset makes it the whole plane's pixels, bit for bit.
    part = v.plane(args["origin"], args["u"], args["v"], (9, 11), method="cubic", offset=(40, 50))
    np.testing.assert_array_equal(part, whole[40:49, 50:61])
    whole = v.slab(args["origin"], args["u"], args["v"], (70, 90), 3.0, 0.5, "max")
    tiled = vd.slab(vf.open(str(root / "v.zarr")), shape=(70, 90), thickness=3.0, step=0.5, reduce="max",
                    chunks=(32, 32), **args)
    np.testing.assert_array_equal(tiled.compute(), whole)
    with pytest.raises(ValueError, match="parallel"):
        vd.plane(str(root / "v.zarr"), (0, 0, 0), (1, 0, 0), (2, 0, 0), (4, 4))
    for bad in ((-1, 0), (0, 2**64), (2**52, 0)):  # negative, past usize, past exact float64 indices
        with pytest.raises(ValueError, match="offset"):
            v.plane((0, 0, 0), (1, 0, 0), (0, 1, 0), (4, 4), offset=bad)

"""One door, from Python: every sampling option on every kind of field either changes the
result or is refused with a message naming it (the CLI's table, crates/voxfield-cli/tests/
one_door.rs), and a neural model samples bit for bit as the CLI samples it."""

import os
import subprocess

import numpy as np
import pytest

import voxfield

HERE = os.path.dirname(os.path.abspath(__file__))
OME = os.path.join(HERE, "..", "..", "..", "tests", "fixtures", "chunked", "ome.zarr")
PTS = np.array([[1.3, 2.7, 3.2], [5.5, 4.25, 6.75], [-1.5, 2.0, 3.0], [11.6, 9.2, 7.9]])
AFFINE = np.array([[2.0, 0, 0, 1], [0, 2, 0, 1], [0, 0, 2, 1], [0, 0, 0, 1]])


def smooth(shape):
    i, j, k = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    return (10 + 5 * np.sin(i / 5) * np.cos(j / 4) + 3 * k / 6).astype(np.float32)


@pytest.fixture(scope="module")
def fields(tmp_path_factory):
    d = tmp_path_factory.mktemp("one_door")
    np.save(d / "v.npy", smooth((12, 10, 14)))
    model = voxfield.compress(str(d / "v.npy"), epochs=2, log2_table=8, levels=4, width=16)
    model.save(d / "m.vxn")
    return {
        "dir": d,
        "volume": voxfield.open(str(d / "v.npy")),
        "multiscale": voxfield.open(OME),
        "neural": voxfield.open(str(d / "m.vxn")),
    }


OPTIONS = [
    ("method nearest", {"method": "nearest"}),
    ("method spline3", {"method": "spline3"}),
    ("mode wrap", {"mode": "wrap"}),
    ("cval 5", {"cval": 5.0}),
    ("world", {"world": True}),
    ("affine", {"affine": AFFINE}),
]
CHANGES = None
TABLE = {
    "volume": [CHANGES, CHANGES, CHANGES, CHANGES, ("world", "no affine"), CHANGES],
    "multiscale": [CHANGES] * 6,
    "neural": [
        ("method", "neural model", "evaluated directly"),
        ("method", "neural model"),
        ("mode", "neural model"),
        ("cval", "neural model"),
        ("world", "no affine"),
        CHANGES,
    ],
}


@pytest.mark.parametrize("kind", list(TABLE))
def test_every_option_is_applied_or_refused(fields, kind):
    vol = fields[kind]
    base = vol.sample(PTS, dtype=np.float64)
    assert np.isfinite(base).any()
    for (name, kwargs), expect in zip(OPTIONS, TABLE[kind]):
        if expect is CHANGES:
            got = vol.sample(PTS, dtype=np.float64, **kwargs)
            assert not np.array_equal(got, base, equal_nan=True), f"{kind} {name}: no effect"
        else:
            with pytest.raises(ValueError) as e:
                vol.sample(PTS, dtype=np.float64, **kwargs)
            for needle in expect:
                assert needle in str(e.value), f"{kind} {name}: {needle!r} not in {e.value}"


def test_plane_and_grid_refuse_the_same_options_on_a_model(fields):
    m = fields["neural"]
    with pytest.raises(ValueError, match="mode does not apply to this neural model"):
        m.plane((0, 0, 0), (1, 0, 0), (0, 1, 0), (4, 4), mode="wrap")
    with pytest.raises(ValueError, match="method does not apply to this neural model"):
        m.grid([0.5, 1.5], [1.0], [2.0], method="cubic")
    assert np.isfinite(m.plane((0, 0, 0), (1, 0, 0), (0, 1, 0), (4, 4))).all()


@pytest.mark.skipif(not os.environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_a_neural_model_samples_bit_for_bit_as_the_cli_samples_it(fields, tmp_path):
    d = fields["dir"]
    np.save(tmp_path / "pts.npy", PTS)
    r = subprocess.run([os.environ["VOXFIELD_CLI"], "sample", d / "m.vxn", "--points", tmp_path / "pts.npy",
                        "--out", tmp_path / "o.npy", "--dtype", "f64"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cli = np.load(tmp_path / "o.npy")
    py = fields["neural"].sample(PTS, dtype=np.float64)
    assert cli.tobytes() == py.tobytes()
    # The same refusal, word for word, from both front ends.
    r = subprocess.run([os.environ["VOXFIELD_CLI"], "sample", d / "m.vxn", "--points", tmp_path / "pts.npy",
                        "--out", tmp_path / "o2.npy", "--mode", "wrap"], capture_output=True, text=True)
    assert r.returncode != 0 and not (tmp_path / "o2.npy").exists()
    with pytest.raises(ValueError) as e:
        fields["neural"].sample(PTS, mode="wrap")
    assert str(e.value) in r.stderr, (str(e.value), r.stderr)


@pytest.mark.skipif(not os.environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_compress_refuses_the_same_bad_requests_with_the_same_words_as_the_cli(fields, tmp_path):
    """The engine resolves ratio, sizes, init and loss once (CompressOptions::for_request, Loss::from_str):
    the CLI and Python only parse, so the same bad request gets the same refusal from both."""
    d = fields["dir"]
    init = str(d / "m.vxn")
    cases = [
        ({"ratio": 0}, ["--ratio", "0"], "ratio 0 must be a positive number"),
        ({"ratio": float("nan")}, ["--ratio", "nan"], "must be a positive number"),
        ({"loss": "l3"}, ["--loss", "l3"], "unknown loss 'l3'"),
        ({"ratio": 4, "log2_table": 22}, ["--ratio", "4", "--log2-table", "22"], "bounds the model file"),
        ({"init": init, "levels": 4}, ["--init", init, "--levels", "4"], "init fixes the network's shape, so levels"),
    ]
    for kwargs, flags, needle in cases:
        with pytest.raises(ValueError) as e:
            voxfield.compress(str(d / "v.npy"), epochs=1, **kwargs)
        assert needle in str(e.value), (kwargs, str(e.value))
        out = tmp_path / "x.vxn"
        r = subprocess.run([os.environ["VOXFIELD_CLI"], "compress", d / "v.npy", "-o", out, "--epochs", "1", *flags],
                           capture_output=True, text=True)
        assert r.returncode != 0 and not out.exists(), (flags, r.stderr)
        assert str(e.value) in r.stderr, (flags, str(e.value), r.stderr)
    # An initialisation with a ratio: the ratio bounds the file (both front ends accept it).
    m = voxfield.compress(str(d / "v.npy"), epochs=1, init=init, ratio=2)
    assert m.ratio >= 2


@pytest.mark.skipif(not os.environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_meta_train_refuses_the_same_bad_requests_with_the_same_words_as_the_cli(fields, tmp_path):
    """MetaOptions::for_request and meta_train check every size once, for both front ends."""
    d = fields["dir"]
    cases = [
        ({"inner_steps": 0}, ["--inner-steps", "0"], "inner steps 0"),
        ({"meta_steps": 0}, ["--meta-steps", "0"], "meta steps 0"),
        ({"meta_lr": 2.0}, ["--meta-lr", "2"], "meta learning rate 2"),
        ({"batch": 0}, ["--batch", "0"], "batch"),
        ({"log2_table": 30}, ["--log2-table", "30"], "30"),
    ]
    for kwargs, flags, needle in cases:
        with pytest.raises(ValueError) as e:
            voxfield.meta_train([str(d / "v.npy")], meta_steps=kwargs.pop("meta_steps", 2), **kwargs)
        assert needle in str(e.value), (kwargs, str(e.value))
        out = tmp_path / "init.vxn"
        steps = [] if "--meta-steps" in flags else ["--meta-steps", "2"]
        r = subprocess.run([os.environ["VOXFIELD_CLI"], "compress", "meta-train", d / "v.npy", "-o", out, *steps,
                            *flags], capture_output=True, text=True)
        assert r.returncode != 0 and not out.exists(), (flags, r.stderr)
        assert str(e.value) in r.stderr, (flags, str(e.value), r.stderr)


@pytest.mark.skipif(not os.environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_rbf_fit_refuses_the_same_bad_requests_with_the_same_words_as_the_cli(tmp_path):
    """Kernel, ramp and duplicates are parsed by the engine (FromStr) and FitOptions checks the
    rest, so `voxfield rbf fit` and RBFInterpolator refuse the same request in the same words."""
    rng = np.random.default_rng(3)
    pts = rng.random((300, 2)) * 10
    vals = np.sin(pts[:, 0]) + pts[:, 1]
    np.save(tmp_path / "p.npy", np.c_[pts, vals])
    cases = [
        ({"kernel": "quintic"}, ["--kernel", "quintic"], "unknown kernel"),
        ({"ramp": "steep"}, ["--ramp", "steep"], "unknown ramp"),
        ({"duplicates": "drop"}, ["--duplicates", "drop"], "unknown duplicates policy"),
        ({"overlap": 0.9}, ["--overlap", "0.9"], "overlap"),
        ({"smoothing": -1.0}, ["--smoothing=-1"], "smoothing"),
        ({"degree": 0}, ["--degree", "0"], "needs degree >= 1"),
        ({"points_per_cell": 0}, ["--points-per-cell", "0"], "points"),
    ]
    for kwargs, flags, needle in cases:
        with pytest.raises(ValueError) as e:
            voxfield.RBFInterpolator(pts, vals, **kwargs)
        assert needle in str(e.value), (kwargs, str(e.value))
        out = tmp_path / "m.vxr"
        r = subprocess.run([os.environ["VOXFIELD_CLI"], "rbf", "fit", tmp_path / "p.npy", "-o", out, *flags],
                           capture_output=True, text=True)
        assert r.returncode != 0 and not out.exists(), (flags, r.stderr)
        assert str(e.value) in r.stderr, (flags, str(e.value), r.stderr)


@pytest.mark.skipif(not os.environ.get("VOXFIELD_CLI"), reason="VOXFIELD_CLI names the built voxfield")
def test_render_refuses_the_same_bad_requests_with_the_same_words_as_the_cli(fields, tmp_path):
    """A render request (mode, camera, transfer function, frames) is one engine type checked once
    (`voxfield::render::Request`): the same bad request gets the same refusal from both front ends."""
    d = fields["dir"]
    cases = [
        ({"window": (3, 3)}, ["--window", "3,3"]),
        ({"opacity": "0:0,0:1"}, ["--opacity", "0:0,0:1"]),
        ({"mode": "mip", "shading": True}, ["--mode", "mip", "--shading"]),
        ({"mode": "minip", "opacity": "0:0,1:1"}, ["--mode", "minip", "--opacity", "0:0,1:1"]),
        ({"mode": "iso"}, ["--mode", "iso"]),
        ({"mode": "mean", "iso": 2.0}, ["--mode", "mean", "--iso", "2"]),
        ({"mode": "mpi"}, ["--mode", "mpi"]),
        ({"view": "axis3"}, ["--view", "axis3"]),
        ({"projection": "fisheye"}, ["--projection", "fisheye"]),
        ({"step": 1e-3}, ["--step", "0.001"]),
        ({"zoom": 0.0}, ["--zoom", "0"]),
        ({"frames": 0}, ["--frames", "0"]),
        ({"size": (0, 5)}, ["--size", "0,5"]),
        ({"projection": "perspective", "fov": 180.0}, ["--projection", "perspective", "--fov", "180"]),
        ({"background": "red"}, ["--background", "red"]),
        # Options that make pictures, given for float values (.npy, dtype=float32):
        ({"background": "white", "dtype": np.float32}, ["--background", "white"]),
        ({"mode": "mip", "colormap": "magma", "dtype": np.float32}, ["--mode", "mip", "--colormap", "magma"]),
        ({"mode": "mean", "window": (0, 1), "dtype": np.float32}, ["--mode", "mean", "--window", "0,1"]),
    ]
    for kwargs, flags in cases:
        with pytest.raises(ValueError) as e:
            voxfield.render(str(d / "v.npy"), **kwargs)
        out = tmp_path / ("x.npy" if "dtype" in kwargs else "x.png")
        r = subprocess.run([os.environ["VOXFIELD_CLI"], "render", d / "v.npy", "-o", out, *flags],
                           capture_output=True, text=True)
        assert r.returncode != 0 and not out.exists(), (flags, r.stderr)
        if flags[:2] != ["--size", "0,5"]:  # clap refuses a 0 count itself, before the engine
            assert str(e.value) in r.stderr, (flags, str(e.value), r.stderr)

"""A panic in the Rust extension reaches Python as voxfield.InternalError (a RuntimeError that
`except Exception` catches), never as pyo3's PanicException (a BaseException), in every module."""

import inspect

import numpy as np
import pytest

import voxfield
import voxfield.dask
import voxfield.env
import voxfield.rbf
import voxfield.vectors
from voxfield import _voxfield


def test_a_rust_panic_is_an_ordinary_exception(monkeypatch, tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((2, 3, 4)))
    monkeypatch.setattr(_voxfield, "open_path", lambda *a, **k: _voxfield._panic("forced for a test"))
    with pytest.raises(voxfield.InternalError, match="forced for a test") as e:
        voxfield.open(str(tmp_path / "v.npy"))
    assert isinstance(e.value, RuntimeError)
    try:
        voxfield.open(str(tmp_path / "v.npy"))
    except Exception as caught:  # what a notebook user writes
        assert "internal error" in str(caught)


def test_every_module_guards_its_functions_and_methods():
    for module in (voxfield, voxfield.rbf, voxfield.env, voxfield.vectors, voxfield.dask):
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__ or isinstance(obj, type) and issubclass(
                    obj, BaseException):
                continue
            if inspect.isfunction(obj):
                assert getattr(obj, "__voxfield_guarded__", False), f"{module.__name__}.{name}"
            elif isinstance(obj, type):
                for m, member in vars(obj).items():
                    if inspect.isfunction(member):
                        assert getattr(member, "__voxfield_guarded__", False), f"{module.__name__}.{name}.{m}"

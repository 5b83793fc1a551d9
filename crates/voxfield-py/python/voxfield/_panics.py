"""A bug in voxfield's Rust code must not reach the user as pyo3's ``PanicException``: it
derives from ``BaseException``, so ``except Exception`` would not catch it and a notebook
would lose its state. Every function and method of voxfield's modules goes through
``guard``, which turns a panic into ``InternalError`` (a ``RuntimeError``)."""

from __future__ import annotations

import functools
import inspect
import sys
from typing import Any, Callable


class InternalError(RuntimeError):
    """voxfield hit an internal error (a bug: please report it with the message)."""


def _is_panic(e: BaseException) -> bool:
    return type(e).__name__ == "PanicException"


def guard(fn: Callable) -> Callable:
    if getattr(fn, "__voxfield_guarded__", False):
        return fn

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BaseException as e:
            if _is_panic(e):
                raise InternalError(f"voxfield internal error (please report it): {e}") from None
            raise

    guarded.__voxfield_guarded__ = True
    return guarded


def _guard_class(cls: type) -> None:
    for name, member in list(vars(cls).items()):
        if inspect.isfunction(member):
            setattr(cls, name, guard(member))
        elif isinstance(member, staticmethod):
            setattr(cls, name, staticmethod(guard(member.__func__)))
        elif isinstance(member, classmethod):
            setattr(cls, name, classmethod(guard(member.__func__)))
        elif isinstance(member, property):
            setattr(cls, name, property(*(guard(f) if f else None for f in (member.fget, member.fset, member.fdel)),
                                        doc=member.__doc__))


def guard_module(name: str) -> None:
    """Guards every function and class method defined in module ``name``."""
    module = sys.modules[name]
    for attr, obj in list(vars(module).items()):
        if getattr(obj, "__module__", None) != name:
            continue
        if inspect.isfunction(obj):
            setattr(module, attr, guard(obj))
        elif inspect.isclass(obj) and not issubclass(obj, BaseException):
            _guard_class(obj)

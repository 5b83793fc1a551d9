"""The test environment, checked against scripts/test-requirements.lock.

scripts/test installs the lock and sets VOXFIELD_LOCKED_ENV=1. Then a package off its pin
stops the session before collection, and a test that skips (a reference library that
would not import, a missing CLI) fails the run: in the locked environment every reference
is present, so a skip would hide a test that cannot fail. Run by hand in another
environment, the header says how it differs from the lock and skips stay skips.

A failed import during collection names the locked package behind the module and its pin.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys

import pytest

_SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "scripts", "testenv.py")
LOCKED = os.environ.get("VOXFIELD_LOCKED_ENV") == "1"


def _load_testenv():
    if not os.path.exists(_SCRIPT):
        return None
    spec = importlib.util.spec_from_file_location("voxfield_testenv", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


testenv = _load_testenv()


@pytest.fixture(scope="session")
def lock():
    """scripts/testenv.py as a module (the lock's reader and checks)."""
    if testenv is None:
        pytest.skip("scripts/testenv.py is not beside this checkout's tests")
    return testenv


def pytest_sessionstart(session):
    if LOCKED and testenv is not None:
        problems = testenv.check_versions(testenv.applicable(testenv.read_lock()))
        if problems:
            pytest.exit(testenv.report(problems), returncode=4)


def pytest_report_header(config):
    if testenv is None:
        return None
    problems = testenv.check_versions(testenv.applicable(testenv.read_lock()))
    if not problems:
        return "test environment: every package at its pin in scripts/test-requirements.lock"
    return f"test environment: {len(problems)} packages differ from scripts/test-requirements.lock"


def pytest_exception_interact(node, call, report):
    """Names the locked packages behind an import that failed while collecting a test module."""
    if testenv is None or not report.failed or not isinstance(node, pytest.Module):
        return
    err = call.excinfo.value
    while err is not None and not isinstance(err, ImportError):
        err = err.__cause__ or err.__context__
    if err is None:
        return
    lines = []
    for module in _modules_involved(err):
        pin = testenv.pin_of_module(module)
        if pin is None or any(line.startswith(pin.name + "==") for line in lines):
            continue
        try:
            have = importlib.metadata.version(pin.name)
        except importlib.metadata.PackageNotFoundError:
            have = "not installed"
        lines.append(f"{pin.name}=={pin.version} pinned in scripts/test-requirements.lock, installed: {have}")
    if not lines:
        lines.append(f"{err.name or 'the module'} is not a package of scripts/test-requirements.lock")
    report.sections.append(("test environment", "\n".join([f"import failed: {err}", *lines])))


def _modules_involved(err: ImportError) -> list[str]:
    """The installed packages whose code raised the error (outermost first), then the one it names."""
    names = []
    tb = err.__traceback__
    while tb is not None:
        path = tb.tb_frame.f_code.co_filename.replace(os.sep, "/")
        if "/site-packages/" in path:
            names.append(path.split("/site-packages/", 1)[1].split("/")[0].removesuffix(".py"))
        tb = tb.tb_next
    if err.name:
        names.append(err.name)
    return names


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    _no_skips(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    _no_skips(report)
    return report


def _no_skips(report):
    """In the locked environment a skip is a failure: every reference the tests use is installed."""
    if LOCKED and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in the locked test environment (VOXFIELD_LOCKED_ENV=1): {reason}"

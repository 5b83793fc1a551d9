"""The locked test environment (scripts/test-requirements.lock) and its checks."""

import os
import re
import subprocess
import sys
import textwrap

import pytest

from conftest import LOCKED

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.skipif(not LOCKED, reason="checks the environment scripts/test installs (VOXFIELD_LOCKED_ENV=1)")
def test_every_pinned_package_is_installed_at_its_pin_and_imports(lock):
    pins = lock.applicable(lock.read_lock())
    assert len(pins) > 50
    assert lock.check_versions(pins) == []
    problems, modules = lock.check_imports(pins)
    assert problems == []
    assert modules >= len(pins) - 5  # a few pins ship no module (pip's vendored names aside)


def test_the_lock_pins_every_top_level_requirement(lock):
    pins = {lock.normalize(p.name): p for p in lock.read_lock()}
    spec = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(==\s*([^\s;]+))?")
    with open(os.path.join(os.path.dirname(lock.LOCK), "test-requirements.in"), encoding="utf-8") as f:
        wanted = [spec.match(line.strip()) for line in f if line.strip() and not line.startswith("#")]
    assert len(wanted) >= 20
    for m in wanted:
        assert lock.normalize(m.group(1)) in pins, f"{m.group(1)} is required but not locked: run scripts/lock-test-env"
        if m.group(3):
            assert pins[lock.normalize(m.group(1))].version == m.group(3)


def test_every_pin_is_exact_and_hashed(lock):
    with open(lock.LOCK, encoding="utf-8") as f:
        text = f.read()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n\n", 1)[-1])
    pinned = [b for b in blocks if "==" in b.split("\n", 1)[0]]
    assert len(pinned) == len(lock.read_lock())
    for b in pinned:
        assert "--hash=sha256:" in b, b.split("\n", 1)[0]


def test_the_check_names_a_package_off_its_pin(lock, tmp_path):
    fake = tmp_path / "lock.txt"
    fake.write_text(
        "numpy==0.0.1 \\\n    --hash=sha256:00\n"
        "no-such-package-voxfield==1.0 \\\n    --hash=sha256:00\n"
        "pywin32==312 ; sys_platform == 'no-such-platform' \\\n    --hash=sha256:00\n"
        f"pytest=={pytest.__version__} \\\n    --hash=sha256:00\n"
    )
    pins = lock.read_lock(str(fake))
    assert [p.name for p in lock.applicable(pins)] == ["numpy", "no-such-package-voxfield", "pytest"]
    problems = lock.check_versions(lock.applicable(pins))
    import numpy

    assert problems == [
        f"numpy==0.0.1 is pinned but {numpy.__version__} is installed",
        "no-such-package-voxfield==1.0 is pinned but not installed",
    ]
    with pytest.raises(ValueError, match="cannot read the pin"):
        fake.write_text("numpy>=1 \\\n")
        lock.read_lock(str(fake))


def test_the_check_names_a_module_that_fails_to_import(lock, tmp_path, monkeypatch):
    (tmp_path / "voxfield_broken_dep.py").write_text("from dask.base import no_such_name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(lock, "modules_of", lambda name: ["voxfield_broken_dep"])
    problems, count = lock.check_imports([lock.Pin("broken", "1.0", None)])
    assert count == 1
    assert len(problems) == 1
    assert problems[0].startswith("broken==1.0: `import voxfield_broken_dep` fails: ImportError: cannot import name")


def _pytest_with_conftest(tmp_path, body, locked):
    """Runs pytest on one test module with this suite's conftest loaded as a plugin."""
    (tmp_path / "test_probe.py").write_text(textwrap.dedent(body))
    env = dict(os.environ, PYTHONPATH=HERE, VOXFIELD_LOCKED_ENV="1" if locked else "0")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_failed_import_during_collection_names_the_pinned_package(tmp_path):
    import dask

    run = _pytest_with_conftest(tmp_path, "from dask.base import no_such_name\n", locked=False)
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"dask=={dask.__version__} pinned in scripts/test-requirements.lock, installed: {dask.__version__}" in run.stdout


def test_a_skip_fails_in_the_locked_environment_only(tmp_path):
    body = """
        import pytest
        def test_skips():
            pytest.skip("a reference is missing")
        pytest.importorskip("no_such_module_voxfield")
    """
    run = _pytest_with_conftest(tmp_path, body, locked=True)
    assert run.returncode == 2, run.stdout + run.stderr  # a collection error
    assert "skipped in the locked test environment" in run.stdout
    assert "no_such_module_voxfield" in run.stdout
    body = body.replace('pytest.importorskip("no_such_module_voxfield")', "")
    run = _pytest_with_conftest(tmp_path, body, locked=True)
    assert run.returncode == 1 and "a reference is missing" in run.stdout, run.stdout
    run = _pytest_with_conftest(tmp_path, body, locked=False)
    assert run.returncode == 0 and "1 skipped" in run.stdout, run.stdout

#!/usr/bin/env python3
"""Checks the test environment against scripts/test-requirements.lock.

Every package the lock pins for this interpreter must be installed at exactly the pinned
version, and (with --import) every top-level module it ships must import. A failure names
the package, its pinned version and what went wrong, so a broken environment stops the
test run at the start instead of surfacing as a collection error (or a silent skip)
deep inside pytest.

    .venv/bin/python scripts/testenv.py --import     # what scripts/test runs first

conftest.py uses `pin_of_module` to name the pinned package behind a failed import.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import os
import re
import sys
import traceback
from dataclasses import dataclass

LOCK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-requirements.lock")
REGENERATE = "scripts/lock-test-env"

# Top-level names some wheels ship beside their real package: test suites, docs, examples,
# and modules only meant for other platforms or to be run as programs.
NOT_MODULES = {"tests", "test", "testing", "docs", "doc", "examples", "benchmarks", "bench", "scripts"}


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: str | None

    @property
    def key(self) -> str:
        return normalize(self.name)


def normalize(name: str) -> str:
    """PEP 503 name normalisation: lock names and installed names compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _markers():
    try:
        from packaging.markers import Marker
    except ImportError:  # pip vendors packaging; the lock's own copy may be the broken one
        from pip._vendor.packaging.markers import Marker
    return Marker


def read_lock(path: str = LOCK) -> list[Pin]:
    """The pins of the lock (every platform and Python), in file order."""
    pins = []
    line_re = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
    with open(path, encoding="utf-8") as f:
        for raw in f:
            if not raw.strip() or raw[0] in " #\t":
                continue
            m = line_re.match(raw.rstrip("\n"))
            if not m:
                raise ValueError(f"{path}: cannot read the pin {raw.strip()!r}")
            pins.append(Pin(m.group(1), m.group(2), m.group(3)))
    return pins


def applicable(pins: list[Pin]) -> list[Pin]:
    """The pins whose environment marker holds for this interpreter."""
    marker = _markers()
    return [p for p in pins if p.marker is None or marker(p.marker).evaluate()]


def modules_of(dist_name: str) -> list[str]:
    """Top-level importable modules a distribution installs (from its RECORD)."""
    try:
        files = md.distribution(dist_name).files or []
    except md.PackageNotFoundError:
        return []
    names = set()
    for f in files:
        parts = f.parts
        if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] in ("..", "__pycache__"):
            continue
        top = parts[0]
        if len(parts) > 1:
            if f.name == "__init__.py":
                names.add(top)
        elif top.endswith(".py"):
            names.add(top[:-3])
        elif top.endswith((".so", ".pyd")):
            names.add(top.split(".")[0])
    return sorted(n for n in names if n.isidentifier() and not n.startswith("_") and n not in NOT_MODULES)


def pin_of_module(module: str) -> Pin | None:
    """The locked package that provides a top-level module, if the lock pins one."""
    top = module.split(".")[0]
    dists = md.packages_distributions().get(top, [])
    pins = {p.key: p for p in applicable(read_lock())}
    for d in dists:
        if normalize(d) in pins:
            return pins[normalize(d)]
    return pins.get(normalize(top))


def check_versions(pins: list[Pin]) -> list[str]:
    problems = []
    for p in pins:
        try:
            have = md.version(p.name)
        except md.PackageNotFoundError:
            problems.append(f"{p.name}=={p.version} is pinned but not installed")
            continue
        if normalize(have) != normalize(p.version):
            problems.append(f"{p.name}=={p.version} is pinned but {have} is installed")
    return problems


def check_imports(pins: list[Pin]) -> tuple[list[str], int]:
    """Imports every top-level module of every pinned package; returns problems and the count."""
    problems, count = [], 0
    for p in pins:
        for mod in modules_of(p.name):
            count += 1
            try:
                importlib.import_module(mod)
            except BaseException as e:  # a module may raise anything, SystemExit included
                last = traceback.format_exception_only(type(e), e)[-1].strip()
                problems.append(f"{p.name}=={p.version}: `import {mod}` fails: {last}")
    return problems, count


def report(problems: list[str]) -> str:
    lines = [f"the test environment does not match {os.path.relpath(LOCK)}:"]
    lines += [f"  - {p}" for p in problems]
    lines.append(
        "install the lock with `.venv/bin/python -m pip install --only-binary :all: --no-deps "
        f"-r scripts/test-requirements.lock`, or regenerate it with `{REGENERATE}`"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--import", dest="imports", action="store_true", help="also import every pinned package")
    args = ap.parse_args(argv)
    pins = applicable(read_lock())
    problems = check_versions(pins)
    count = 0
    if args.imports and not problems:
        problems, count = check_imports(pins)
    if problems:
        print(report(problems), file=sys.stderr)
        return 1
    what = f", {count} modules imported" if args.imports else ""
    print(f"test environment: {len(pins)} pinned packages at their locked versions{what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

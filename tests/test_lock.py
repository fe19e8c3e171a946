"""The tested versions are the installed ones: installs come from requirements.lock, and a
dependency that moved (babel's CLDR changes a till's words) must show up here, not at a counter."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)")


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_every_locked_package_is_installed_at_its_locked_version():
    locked = _locked()
    assert len(locked) > 30
    wrong = {}
    for name, version in locked.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"installed differs from requirements.lock (locked, installed): {wrong}"


def test_every_lock_entry_is_hashed_and_every_declared_dependency_is_locked_within_its_range():
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert all("--hash=sha256:" in entry for entry in entries if PIN.match(entry))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    locked = _locked()
    for spec in project["dependencies"] + project["optional-dependencies"]["dev"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is declared but not locked"
        assert requirement.specifier.contains(locked[name]), (spec, locked[name])
        upper = [s for s in requirement.specifier if s.operator == "<"]
        assert upper, f"{spec}: a range ends before the next major version"

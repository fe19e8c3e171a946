"""The core and the backend never need Qt, and the core never needs HTTP.

Each check runs in a fresh interpreter, so modules the test session already
imported (pytest-qt loads PySide6) cannot hide an import."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE_MODULES = {
    "pos_app.core", "pos_app.core.codes", "pos_app.core.tokens", "pos_app.core.verdict",
    "pos_app.core.domain", "pos_app.core.layout_repair", "pos_app.core.pins", "pos_app.core.migrate",
}
# The scanning pipeline runs in the window's workers, the headless commands and benchmarks.
SCAN_MODULES = {
    "pos_app.scan", "pos_app.scan.decoders", "pos_app.scan.pipeline", "pos_app.scan.frames",
    "pos_app.scan.repeat", "pos_app.scan.sample_feed", "pos_app.scan.image_header",
}
# The LAN service runs beside the sync engine in `sync --watch` as in the window: no Qt either.
LAN_MODULES = {"pos_app.lan", "pos_app.lan.wire", "pos_app.lan.server", "pos_app.lan.peers", "pos_app.lan.link",
               "pos_app.lan.service"}

_IMPORT_ALL = textwrap.dedent(
    """
    import importlib, importlib.util, json, pkgutil, sys

    def import_tree(package_name):
        package = importlib.import_module(package_name)
        names = [package_name]
        def fail(name):
            raise ImportError(f"cannot import {name}")
        for info in pkgutil.walk_packages(package.__path__, package_name + ".", onerror=fail):
            importlib.import_module(info.name)
            names.append(info.name)
        return names
    """
)


def _run(script: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_core_and_backend_import_without_qt():
    script = textwrap.dedent(
        """
        import sys
        for blocked in ("PySide6", "PyQt5", "PyQt6", "shiboken6"):
            sys.modules[blocked] = None  # any `import PySide6` now raises ImportError
        """
    ) + _IMPORT_ALL + textwrap.dedent(
        """
        imported = import_tree("pos_app.core") + import_tree("pos_app.scan") + import_tree("pos_app.lan")
        has_backend = importlib.util.find_spec("server_stub") is not None
        if has_backend:
            imported += import_tree("server_stub")
        qt = [name for name in sys.modules if name.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "shiboken6")
              and sys.modules[name] is not None]
        print(json.dumps({"imported": imported, "has_backend": has_backend, "qt": qt}))
        """
    )
    result = _run(script)
    assert CORE_MODULES | SCAN_MODULES | LAN_MODULES <= set(result["imported"])
    if result["has_backend"]:
        assert "server_stub" in result["imported"]
    assert result["qt"] == []


def test_core_imports_no_http_client():
    script = _IMPORT_ALL + textwrap.dedent(
        """
        imported = import_tree("pos_app.core")
        loaded = sorted(name for name in sys.modules
                        if name.split(".")[0] in ("httpx", "httpcore", "PySide6", "shiboken6")
                        or name == "http.client")
        print(json.dumps({"imported": imported, "loaded": loaded}))
        """
    )
    result = _run(script)
    assert CORE_MODULES <= set(result["imported"])
    assert result["loaded"] == []

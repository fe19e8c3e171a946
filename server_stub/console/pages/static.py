"""The console's stylesheet, scripts and the vendored decoder, from the package: read once, cached by browsers."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources

from ...errors import NotFound
from ...http import Download

TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".wasm": "application/wasm",
         ".svg": "image/svg+xml", ".png": "image/png", ".txt": "text/plain; charset=utf-8"}


@lru_cache(maxsize=64)
def _file(folder: str, name: str) -> tuple[bytes, str, str] | None:
    suffix = name[name.rfind("."):] if "." in name else ""
    if suffix not in TYPES or name.startswith("."):
        return None
    base = resources.files("server_stub.console").joinpath("static")
    target = base.joinpath(folder).joinpath(name) if folder else base.joinpath(name)
    if not target.is_file():
        return None
    data = target.read_bytes()
    return data, TYPES[suffix], hashlib.sha256(data).hexdigest()[:16]


def version(name: str, folder: str = "") -> str:
    """A file's address with its content's digest, so a page never runs yesterday's script."""
    found = _file(folder, name)
    path = f"/console/static/{folder + '/' if folder else ''}{name}"
    return f"{path}?v={found[2]}" if found else path


def _serve(folder: str, name: str):
    found = _file(folder, name)
    if found is None:
        raise NotFound("not_found", "no such file")
    data, ctype, digest = found
    return 200, Download(data, ctype, (("Cache-Control", "public, max-age=86400"), ("ETag", f'"{digest}"'),
                                       ("X-Content-Type-Options", "nosniff")))


def file(view):
    return _serve("", view.request.params["name"])


def vendor(view):
    return _serve("vendor", view.request.params["name"])


def routes():
    return [("GET", "/static/{name}", file, "open"), ("GET", "/static/vendor/{name}", vendor, "open")]

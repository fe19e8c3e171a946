"""Where the project's own files are: catalogs, sounds, fonts, bundled keys and the backend front's templates,
in a checkout or an install.

A source checkout (and its editable install) reads them where they are kept,
beside the packages: `translations/`, `assets/sounds`, `assets/fonts`,
`assets/keys`. A wheel or a PyInstaller bundle carries them inside the
package as `pos_app/_data/<name>` (setup.py copies them there and compiles
the catalogs), found through importlib.resources. Either the package has its
`_data` or it is a checkout: the two are never mixed, so an install missing a
file fails instead of quietly reading a stray folder next to site-packages.

Qt-free and importing nothing of the project, so the backend's PDFs and the
build itself (setup.py reads CHECKOUT from this file) can use it.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from functools import lru_cache
from importlib import resources
from pathlib import Path

PACKED = "_data"
# Each resource's folder in a checkout, relative to the repository's top.
CHECKOUT = {
    "translations": "translations",
    "sounds": "assets/sounds",
    "fonts": "assets/fonts",
    "keys": "assets/keys",
    "front": "packaging/nginx",  # the backend's nginx front templates (server_stub front-config)
}

_files = ExitStack()  # keeps any extracted copy alive for the process's life
atexit.register(_files.close)


@lru_cache(maxsize=None)
def directory(name: str) -> Path:
    """The folder of one kind of resource (it may not exist: an install with no bundled keys)."""
    if name not in CHECKOUT:
        raise KeyError(f"unknown resource {name!r}")
    packed = resources.files(__package__).joinpath(PACKED)
    if packed.is_dir():
        # An installed or frozen package is a real folder, so this is the path itself, not a copy.
        return _files.enter_context(resources.as_file(packed.joinpath(name)))
    return Path(__file__).resolve().parent.parent / CHECKOUT[name]


def path(name: str, filename: str) -> Path:
    """One resource file, e.g. path("sounds", "accepted.wav")."""
    return directory(name) / filename


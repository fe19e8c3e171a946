"""A rendered booklet's pages as PNG images for the console's preview, made once per PDF and kept on disk.

The PDF is rasterised by poppler's `pdftoppm` (a separate process, bounded
in pages, size and time), and the images are kept in the data folder under
the PDF's SHA-256: a second look, by anyone, in any worker, costs a file
read, and a new render (other bytes, another digest) never shows the old
pages. Images are written into a temporary folder and moved into place whole,
so a reader sees every page of a preview or none; only the newest few
previews are kept.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Callable

from ..errors import Busy, NotFound

MAX_PAGES = 48  # a longer edition shows its first pages; the PDF has them all
LONGEST_SIDE_PX = 900  # an A5 page as 636 × 900: readable on a desktop, small on a phone's data plan
TIMEOUT_S = 60
KEEP = 24  # previews kept; older ones are made again if asked for
PDFTOPPM = shutil.which("pdftoppm") or "/usr/bin/pdftoppm"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_COUNT = "pages"  # written last: a preview folder holding it is whole
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def folder(data_dir: Path) -> Path:
    return Path(data_dir) / "cache" / "booklet-preview"


def _lock(digest: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(digest, threading.Lock())


def cached_pages(data_dir: Path, digest: str) -> int | None:
    """How many page images the preview of `digest` holds, or None when it is not made (or not whole)."""
    if not _DIGEST.match(digest):
        return None
    try:
        return int((folder(data_dir) / digest / _COUNT).read_text())
    except (OSError, ValueError):
        return None


def ensure(data_dir: Path, digest: str, load_pdf: Callable[[], bytes]) -> int:
    """The preview of the PDF whose SHA-256 is `digest`, made now if missing; its page count.

    `load_pdf` is called only when the images must be made (the PDF is read from the database then)."""
    if not _DIGEST.match(digest):
        raise NotFound("not_found", "no such preview")
    pages = cached_pages(data_dir, digest)
    if pages is not None:
        return pages
    with _lock(digest):  # one rasterisation per process; the page's images asked at once wait for it
        pages = cached_pages(data_dir, digest)
        if pages is None:
            pages = _make(folder(data_dir), digest, load_pdf())
    return pages


def page_png(data_dir: Path, digest: str, page: int) -> bytes:
    """Page `page` (1-based) of a made preview; NotFound past its end."""
    pages = cached_pages(data_dir, digest)
    if pages is None or not 1 <= page <= pages:
        raise NotFound("not_found", "no such page in the preview")
    try:
        return (folder(data_dir) / digest / f"{page:03d}.png").read_bytes()
    except OSError:  # forgotten since (an older preview, made room for a newer one)
        raise NotFound("not_found", "no such page in the preview") from None


def _make(root: Path, digest: str, pdf: bytes) -> int:
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".making-", dir=root))
    try:
        source = work / "edition.pdf"
        source.write_bytes(pdf)
        try:
            subprocess.run([PDFTOPPM, "-png", "-f", "1", "-l", str(MAX_PAGES), "-scale-to", str(LONGEST_SIDE_PX),
                            str(source), str(work / "p")], check=True, timeout=TIMEOUT_S, capture_output=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise Busy("preview_failed", f"the preview could not be made: {type(exc).__name__}") from None
        source.unlink()
        # pdftoppm pads page numbers to the count's width (p-1.png or p-01.png): named here uniformly.
        made = sorted(work.glob("p-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        for number, image in enumerate(made, start=1):
            image.rename(work / f"{number:03d}.png")
        (work / _COUNT).write_text(str(len(made)))
        try:
            os.rename(work, root / digest)
        except OSError:  # another worker made it first: theirs is the same pages
            pass
        else:
            work = None
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    _forget_old(root)
    return int((root / digest / _COUNT).read_text())


def _forget_old(root: Path) -> None:
    """Only the newest KEEP previews stay (a folder another worker reads as it goes is read whole or not)."""
    try:
        kept = sorted((p for p in root.iterdir() if _DIGEST.match(p.name)), key=lambda p: p.stat().st_mtime,
                      reverse=True)
    except OSError:
        return
    for old in kept[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)

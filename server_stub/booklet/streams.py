"""Page content streams for the booklet: Flate only, compressed two at a time once the pages are drawn.

reportlab wraps every compressed page stream in ASCII85 (`rl_config.useA85`),
encoded in pure Python here (its C accelerator is not installed): 0.45 s of
a 64-page booklet of 512 vouchers, and a file 25 % larger, to keep the PDF
7-bit clean, which nothing that reads or prints it needs. The switch is
global to reportlab, so the booklet gives each page its Contents stream
itself rather than flip it for every other PDF the process makes.

The benchmark booklet's streams are 8.7 MB of text, nearly all QR run
operators; measured on them, zlib level 6 (reportlab's) takes 0.42 s for
1.39 MB, level 5 0.22 s for 1.53 MB, level 1 0.09 s for 2.40 MB. Level 5
halves the CPU for 10 % more bytes. zlib releases the GIL while it deflates,
so two threads compress the pages at the end, on both cores. Compressing
each page on a thread while the next was drawn cost more than it saved: the
drawing thread lost the GIL to it at every numpy call (a GIL convoy; the QR
operators' 0.2 s of numpy took 0.65 s of wall time).
"""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Self

from reportlab.pdfbase.pdfdoc import PDFArray, PDFDictionary, PDFName, PDFStream

LEVEL = 5


def _flate(text: str) -> bytes:
    return zlib.compress(text.encode("utf8"), LEVEL)  # UTF-8 as reportlab's own Flate filter encodes a page


class PageStreams:
    """Use as a context manager around the pages; call `page_done()` right after each `showPage()`."""

    def __init__(self, canvas):
        self._pages = canvas._doc.Pages.pages  # reportlab's page list: the last is the page just shown
        self._done: list = []

    def __enter__(self) -> Self:
        return self

    def page_done(self) -> None:
        self._done.append(self._pages[-1])

    def __exit__(self, exc_type, exc, tb) -> None:
        """Every page gets its compressed Contents, so reportlab's save() finds nothing left to encode."""
        if exc_type is not None:
            return
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="booklet-flate") as pool:
            for page, data in zip(self._done, pool.map(_flate, [page.stream for page in self._done])):
                page.Contents = _contents(data)
                page.stream = None


def _contents(data: bytes) -> PDFStream:
    """A stream already Flate-encoded: PDFStream applies no filter when the dictionary names one."""
    stream = PDFStream(PDFDictionary({"Filter": PDFArray([PDFName("FlateDecode")])}), data)
    stream.__Comment__ = "page stream"
    return stream

"""Page content streams for the booklet: Flate only, compressed on a second thread.

reportlab wraps every compressed page stream in ASCII85 (`rl_config.useA85`),
encoded in pure Python here (its C accelerator is not installed): 0.45 s of
a 64-page booklet of 512 vouchers, and a file 25 % larger, to keep the PDF
7-bit clean, which nothing that reads or prints it needs. The switch is
global to reportlab, so the booklet gives each page its Contents stream
itself rather than flip it for every other PDF the process makes.

zlib releases the GIL while it deflates, so a page is compressed on a worker
thread while the next one is drawn. The benchmark booklet's streams are
8.7 MB of text, nearly all QR run operators; measured on them, zlib level 6
(reportlab's) takes 0.42 s for 1.39 MB, level 5 0.22 s for 1.53 MB, level 1
0.09 s for 2.40 MB. Level 5 halves the CPU for 10 % more bytes: the second
core is shared with the QR helper process, and a busy machine has no
second core to spare.
"""

from __future__ import annotations

import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Self

from reportlab.pdfbase.pdfdoc import PDFArray, PDFDictionary, PDFName, PDFStream

LEVEL = 5


def _flate(text: str) -> bytes:
    return zlib.compress(text.encode("utf8"), LEVEL)  # UTF-8 as reportlab's own Flate filter encodes a page


class PageStreams:
    """Use as a context manager around the pages; call `page_done()` right after each `showPage()`."""

    def __init__(self, canvas):
        self._pages = canvas._doc.Pages.pages  # reportlab's page list: the last is the page just shown
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="booklet-flate")
        self._pending: list[tuple[object, Future]] = []

    def __enter__(self) -> Self:
        return self

    def page_done(self) -> None:
        page = self._pages[-1]
        self._pending.append((page, self._pool.submit(_flate, page.stream)))

    def __exit__(self, exc_type, exc, tb) -> None:
        """Every page gets its compressed Contents, so reportlab's save() finds nothing left to encode."""
        try:
            if exc_type is None:
                for page, future in self._pending:
                    page.Contents = _contents(future.result())
                    page.stream = None
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _contents(data: bytes) -> PDFStream:
    """A stream already Flate-encoded: PDFStream applies no filter when the dictionary names one."""
    stream = PDFStream(PDFDictionary({"Filter": PDFArray([PDFName("FlateDecode")])}), data)
    stream.__Comment__ = "page stream"
    return stream

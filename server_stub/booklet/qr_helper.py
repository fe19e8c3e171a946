"""A booklet's QR codes, encoded here and by one helper process working from the other end.

zxing-cpp holds the GIL while it encodes (1.5 ms a code; two threads are
slower than one), so a second core can only help from another process. The
helper is a fresh interpreter that imports only zxing-cpp (qr_symbol: ready
in about 0.03 s), never a fork: the backend is threaded, and a forked child
may inherit a lock another thread held. It sends the bare modules; their
run operators are built here, when drawn (0.17 ms a code).

The render draws its vouchers in page order and encodes each one the helper
has not sent yet; the helper takes them from the last page backwards. They
meet in the middle, and whatever the helper managed, the render did not
have to: a helper that fails to start or dies only makes the render slower,
never different, since both ends run the same qr_symbol.symbol.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Self

from . import qr
from .qr_symbol import HEADER, LENGTH

MIN_CODES = 48  # fewer than this: the helper's start-up costs more than it saves
_ROOT = str(Path(__file__).resolve().parents[2])
_HELPER_MAIN = (f"import sys; sys.path.insert(0, {_ROOT!r}); "
                "from server_stub.booklet import qr_symbol; qr_symbol.serve()")


class Codes:
    """Callable: a voucher's qr.Code by its token, from the helper if it has sent it, else encoded now."""

    def __init__(self, texts: list[str]):
        self._sent: dict[str, tuple[int, bytes]] = {}  # text: its symbol, as the helper sent it
        self.from_helper = 0  # codes the render took from the helper, for the benchmark
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        backwards = list(dict.fromkeys(reversed(texts)))
        if len(backwards) >= MIN_CODES:
            self._start(backwards)

    def __call__(self, text: str) -> qr.Code:
        sent = self._sent.get(text)
        if sent is None:
            return qr.encode(text)
        self.from_helper += 1
        return qr.from_symbol(text, *sent)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        """The helper is stopped when the pages are drawn: what it has not sent by then is not needed."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._reader.join()

    def _start(self, texts: list[str]) -> None:
        if not sys.executable:  # an embedded interpreter has no python to start
            return
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-c", _HELPER_MAIN],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError:
            return
        self._reader = threading.Thread(target=self._exchange, args=(texts,), name="booklet-qr-helper",
                                        daemon=True)
        self._reader.start()

    def _exchange(self, texts: list[str]) -> None:
        """Send every text, then file each code under its text as it arrives, until the helper stops."""
        process = self._process
        try:
            process.stdin.write(b"".join(LENGTH.pack(len(data)) + data
                                         for data in (text.encode("utf8") for text in texts)))
            process.stdin.close()
            for text in texts:
                header = process.stdout.read(HEADER.size)
                if len(header) < HEADER.size:
                    return
                (size,) = HEADER.unpack(header)
                modules = process.stdout.read(size * size)
                if len(modules) < size * size:
                    return
                self._sent[text] = (size, modules)
        except (OSError, ValueError):  # killed mid-exchange: the render has what it needs
            return
        finally:
            for pipe in (process.stdin, process.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass


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

No thread here: the texts go to the helper as a file, and the render reads
what the helper has sent, without blocking, each time it wants a code. A
thread reading the pipe took the GIL whenever the render's numpy calls let
go of it (a GIL convoy: the operators' 0.2 s of numpy took 0.65–0.75 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Self

from . import qr
from .qr_symbol import HEADER, LENGTH

try:
    import fcntl
except ImportError:  # not POSIX: no non-blocking pipe to read, so the render encodes every code itself
    fcntl = None

MIN_CODES = 48  # fewer than this: the helper's start-up costs more than it saves
PIPE_BYTES = 1 << 20  # the helper may run about 200 codes ahead of the render's reading
# The folder holding server_stub (the checkout, or site-packages when installed): -I leaves it off sys.path.
_ROOT = str(Path(__file__).resolve().parents[2])
_HELPER_MAIN = (f"import sys; sys.path.insert(0, {_ROOT!r}); "
                "from server_stub.booklet import qr_symbol; qr_symbol.serve()")


class Codes:
    """Callable: a voucher's qr.Code by its token, from the helper if it has sent it, else encoded now."""

    def __init__(self, texts: list[str]):
        self._sent: dict[str, tuple[int, bytes]] = {}  # text: its symbol, as the helper sent it
        self.from_helper = 0  # codes the render took from the helper, for the benchmark
        self._process: subprocess.Popen | None = None
        self._unread = bytearray()  # what the helper sent that is not a whole symbol yet
        backwards = list(dict.fromkeys(reversed(texts)))
        self._answers = iter(backwards)  # the helper answers in the order it was asked
        if len(backwards) >= MIN_CODES and fcntl is not None:
            self._start(backwards)

    def __call__(self, text: str) -> qr.Code:
        sent = self._sent.get(text)
        if sent is None and self._process is not None:
            self._read()
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
            self._stop()

    def _start(self, texts: list[str]) -> None:
        # An embedded interpreter has no python to start, and a frozen till's executable is the till, not python.
        if not sys.executable or getattr(sys, "frozen", False):
            return
        with tempfile.TemporaryFile() as asked:
            asked.write(b"".join(LENGTH.pack(len(data)) + data for data in (t.encode("utf8") for t in texts)))
            asked.seek(0)
            try:
                self._process = subprocess.Popen([sys.executable, "-I", "-c", _HELPER_MAIN], stdin=asked,
                                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            except OSError:
                return
        out = self._process.stdout.fileno()
        os.set_blocking(out, False)
        try:
            fcntl.fcntl(out, fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # Linux only; elsewhere the helper waits more
        except (AttributeError, OSError):
            pass

    def _read(self) -> None:
        """File every whole symbol the helper has sent so far under its text; never waits."""
        while True:
            try:
                chunk = os.read(self._process.stdout.fileno(), PIPE_BYTES)
            except BlockingIOError:
                break
            if not chunk:  # the helper is gone: the render encodes the rest
                self._stop()
                break
            self._unread += chunk
        at = 0
        while len(self._unread) - at >= HEADER.size:
            (size,) = HEADER.unpack_from(self._unread, at)
            end = at + HEADER.size + size * size
            if len(self._unread) < end:
                break
            self._sent[next(self._answers)] = (size, bytes(self._unread[at + HEADER.size:end]))
            at = end
        del self._unread[:at]

    def _stop(self) -> None:
        self._process.kill()
        self._process.wait()
        self._process.stdout.close()
        self._process = None

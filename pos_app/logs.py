"""One logging configuration for the till, window and CLI alike: a rotating file in the till's data
folder (what happened at a counter is there to read afterwards, not on a terminal nobody sees), and
uncaught exceptions written to it instead of vanishing with the window."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Callable

LOG_FILE = "till.log"
MAX_BYTES = 1_000_000
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"

log = logging.getLogger("pos_app")


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Log files are created 0600: they name staff and tills (never PINs or tokens)."""

    _warned = False

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    def handleError(self, record: logging.LogRecord) -> None:
        # A folder the till may not write to (the store says so itself, in plain words): one line on
        # stderr, not a traceback for every record.
        if not self._warned:
            self._warned = True
            kind, value = sys.exc_info()[:2]
            sys.stderr.write(f"warning: the till cannot write its log {self.baseFilename}: "
                             f"{getattr(value, 'strerror', None) or value or kind}\n")


def configure(data_dir: str | Path, *, level: int = logging.INFO) -> Path:
    """Send the till's logs to `data_dir/till.log` (1 MB, five older files kept); returns the path.
    A process serves one till: configuring another folder moves the log there."""
    path = (Path(data_dir) / LOG_FILE).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    for handler in list(log.handlers):
        if isinstance(handler, PrivateRotatingFileHandler):
            if Path(handler.baseFilename) == path:
                return path
            log.removeHandler(handler)
            handler.close()
    handler = PrivateRotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8",
                                         delay=True)
    handler.setFormatter(logging.Formatter(FORMAT))
    log.addHandler(handler)
    log.setLevel(level)
    return path


def install_excepthook(show: Callable[[str], None] | None = None) -> None:
    """Log every uncaught exception (any thread) with its traceback; `show` (the window's dialog)
    is told of those raised on the main thread, where the window lives."""

    def on_main(kind, value, tb) -> None:
        log.critical("uncaught exception", exc_info=(kind, value, tb))
        if show is not None:
            try:
                show("".join(traceback.format_exception_only(kind, value)).strip())
            except Exception:  # the dialog failing must not hide the first error
                log.exception("could not show the error dialog")

    def on_thread(args) -> None:
        if args.exc_type is SystemExit:
            return
        log.critical("uncaught exception in thread %s", getattr(args.thread, "name", "?"),
                     exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = on_main
    threading.excepthook = on_thread

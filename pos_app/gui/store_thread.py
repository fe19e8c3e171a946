"""The one thread that owns the till's store (and its backend client) for the window.

Widgets never wait on SQLite or the network: they hand a function of the
store to this thread and get its result back on the GUI thread through a
signal. One thread, so the store's connection stays with its owner and
redemptions are decided one at a time, in the order they came.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot

log = logging.getLogger(__name__)

Job = Callable[[Any], Any]  # a function of the TillStore
_STOP = object()


class StoreThread(QObject):
    """Runs jobs against the till's store in order, off the GUI thread."""

    _delivered = Signal(object, object, object)  # callback, result, error

    def __init__(self, store_path: Path, *, open_client: Callable[[Any], Any] | None = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self._path = Path(store_path)
        self._open_client = open_client
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="till-store", daemon=True)
        self._delivered.connect(self._deliver)
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self.client = None  # the backend client, used only on this thread

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)
        if self._open_error is not None:
            raise self._open_error

    def pending(self) -> int:
        return self._jobs.qsize()

    def submit(self, job: Job, on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None,
               told: tuple[type[BaseException], ...] = ()) -> None:
        """Run `job(store)` on the store's thread; `on_done(result)` or `on_error(exc)` on the GUI thread.
        An error of a `told` kind is the person's to fix (on_error says it): one log line, no traceback."""
        self._jobs.put((job, on_done, on_error, told))

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._jobs.put(_STOP)
            self._thread.join(timeout)

    def _run(self) -> None:
        from ..store import TillStore

        try:
            store = TillStore(self._path)
            self.client = self._open_client(store) if self._open_client else None
        except BaseException as exc:  # told to start(), which raises it on the GUI thread
            self._open_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                item = self._jobs.get()
                if item is _STOP:
                    break
                job, on_done, on_error, told = item
                try:
                    result = job(store)
                except Exception as exc:  # a job's failure goes to its caller, never lost in the thread
                    if isinstance(exc, told):
                        log.info("store job refused: %s: %s", type(exc).__name__, exc)
                    else:
                        log.exception("store job failed")
                    self._delivered.emit(on_error, None, exc)
                else:
                    self._delivered.emit(on_done, result, None)
        finally:
            if self.client is not None:
                self.client.close()
            store.close()

    @Slot(object, object, object)
    def _deliver(self, callback, result, error) -> None:
        if error is not None:
            if callback is not None:
                callback(error)
        elif callback is not None:
            callback(result)

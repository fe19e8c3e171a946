"""Background work that needs no store (decoding a dropped image, probing cameras).

Runs on a small thread pool; results come back on the GUI thread through a
signal, and a failure reaches its caller instead of vanishing in a future.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot

log = logging.getLogger(__name__)


class TaskPool(QObject):
    _delivered = Signal(object, object, object)  # callback, result, error

    def __init__(self, parent: QObject | None = None, *, workers: int = 2):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="till-task")
        self._delivered.connect(self._deliver)

    def run(self, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
            on_error: Callable[[BaseException], None] | None = None,
            told: tuple[type[BaseException], ...] = ()) -> Future:
        """Run `fn()` on the pool; `on_done(result)` or `on_error(exc)` on the GUI thread. An error of
        a `told` kind is the person's to fix and `on_error` says it plainly: one line in the log, not
        a traceback; any other is logged in full."""
        future = self._pool.submit(fn)

        def finished(f: Future) -> None:
            error = f.exception()
            if error is not None:
                if isinstance(error, told):
                    log.info("background task refused: %s: %s", type(error).__name__, error)
                else:
                    log.error("background task failed", exc_info=error)
                self._delivered.emit(on_error, None, error)
            else:
                self._delivered.emit(on_done, f.result(), None)
        future.add_done_callback(finished)
        return future

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    @Slot(object, object, object)
    def _deliver(self, callback, result, error) -> None:
        if callback is not None:
            callback(error if error is not None else result)

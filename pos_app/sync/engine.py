"""The till's background sync: rounds of `sync_once` on a schedule, never on the GUI's thread.

apscheduler keeps the feed's time (a tick every `feed_interval_s`); its job only
wakes one worker thread, whose own wait ends a back-off, and which owns the engine's own
store connection and HTTP client and runs every round. So rounds never
overlap, the store's connection stays with one thread, and nothing here
touches a widget: `on_status(SyncStatus)` is called from the worker thread and
the GUI re-emits it as a Qt signal.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import replace
from datetime import timezone
from pathlib import Path
from typing import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from .client import BackendClient, client_for
from .backoff import Backoff
from ..store import TillStore
from .round import SyncSummary, sync_once
from .status import SyncStatus, store_status

log = logging.getLogger(__name__)


class _TickStillPending(logging.Filter):
    """apscheduler warns when a tick is due while the last one's job has not run yet (a busy machine
    starved its one pool thread): that tick is only a wake-up, and the worker wakes for the one still
    pending, so it is dropped, not written to the till's log as a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_TickStillPending())


DEFAULT_FEED_INTERVAL_S = 2.0
DEFAULT_MAX_REQUESTS_PER_S = 20.0
DEFAULT_REQUEST_TIMEOUT_S = 5.0
# A pending online attempt younger than this may still be waiting for its
# answer in the redemption that made it: the engine leaves it alone.
DEFAULT_PENDING_GRACE_S = 15.0

_STOP = "stop"
_MANUAL = "manual"  # sync_now: runs even while backing off
_RETRY = "retry"  # the back-off is over


class SyncEngine:
    """Background sync of one till. Thread-safe interface: start, stop, sync_now, notify_queued, status."""

    def __init__(self, store_path: str | Path, *,
                 client_factory: Callable[[TillStore], BackendClient] | None = None,
                 feed_interval_s: float = DEFAULT_FEED_INTERVAL_S,
                 on_status: Callable[[SyncStatus], None] | None = None,
                 clock: Callable[[], float] = time.time,
                 backoff: Backoff | None = None,
                 max_requests_per_s: float = DEFAULT_MAX_REQUESTS_PER_S,
                 request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
                 pending_grace_s: float = DEFAULT_PENDING_GRACE_S):
        self.store_path = Path(store_path)
        self.feed_interval_s = feed_interval_s
        self.on_status = on_status
        self.clock = clock
        self.backoff = backoff or Backoff(base_s=1.0, cap_s=60.0)
        self.max_requests_per_s = max_requests_per_s
        self.request_timeout_s = request_timeout_s
        self.pending_grace_s = pending_grace_s
        self._client_factory = client_factory or self._default_client
        self._wake: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._runs = 0
        self._manual_asked = 0  # sync_now calls numbered, so each can wait for a round that served it
        self._manual_served = 0
        self._status = SyncStatus(state="stopped", running=False, runs=0)
        self._retry_at: float | None = None  # monotonic time before which ticks are ignored
        self._scheduler: BackgroundScheduler | None = None
        self._worker: threading.Thread | None = None

    # --- the interface -----------------------------------------------------------

    def start(self) -> None:
        """Start the worker and the schedule; the first round runs at once."""
        if self._worker is not None:
            raise RuntimeError("the sync engine is running already")
        self._stopping.clear()
        self._set_status(state="starting", running=True)
        self._worker = threading.Thread(target=self._run, name="sync-engine", daemon=True)
        self._worker.start()
        # One pool thread is plenty: a job only wakes the worker.
        self._scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(1)}, timezone=timezone.utc,
                                              job_defaults={"coalesce": True, "max_instances": 1,
                                                            "misfire_grace_time": None})
        self._scheduler.add_job(self._wake.put, "interval", args=["tick"], seconds=self.feed_interval_s, id="feed")
        self._scheduler.start()
        self._wake.put("start")

    def stop(self, timeout: float | None = None) -> None:
        """Stop promptly: the round in progress ends after its current request; threads are joined."""
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self._worker is not None:
            self._wake.put(_STOP)
            self._worker.join(self.request_timeout_s + 5 if timeout is None else timeout)
            if self._worker.is_alive():
                log.error("the sync worker did not stop in time")
            self._worker = None

    def sync_now(self, wait_s: float = 0.0) -> SyncStatus:
        """Run a round now, even while backing off; with `wait_s`, wait up to that long for it and
        return the status after it."""
        with self._lock:
            self._manual_asked += 1
            number = self._manual_asked
        self._wake.put(_MANUAL)
        if wait_s > 0:
            with self._done:
                self._done.wait_for(lambda: self._manual_served >= number or not self._status.running, wait_s)
        return self.status()

    def notify_queued(self) -> None:
        """Something entered the outbox: push it now if the backend is reachable."""
        self._wake.put("queued")

    def status(self) -> SyncStatus:
        """The latest status (frozen, so no copy; see docs/sync.md for the keys)."""
        with self._lock:
            return self._status

    @property
    def online(self) -> bool | None:
        """Did the backend answer the last round? None before the first one."""
        return self.status().online

    # --- the worker ------------------------------------------------------------------

    def _default_client(self, store: TillStore) -> BackendClient:
        # The engine's requests may wait longer than a redemption's, but are spaced out.
        return client_for(store, timeout=self.request_timeout_s,
                          min_interval_s=1.0 / self.max_requests_per_s if self.max_requests_per_s > 0 else 0.0)

    def _set_status(self, **fields) -> SyncStatus:
        with self._lock:
            self._status = replace(self._status, **fields)
            return self._status

    def _next_reasons(self) -> set[str]:
        # The back-off ends when this wait times out. A one-shot scheduler job
        # would do the same, but apscheduler 3 raises in its own thread when it
        # removes a fired one-shot job while being shut down.
        timeout = None if self._retry_at is None else max(0.0, self._retry_at - time.monotonic())
        try:
            reasons = {self._wake.get(timeout=timeout)}
        except queue.Empty:
            reasons = {_RETRY}
        while True:  # everything that came meanwhile is served by one round
            try:
                reasons.add(self._wake.get_nowait())
            except queue.Empty:
                return reasons

    def _run(self) -> None:
        try:
            store = TillStore(self.store_path)
        except Exception as exc:  # a damaged or unwritable store: said in the status, the GUI goes on
            log.exception("the sync engine cannot open the till's store")
            self._publish(self._set_status(state="error", running=False, error=f"till store: {exc}"))
            return
        client = None
        try:
            while not self._stopping.is_set():
                reasons = self._next_reasons()
                with self._lock:
                    asked = self._manual_asked  # every sync_now called so far is served by the round below
                if _STOP in reasons or self._stopping.is_set():
                    break
                if (self._retry_at is not None and time.monotonic() < self._retry_at
                        and not reasons & {_MANUAL, _RETRY}):
                    continue  # backing off: ticks and queued notices wait for the retry
                if not store.enrolled:
                    self._finish_round(store, None, asked, error="this till is not enrolled")
                    continue
                if store.stored("device_token").get("device_token") != store.device_token:
                    # Enrolled again through another connection (a withdrawn till's new token, store/standing.py):
                    # this connection's settings and client take it. A withdrawn till's round asks nothing.
                    store.reload_settings()
                    client = _closed(client)
                try:
                    if client is None:
                        client = self._client_factory(store)
                    summary = sync_once(store, client, clock=self.clock,
                                        pending_begun_before=self.clock() - self.pending_grace_s,
                                        should_stop=self._stopping.is_set)
                except Exception as exc:  # a bug must not end background sync: logged, shown, retried
                    log.exception("sync round failed")
                    summary = SyncSummary(error=f"{type(exc).__name__}: {exc}", reached=False)
                if summary.error == "stopped":
                    break
                self._finish_round(store, summary, asked)
        finally:
            if client is not None:
                client.close()
            store.close()
            self._publish(self._set_status(state="stopped", running=False, next_retry_at=None))
            with self._done:
                self._done.notify_all()

    def _finish_round(self, store: TillStore, summary: SyncSummary | None, asked: int,
                      error: str | None = None) -> None:
        error = error or (summary.error if summary else None)
        reached = bool(summary and summary.reached)
        if error is None:
            self.backoff.reset()
            self._retry_at = None
            next_retry = None
        else:
            # A 429's Retry-After is the least wait: the backend said when it will take this till again.
            delay = max(self.backoff.next_delay(), (summary.retry_after_s or 0.0) if summary else 0.0)
            self._retry_at = time.monotonic() + delay
            next_retry = self.clock() + delay
        figures, unreadable = None, None
        try:
            figures = store_status(store)
        except Exception as exc:  # the store cannot even be read: the round's own result still shows
            log.exception("sync status figures unavailable")
            unreadable = str(exc)
        state = "online" if error is None else ("error" if reached else "offline")
        with self._done:
            self._runs += 1
            self._manual_served = max(self._manual_served, asked)
            # Figures and an unreadable store's message stay from earlier rounds until replaced.
            self._status = snapshot = replace(
                self._status, state=state, online=reached or error is None, running=True, runs=self._runs,
                next_retry_at=next_retry, backoff_failures=self.backoff.failures,
                last_round=summary.to_json() if summary else None, error=error,
                figures=self._status.figures if figures is None else figures,
                error_reading_store=self._status.error_reading_store if unreadable is None else unreadable)
            self._done.notify_all()
        self._publish(snapshot)

    def _publish(self, snapshot: SyncStatus) -> None:
        if self.on_status is None:
            return
        try:
            self.on_status(snapshot)
        except Exception:  # the listener's bug must not stop sync
            log.exception("on_status failed")


def _closed(client: BackendClient | None) -> None:
    if client is not None:
        client.close()

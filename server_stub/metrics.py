"""What Prometheus scrapes at /metrics: requests, redemptions, sync entries, refusals, the feed's head.

`serve` runs several granian worker processes; each counts in its own
memory-mapped files under $PROMETHEUS_MULTIPROC_DIR (a private folder of the
data folder, emptied at start: commands/server.py), and a scrape, answered by
any one worker, adds up every worker's files. Without that variable (the
embedded server of the demo and the tests) the counts live in this
process's registry alone.

prometheus_client chooses between the two when it is first imported, so it
is imported here on first use, never at module load: `serve` sets the
variable before anything imports it.

Labels are bounded by construction: a route's template (never its path,
whose ids would make a label per voucher), a known method, a status, a
reason from the verdict's list. Nothing a caller sends becomes a label as
sent.
"""

from __future__ import annotations

import glob
import json
import os
import re
import threading

from pos_app.core.domain import Reason

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_REASONS = frozenset(Reason.ALL)
_SYNC_RESULTS = frozenset({"recorded", "conflict", "duplicate", "rejected"})
_SCOPE = re.compile(r"^[a-z_]{1,32}$")
# Seconds: a redemption is ~1 ms on a quiet machine, the till gives up at 1.5 s.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0)


class Metrics:
    """One process's instruments, registered once (`metrics()`)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiproc_dir = os.environ.get(MULTIPROC_ENV) or None
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter("pika_requests", "Requests answered, by route template, method and status",
                                ("route", "method", "status"), registry=reg)
        self.latency = Histogram("pika_request_seconds", "Time to answer a request, by route template and status",
                                 ("route", "method", "status"), buckets=_BUCKETS, registry=reg)
        self.redemptions = Counter("pika_redemptions", "Redemptions judged: online (answered now) or synced "
                                   "(a till's outbox, as the till decided), by outcome and reason",
                                   ("decided", "outcome", "reason"), registry=reg)
        self.sync_entries = Counter("pika_sync_entries", "A till's outbox entries, by the backend's result",
                                    ("result",), registry=reg)
        self.rate_limited = Counter("pika_rate_limited", "Answers 429: too many requests or attempts, by code "
                                    "and the limit's scope where the answer names one", ("code", "scope"),
                                    registry=reg)
        self.storage_full = Counter("pika_storage_full", "Answers 503 storage_full: a write refused, the disk "
                                    "being full", ("route",), registry=reg)
        # The last value read wins (a restore moves the head back); a dead worker's value goes with it.
        self.events_head = Gauge("pika_events_head", "The event log's head: the highest feed sequence number",
                                 registry=reg, multiprocess_mode="livemostrecent")
        self._children: dict[tuple, object] = {}  # labels → their children (a request's: counter, histogram)
        self._lock = threading.Lock()

    def answered(self, route: str, method: str, status: int, seconds: float, body: list[bytes]) -> None:
        """Count one answer (http.serve_measured calls it for every request)."""
        key = (route, method if method in _METHODS else "other", status)
        children = self._children.get(key)
        if children is None:
            with self._lock:
                children = self._children.setdefault(key, (self.requests.labels(*key), self.latency.labels(*key)))
        children[0].inc()
        children[1].observe(seconds)
        if status == 429 or status == 503:
            self._refused(route, status, body)

    def _refused(self, route: str, status: int, body: list[bytes]) -> None:
        try:
            answer = json.loads(b"".join(body)) if sum(map(len, body)) <= 65536 else {}
            code = answer["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return
        if status == 503 and code == "storage_full":
            self.storage_full.labels(route).inc()
        elif status == 429:
            scope = answer.get("scope")
            scope = scope if isinstance(scope, str) and _SCOPE.match(scope) else "-"
            self.rate_limited.labels(code if isinstance(code, str) and _SCOPE.match(code) else "other", scope).inc()

    def _child(self, metric, *labels: str):
        """`metric.labels(*labels)`, looked up once: labels() takes a lock and checks its names each call."""
        key = (metric._name, labels)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.setdefault(key, metric.labels(*labels))
        return child

    def redemption(self, decided: str, accepted: bool, reason: object) -> None:
        outcome = "accepted" if accepted else "refused"
        self._child(self.redemptions, decided, outcome, "-" if accepted else _reason(reason)).inc()

    def synced(self, entries: list[dict], answer: dict) -> None:
        """A sync batch's results, and the redemptions it newly recorded (as their tills decided them)."""
        results = answer.get("results") or []
        for entry, result in zip(entries, results):
            status = result.get("status") if isinstance(result, dict) else None
            self._child(self.sync_entries, status if status in _SYNC_RESULTS else "other").inc()
            if status in ("recorded", "conflict") and entry.get("type", "redemption") == "redemption":
                self.redemption("synced", entry.get("accepted") is True, entry.get("reason"))

    def exposition(self, events_head: int | None) -> tuple[bytes, str]:
        """The text Prometheus reads, and its media type: every worker's counts added up in multi-process mode."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if events_head is not None:
            self.events_head.set(events_head)
        if self.multiproc_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess

        _forget_dead_workers(self.multiproc_dir)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiproc_dir)
        return generate_latest(registry), CONTENT_TYPE_LATEST


def _reason(reason: object) -> str:
    return reason if isinstance(reason, str) and reason in _REASONS else "other"


def _forget_dead_workers(folder: str) -> None:
    """granian tells nobody when it replaces a worker: a live gauge's file whose process is gone is
    dropped here, at a scrape. (Counters and histograms keep a dead worker's counts, as they must.)"""
    from prometheus_client import multiprocess

    for path in glob.glob(os.path.join(folder, "gauge_live*_*.db")):
        pid = path.rsplit("_", 1)[-1][:-3]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_instance: Metrics | None = None
_instance_lock = threading.Lock()


def metrics() -> Metrics:
    """This process's instruments (made on first use: a registry refuses the same name twice)."""
    global _instance
    if _instance is None:
        with _instance_lock:
            if _instance is None:
                _instance = Metrics()
    return _instance


def prepare_folder(data_dir: str) -> str:
    """`serve`'s private folder for the workers' counts, emptied (a previous run's would add up), 0700;
    set in the environment before any worker starts, so each worker counts there."""
    folder = os.path.join(str(data_dir), "metrics")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    for path in glob.glob(os.path.join(folder, "*.db")):
        os.remove(path)
    os.environ[MULTIPROC_ENV] = folder
    return folder

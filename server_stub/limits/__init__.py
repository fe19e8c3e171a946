"""Rate limits: a token bucket per device and per client address, shared by every worker process.

One till flooding refused redemptions once wrote ~1.4 GB an hour and tripled
the other tills' latency. The web layer checks the client's address before
it routes or reads a body (`check_address`), and the facade checks the
device as soon as its token is known (`check_device`); a refusal is
`429 rate_limited` with `retry_after_s` (and the Retry-After header), and
costs no write to the database.

The limiter serves the backend, never the other way: a bucket store that
cannot be reached (PostgreSQL away, a locked file) lets the request in,
says so once in the log, and says once when it works again. Buckets a full
refill old are pruned now and then, so the store holds only clients seen
in the last few seconds.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import math
import random
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable

from ..errors import RateLimited
from .buckets import PostgresBuckets, SQLiteBuckets
from .config import Limits, Rate, limits_of

log = logging.getLogger(__name__)

# A client that asks again while its bucket is known empty (it did not wait its Retry-After) gets its 429
# this much later, from at most TARPIT_THREADS request threads of a process at once: a flood over a few
# connections is slowed to a few requests a second instead of taking the CPU the other tills need, and
# a flood over many connections still finds the other threads free (the front's limits are for those).
TARPIT_S = 0.5
TARPIT_THREADS = 2
REFUSED_KEPT = 10_000  # buckets this process remembers as empty (a flood from many addresses: forgotten)
PRUNE_EVERY_S = 30.0  # each process prunes about this often (jittered, so processes spread it)
OUTAGE_PAUSE_S = 5.0  # after a failure the store is left alone this long: no connect timeout per request

# Whether the request this thread serves came from a trusted proxy's own address (set by check_address,
# which the web layer calls first for every request): this host's own callers are not limited.
_local_caller: contextvars.ContextVar[bool] = contextvars.ContextVar("pika_limits_local", default=False)


class Limiter:
    """The checks the backend makes; `limits.enabled` false makes both do nothing."""

    def __init__(self, limits: Limits, store=None, *, clock: Callable[[], float] = time.time,
                 tarpit_s: float = TARPIT_S):
        self.limits = limits
        self.tarpit_s = tarpit_s
        self._tarpits = threading.BoundedSemaphore(TARPIT_THREADS)
        self.store = store if limits.enabled else None
        self.clock = clock  # wall time: the buckets are shared with other processes, and other hosts
        self._lock = threading.Lock()
        self._next_prune = 0.0
        self._failing_since: float | None = None  # set while the store fails: checks pass meanwhile
        self._retry_at = 0.0
        # Buckets found empty, and when each holds a token again: a flood's next request is refused from
        # here, without a statement (another process's takes only make the real wait longer).
        self._refused: dict[str, float] = {}

    @property
    def trusted_proxies(self):
        return self.limits.trusted_proxies

    def check_device(self, device_id: str) -> None:
        """RateLimited if this device has used its bucket up (not for a request from a trusted proxy's own address)."""
        if _local_caller.get():
            return
        self._check(f"device:{device_id}", self.limits.device, "device")

    def check_address(self, address: str, named_by_proxy: bool = False) -> None:
        """RateLimited if this client address has used its bucket up. A request from a trusted proxy's own
        address (no X-Real-IP came with it: this host's tools, the demo, a health check) is not limited, by
        address or device: a client over the network comes through the proxy, which names it, or from an
        address of its own. A client the proxy named (`named_by_proxy`) is limited whatever its address,
        even one inside `trusted_proxies` (tills over a VPN in the proxies' network). IPv6 clients are
        counted by their /64, the block one host is given."""
        trusted, key = _address_key(address, self.limits.trusted_proxies)
        local = trusted and not named_by_proxy
        if trusted and named_by_proxy:
            key = "addr:" + address[:64]
        _local_caller.set(local)
        if not local:
            self._check(key, self.limits.address, "address")

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def _check(self, key: str, rate: Rate, scope: str) -> None:
        if self.store is None:
            return
        now = self.clock()
        until = self._refused.get(key)
        if until is not None:
            if now < until:
                self._slow_down(until - now)
                raise _refusal(scope, until - self.clock())
            self._refused.pop(key, None)
        if self._failing_since is not None and now < self._retry_at:
            return
        try:
            wait = self.store.take(key, rate.rate_per_s, rate.burst, now)
            if now >= self._next_prune:
                self._prune(now)
        except Exception as exc:  # fail open: the limiter must never take the backend down with it
            self._failed(exc, now)
            return
        if self._failing_since is not None:
            self._recovered(now)
        if wait is not None:
            if len(self._refused) >= REFUSED_KEPT:
                self._refused.clear()
            self._refused[key] = now + wait
            raise _refusal(scope, wait)

    def _slow_down(self, wait: float) -> None:
        if self.tarpit_s <= 0 or not self._tarpits.acquire(blocking=False):
            return
        try:
            time.sleep(min(self.tarpit_s, wait))
        finally:
            self._tarpits.release()

    def _prune(self, now: float) -> None:
        with self._lock:
            if now < self._next_prune:
                return  # another thread of this process took it
            self._next_prune = now + PRUNE_EVERY_S * random.uniform(0.5, 1.5)
        self.store.prune(now - self.limits.refill_s - 1.0)

    def _failed(self, exc: Exception, now: float) -> None:
        self.store.drop()
        with self._lock:
            first = self._failing_since is None
            if first:
                self._failing_since = now
            self._retry_at = now + OUTAGE_PAUSE_S
        if first:
            log.warning("rate limits off: their store fails (%s: %s); requests are let in until it works again",
                        type(exc).__name__, str(exc).strip()[:300])

    def _recovered(self, now: float) -> None:
        with self._lock:
            since, self._failing_since = self._failing_since, None
        if since is not None:
            log.warning("rate limits on again: their store works (it failed for %.0f s)", now - since)


@lru_cache(maxsize=4096)
def _address_key(address: str, trusted: tuple) -> tuple[bool, str]:
    """(whether `address` is a trusted proxy's, its bucket's key): asked for every request, so remembered."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False, f"addr:{address[:64]}"
    ip = getattr(ip, "ipv4_mapped", None) or ip
    if any(ip in network for network in trusted):
        return True, ""
    return False, "addr:" + (str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip))


def _refusal(scope: str, wait: float) -> RateLimited:
    """429 rate_limited; its Retry-After in whole seconds, at least 1 (HTTP has no fractions), never less
    than the real wait."""
    return RateLimited("till" if scope == "device" else "address", max(1, math.ceil(wait - 1e-9)), scope)


def open_limiter(folder: str | Path, database: str | None, config: dict, *,
                 clock: Callable[[], float] = time.time) -> Limiter:
    """The limiter of a backend over `folder` and its `database` (None: SQLite, a side file in the folder)."""
    limits = limits_of(config)
    if not limits.enabled:
        return Limiter(limits, None, clock=clock)
    if database is not None:
        return Limiter(limits, PostgresBuckets(database), clock=clock)
    try:
        store = SQLiteBuckets(folder)
    except Exception as exc:  # a folder we cannot write a side file in: serve, unlimited, and say so
        log.warning("rate limits off: cannot open their file in %s (%s)", folder, exc)
        return Limiter(limits, _Unavailable(), clock=clock)
    return Limiter(limits, store, clock=clock)


class _Unavailable:
    """A store that is not there: every check lets the request in."""

    def take(self, *args) -> None:
        return None

    def prune(self, before: float) -> int:
        return 0

    def drop(self) -> None:
        pass

    def close(self) -> None:
        pass


__all__ = ["Limiter", "Limits", "RateLimited", "limits_of", "open_limiter"]

"""What every operation works with: the storage, the clock, the settings, the keys (a KeyRing), the caches.

Made once per process (by `Backend`), never per request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from pos_app.core import tokens

from ..storage.base import Storage
from ..storage.state import VoucherCache
from .keyring import KeyRing


class TtlCache:
    """A process's memory of rows that decide things, each kept at most `ttl_s`: another process's change
    (a device deleted, moved) is seen here within that, as a revocation must be (issue 17: a second).
    Shared by request threads: dict operations are atomic under the GIL; bounded by clearing when full."""

    def __init__(self, ttl_s: float = 1.0, size: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.ttl_s, self._size, self._clock = ttl_s, size, clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable) -> Any:
        entry = self._entries.get(key)
        if entry is None or self._clock() - entry[0] >= self.ttl_s:
            return None
        return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key] = (self._clock(), value)


@dataclass
class Context:
    storage: Storage
    config: dict
    clock: Callable[[], float]
    keys: KeyRing  # the signing keys, re-read every few seconds: a rotation needs no restart
    vouchers: VoucherCache = field(default_factory=VoucherCache)
    # token hash → device: a cache, as a device's credentials are checked on every call; a second at most
    devices: TtlCache = field(default_factory=TtlCache)

    @property
    def kid(self) -> str | None:
        """The key that signs now."""
        return self.keys.state(self.clock()).kid

    @property
    def public_keys(self) -> list[dict]:
        """The keys tills verify with ({kid, pem}): catalog and enrollment."""
        return self.keys.state(self.clock()).public_keys

    @property
    def trust(self) -> tokens.TrustSet:
        """The keys the backend verifies with (redemptions, a till's entries)."""
        return self.keys.state(self.clock()).trust

    def signer(self) -> tuple[Any, float | None]:
        """The private key that signs now, and the time its tokens must end by (None: no bound)."""
        return self.keys.signer(self.clock())

    def one(self, sql: str, params=()) -> Any:
        """One row read on this thread's connection."""
        return self.storage.read().execute(sql, params).fetchone()

"""What every operation works with: the storage, the clock, the settings, the keys, the caches.

Made once per process (by `Backend`), never per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pos_app.core import tokens

from ..storage.base import Storage
from ..storage.state import VoucherCache


@dataclass
class Context:
    storage: Storage
    config: dict
    clock: Callable[[], float]
    signing_key: Any
    kid: str
    public_keys: list[dict]
    trust: tokens.TrustSet
    vouchers: VoucherCache = field(default_factory=VoucherCache)
    # token hash → device: a cache, as a device's credentials are checked on every call
    devices: dict[str, dict] = field(default_factory=dict)

    def one(self, sql: str, params=()) -> Any:
        """One row read on this thread's connection."""
        return self.storage.read().execute(sql, params).fetchone()

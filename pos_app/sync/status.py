"""What the sync panel, the status bar and `python -m pos_app status` show, as typed records.

The status crosses threads (the engine's worker, the store's thread, the GUI's)
and modules, so it is frozen: whoever holds one can read it while the next is
made. Two records, because two places know different things: `StoreFigures`
is what the till's store holds (read by whichever thread owns that store),
`SyncStatus` is what only a running engine knows (online, next retry) with
the figures it last read. `to_json()` gives the keys docs/sync.md lists, in
the order the CLI has always printed them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..store import settings

PARKED_SHOWN = 50


@dataclass(frozen=True)
class StoreFigures:
    """The store's figures (docs/sync.md, "Status figures"); every one None in `unread()`."""

    outbox: int
    outbox_oldest_at: float | None
    parked: int
    pending_online: int
    last_sync: float | None
    last_error: dict | str | None  # {at, error} as stored; a plain message when the store could not be read
    clock_skew_s: float | None
    redemptions: int
    accepted: int
    conflicts: int
    conflict_rate: float
    offline_share: float
    over_limit: int
    sync_runs: int
    sync_success_rate: float | None
    delay_p50_s: float | None
    delay_p95_s: float | None
    feed_cursor: int
    feed_parked: int  # feed events this till could not apply (set aside, the cursor moved on)
    feed_parked_reason: str | None  # the last one's reason
    withdrawn: str | None  # device_revoked / device_rolled: the backend ended this till's credential
    last_heard_at: float | None  # the last answer the backend gave (the offline policy counts from it)
    max_clock_skew_s: float
    clock_skew_flagged: bool
    parked_entries: list  # up to PARKED_SHOWN of {key, reason, at, accepted, created_at, tries}
    # Only the window asks for these (gui.till_info.status_of): None means not read, and not in to_json().
    conflict_entries: list | None = None

    @classmethod
    def unread(cls) -> StoreFigures:
        """Figures nobody has read yet: each one None, as a reader of an empty status always saw them."""
        return cls(**dict.fromkeys(FIGURE_NAMES))

    def to_json(self) -> dict:
        out = {name: getattr(self, name) for name in FIGURE_NAMES}
        if self.conflict_entries is not None:
            out["conflict_entries"] = self.conflict_entries
        return out


FIGURE_NAMES = tuple(f.name for f in fields(StoreFigures) if f.name != "conflict_entries")
_ALL_FIGURES = frozenset(f.name for f in fields(StoreFigures))


@dataclass(frozen=True)
class SyncStatus:
    """The engine's state and the store's figures it last read (`figures`), one record.

    A figure reads straight off the status (`status.outbox`), None while no
    figures were read. A field is None where the one who made the status did
    not know it (the window's view after only the store spoke).
    """

    state: str | None = None  # starting, online, offline, error, stopped
    online: bool | None = None  # did the backend answer the last round
    running: bool | None = None
    runs: int | None = None
    next_retry_at: float | None = None  # the till's clock
    last_round: dict | None = None  # sync.round.SyncSummary.to_json()
    error: str | None = None
    figures: StoreFigures | None = None
    error_reading_store: str | None = None  # the round ran but its figures could not be read
    backoff_failures: int | None = None  # None until a round finished

    def __getattr__(self, name: str):
        # Only for names that are not fields: the figures, so readers need not
        # care whether any were read yet.
        if name in _ALL_FIGURES:
            figures = self.__dict__.get("figures")
            return getattr(figures, name) if figures is not None else None
        raise AttributeError(name)

    def with_figures(self, **changes) -> SyncStatus:
        """This status with some figures changed (unread ones stay None)."""
        return replace(self, figures=replace(self.figures or StoreFigures.unread(), **changes))

    def updated_by(self, news: SyncStatus | StoreFigures) -> SyncStatus:
        """What the window shows after `news`: an engine's status replaces all but the conflicts
        listed; the store's figures replace all but whether the backend answered."""
        if isinstance(news, StoreFigures):
            news = SyncStatus(online=self.online, figures=news)
        if news.conflict_entries is None and self.conflict_entries is not None:
            news = news.with_figures(conflict_entries=self.conflict_entries)
        return news

    def to_json(self) -> dict:
        out = {"state": self.state, "online": self.online, "running": self.running, "runs": self.runs,
               "next_retry_at": self.next_retry_at, "last_round": self.last_round, "error": self.error}
        if self.figures is not None:
            out.update(self.figures.to_json())
        if self.error_reading_store is not None:
            out["error_reading_store"] = self.error_reading_store
        if self.backoff_failures is not None:
            out["backoff_failures"] = self.backoff_failures
        return out


def store_status(store) -> StoreFigures:
    """The figures kept in the store, with parked entries and the skew verdict."""
    figures = store.sync_figures()
    skew = figures["clock_skew_s"]
    limit = settings.value(store, "max_clock_skew_s")
    return StoreFigures(
        **figures, max_clock_skew_s=limit,
        clock_skew_flagged=isinstance(skew, (int, float)) and abs(skew) > limit,
        parked_entries=[
            {"key": row["key"], "reason": row["parked_reason"], "at": row["payload"].get("at"),
             "accepted": row["payload"].get("accepted"), "created_at": row["created_at"], "tries": row["tries"]}
            for row in store.parked()[:PARKED_SHOWN]])

"""What the backend's operations need of a database, whichever it is.

Operations and reports reach the database only through a `Storage`: reads on
this thread's connection, writes as functions run in a write transaction.
Two implementations: SQLite in the data folder (`sqlite.py`, one process's
group-commit writer), PostgreSQL for several processes (`postgres.py`).
"""

from __future__ import annotations

import errno
import re
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import Any, Callable, ClassVar, Iterator, Sequence

from ..errors import StorageFull
from .state import BackendState, VoucherCache


def shown_dsn(dsn: str) -> str:
    """A connection URL with any password masked, for messages and logs: in its user part
    (`user:secret@`) and as a parameter (`?password=secret`)."""
    masked = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", dsn)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", masked, flags=re.IGNORECASE)


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk is full, whichever engine or file raised it: SQLite's SQLITE_FULL,
    PostgreSQL's disk_full (SQLSTATE 53100), an OSError ENOSPC (or EDQUOT, a quota's full)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if getattr(exc, "sqlite_errorcode", None) == 13:  # SQLITE_FULL; older builds only say it in words
        return True
    if getattr(exc, "sqlstate", None) == "53100":
        return True
    return type(exc).__name__ == "OperationalError" and "database or disk is full" in str(exc)


class StorageUnavailable(RuntimeError):
    """The database cannot be reached or opened (said once, plainly, by the command that tried)."""


class Storage(ABC):
    """One backend's database: a read connection per thread, one writer for the process."""

    # What a write that breaks a constraint (a unique index) raises: a race another request won.
    IntegrityError: ClassVar[type[Exception]]
    # How `read_snapshot` opens its transaction: a plain BEGIN is one snapshot on SQLite (from its first
    # read on); PostgreSQL's default, read committed, takes a new one per statement, so it says more.
    SNAPSHOT_BEGIN: ClassVar[str] = "BEGIN"

    @abstractmethod
    def read(self) -> Any:
        """This thread's read connection (each has one owner: the thread that asked first)."""

    @abstractmethod
    def submit(self, fn: Callable[[Any], Any]) -> Any:
        """Run `fn(db)` in the writer's next group commit; its result once durable."""

    @abstractmethod
    def insert_row(self, table: str, columns: tuple[str, ...], row: Sequence[Any]) -> int:
        """Insert one row in the next group commit; its id once durable (IntegrityError if it clashes)."""

    # Whether writes run side by side (PostgreSQL): only then are `hold`'s names worth finding, and a
    # unique index's refusal inside a write worth one more run of it (operations/holds.py).
    CONCURRENT_WRITES: ClassVar[bool] = False
    # The schema version this program's migrations make (what /health/ready compares the database's with).
    SCHEMA_VERSION: ClassVar[int] = 0
    # When a write was last refused for a full disk (time.monotonic()): /health/ready stays not ok a while
    # after, as a small probe may still fit in a page's free space while real writes are refused.
    full_at: float | None = None

    def refused_full(self, exc: BaseException) -> "StorageFull":
        """The domain error for a write the full disk refused, remembered for /health/ready."""
        self.full_at = time.monotonic()
        return StorageFull()

    def write_queue(self) -> int:
        """Writes waiting in this process for their turn (SQLite's group commit, PostgreSQL's pool)."""
        return 0

    def schema_version(self) -> int:
        """The highest migration the database has applied."""
        return self.read().execute("SELECT coalesce(max(version), 0) FROM _migrations").fetchone()[0]

    def hold(self, db: Any, *names: str) -> None:
        """Inside a write (`fn(db)`): others writing under any of these names wait until this write ends.

        An operation must call it, first thing in its write and once, with every name its decision
        reads under, whenever the write reads, decides and then writes (a count against a limit, a
        status that allows a change, a row that must not exist yet): under PostgreSQL's read committed
        such writes run side by side and would each decide on what the other has not yet committed.
        Names are taken in sorted order, so two writes never wait for each other. SQLite: nothing to
        do, its writer is alone."""

    @abstractmethod
    def close(self) -> None:
        """Let queued writes commit, then close every connection this storage opened, in any thread."""

    @contextmanager
    def read_snapshot(self) -> Iterator[Any]:
        """This thread's read connection inside one read transaction: every read in the block sees one state
        of the database (read connections are in autocommit, where each statement sees its own)."""
        db = self.read()
        db.execute(self.SNAPSHOT_BEGIN)
        try:
            yield db
        finally:
            db.execute("COMMIT")  # reads only: commit and roll back are one

    def redemption_state(self, db: Any, device: dict, velocity_cap: int, vouchers: VoucherCache) -> BackendState:
        """The verdict's questions for one till, answered over `db` (a read connection or the writer's)."""
        return BackendState(db, retailer_id=device["retailer_id"], store_id=device["store_id"],
                            device_id=device["id"], store_timezone=device["timezone"],
                            velocity_cap=velocity_cap, vouchers=vouchers)

"""SQLite-flavoured calls over a psycopg connection, so operations' SQL runs unchanged on PostgreSQL.

Operations write SQL once, with SQLite's placeholders (`?`, and `?NNN` where a
value is used twice), and call `db.execute`, `db.conn.execute` and
`with db.conn:`. `PgConnection` answers those calls over psycopg 3: it turns
the placeholders into psycopg's (`%s`, or `%(pN)s` when any is numbered),
outside quoted literals, identifiers and comments, and doubles every literal
`%` (psycopg reads `%` as its own everywhere in the text). The translation
is cached per SQL text: operations use a few hundred fixed statements, so
the hot path pays a dict lookup, not a scan.

Rows come back as tuples, as sqlite3 gives them (psycopg's default).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable, Iterator, Sequence

import psycopg

IntegrityError = psycopg.errors.IntegrityError  # UniqueViolation, CheckViolation … derive from it


@lru_cache(maxsize=4096)
def translate(sql: str) -> tuple[str, int | None]:
    """(psycopg's SQL, None) for plain `?`s, or (SQL with `%(pN)s`, highest N) when any is numbered.

    SQLite's numbering rule holds: a bare `?` after numbered ones takes the
    number one above the highest so far."""
    pieces = list(_scan(sql))
    if not any(isinstance(p, int) for p in pieces):
        return "".join("%s" if p is None else p for p in pieces), None
    out: list[str] = []
    highest = 0
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
            continue
        number = highest + 1 if piece is None else piece
        highest = max(highest, number)
        out.append(f"%(p{number})s")
    return "".join(out), highest


def _scan(sql: str) -> Iterator[str | int | None]:
    """The SQL as text (its `%` doubled) and placeholders: None for `?`, N for `?N`."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":  # a literal or a quoted identifier: copied whole, its `?` left alone
            end = sql.find(c, i + 1)
            while end != -1 and sql.startswith(c, end + 1):  # '' and "" are escaped quotes
                end = sql.find(c, end + 2)
            end = n if end == -1 else end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end == -1 else end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end == -1 else end + 2
        elif c == "?":
            end = i + 1
            while end < n and sql[end].isdigit():
                end += 1
            yield int(sql[i + 1:end]) if end > i + 1 else None
            i = end
            continue
        else:
            end = i + 1
            while end < n and sql[end] not in "'\"-/?":
                end += 1
        yield sql[i:end].replace("%", "%%")
        i = end


def _bind(highest: int | None, params: Sequence[Any] | dict) -> Sequence[Any] | dict:
    if highest is None or isinstance(params, dict):
        return tuple(params) if not isinstance(params, dict) else params
    if len(params) != highest:
        # sqlite3 says the same for a wrong count: better here than psycopg's KeyError.
        raise psycopg.ProgrammingError(
            f"the statement uses {highest} numbered parameters, {len(params)} were supplied")
    return {f"p{k}": value for k, value in enumerate(params, start=1)}


class PgConnection:
    """One psycopg connection, called as operations call a sqlite_utils Database and its sqlite3 connection.

    `with db.conn:` is a transaction (a savepoint inside one already open),
    as sqlite3's commit-or-roll-back block is for the operations that use it.
    """

    IntegrityError = IntegrityError

    def __init__(self, raw: psycopg.Connection):
        self.raw = raw
        self._blocks: list[psycopg.Transaction] = []

    @property
    def conn(self) -> "PgConnection":
        return self  # callers say `db.conn.execute` as well as `db.execute`

    def execute(self, sql: str, params: Sequence[Any] | dict = ()) -> psycopg.Cursor:
        text, highest = translate(sql)
        # Always with parameters (even none), so psycopg reads `%%` back as `%`.
        return self.raw.execute(text, _bind(highest, params))

    def executemany(self, sql: str, seq_of_params: Iterable[Sequence[Any]]) -> psycopg.Cursor:
        text, highest = translate(sql)
        cursor = self.raw.cursor()
        cursor.executemany(text, [_bind(highest, params) for params in seq_of_params])
        return cursor

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def __enter__(self) -> "PgConnection":
        block = self.raw.transaction()
        block.__enter__()
        self._blocks.append(block)
        return self

    def __exit__(self, kind, value, traceback) -> bool:
        return bool(self._blocks.pop().__exit__(kind, value, traceback))

    def close(self) -> None:
        self.raw.close()

"""`migrate-to-postgres`: a SQLite backend's data folder copied into PostgreSQL, and optionally switched to it.

The copy itself (storage/pg_copy.py) knows nothing of data folders; this
command finds the folder's SQLite file, refuses a folder that is already
over PostgreSQL (its SQLite file is no longer the backend's), and with
`--switch` names the database in the folder's config once the copy is
checked, so the next `serve` runs over PostgreSQL. A copy may be taken while
`serve` runs (a trial, or to time it); the switch is for a stopped backend,
and is refused if rows came in after the copy's snapshot (`written_since`).
"""

from __future__ import annotations

import os

from ..datadir import DataDir, check_database_url
from ..storage import pg_copy
from ..storage.base import shown_dsn
from .output import print_error, print_json


def add_to(sub) -> None:
    p = sub.add_parser("migrate-to-postgres", help="copy a SQLite backend's data into an empty PostgreSQL database")
    p.add_argument("--data", required=True)
    from_env = os.environ.get("PIKA_DATABASE") or None  # keeps a password off the process list
    p.add_argument("--database", metavar="URL", default=from_env, required=from_env is None,
                   help="postgresql://user@host:port/name (empty; default $PIKA_DATABASE)")
    p.add_argument("--switch", action="store_true", help="then serve this folder over PostgreSQL from now on")
    p.set_defaults(run=migrate_to_postgres)


def migrate_to_postgres(args) -> int:
    url = check_database_url(args.database)
    data = DataDir(args.data)
    try:
        if not data.initialised or not data.db_path.is_file():
            raise pg_copy.CopyRefused(f"{args.data} holds no SQLite backend", "no_sqlite_backend")
        already = data.config().get("database")
        if already:
            raise pg_copy.CopyRefused(f"{args.data} already runs over PostgreSQL ({shown_dsn(already)}): its "
                                      "SQLite file is not its data any more", "already_postgres")
        copied = pg_copy.copy(data.db_path, url)
    except pg_copy.CopyRefused as exc:
        print_error(f"{exc} ({exc.code})")
        return 1
    behind = pg_copy.written_since(data.db_path, copied)
    if args.switch and behind:
        # Switching now would leave what `serve` committed after the snapshot in SQLite alone, for good.
        changed = ", ".join(f"{table} ({gained:+d} rows)" for table, gained in sorted(behind.items()))
        print_error(f"{args.data} was written to during the copy ({changed}), so it was not switched: stop "
                    f"serve, empty {shown_dsn(url)} and copy again with --switch (written_during_copy)")
        return 1
    if args.switch:
        data.set_config(database=url)
    print_json({"database": shown_dsn(url), "tables": copied.tables, "rows": sum(copied.tables.values()),
                "event_head": copied.event_head, "verified": True, "switched": bool(args.switch),
                "written_since": behind, "seconds": round(copied.seconds, 3)})
    return 0

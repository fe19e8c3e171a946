"""`init`, `serve`, `demo-data`: making a backend's data folder, serving it, filling it for a demo."""

from __future__ import annotations

import os
import sys

from ..datadir import DataDir, NotInitialised
from ..storage.base import shown_dsn
from .output import print_json


DATABASE_HELP = ("PostgreSQL, postgresql://user@host:port/name, instead of SQLite in the folder; also "
                 "$PIKA_DATABASE, which keeps a password off the process list")


def add_to(sub) -> None:
    """Add the three commands to `sub`, the subparsers of `python -m server_stub`."""
    p = sub.add_parser("init", help="create a backend: signing key and admin token")
    p.add_argument("--data", required=True)
    p.add_argument("--database", metavar="URL", default=os.environ.get("PIKA_DATABASE") or None,
                   help=DATABASE_HELP + " (kept in the folder's config)")
    p.set_defaults(run=init)
    p = sub.add_parser("serve", help="serve the API (granian)")
    p.add_argument("--data", required=True)
    p.add_argument("--database", metavar="URL", default=os.environ.get("PIKA_DATABASE") or None,
                   help=DATABASE_HELP + " (default: the folder's config)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--threads", type=int, default=8, help="request threads per worker process")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: one a core)")
    p.add_argument("--stdlib", action="store_true", help="the standard library server (for comparison)")
    p.set_defaults(run=serve)
    p = sub.add_parser("demo-data", help="add a demo retailer, store, vouchers, staff and enrollment codes")
    p.add_argument("--data", required=True)
    p.add_argument("--database", metavar="URL", default=os.environ.get("PIKA_DATABASE") or None,
                   help=DATABASE_HELP + " (default: the folder's config)")
    p.set_defaults(run=demo_data)


def init(args) -> int:
    print_json(DataDir(args.data).init(args.database))
    return 0


def serve(args) -> int:
    data = DataDir(args.data)
    if not data.initialised:
        raise NotInitialised(f"{args.data} holds no backend: run init first")
    database = data.database(args.database)
    if not _loopback(args.host):
        # Tokens and PINs would cross the network in clear: the front (docs/operating.md) is what faces it.
        sys.stderr.write(f"warning: serving plain HTTP on {args.host}, not only this machine: device tokens and "
                         "PINs cross the network unencrypted; serve on 127.0.0.1 behind the TLS front "
                         "(python -m server_stub front-config, docs/operating.md)\n")
    from ..limits import limits_of
    limits_of(data.config())  # a bad "limits" refused here, once, not by every worker as it starts
    data.migrate(database)  # a damaged database or a pending migration is found here, not in each worker
    if database:
        sys.stderr.write(f"database: {shown_dsn(database)}\n")
    from ..booklet import schedule
    scheduler = schedule.start(args.data, data.config(), database)  # one scheduler, in this main process
    if scheduler is not None:
        sys.stderr.write("booklet: monthly render scheduled\n")
    from . import reconcile
    if reconcile.start(args.data, data.config(), database) is not None:  # this main process only, as the booklet's
        sys.stderr.write("reconcile: nightly run scheduled\n")
    if args.stdlib:
        from ..app import make_app
        from ..serving import EmbeddedServer
        server = EmbeddedServer(make_app(args.data, database), args.host, args.port)
        sys.stderr.write(f"serving on {server.url} (standard library)\n")
        server.serve_forever()
    else:
        from ..serving import serve_granian
        serve_granian(args.data, args.host, args.port, threads=args.threads, workers=args.workers,
                      database=database)
    return 0


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def demo_data(args) -> int:
    from ..backend import Backend
    from ..demo import add_demo_data
    backend = Backend(args.data, database=args.database)
    try:
        print_json(add_demo_data(backend))
    finally:
        backend.close()
    return 0

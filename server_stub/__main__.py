"""`python -m server_stub`: init, serve, demo-data. JSON on stdout, errors on stderr."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys

from .datadir import DataDir, NotInitialised


def _print(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server_stub", description="The compact Pika backend.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("init", help="create a backend: signing key and admin token")
    p.add_argument("--data", required=True)
    p = sub.add_parser("serve", help="serve the API (granian)")
    p.add_argument("--data", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--threads", type=int, default=8, help="request threads per worker process")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: one a core)")
    p.add_argument("--stdlib", action="store_true", help="the standard library server (for comparison)")
    p = sub.add_parser("demo-data", help="add a demo retailer, store, vouchers, staff and enrollment codes")
    p.add_argument("--data", required=True)
    p = sub.add_parser("booklet", help="the monthly voucher booklet: render, list, billing")
    from .commands.booklet import add_arguments, run_booklet
    add_arguments(p)
    args = parser.parse_args(argv)

    try:
        if args.command == "init":
            _print(DataDir(args.data).init())
        elif args.command == "serve":
            data = DataDir(args.data)
            if not data.initialised:
                raise NotInitialised(f"{args.data} holds no backend: run init first")
            data.migrate()  # a damaged database or a pending migration is found here, not in each worker
            from .booklet import schedule
            scheduler = schedule.start(args.data, data.config())  # one scheduler, in this main process
            if scheduler is not None:
                sys.stderr.write("booklet: monthly render scheduled\n")
            if args.stdlib:
                from .app import make_app
                from .serving import EmbeddedServer
                server = EmbeddedServer(make_app(args.data), args.host, args.port)
                sys.stderr.write(f"serving on {server.url} (standard library)\n")
                server.serve_forever()
            else:
                from .serving import serve_granian
                serve_granian(args.data, args.host, args.port, threads=args.threads, workers=args.workers)
        elif args.command == "booklet":
            return run_booklet(args)
        elif args.command == "demo-data":
            from .backend import Backend
            from .demo import add_demo_data
            backend = Backend(args.data)
            try:
                _print(add_demo_data(backend))
            finally:
                backend.close()
    except (NotInitialised, FileExistsError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except sqlite3.DatabaseError as exc:
        sys.stderr.write(f"error: the database in {args.data} cannot be used: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m server_stub`: init, serve, demo-data, booklet, token, migrate-to-postgres. JSON on stdout, errors on stderr.

The commands themselves live in `commands/`; this is only the entry point:
it assembles their parsers and says any refusal as one `error:` line, exit 1.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys

from .commands import admin_tokens, booklet, moving, server
from .commands.output import print_error
from .datadir import BadDatabaseURL, NotInitialised
from .errors import DomainError
from .storage.base import StorageUnavailable


def build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m server_stub", description="The compact Pika backend.")
    sub = top.add_subparsers(dest="command", required=True)
    server.add_to(sub)
    booklet.add_to(sub)
    admin_tokens.add_to(sub)
    moving.add_to(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except DomainError as exc:
        print_error(f"{exc.message} ({exc.code})")
    except (NotInitialised, FileExistsError) as exc:
        print_error(str(exc))
    except (BadDatabaseURL, StorageUnavailable) as exc:
        print_error(str(exc))
    except sqlite3.DatabaseError as exc:
        print_error(f"the database in {args.data} cannot be used: {exc}")
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())

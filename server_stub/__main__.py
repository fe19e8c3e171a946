"""`python -m server_stub`: init, serve, demo-data, booklet, token, key, lan-key, device, reconcile, verify-till-log, migrate-to-postgres, backup, restore, front-config. JSON on stdout, errors on stderr.

The commands themselves live in `commands/`; this is only the entry point:
it assembles their parsers and says any refusal as one `error:` line, exit 1.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from .commands import admin_tokens, audit_log, backup, booklet, front, moving, server
from .commands import keys
from .commands import reconcile as reconcile_command
from .commands import till_log as till_log_command
from .commands import lan_keys as lan_key_commands
from .commands import devices as device_commands
from .commands import staff as staff_commands
from .commands.output import print_error
from .datadir import BadDatabaseURL, NotInitialised
from .errors import DomainError
from .operations import audit
from .storage.base import StorageUnavailable


def build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m server_stub", description="The compact Pika backend.")
    sub = top.add_subparsers(dest="command", required=True)
    server.add_to(sub)
    booklet.add_to(sub)
    admin_tokens.add_to(sub)
    keys.add_to(sub)
    lan_key_commands.add_to(sub)
    moving.add_to(sub)
    backup.add_to(sub)
    front.add_to(sub)
    audit_log.add_to(sub)
    device_commands.add_to(sub)
    staff_commands.add_to(sub)
    reconcile_command.add_to(sub)
    till_log_command.add_to(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # What a command changes is the shell user's doing, in the audit log.
    audit.begin("local", "shell", _shell_user())
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


def _shell_user() -> str:
    import getpass

    try:
        return getpass.getuser()[:64]
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"uid {os.getuid()}"


if __name__ == "__main__":
    sys.exit(main())

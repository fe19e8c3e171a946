"""`python -m server_stub lan-key rotate --data DIR (--store ID | --all)`: a store's new LAN key.

The store's tills fetch it with the catalog at once (the feed's `lan` event);
the key it replaces still verifies for 14 days, for tills that have not heard
yet. Revoking a till does the same for its store by itself. Prints the kids
only: a secret never reaches a terminal (operations/lan_keys.py).
"""

from __future__ import annotations

from ..operations import lan_keys
from .output import print_json


def add_to(sub) -> None:
    """Add `lan-key` and its command to `sub`, the subparsers of `python -m server_stub`."""
    parser = sub.add_parser("lan-key", help="the keys a store's tills authenticate each other with: rotate")
    parser.set_defaults(run=run)
    commands = parser.add_subparsers(dest="lan_key_command", required=True)
    p = commands.add_parser("rotate", help="a store's new LAN key; the old one still verifies for 14 days")
    p.add_argument("--data", required=True)
    p.add_argument("--database", help="a PostgreSQL URL, instead of the folder's config")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--store", help="the store's id")
    which.add_argument("--all", action="store_true", help="every store")


def run(args) -> int:
    """Exit status 0; a refusal is raised (a DomainError) for the entry point to say."""
    from ..backend import Backend

    backend = Backend(args.data, database=args.database)
    try:
        done = lan_keys.rotate_all(backend.ctx) if args.all else [lan_keys.rotate(backend.ctx, args.store)]
        print_json({"rotated": done})
    finally:
        backend.close()
    return 0

"""`python -m server_stub audit`: the audit log read at the operator's shell, as `GET /audit` answers it."""

from __future__ import annotations

from ..operations import audit
from .output import print_json


def add_to(sub) -> None:
    """Add `audit` to `sub`, the subparsers of `python -m server_stub`."""
    p = sub.add_parser("audit", help="who did what: admin and manager actions, oldest first")
    p.set_defaults(run=run)
    p.add_argument("--data", required=True)
    p.add_argument("--database", help="a PostgreSQL URL overriding the folder's config")
    p.add_argument("--retailer", help="only this retailer's records")
    p.add_argument("--action", help="only this action, e.g. device.revoke")
    p.add_argument("--after", type=int, default=0, help="records with an id above this (the last answer's next)")
    p.add_argument("--limit", type=int, default=100, help=f"at most this many (1 to {audit.LIST_MAX})")


def run(args) -> int:
    from ..backend import Backend

    backend = Backend(args.data, database=args.database)
    try:
        print_json(audit.listing(backend.ctx, retailer_id=args.retailer, action=args.action,
                                 after=max(0, min(args.after, 2**62)), limit=args.limit))
    finally:
        backend.close()
    return 0

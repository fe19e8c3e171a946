"""`python -m server_stub token …`: admin tokens of a scope (the customer app's 'claims', the operator's 'all').

A new token is printed once and kept only as its hash; `list` shows each by
its id (the hash's first digits), never the token, and when it expires;
`revoke` withdraws one; `rotate` replaces one (same scope and name), the old
one working on for `--grace` so its holder can switch.
"""

from __future__ import annotations

from ..operations import credentials
from .keys import duration
from .output import print_json


def add_to(sub) -> None:
    """Add `token` and its commands to `sub`, the subparsers of `python -m server_stub`."""
    parser = sub.add_parser("token", help="admin tokens: create one of a scope, list, revoke, rotate")
    parser.set_defaults(run=run)
    commands = parser.add_subparsers(dest="token_command", required=True)
    p = commands.add_parser("create", help="a new admin token, printed once")
    p.add_argument("--data", required=True)
    p.add_argument("--scope", required=True, choices=credentials.SCOPES,
                   help="all: every admin endpoint; claims: only POST /claims and claim revocation")
    p.add_argument("--name", required=True, help="who holds it, e.g. \"customer app\"")
    p.add_argument("--expires-in", type=duration, help="it ends this long from now (e.g. 30d); never without")
    p = commands.add_parser("list", help="every admin token: id, name, scope, created, expires")
    p.add_argument("--data", required=True)
    p = commands.add_parser("revoke", help="withdraw a token by the id `list` shows")
    p.add_argument("--data", required=True)
    p.add_argument("id")
    p = commands.add_parser("rotate", help="a new token of the same scope and name, printed once; the old one "
                                           "works on for --grace")
    p.add_argument("--data", required=True)
    p.add_argument("--grace", type=duration, default=3600, help="how long the old token still works (default 1h)")
    p.add_argument("--expires-in", type=duration,
                   help="the new token ends this long from now (default: the old one's lifetime, or never)")
    p.add_argument("id")


def run(args) -> int:
    """Exit status 0; a refusal is raised (a DomainError) for the entry point to say."""
    from ..backend import Backend

    backend = Backend(args.data)
    try:
        if args.token_command == "create":
            print_json(credentials.create_token(backend.ctx, args.scope, args.name, args.expires_in))
        elif args.token_command == "list":
            print_json({"tokens": credentials.list_tokens(backend.ctx)})
        elif args.token_command == "rotate":
            print_json(credentials.rotate_token(backend.ctx, args.id, args.grace, args.expires_in))
        else:
            print_json(credentials.revoke_token(backend.ctx, args.id))
    finally:
        backend.close()
    return 0

"""`python -m server_stub token …`: admin tokens of a scope (the customer app's 'claims', the operator's 'all').

A new token is printed once and kept only as its hash; `list` shows each by
its id (the hash's first digits), never the token; `revoke` withdraws one.
"""

from __future__ import annotations

from ..operations import credentials
from .output import print_json


def add_to(sub) -> None:
    """Add `token` and its commands to `sub`, the subparsers of `python -m server_stub`."""
    parser = sub.add_parser("token", help="admin tokens: create one of a scope, list, revoke")
    parser.set_defaults(run=run)
    commands = parser.add_subparsers(dest="token_command", required=True)
    p = commands.add_parser("create", help="a new admin token, printed once")
    p.add_argument("--data", required=True)
    p.add_argument("--scope", required=True, choices=credentials.SCOPES,
                   help="all: every admin endpoint; claims: only POST /claims and claim revocation")
    p.add_argument("--name", required=True, help="who holds it, e.g. \"customer app\"")
    p = commands.add_parser("list", help="every admin token: id, name, scope, created")
    p.add_argument("--data", required=True)
    p = commands.add_parser("revoke", help="withdraw a token by the id `list` shows")
    p.add_argument("--data", required=True)
    p.add_argument("id")


def run(args) -> int:
    """Exit status 0; a refusal is raised (a DomainError) for the entry point to say."""
    from ..backend import Backend

    backend = Backend(args.data)
    try:
        if args.token_command == "create":
            print_json(credentials.create_token(backend.ctx, args.scope, args.name))
        elif args.token_command == "list":
            print_json({"tokens": credentials.list_tokens(backend.ctx)})
        else:
            print_json(credentials.revoke_token(backend.ctx, args.id))
    finally:
        backend.close()
    return 0

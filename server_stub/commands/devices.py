"""`python -m server_stub device …`: the operator's tills at the shell, as `GET/POST /devices…` answer them.

`list` and `show` say what each till last reported and its status; `rename`,
`revoke` (final: a stolen till) and `roll` (a new token, by the code printed)
change one and are written to the audit log as the shell's user.
"""

from __future__ import annotations

from ..operations import devices
from .output import print_json


def add_to(sub) -> None:
    """Add `device` and its commands to `sub`, the subparsers of `python -m server_stub`."""
    parser = sub.add_parser("device", help="tills: list, show, rename, revoke (withdraw), roll (a new token)")
    parser.set_defaults(run=run)
    commands = parser.add_subparsers(dest="device_command", required=True)

    def command(name: str, help_text: str):
        p = commands.add_parser(name, help=help_text)
        p.add_argument("--data", required=True)
        p.add_argument("--database", help="a PostgreSQL URL overriding the folder's config")
        return p
    p = command("list", "every till: name, store, last seen, version, outbox, status")
    p.add_argument("--retailer", help="only this retailer's tills")
    p.add_argument("--store", help="only this store's tills")
    command("show", "one till").add_argument("id")
    p = command("rename", "give a till another name")
    p.add_argument("id")
    p.add_argument("name")
    p = command("revoke", "withdraw a till for good (stolen, lost): its token stops working")
    p.add_argument("id")
    p.add_argument("--reason", help="why, for the audit log")
    p = command("roll", "replace a till's token: prints a code that enrolls the same till again")
    p.add_argument("id")
    p.add_argument("--ttl-days", type=int, default=devices.ROLL_TTL_S // devices.DAY_S,
                   help="days the code works (default 7)")


def run(args) -> int:
    """Exit status 0; a refusal is raised (a DomainError) for the entry point to say."""
    from ..backend import Backend

    backend = Backend(args.data, database=args.database)
    try:
        ctx, command = backend.ctx, args.device_command
        if command == "list":
            print_json({"devices": devices.list_devices(ctx, args.retailer, args.store)})
        elif command == "show":
            print_json(devices.get_device(ctx, args.id))
        elif command == "rename":
            print_json(devices.rename(ctx, args.id, args.name))
        elif command == "revoke":
            print_json(devices.revoke(ctx, args.id, args.reason))
        else:
            print_json(devices.roll(ctx, args.id, args.ttl_days * devices.DAY_S))
    finally:
        backend.close()
    return 0

"""`python -m server_stub staff …`: the operator's staff at the shell, as the API's /staff endpoints do it.

A PIN is read from standard input (one line) or, at a terminal, asked for
twice without echo: never an argument, which any user of the machine could
read in the process list.
"""

from __future__ import annotations

import getpass
import sys

from ..errors import Invalid
from ..operations import staff_admin
from ..operations.admin import ROLES
from .output import print_json

PIN_LINE_MAX = 64  # a PIN is 12 digits at most; a longer line is refused, not cut


def add_to(sub) -> None:
    """Add `staff` and its commands to `sub`, the subparsers of `python -m server_stub`."""
    parser = sub.add_parser("staff", help="staff members: list, show, change, disable, enable, set-pin")
    parser.set_defaults(run=run)
    commands = parser.add_subparsers(dest="staff_command", required=True)

    def command(name: str, help_text: str, with_id: bool = True):
        p = commands.add_parser(name, help=help_text)
        p.add_argument("--data", required=True)
        p.add_argument("--database", help="a PostgreSQL URL overriding the folder's config")
        if with_id:
            p.add_argument("id", help="the staff member's id, as `staff list` shows it")
        return p
    p = command("list", "staff members, never their PIN's hash", with_id=False)
    p.add_argument("--retailer", help="only this retailer's")
    p.add_argument("--store", help="only this store's own staff")
    p.add_argument("--include-disabled", action="store_true")
    command("show", "one staff member")
    p = command("change", "rename, give another role, move to a store (tills hear of it)")
    p.add_argument("--name")
    p.add_argument("--role", choices=ROLES)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--store", help="the store they work at")
    where.add_argument("--every-store", action="store_true", help="every store of the retailer (head office)")
    command("disable", "no login anywhere: online at once, at tills once they hear")
    command("enable", "able to log in again")
    command("set-pin", "a new PIN, read from standard input or asked for")


def run(args) -> int:
    """Exit status 0; a refusal is raised (a DomainError) for the entry point to say."""
    from ..backend import Backend

    pin = read_pin() if args.staff_command == "set-pin" else None  # before the backend opens: a prompt may wait
    backend = Backend(args.data, database=args.database)
    try:
        ctx, member = backend.ctx, getattr(args, "id", None)
        if args.staff_command == "list":
            print_json({"staff": staff_admin.list_staff(ctx, args.retailer, args.store, args.include_disabled)})
        elif args.staff_command == "show":
            print_json(staff_admin.show(ctx, member))
        elif args.staff_command == "change":
            changes = {name: value for name, value in (("name", args.name), ("role", args.role),
                                                       ("store_id", args.store)) if value is not None}
            if args.every_store:
                changes["store_id"] = None
            print_json(staff_admin.change(ctx, member, changes))
        elif args.staff_command in ("disable", "enable"):
            print_json(staff_admin.set_disabled(ctx, member, args.staff_command == "disable"))
        else:
            print_json(staff_admin.set_pin(ctx, member, pin))
    finally:
        backend.close()
    return 0


def read_pin() -> str:
    """The PIN from a terminal (asked twice, not echoed) or one line of standard input."""
    if sys.stdin.isatty():
        pin = getpass.getpass("new PIN: ")
        if getpass.getpass("the same PIN again: ") != pin:
            raise Invalid("invalid_value", "the two PINs differ")
        return pin
    line = sys.stdin.readline(PIN_LINE_MAX + 2)
    pin = line.rstrip("\r\n")
    if not pin or len(pin) > PIN_LINE_MAX:
        raise Invalid("invalid_value", "standard input holds no PIN line (4 to 12 digits)")
    return pin

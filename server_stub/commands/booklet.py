"""`python -m server_stub booklet …`: render a month's booklet to a file, list editions, export billing."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from ..booklet import placements
from ..errors import Invalid
from .output import print_json


def add_to(sub) -> None:
    """Add `booklet` and its commands to `sub`, the subparsers of `python -m server_stub`."""
    parser = sub.add_parser("booklet", help="the monthly voucher booklet: render, list, billing")
    parser.set_defaults(run=run)
    commands = parser.add_subparsers(dest="booklet_command", required=True)
    p = commands.add_parser("render", help="render a month's edition (made from the active printed vouchers if none)")
    p.add_argument("--data", required=True)
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--out", required=True, help="the PDF file to write")
    p.add_argument("--edition", help="this edition instead of the month's latest")
    p.add_argument("--paper", choices=("A5", "A6"), default="A5", help="paper of a new edition")
    p.add_argument("--force", action="store_true", help="render again an edition already rendered")
    p = commands.add_parser("list", help="list editions")
    p.add_argument("--data", required=True)
    p = commands.add_parser("billing", help="the billing CSV of a rendered edition")
    p.add_argument("--data", required=True)
    p.add_argument("--edition", required=True)
    p.add_argument("--out", help="the CSV file to write (default: standard output)")


def _write_atomically(path: str, data: bytes) -> None:
    """The whole file or none: written beside its target, then renamed over it."""
    target = Path(path)
    if not target.parent.is_dir():
        raise Invalid("invalid_value", f"no folder {target.parent} for --out")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def run(args) -> int:
    """Exit status 0; a refusal is raised (a DomainError) for the entry point to say."""
    from ..backend import Backend
    from ..booklet.editions import Booklets

    if args.booklet_command == "render":  # arguments are checked before the database is opened
        placements.month(args.month)
        if Path(args.out).is_dir():
            raise Invalid("invalid_value", "--out is a folder, not a file")
    backend = Backend(args.data)
    try:
        _ACTIONS[args.booklet_command](Booklets(backend), args)
    finally:
        backend.close()
    return 0


def _list(booklets, args) -> None:
    print_json({"editions": booklets.list()})


def _billing(booklets, args) -> None:
    text = booklets.billing_csv(args.edition)
    if args.out:
        _write_atomically(args.out, text.encode("utf-8"))
    else:
        sys.stdout.write(text)


def _render(booklets, args) -> None:
    edition_id = args.edition or _latest(booklets, args.month)
    if edition_id is None:
        edition_id = booklets.create({"month": args.month, "title": "", "paper": args.paper, "pages": None,
                                      "placements": []})["id"]
    edition = booklets.get(edition_id)
    if edition["month"] != args.month:
        raise Invalid("invalid_value", f"edition {edition_id} is of {edition['month']}")
    if edition["status"] != "done" or args.force:
        edition = booklets.render(edition_id, force=args.force)
    _write_atomically(args.out, booklets.pdf(edition_id))
    print_json({"edition": edition_id, "pages": edition["layout"]["pages"], "out": args.out,
                "bytes": edition["pdf"]["bytes"]})


_ACTIONS = {"list": _list, "billing": _billing, "render": _render}


def _latest(booklets, month: str) -> str | None:
    for edition in booklets.list():  # newest first
        if edition["month"] == month and edition["status"] != "failed":
            return edition["id"]
    return None

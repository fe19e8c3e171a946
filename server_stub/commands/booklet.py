"""`python -m server_stub booklet …`: render a month's booklet to a file, list editions, export billing."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from ..errors import DomainError, Invalid
from ..booklet import placements


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="booklet_command", required=True)
    p = sub.add_parser("render", help="render a month's edition (made from the active printed vouchers if none)")
    p.add_argument("--data", required=True)
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--out", required=True, help="the PDF file to write")
    p.add_argument("--edition", help="this edition instead of the month's latest")
    p.add_argument("--paper", choices=("A5", "A6"), default="A5", help="paper of a new edition")
    p.add_argument("--force", action="store_true", help="render again an edition already rendered")
    p = sub.add_parser("list", help="list editions")
    p.add_argument("--data", required=True)
    p = sub.add_parser("billing", help="the billing CSV of a rendered edition")
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


def run_booklet(args) -> int:
    """Exit status 0, or 1 with the reason on stderr."""
    from .. import __main__ as cli
    from ..backend import Backend
    from ..booklet.editions import Booklets

    try:
        if args.booklet_command == "render":
            placements.month(args.month)
            if Path(args.out).is_dir():
                raise Invalid("invalid_value", "--out is a folder, not a file")
        backend = Backend(args.data)
    except DomainError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 1
    try:
        booklets = Booklets(backend)
        if args.booklet_command == "list":
            cli._print({"editions": booklets.list()})
        elif args.booklet_command == "billing":
            text = booklets.billing_csv(args.edition)
            if args.out:
                _write_atomically(args.out, text.encode("utf-8"))
            else:
                sys.stdout.write(text)
        else:
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
            cli._print({"edition": edition_id, "pages": edition["layout"]["pages"], "out": args.out,
                        "bytes": edition["pdf"]["bytes"]})
    except DomainError as exc:
        sys.stderr.write(f"error: {exc.message} ({exc.code})\n")
        return 1
    finally:
        backend.close()
    return 0


def _latest(booklets, month: str) -> str | None:
    for edition in booklets.list():  # newest first
        if edition["month"] == month and edition["status"] != "failed":
            return edition["id"]
    return None

"""`python -m server_stub key list|rotate`: the signing keys, and a new one that tills hear of before it signs.

`rotate` publishes a new key at once and lets it sign after `--lead`
(default 7d, so a till offline for a week still verifies every token it is
shown); `--now` for a leaked key, `--withdraw-old` to stop trusting the old
keys too. operations/signing_keys.py says what each does to tills.
Durations here and in `token` are written 90s, 30m, 12h, 7d (or seconds).
"""

from __future__ import annotations

import argparse
import re

from ..operations import signing_keys
from .output import print_json

_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> int:
    """Seconds from 90s, 30m, 12h, 7d or a plain number of seconds (argparse's `type`)."""
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: write e.g. 90s, 30m, 12h or 7d")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def add_to(sub) -> None:
    """Add `key` and its commands to `sub`, the subparsers of `python -m server_stub`."""
    parser = sub.add_parser("key", help="signing keys: list, rotate")
    parser.set_defaults(run=run)
    commands = parser.add_subparsers(dest="key_command", required=True)
    p = commands.add_parser("list", help="every signing key: its state and times, and whether this host holds it")
    p.add_argument("--data", required=True)
    p.add_argument("--database", help="a PostgreSQL URL, instead of the folder's config")
    p = commands.add_parser("rotate", help="a new signing key: published now, signing after --lead")
    p.add_argument("--data", required=True)
    p.add_argument("--database", help="a PostgreSQL URL, instead of the folder's config")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--lead", type=duration, default=signing_keys.DEFAULT_LEAD_S,
                      help="how long tills have to learn the new key before it signs (default 7d)")
    when.add_argument("--now", action="store_true",
                      help="sign with the new key at once (a leaked key): tills that have not synced since "
                           "refuse its tokens until they do")
    p.add_argument("--withdraw-old", action="store_true",
                   help="with --now: stop trusting the older keys at once; every token they signed is refused")


def run(args) -> int:
    """Exit status 0; a refusal is raised (a DomainError) for the entry point to say."""
    from ..backend import Backend

    backend = Backend(args.data, database=args.database)
    try:
        if args.key_command == "list":
            print_json({"keys": signing_keys.list_keys(backend.ctx, backend.data)})
        else:
            lead = 0 if args.now else args.lead
            print_json(signing_keys.rotate(backend.ctx, backend.data, lead, withdraw=args.withdraw_old))
    finally:
        backend.close()
    return 0

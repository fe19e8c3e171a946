"""`python -m server_stub verify-till-log --data DIR (DEVICE_ID | --file EXPORT [--public-key B64])`.

Checks a till's tamper-evident log (operations/till_log_check.py): the whole
copy the backend keeps, or a file the till exported for a period, against the
key registered for the till. Prints `{ok, device_id, records, problems}`;
exit 0 whole, 1 problems found, 2 a file that cannot be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..operations import till_log_check
from .output import print_json

MAX_FILE = 2 * 1024 ** 3


def add_to(sub) -> None:
    p = sub.add_parser("verify-till-log", help="check a till's log: the backend's copy, or an exported file")
    p.add_argument("--data", required=True)
    p.add_argument("--database", help="a PostgreSQL URL, instead of the folder's config")
    p.add_argument("device_id", nargs="?", help="the till whose log the backend keeps")
    p.add_argument("--file", help="a till's export (python -m pos_app export-log)")
    p.add_argument("--public-key", help="the till's public key (base64), instead of the one registered")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..backend import Backend

    if (args.device_id is None) == (args.file is None):
        sys.stderr.write("error: give a till's id or --file EXPORT (one of them)\n")
        return 2
    doc = None
    if args.file is not None:
        try:
            path = Path(args.file)
            if path.stat().st_size > MAX_FILE:
                raise ValueError("the file is too large for a till's export")
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            sys.stderr.write(f"error: {args.file} cannot be read as a till's export: {str(exc)[:200]}\n")
            return 2
    backend = Backend(args.data, database=args.database)
    try:
        if doc is None:
            result = till_log_check.verify_device(backend.ctx, args.device_id)
        else:
            result = till_log_check.verify_export(backend.ctx, doc, args.public_key)
    finally:
        backend.close()
    print_json(result)
    return 0 if result["ok"] else 1

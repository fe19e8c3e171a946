"""`python -m pos_app export-outbox --data DIR --out FILE`: what the backend never confirmed, for the operator.

A withdrawn till (or one whose backend is gone) still holds redemptions and voids nobody else has:
this writes them to a new private file (store/outbox_export.py) and prints the summary as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED = 0, 1


def cmd_export_outbox(args) -> int:
    from ..store.outbox_export import ExportError, export_outbox
    from .data_folder import STORE_NAME, UsageError, open_store

    if not (Path(args.data) / STORE_NAME).is_file():  # opening would make an empty store, and export nothing
        raise UsageError(f"{args.data} holds no till store ({STORE_NAME})")
    # A till enrolled or not, withdrawn or not: whatever it holds unsent is exported.
    store = open_store(args.data, must_be_enrolled=False)
    try:
        summary = export_outbox(store, args.out)
    except ExportError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILED
    finally:
        store.close()
    sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
    return EXIT_OK


def add_command(sub) -> None:
    p = sub.add_parser("export-outbox", help="write what the backend has not confirmed (parked too) to a new file")
    p.add_argument("--data", required=True, help="the till's data folder")
    p.add_argument("--out", required=True, metavar="FILE", help="a new JSON file (never overwritten; made 0600)")
    p.set_defaults(func=cmd_export_outbox)

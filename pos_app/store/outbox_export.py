"""The till's unsynced outbox written to a file for the operator: what a withdrawn (or broken-off) till
still holds that the backend never confirmed, so it can be handed over instead of lost with the till.

One JSON file, created 0600 and never over an existing one (it holds what customers scanned): the
till's identity, when it was made, how many entries, and each entry as the outbox keeps it (its sync
payload, parked ones marked with their reason). Its `entries` have the shape store recovery exports and
`Outbox.requeue` takes back.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .standing import withdrawn

FORMAT = "pika-till-outbox/1"


class ExportError(Exception):
    """The export could not be written; nothing is left behind."""


def export_outbox(store, path: str | Path, *, now: float | None = None) -> dict:
    """Write the unsynced outbox to `path` (new, 0600); returns the summary (everything but the entries)."""
    path = Path(path)
    rows = store.outbox_rows()
    summary = {
        "format": FORMAT,
        "device_id": store.device_id or None,
        "device_name": store.device_name or None,
        "retailer_id": store.retailer_id or None,
        "store_id": store.store_id or None,
        "store_name": store.get("store_name") or None,
        "withdrawn": withdrawn(store),
        "exported_at": time.time() if now is None else float(now),
        "count": len(rows),
        "parked": sum(1 for row in rows if row["parked"]),
        "voids": sum(1 for row in rows if row["type"] == "void"),
    }
    data = (json.dumps({**summary, "entries": rows}, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ExportError(f"{path} exists already: choose a new file name (an export never overwrites)") from None
    except OSError as exc:
        raise ExportError(f"{path} cannot be created: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)  # half a file would read as an export of fewer entries
        raise ExportError(f"{path} could not be written: {exc.strerror or exc}") from None
    return {**summary, "file": str(path)}


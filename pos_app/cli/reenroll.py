"""`enroll --again`: a till whose token a restored backend does not know, enrolled again without losing anything.

A backend restored from a backup forgets the tills enrolled or rolled after it: their tokens answer
`401 unauthorized`, and a plain `enroll` refuses an enrolled till. With `--again` the till first checks, with
one cheap authenticated call, that the backend really refuses its token (a till that still works has
nothing to do). Then the code's answer decides: a roll code of the same device (the device existed at the
backup) replaces the token and keeps everything; a fresh code of the same store and retailer (it did not)
gives a new device id, which the till adopts with all its records, outbox and kept entries. The next sync
round sends them as that device, and the new epoch makes it send again what the restore lost
(store/retention.py); the backend judges each entry by its idempotency key, so nothing counts twice.
"""

from __future__ import annotations

from typing import Mapping

from .data_folder import UsageError


def check_token_refused(store, server: str, ca_file: str | None) -> None:
    """Return if the backend at `server` refuses this till's token (401, any code); UsageError if it still
    takes it; Unreachable (and Untrusted) from the client if it cannot be asked."""
    from ..store import settings
    from ..sync.client import BackendClient, Refused

    ca_file = ca_file or settings.value(store, "ca_file") or None
    with BackendClient(server, store.device_token or None, timeout=10, ca_file=ca_file) as client:
        try:
            client.catalog()
        except Refused as exc:
            if exc.status == 401:
                return
            raise UsageError(f"the backend refused this till's catalog with {exc}, not as an unknown token:"
                             " enroll --again is only for a till whose token the backend does not know") from None
    raise UsageError("this till's token still works: nothing to do")


def foreign_code(store, answer: Mapping) -> str | None:
    """Why the enrollment answer cannot be this till's (another store or retailer), else None. Checked after
    the backend enrolled the code and before anything is written: the backend then holds an unused device."""
    retailer, store_id = answer.get("retailer_id"), answer.get("store_id")
    if (retailer, store_id) == (store.retailer_id, store.store_id):
        return None
    return (f"the code is of store {store_id} (retailer {retailer}), not this till's store {store.store_id}"
            f" (retailer {store.retailer_id}): nothing was written to this till. The backend now holds an unused"
            f" device {answer.get('device_id')}: revoke it (python -m server_stub device revoke"
            f" {answer.get('device_id')}), and give this till a code of its own store")

"""`python -m pos_app export-log` and `verify-log`: a till's log for a period as a file anyone can check.

A dispute ("the customer says the code was refused") needs records that can be shown to be whole. The
export is one contiguous piece of the till's chain (store/chain.py) with the record before it and a head
signed by the till's key at its last record; `verify-log` checks it with nothing but the file and the
till's public key (the file's own, or the one the backend registered, given with --public-key): every
link, every seq, the signature. It reads no store, so an auditor runs it anywhere.

Exit codes: 0 whole, 1 problems found (named, with the records), 2 a file that is not an export.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ..core import till_log

EXIT_OK, EXIT_PROBLEMS, EXIT_UNREADABLE = 0, 1, 2
MAX_FILE_BYTES = 256 << 20  # a year of a busy till's log is well under this
MAX_DEPTH = 8  # an export nests 3 levels; deeper is not one


class Unreadable(Exception):
    """The file is not a till log export (said to the person as it is)."""


def cmd_export_log(args) -> int:
    from ..core.report import ReportError, parse_day
    from .data_folder import STORE_NAME, UsageError, open_store

    try:
        since = parse_day(args.since, "--since") if args.since else None
        until = parse_day(args.until, "--until") if args.until else None
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    if since and until and until < since:
        raise UsageError("--until is before --since")
    if not (Path(args.data) / STORE_NAME).is_file():  # opening would make an empty store, and export nothing
        raise UsageError(f"{args.data} holds no till store ({STORE_NAME})")
    store = open_store(args.data, must_be_enrolled=False)
    try:
        export = store.log_export(since, until)
    finally:
        store.close()
    try:
        _write_new(Path(args.out), (json.dumps(export, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    except OSError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_PROBLEMS
    records = export["records"]
    _print({"file": str(args.out), "records": len(records), "first_seq": records[0]["seq"] if records else None,
            "last_seq": records[-1]["seq"] if records else None, "device_id": export["device_id"],
            "public_key": export["public_key"], "head": export["head"]})
    return EXIT_OK


def _write_new(path: Path, data: bytes) -> None:
    """A new 0600 file (it holds what customers redeemed), never over an existing one, never half written."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise OSError(f"{path} exists already: choose a new file name (an export never overwrites)") from None
    except OSError as exc:
        raise OSError(f"{path} cannot be created: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise OSError(f"{path} could not be written: {exc.strerror or exc}") from None


def cmd_verify_log(args) -> int:
    try:
        export = read_export(args.file)
        public_key = args.public_key if args.public_key is not None else export["public_key"]
        try:
            till_log.parse_public_key(public_key)
        except ValueError as exc:
            whose = "--public-key" if args.public_key is not None else "the file's public_key"
            raise Unreadable(f"{whose}: {exc}") from None
    except Unreadable as exc:
        _print({"ok": False, "error": {"code": "unreadable", "message": str(exc)}})
        sys.stderr.write(f"error: {args.file}: {exc}\n")
        return EXIT_UNREADABLE
    problems = verify_export(export, public_key)
    _print({"ok": not problems, "records": len(export["records"]), "device_id": export["device_id"],
            "problems": [problem.to_json() for problem in problems]})
    return EXIT_PROBLEMS if problems else EXIT_OK


def verify_export(export: dict, public_key: str) -> list[till_log.Problem]:
    """What is wrong with an export read by `read_export`, checked against `public_key`."""
    return till_log.verify_segment(export["records"], prev=export["prev"], after=export["after"],
                                   head=export["head"], public_key=public_key, device_id=export["device_id"])


def read_export(path: str | Path) -> dict:
    """The export in `path`, of the shape verify_export needs; Unreadable (saying why) otherwise."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > MAX_FILE_BYTES:
                raise Unreadable(f"is over {MAX_FILE_BYTES >> 20} MiB: not a till log export")
            raw = handle.read(MAX_FILE_BYTES + 1)  # a pipe or a file still growing: bounded all the same
    except OSError as exc:
        raise Unreadable(f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise Unreadable(f"is over {MAX_FILE_BYTES >> 20} MiB: not a till log export")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"is not UTF-8 text (byte {exc.start}): not a till log export") from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise Unreadable(f"is not JSON ({str(exc)[:120]}): not a till log export") from None
    _plain(data, 0)
    if not isinstance(data, dict) or data.get("format") != "pika-till-log/1":
        raise Unreadable("is not a till log export (its format is not pika-till-log/1)")
    device_id, after, prev, records, head = (data.get(name) for name in ("device_id", "after", "prev", "records",
                                                                         "head"))
    if not isinstance(device_id, str) or len(device_id) > 200:
        raise Unreadable("names no device (device_id)")
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= till_log.MAX_SEQ:
        raise Unreadable("its `after` is not a record number")
    if not till_log.is_hash(prev):
        raise Unreadable("its `prev` is not a record's hash (64 hex digits)")
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise Unreadable("its `records` are not a list of records")
    if not isinstance(head, dict):
        raise Unreadable("holds no signed head")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _plain(value: Any, depth: int) -> None:
    """Texts that are Unicode (no lone surrogates, which no till writes and no hash can take), shallow."""
    if depth > MAX_DEPTH:
        raise Unreadable("nests deeper than an export does")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Unreadable("holds text that is not Unicode (a lone surrogate)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _plain(key, depth + 1)
            _plain(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _plain(item, depth + 1)


def _print(data: dict) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


def add_commands(sub) -> None:
    p = sub.add_parser("export-log", help="write this till's log for a period to a new file anyone can check")
    p.add_argument("--data", required=True, help="the till's data folder")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="the first day (the store's local day); default: the first")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="the last day, included; default: the last")
    p.add_argument("--out", required=True, metavar="FILE", help="a new JSON file (never overwritten; made 0600)")
    p.set_defaults(func=cmd_export_log)
    p = sub.add_parser("verify-log", help="check a till log export: every record there, unchanged, signed")
    p.add_argument("file", metavar="FILE", help="a file made by export-log")
    p.add_argument("--public-key", metavar="B64", help="the till's public key as the backend registered it"
                   " (default: the one in the file)")
    p.set_defaults(func=cmd_verify_log)

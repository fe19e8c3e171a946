"""`python -m pos_app`: the till, and its headless commands (JSON on stdout).

Exit codes: 0 done / accepted, 3 refused, 2 usage error, 1 failure.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

from ..core import till_log
from ..core.domain import LANGUAGES, Method
from ..scan import DECODERS
from ..store import standing
from ..store.settings import SETTINGS
from ..sync.client import client_for
from . import outbox_export, reenroll, till_log as till_log_commands
from .data_folder import STORE_NAME, StoreError, UsageError, in_english, open_checked, open_store, store_error_line

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3


def _print(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


def _checked_transport(args) -> str | None:
    """Refuse, before anything is sent, plain HTTP to another machine (unless --insecure-http) and a CA file
    that cannot be read; the CA file's full path, or None."""
    import ssl

    from ..sync.client import plain_http_to_another_host

    if plain_http_to_another_host(args.server):
        if not args.insecure_http:
            raise UsageError(f"{args.server} is plain HTTP to another machine: this till's device token and its"
                             " staff's PINs would cross the network unencrypted. Give the backend's https://"
                             " address (docs/operating.md, \"TLS and the front\"), or add --insecure-http on a"
                             " network you trust")
        sys.stderr.write(f"warning: {args.server} is plain HTTP: tokens and PINs cross the network unencrypted\n")
    if not args.ca_file:
        return None
    try:
        ssl.create_default_context(cafile=args.ca_file)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise UsageError(f"--ca-file {args.ca_file}: not a readable PEM file of certificates ({exc})") from None
    return str(Path(args.ca_file).resolve())


def cmd_enroll(args) -> int:
    from ..sync.client import BackendClient, Refused, Unreachable, Untrusted
    from ..sync.round import sync_once

    store = open_store(args.data, must_be_enrolled=False)
    try:
        again = store.enrolled and standing.withdrawn(store) is not None  # withdrawn or rolled: the new code
        if args.again and not store.enrolled:
            raise UsageError("--again is for an enrolled till whose token the backend refuses; this till is not"
                             " enrolled: enroll it without --again")
        if store.enrolled and not again and not args.again:
            raise UsageError("this till is enrolled already (after a backend restore that forgot it: --again)")
        ca_file = _checked_transport(args)
        again = again or args.again
        name = args.name or (store.device_name if again else "") or f"till-{Path(args.data).resolve().name}"
        log_key = store.log_key_for_enrollment()  # its public half registered with the device (store/chain.py)
        try:
            if args.again:  # only a token the backend refuses may be replaced (cli/reenroll.py)
                reenroll.check_token_refused(store, args.server, ca_file)
            with BackendClient(args.server, timeout=10, ca_file=ca_file) as client:
                answer = client.enroll(args.code, name, log_key=till_log.public_key_of(log_key))
        except Refused as exc:
            sys.stderr.write(f"error: enrollment refused: {exc}\n")
            return EXIT_FAILED
        except Untrusted as exc:
            sys.stderr.write(f"error: {exc}; give the till the certificate authority that signed it: --ca-file"
                             " CA.pem, or SSL_CERT_FILE=CA.pem (docs/operating.md, \"TLS and the front\")\n")
            return EXIT_FAILED
        except Unreachable as exc:
            sys.stderr.write(f"error: cannot reach {args.server}: {exc}\n")
            return EXIT_FAILED
        foreign = reenroll.foreign_code(store, answer) if args.again else None
        if foreign:
            sys.stderr.write(f"error: {foreign}\n")
            return EXIT_FAILED
        before = store.device_id
        try:
            # Enrolled again: the same device, or (--again, a restore forgot it) adopted; else nothing changes.
            store.save_enrollment(answer, args.server, adopt=args.again, log_private_key=log_key)
        except ValueError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return EXIT_FAILED
        if ca_file:
            store.set("ca_file", ca_file)
        with client_for(store, timeout=10) as client:
            summary = sync_once(store, client)
        _print({"device_id": answer["device_id"], "retailer_id": answer["retailer_id"],
                "store_id": answer["store_id"], "name": name, "enrolled_again": again,
                **({"previous_device_id": before} if args.again else {}), "sync": summary.to_json()})
        if not summary.catalog:
            # Enrolled (the code is spent, the backend knows this till), but without its first
            # catalog no staff can log in: say so loudly. The till stays enrolled with no
            # catalog, so the next sync downloads it whole (docs/sync.md, "Enrolling").
            sys.stderr.write(f"error: enrolled as {answer['device_id']}, but the first catalog did not arrive"
                             f" ({summary.error or 'no catalog in the answer'}): no staff can log in yet;"
                             f" run `python -m pos_app sync --data {args.data}` once the backend answers\n")
            return EXIT_FAILED
        return EXIT_OK
    finally:
        store.close()


def cmd_redeem(args) -> int:
    from ..sync.redeem import redeem

    if (args.input is None) == (args.image is None):
        raise UsageError("give one code to redeem: a token, short code or printed code, or --image FILE")
    if args.image is not None:
        if args.printed:
            raise UsageError("--printed is for typed booklet codes; a booklet QR in an image is read as scanned")
        found = _code_in_image(args.image, args.decoder)
        if isinstance(found, int):
            return found
    store = open_store(args.data)
    try:
        if args.staff and store.staff_member(args.staff) is None:
            raise UsageError(f"no staff member {args.staff} at this till")
        if args.image is not None:
            text, method = found, Method.IMAGE
        else:
            text = args.input
            if text == "-":
                text = sys.stdin.buffer.read(1 << 20)
            method = Method.PRINTED if args.printed else args.method
        client = None if args.offline else client_for(store)
        try:
            outcome = redeem(store, text, method=method, staff_id=args.staff, client=client)
        except standing.Withdrawn as exc:  # nothing was decided: the till may not redeem
            _print({"error": {"code": exc.state, "message": str(exc)}})
            sys.stderr.write(f"error: {exc}\n")
            return EXIT_FAILED
        finally:
            if client is not None:
                client.close()
        _print(outcome.to_json())
        return EXIT_OK if outcome.verdict.accepted else EXIT_REFUSED
    finally:
        store.close()


def _code_in_image(path: str, decoder_name: str) -> str | int:
    """The one code in an image file, or the exit code after saying why there is none."""
    from ..scan.decoders import DecoderUnavailable, make_decoder
    from ..scan.pipeline import ImageUnreadable, scan_image_file

    try:
        texts = scan_image_file(path, make_decoder(decoder_name))
    except (ImageUnreadable, DecoderUnavailable) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILED
    if not texts:
        _print({"accepted": False, "reason": "no_code", "message": f"no QR code found in {path}", "file": path})
        return EXIT_REFUSED
    if len(texts) > 1:
        raise UsageError(f"{path} holds {len(texts)} QR codes: crop it to the one to redeem")
    return texts[0]


def cmd_decode(args) -> int:
    import time

    from ..scan.decoders import DecoderUnavailable, make_decoder
    from ..scan.pipeline import ImageUnreadable, scan_image_file

    try:
        decoder = make_decoder(args.decoder)
    except DecoderUnavailable as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILED
    failed = False
    for path in args.images:
        started = time.perf_counter()
        line: dict = {"file": path}
        try:
            line["texts"] = scan_image_file(path, decoder)
        except ImageUnreadable as exc:  # said on its line; the other images are still read
            line.update(texts=[], error=str(exc))
            failed = True
        line["ms"] = round((time.perf_counter() - started) * 1000, 2)
        _print(line)
        sys.stdout.flush()
    return EXIT_FAILED if failed else EXIT_OK


def cmd_sync(args) -> int:
    from ..sync.round import sync_once

    if args.watch:
        return _sync_watch(args)
    store = open_store(args.data)
    try:
        with client_for(store, timeout=10) as client:
            summary = sync_once(store, client)
        _print(summary.to_json())
        return EXIT_OK if summary.error is None else EXIT_FAILED
    finally:
        store.close()


def _sync_watch(args) -> int:
    """The sync engine without a window, until SIGTERM or SIGINT; one JSON status line per round."""
    import signal
    import threading

    from ..lan.service import LanService
    from ..sync.engine import SyncEngine

    open_store(args.data).close()  # enrolled, and a usable store, before anything starts
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    engine = SyncEngine(Path(args.data) / STORE_NAME, feed_interval_s=args.interval,
                        on_status=lambda status: _print(_watch_line(status)))
    lan = LanService(Path(args.data) / STORE_NAME)  # the store's other tills on the LAN (setting lan_enabled)
    engine.start()
    lan.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        lan.stop()
        engine.stop()
    return EXIT_OK


def _watch_line(status) -> dict:
    """`status` a sync.status.SyncStatus; the line keeps a few of its docs/sync.md keys."""
    keep = ("state", "online", "outbox", "parked", "pending_online", "last_sync", "error", "clock_skew_s",
            "clock_skew_flagged", "conflicts", "next_retry_at")
    shown = status.to_json()
    return {name: shown.get(name) for name in keep}


def cmd_status(args) -> int:
    from ..sync.status import store_status

    store = open_store(args.data, must_be_enrolled=False)
    try:
        _print({**store_status(store).to_json(), "enrolled": store.enrolled,
                "conflict_list": store.conflicts(limit=args.conflicts), "lan": store.lan_figures()})
        return EXIT_OK
    finally:
        store.close()


def cmd_report(args) -> int:
    from ..core.report import ReportError, parse_day
    from ..store.report import day_csv, day_report

    try:
        first = parse_day(args.date, "--date")
        last = parse_day(args.to, "--to") if args.to else first
        store = open_store(args.data)
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    if args.format == "pdf" and not args.out and sys.stdout.isatty():
        store.close()
        raise UsageError("a PDF is not for a terminal: give --out FILE, or redirect standard output to a file")
    try:
        if args.format == "csv":
            data = day_csv(store, first, last, language=args.lang).encode("utf-8")
        elif args.format == "pdf":
            from ..pdf.day_report import render

            data = render(day_report(store, first, last, language=args.lang), language=args.lang)
        else:
            data = (json.dumps(day_report(store, first, last, language=args.lang), ensure_ascii=False, indent=1)
                    + "\n").encode("utf-8")
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    finally:
        store.close()
    if args.out:
        # Bytes, so the CSV keeps its CRLF line ends on every platform.
        Path(args.out).write_bytes(data)
    elif args.format == "pdf":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(data.decode("utf-8"))
    return EXIT_OK


def cmd_demo(args) -> int:
    if args.headless:
        from .demo import run_headless_demo

        return run_headless_demo(sys.stdout)
    from .demo import run_window_demo

    return run_window_demo(quit_after_s=args.quit_after, screenshot=args.screenshot)


def cmd_window(args) -> int:
    from ..gui.app import run_window

    try:
        store, problem = open_checked(args.data, must_be_enrolled=True)  # before any window
    except StoreError as exc:
        # No store to sell with: the window's dialog says why, then the till ends (non-zero).
        sys.stderr.write(store_error_line(args, exc.problem))
        return run_window(Path(args.data) / STORE_NAME, store_problem=exc.problem, quit_after_s=args.quit_after)
    path = store.path
    store.close()
    return run_window(path, camera=args.camera, quit_after_s=args.quit_after, screenshot=args.screenshot,
                      store_problem=problem)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pos_app", description="Pika Till: redeem Pika vouchers.")
    parser.add_argument("--demo", action="store_true", help="run the till on an embedded backend with demo data")
    parser.add_argument("--headless", action="store_true", help="with --demo: a scripted walk in the terminal")
    parser.add_argument("--data", dest="window_data", metavar="DIR", help="open the till's window on this data folder")
    parser.add_argument("--camera", help="frames from this device number, video file or image sequence")
    parser.add_argument("--quit-after", type=float, metavar="S", help=argparse.SUPPRESS)
    parser.add_argument("--screenshot", metavar="PNG", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("enroll", help="enroll this till with a backend")
    p.add_argument("--data", required=True, help="the till's data folder")
    p.add_argument("--server", required=True, help="the backend's URL")
    p.add_argument("--code", required=True, help="a one-time enrollment code")
    p.add_argument("--name", help="this till's name, shown to other tills")
    p.add_argument("--ca-file", metavar="PEM", help="trust the backend's certificate through this CA (kept as the"
                   " setting ca_file) instead of the system's")
    p.add_argument("--insecure-http", action="store_true",
                   help="allow http:// to another machine (tokens and PINs unencrypted)")
    p.add_argument("--again", action="store_true", help="an enrolled till whose token a restored backend refuses:"
                   " a roll code of this device, or a new code of its store; its records and outbox are kept")
    p.set_defaults(func=cmd_enroll)
    p = sub.add_parser("redeem", help="redeem one code (online unless --offline)")
    p.add_argument("--data", required=True)
    p.add_argument("--offline", action="store_true", help="decide here without asking the backend")
    p.add_argument("--staff", help="the staff member redeeming")
    p.add_argument("--method", default=Method.TYPED, choices=[m for m in Method.ALL if m != Method.PRINTED])
    p.add_argument("--printed", action="store_true", help="a printed booklet code (its own entry point)")
    p.add_argument("input", nargs="?", help="a token, short code or printed code; - reads standard input")
    p.add_argument("--image", metavar="FILE", help="redeem the QR code in this picture (a customer's screenshot)")
    p.add_argument("--decoder", default=SETTINGS["decoder"].default, choices=DECODERS, help="QR decoder for --image")
    p.set_defaults(func=cmd_redeem)
    p = sub.add_parser("decode", help="print the QR codes in pictures, one JSON line per file")
    p.add_argument("--decoder", default=SETTINGS["decoder"].default, choices=DECODERS)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, WebP or BMP files")
    p.set_defaults(func=cmd_decode)
    p = sub.add_parser("sync", help="push the outbox and pull catalog and feed once (or --watch)")
    p.add_argument("--data", required=True)
    p.add_argument("--watch", action="store_true", help="keep syncing in the background until SIGTERM/SIGINT")
    p.add_argument("--interval", type=float, default=2.0, help="with --watch: seconds between feed pulls")
    p.set_defaults(func=cmd_sync)
    p = sub.add_parser("status", help="sync figures: queue, parked entries, last sync, clock skew, conflicts")
    p.add_argument("--data", required=True)
    p.add_argument("--conflicts", type=int, default=20, help="how many recent conflicts to list")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("report", help="the store's day report of this till (JSON, CSV or PDF)")
    p.add_argument("--data", required=True)
    p.add_argument("--date", required=True, help="the store's local day, YYYY-MM-DD")
    p.add_argument("--to", help="last day of a range (YYYY-MM-DD), for a summary of several days")
    p.add_argument("--format", default="json", choices=("json", "csv", "pdf"),
                   help="pdf: one or two A4 pages with the hour chart (needs --out or a redirected output)")
    p.add_argument("--lang", default="es", choices=LANGUAGES, help="language of voucher titles (and of the PDF)")
    p.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=cmd_report)
    outbox_export.add_command(sub)
    till_log_commands.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.demo:
        return cmd_demo(args)
    if args.window_data and not args.command:
        args.data = args.window_data
        args.func = cmd_window
    elif not args.command:
        parser.print_usage(sys.stderr)
        sys.stderr.write("error: name a command, or --demo\n")
        return EXIT_USAGE
    try:
        return args.func(args)
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except StoreError as exc:
        # The JSON commands say it on stdout too, in the shape the backend's errors have.
        if args.func is not cmd_window and getattr(args, "format", "json") == "json":
            _print({"error": in_english(exc.problem, as_json=True)})
        sys.stderr.write(store_error_line(args, exc.problem))
        return EXIT_FAILED
    except sqlite3.DatabaseError as exc:  # a damaged file, a full disk: said plainly, no traceback
        sys.stderr.write(f"error: the till's store in {getattr(args, 'data', '?')} cannot be used: {exc}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

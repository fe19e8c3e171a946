"""`reconcile`: the checks of operations/reconcile.py run now; and the nightly job `serve` schedules.

The nightly job runs in `serve`'s main process (granian's workers never
start one), opening a Backend of its own for each run as the booklet's job
does, so no connection exists before the workers fork. Several `serve`
processes (one host or several over PostgreSQL) each schedule it: the night's
slot is claimed in the database (`reconcile.claim_night`), so one of them runs it.
Settings in config.json under "reconcile" (docs/operating.md, "Reconciliation").
"""

from __future__ import annotations

import datetime
import logging
import sys

from .output import print_json

log = logging.getLogger(__name__)


def add_to(sub) -> None:
    p = sub.add_parser("reconcile", help="run reconciliation now: findings raised, seen again or gone")
    p.add_argument("--data", required=True)
    p.add_argument("--retailer", metavar="ID", help="only this retailer (default: every one)")
    p.set_defaults(run=reconcile_now)


def reconcile_now(args) -> int:
    from ..backend import Backend
    from ..operations import reconcile

    backend = Backend(args.data)
    try:
        print_json(reconcile.run(backend.ctx, retailer_id=args.retailer))
    finally:
        backend.close()
    return 0


def run_night(data_dir: str, database: str | None = None, slot: str | None = None) -> str:
    """One nightly run: 'ran', 'skipped' (another process claimed this night, or is running one) or 'failed'."""
    from ..backend import Backend
    from ..errors import Conflict
    from ..operations import reconcile

    slot = slot or datetime.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S")
    try:
        backend = Backend(data_dir, database=database)
    except Exception:  # noqa: BLE001 — a job that cannot open the backend says so and waits for the next night
        log.exception("reconcile: the backend could not be opened")
        return "failed"
    try:
        if not reconcile.claim_night(backend.ctx, slot):
            outcome = "skipped"
        else:
            try:
                answer = reconcile.run(backend.ctx)
                outcome = "ran"
                sys.stderr.write(f"reconcile: nightly run {slot}: {answer['opened']} opened, {answer['seen']} seen "
                                 f"again, {answer['gone']} gone in {answer['duration_s']:.2f} s\n")
            except Conflict:
                outcome = "skipped"
    except Exception:  # noqa: BLE001 — logged; the scheduler keeps its next run
        log.exception("reconcile: the nightly run failed")
        outcome = "failed"
    finally:
        backend.close()
    if outcome != "ran":
        sys.stderr.write(f"reconcile: nightly run {slot}: {outcome}\n")
    return outcome


def start(data_dir: str, config: dict, database: str | None = None):
    """A started BackgroundScheduler with the nightly job, or None when the schedule is off."""
    from ..operations import reconcile

    from ..errors import Invalid

    try:
        s = reconcile.settings(config)
    except ValueError as exc:  # refused once, here, before the server starts
        raise Invalid("invalid_value", f"config.json: {exc}") from None
    if not s["schedule"]:
        return None
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(s["timezone"]) if s["timezone"] else None  # None: the server's own time
    scheduler = BackgroundScheduler(**({"timezone": tz} if tz else {}))
    trigger = CronTrigger(hour=s["hour"], minute=s["minute"], second=s["second"], **({"timezone": tz} if tz else {}))

    def job() -> None:
        # The slot is the time it was due, the same in every process, whenever each one wakes.
        due = datetime.datetime.now(trigger.timezone).replace(microsecond=0)
        run_night(str(data_dir), database, f"{due:%Y-%m-%d}T{s['hour']:02d}:{s['minute']:02d}:{s['second']:02d}")
    scheduler.add_job(job, trigger, id="reconcile-nightly", coalesce=True, max_instances=1,
                      misfire_grace_time=6 * 3600)
    scheduler.start()
    return scheduler

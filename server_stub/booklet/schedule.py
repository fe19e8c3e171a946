"""The monthly render: an apscheduler job that renders the coming month's edition.

Started by `server_stub serve` in its main process (settings in config.json
under "booklet"). The job opens its own Backend for the run, so no database
connection or writer thread exists before the server's worker processes
start. Whether an edition gets rendered is decided by the guarded state
change in `editions.Booklets.claim`, so a second scheduler, a restarted one or
an admin's click can never render the same edition twice.
"""

from __future__ import annotations

import datetime
import logging
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

DEFAULTS = {"schedule": True, "day": 1, "hour": 6, "minute": 0, "months_ahead": 1,
            "timezone": "America/Asuncion", "paper": "A5"}


def settings(config: dict) -> dict:
    return {**DEFAULTS, **config.get("booklet", {})}


def coming_month(now: datetime.datetime, months_ahead: int) -> str:
    """YYYY-MM of the month `months_ahead` after the one `now` is in."""
    index = now.year * 12 + now.month - 1 + months_ahead
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def run_once(data_dir: str, now: datetime.datetime | None = None,
             database: str | None = None) -> tuple[str, str]:
    """One run of the job: (month, outcome) where outcome is rendered, skipped or failed."""
    from ..backend import Backend
    from .editions import Booklets

    backend = Backend(data_dir, database=database)
    try:
        s = settings(backend.config)
        now = now or datetime.datetime.now(ZoneInfo(s["timezone"]))
        month = coming_month(now, int(s["months_ahead"]))
        outcome = Booklets(backend).render_scheduled(month)
        log.info("booklet for %s: %s", month, outcome)
        return month, outcome
    finally:
        backend.close()


def start(data_dir: str, config: dict, database: str | None = None):
    """A started BackgroundScheduler with the monthly job, or None when the schedule is off. Over
    PostgreSQL every host may run one: a render is claimed in the database, so one of them renders."""
    s = settings(config)
    if not s["schedule"]:
        return None
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    scheduler = BackgroundScheduler(timezone=ZoneInfo(s["timezone"]))
    scheduler.add_job(run_once, CronTrigger(day=s["day"], hour=s["hour"], minute=s["minute"],
                                            timezone=ZoneInfo(s["timezone"])),
                      args=[str(data_dir), None, database], id="booklet-monthly", coalesce=True, max_instances=1,
                      misfire_grace_time=6 * 3600)
    scheduler.start()
    return scheduler

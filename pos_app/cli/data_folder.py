"""The till's data folder for the headless commands: its store opened, checked and, when damaged, started fresh.

Shared by the commands and the demo; what it cannot use is a StoreError carrying
store/recovery.py's StoreProblem, said in English on stderr by `commands.main`.
"""

from __future__ import annotations

import sys
from pathlib import Path

STORE_NAME = "till.sqlite3"


class UsageError(Exception):
    pass


class StoreError(Exception):
    """The till's store cannot be used as it is: carries store/recovery.py's StoreProblem to `main`."""

    def __init__(self, problem):
        super().__init__(str(problem))
        self.problem = problem


def open_store(data: str, *, must_be_enrolled: bool = True):
    return open_checked(data, must_be_enrolled=must_be_enrolled)[0]


def open_checked(data: str, *, must_be_enrolled: bool):
    """The till's store and, when it had to be started fresh, the damage report (store/recovery.py).

    A damaged store is said once on stderr and the command goes on with the fresh one (kept file
    and exported outbox named there): a till that can sell beats one that cannot. A store that
    cannot be read, or a fresh one that could not keep the enrollment, raises StoreError."""
    from .. import logs
    from ..store.recovery import StoreProblem, open_store as open_recovering, unreadable

    path = Path(data)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where the folder should be, or a folder the till may not write in
        raise StoreError(unreadable(path / STORE_NAME, exc)) from None
    logs.configure(path)  # the CLI's commands log where the window does: the till's own folder
    try:
        store, problem = open_recovering(path / STORE_NAME)
    except StoreProblem as exc:
        raise StoreError(exc) from None
    if must_be_enrolled and not store.enrolled:
        store.close()
        if problem is not None:
            raise StoreError(problem)
        raise UsageError(f"this till ({data}) is not enrolled: run `python -m pos_app enroll` first")
    if problem is not None:
        sys.stderr.write(f"warning: {in_english(problem)}\n")
    return store, problem


def store_error_line(args, problem) -> str:
    return f"error: the till's store in {args.data} cannot be used: {in_english(problem)}\n"


def in_english(problem, *, as_json: bool = False):
    # The CLI speaks English, as its other messages do; the window says it in the till's language.
    from ..words.i18n import using

    with using("en"):
        return problem.to_json() if as_json else problem.message()

"""The command that runs this till again, for messages that tell a person what to type.

It must work pasted from any folder: this install's interpreter (the venv's,
not whatever `python` a shell finds first), or, in a PyInstaller bundle, the
bundle's own executable, which takes the till's arguments directly.
"""

from __future__ import annotations

import shlex
import sys


def till_command(*args: str, frozen: bool | None = None, executable: str | None = None) -> str:
    """The till's command line with `args`, quoted for a POSIX shell."""
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    executable = executable or sys.executable
    return shlex.join([executable, *args] if frozen else [executable, "-m", "pos_app", *args])

"""The bundle's entry point (PyInstaller needs a script): the same `main` as `python -m pos_app`."""

import sys

from pos_app.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())

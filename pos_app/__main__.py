"""`python -m pos_app`: the till's command line (pos_app/cli/commands.py)."""

import sys

from pos_app.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())

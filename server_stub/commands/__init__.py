"""The operator's commands of `python -m server_stub`, one module per subject (the booklet now).

Each module adds its subcommands to the parser and runs them; `__main__`
only assembles them and says a refusal on stderr, so a new subject (backups,
devices) is one new module here.
"""

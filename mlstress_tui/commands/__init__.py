"""Front ends of the subcommands: each parses its arguments and builds a run session (options.py)."""

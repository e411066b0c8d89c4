"""Front ends of the subcommands: each parses its arguments and calls the engine."""

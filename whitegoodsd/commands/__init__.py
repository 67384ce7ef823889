"""Subcommands that work on recordings: replay, record, tune (see cli.COMMANDS)."""

//! manage.py-style subcommands.

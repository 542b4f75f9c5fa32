"""The command line: every subcommand in a real subprocess, and the package's structure."""

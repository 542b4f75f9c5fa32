"""The one entry point: the GUI, the headless commands, and ``worker`` (DESIGN §4).

The parser is assembled here from the command group modules (each declares its
subcommands' arguments and handlers as ``COMMANDS``); ``main`` parses and dispatches.

A user's mistake ends with one ``error: ...`` line on stderr and exit status 2,
never a traceback. ``--json`` prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from lepton_desktop import __version__
from lepton_desktop.cli.common import Command, print_json, take_passphrase_file
from lepton_desktop.cli.shutdown import end_process
from lepton_desktop.core.errors import LeptonError

#: Every subcommand, in the order ``--help`` lists them; any other first word is a
#: project for the GUI.
COMMANDS = (
    "new",
    "info",
    "import",
    "prep",
    "train",
    "tune",
    "models",
    "export",
    "explain",
    "serve",
    "requests",
    "monitor",
    "forget",
    "share",
    "demo",
    "encrypt",
    "decrypt",
    "selftest",
    "worker",
)
#: The modules of this package that declare the subcommands (each has a ``COMMANDS``
#: tuple). Imported only when a headless command runs: the GUI's start needs none of
#: them, and together they cost it about a third of a second (issue 14).
GROUPS = (
    "datasets",
    "training",
    "tuning",
    "serving",
    "requests",
    "export",
    "explain",
    "monitor",
    "encryption",
    "privacy",
    "selftest",
    "worker",
)
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as one ``error: ...`` line."""

    def error(self, message: str) -> NoReturn:
        raise LeptonError(f"{self.prog.split()[-1]}: {message}")


def groups() -> list[ModuleType]:
    """The modules named in ``GROUPS``, imported now."""
    return [importlib.import_module(f"{__package__}.{name}") for name in GROUPS]


def commands() -> dict[str, Command]:
    """The subcommands by name, in ``COMMANDS`` order."""
    declared = {command.name: command for group in groups() for command in group.COMMANDS}
    return {name: declared[name] for name in COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    """The parser of every headless command (the GUI form is handled in ``main``)."""
    parser = _Parser(
        prog="lepton-desktop",
        description="Lepton Desktop command line.",
        epilog="Encrypted projects: every command takes --passphrase-file FILE, or reads "
        "LEPTON_PASSPHRASE, the OS keyring, or asks in a terminal.",
    )
    parser.add_argument("--version", action="version", version=f"lepton-desktop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in commands().values():
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv = take_passphrase_file(argv)
        if argv and argv[0] == "--version" and len(argv) > 1:
            return print_versions(argv[1:])
        if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
            return _run_gui(argv)
        command = commands().get(argv[0])
        if command is not None and command.normalize is not None:
            argv = [argv[0], *command.normalize(argv[1:])]
        args = build_parser().parse_args(argv)
        return _run(args)
    except LeptonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def print_versions(options: list[str]) -> int:
    """``--version --verbose [--json]``: the app's, Python's, the OS's, the libraries', the GPU.

    Raises:
        LeptonError: an option other than ``--verbose`` and ``--json``.
    """
    unknown = sorted(set(options) - {"--verbose", "--json"})
    if unknown:
        raise LeptonError(f"--version takes --verbose and --json, not {' '.join(unknown)}")
    from lepton_desktop.core.system.versions import gpu, versions

    found = {"lepton-desktop": __version__}
    if "--verbose" in options:
        found = versions() | {"gpu": gpu()}
    if "--json" in options:
        print_json(found)
    else:
        print("\n".join(f"{name}: {value}" for name, value in found.items()))
    return 0


def run() -> NoReturn:
    """The console script and ``python -m lepton_desktop``: :func:`main`, then exit.

    A headless command ends its process as soon as its work is committed and closed
    (:func:`~lepton_desktop.cli.shutdown.end_process`); the GUI exits the ordinary way.
    """
    argv = sys.argv[1:]
    code = main(argv)
    if argv and argv[0] in COMMANDS:
        end_process(code)
    sys.exit(code)


def _run(args: argparse.Namespace) -> int:
    """Run one parsed command; a failure that comes from a damaged project says so.

    A flipped bit or a cut-off copy can surface anywhere (SQLite, stored JSON, a
    garbled record): whatever a command raises is checked against its project file
    (read-only), and a damaged file gets one sentence instead of a traceback. A sound
    file means a bug, whose traceback is kept.
    """
    try:
        return int(commands()[args.command].run(args) or 0)
    except (LeptonError, KeyboardInterrupt):
        raise
    except Exception as exc:
        from lepton_desktop.core.project import Project

        damage = Project.damage_of(getattr(args, "project", None), exc)
        if damage is None:
            raise
        raise damage from exc


def _run_gui(argv: list[str]) -> int:
    paths = [a for a in argv if not a.startswith("-")]
    if paths and not Path(paths[0]).exists():
        names = ", ".join(COMMANDS[:-1])
        raise LeptonError(f"{paths[0]}: no such file (commands are: {names})")
    # Imported here so that headless commands never load Qt.
    from lepton_desktop.gui.app import run

    return run(argv)

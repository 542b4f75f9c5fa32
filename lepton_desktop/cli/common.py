"""What the commands share: opening a project, one JSON object, foreground jobs, ``--split``.

This is the command line's one door into the job machinery: ``core.jobs.run_job``
and the job functions by kind are imported here and nowhere else in the package.

Project and job imports happen inside the functions, so that ``lepton-desktop
--help`` (which imports every command group to build its parser) stays light.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from lepton_desktop.core.errors import InvalidOptionError, LeptonError

if TYPE_CHECKING:
    from lepton_desktop.core.entities import Job
    from lepton_desktop.core.progress import Reporter
    from lepton_desktop.core.project import Project


class Command(NamedTuple):
    """One subcommand, as a command group module declares it.

    Attributes:
        name: the word on the command line.
        add_parser: adds the subcommand's parser to argparse's subparsers (its help
            text and arguments).
        run: handles the parsed arguments; returns the exit status (None: 0).
        normalize: rewrites the words after the command's name before parsing (a
            command whose first word may be omitted: ``monitor P`` is ``monitor show P``).
    """

    name: str
    add_parser: Callable[[Any], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace], int | None]
    normalize: Callable[[list[str]], list[str]] | None = None


#: The environment variable a passphrase may come from (scripts, CI).
PASSPHRASE_ENV = "LEPTON_PASSPHRASE"
#: A passphrase file larger than this is refused before it is read.
MAX_PASSPHRASE_FILE_BYTES = 4096
#: ``--passphrase-file FILE``, a global option taken out of the words before parsing.
passphrase_file: Path | None = None


def take_passphrase_file(argv: list[str]) -> list[str]:
    """Remove ``--passphrase-file FILE`` (anywhere) from ``argv``, remembering FILE."""
    global passphrase_file
    kept: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--passphrase-file":
            value = next(words, None)
            if value is None:
                raise InvalidOptionError("--passphrase-file: give a file")
            passphrase_file = Path(value)
        elif word.startswith("--passphrase-file="):
            passphrase_file = Path(word.split("=", 1)[1])
        else:
            kept.append(word)
    return kept


def passphrase(path: Path, *, new: bool = False) -> str:
    """The passphrase for ``path``: ``--passphrase-file``, ``LEPTON_PASSPHRASE``, the OS
    keyring (an existing project's), or a prompt when a terminal is there to ask.

    ``new``: for encrypting, a prompt asks twice.

    Raises:
        InvalidOptionError: none could be had, or the file cannot be read.
    """
    from lepton_desktop.core.project import Project

    if passphrase_file is not None:
        return _read_passphrase_file(passphrase_file)
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    saved = None if new else Project.saved_passphrase(path)
    if saved:
        return saved
    if sys.stdin.isatty():
        return _prompt(path, new)
    raise InvalidOptionError(
        f"{path}: {'a new' if new else 'the project is encrypted; its'} passphrase is needed: "
        f"set {PASSPHRASE_ENV}, give --passphrase-file FILE, or run in a terminal to be asked"
    )


def _read_passphrase_file(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_PASSPHRASE_FILE_BYTES:
            raise InvalidOptionError(
                f"--passphrase-file {path}: larger than {MAX_PASSPHRASE_FILE_BYTES} bytes"
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidOptionError(f"--passphrase-file {path}: cannot be read ({exc})") from None
    text = text.rstrip("\r\n")  # the line break an editor or `echo` adds
    if not text:
        raise InvalidOptionError(f"--passphrase-file {path}: the file is empty")
    return text


def _prompt(path: Path, new: bool) -> str:
    import getpass

    text = getpass.getpass(f"Passphrase for {path.name}: ")
    if new and getpass.getpass("Again, to be sure: ") != text:
        raise InvalidOptionError("the two passphrases differ; nothing was changed")
    return text


def unlock(path: Path) -> None:
    """Give this process the key of an encrypted project (nothing for a plain one)."""
    from lepton_desktop.core.project import Project

    if Project.needs_passphrase(path):
        Project.unlock(path, passphrase(path))


def open_project(path: Path) -> Project:
    """Open a project for a command, upgrading an older file (a backup is kept)."""
    from lepton_desktop.core.project import Project

    unlock(path)
    project = Project.open(path, upgrade=True)
    if project.upgraded_from is not None:
        print(
            f"note: upgraded {path} from schema {project.upgraded_from} to "
            f"{project.schema_version}; backup: {project.backup_path}",
            file=sys.stderr,
        )
    return project


def print_json(payload: dict[str, Any]) -> None:
    """Print exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(payload, default=str) + "\n")


def parse_split(text: str | None) -> tuple[float, float, float] | None:
    """``"0.7,0.15,0.15"`` -> fractions; refuses anything that is not three parts summing to 1."""
    if text is None:
        return None
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise InvalidOptionError(
            f"--split {text!r}: give three numbers, e.g. 0.7,0.15,0.15"
        ) from None
    if len(parts) != 3 or any(p < 0 for p in parts) or abs(sum(parts) - 1) > 1e-6 or parts[0] == 0:
        raise InvalidOptionError(
            f"--split {text!r}: three fractions (train,val,test), train > 0, summing to 1"
        )
    return parts


def number(low: float, high: float, *, whole: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite number from ``low`` to ``high`` (whole if asked).

    ``nan``, ``inf`` and numbers out of range become one ``error:`` line naming the
    option, never a traceback further on.
    """

    def parse(text: str) -> float:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: give a number from {low:g} to {high:g}")
        return value

    return parse


def run_queued_job(
    project_path: Path, job_id: int, kind: str, echo: Reporter | None = None
) -> Job:
    """Run the queued job ``job_id`` of ``kind`` in this process; return the finished row.

    The same code a worker process runs (``worker KIND``); ``echo`` also sees every
    progress update (a progress bar, or the server announcing its address).
    """
    from lepton_desktop.core.jobs import run_job
    from lepton_desktop.workers.kinds import JOB_FUNCTIONS

    return run_job(project_path, job_id, JOB_FUNCTIONS[kind], echo=echo)


def run_in_foreground(
    project_path: Path, job_id: int, kind: str, description: str, unit: str
) -> dict[str, Any]:
    """Run a queued job here with a progress bar and return its result.

    Raises:
        LeptonError: the job failed or was cancelled; its row is forgotten, since
            the error is all the user needs (it is printed instead).
    """
    from lepton_desktop.cli.progress import TerminalProgress
    from lepton_desktop.core.project import Project

    bar = TerminalProgress(description, unit=unit)
    try:
        job = run_queued_job(project_path, job_id, kind, echo=bar)
    finally:
        bar.close()
    if job.status != "succeeded":
        with Project.open(project_path) as project:
            project.forget_job(job_id)  # the error is printed by the caller; leave no trace
        raise LeptonError(job.error or job.status)
    return job.result or {}


def queue_and_run(
    project_path: Path,
    kind: str,
    job_args: dict[str, Any],
    description: str,
    unit: str = "B",
    check: Callable[[Project], None] | None = None,
) -> dict[str, Any]:
    """Queue a job of ``kind`` with ``job_args`` and run it in the foreground.

    The command line runs the worker code itself: the same path as the GUI's worker
    process, with a progress bar instead of polling. ``check`` refuses the work
    before its job row is written, so a refused command leaves the file as it was
    (without one, the project is checked for damage: nothing is written to a damaged
    file).
    """
    with open_project(project_path) as project:
        if check is not None:
            check(project)
        else:
            project.check_intact()
        job_id = project.create_job(kind, job_args)
    return run_in_foreground(project_path, job_id, kind, description, unit)

"""``lepton-desktop encrypt`` and ``decrypt``: a project file in place, to SQLCipher 4 and
back (the work is in core/store/cipher.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_desktop.cli.common import Command, passphrase, print_json, unlock

if TYPE_CHECKING:
    from lepton_desktop.core.store.cipher import Conversion


def _add_encrypt(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "encrypt",
        help="encrypt a project file in place (SQLCipher 4, a key from a passphrase)",
    )
    p.add_argument("project", type=Path)
    p.add_argument(
        "--remember", action="store_true", help="also save the passphrase in the OS keyring"
    )
    p.add_argument("--json", action="store_true")
    return p


def _add_decrypt(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("decrypt", help="decrypt an encrypted project file in place")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true")
    return p


def cmd_encrypt(args: argparse.Namespace) -> None:
    """``encrypt PROJECT [--remember] [--json]``: the passphrase as for any command."""
    from lepton_desktop.core.project import Project

    if Project.is_encrypted(args.project):  # refused before asking for a new passphrase
        Project.encrypt_file(args.project, "")
    result = Project.encrypt_file(
        args.project, passphrase(args.project, new=True), remember=args.remember
    )
    _report(result, "encrypted", args.json)


def cmd_decrypt(args: argparse.Namespace) -> None:
    """``decrypt PROJECT [--json]``."""
    from lepton_desktop.core.project import Project

    unlock(args.project)
    _report(Project.decrypt_file(args.project), "decrypted", args.json)


def _report(result: Conversion, verb: str, as_json: bool) -> None:
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if as_json:
        print_json(result.to_dict())
        return
    print(f"{verb} {result.path}: {result.tables} tables, {result.rows:,} rows "
          f"checked ({result.seconds:.1f} s)")  # fmt: skip


#: This group's subcommands, for ``entry.build_parser``.
COMMANDS = (
    Command("encrypt", _add_encrypt, cmd_encrypt),
    Command("decrypt", _add_decrypt, cmd_decrypt),
)

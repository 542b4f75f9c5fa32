"""Where an export goes: checked before any work, written whole or not at all.

An export is first written beside its destination under a hidden temporary name,
checked there, and renamed into place only when the check passed, so a refused or
failed export leaves nothing behind and never replaces an existing file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from lepton_desktop.core.errors import InvalidOptionError, LeptonError


class OutputExistsError(InvalidOptionError):
    """The export's destination already exists; it is never overwritten."""


def check_destination(out: Path) -> None:
    """Refuse an existing ``out``, a missing directory or one that cannot be written.

    Raises:
        OutputExistsError: ``out`` exists.
        InvalidOptionError: its directory is missing or not writable.
    """
    if out.exists() or out.is_symlink():
        raise OutputExistsError(
            f"{out} already exists; choose another --out (nothing was overwritten)"
        )
    directory = out.parent
    if not directory.is_dir():
        raise InvalidOptionError(f"{directory}: no such directory (create it first)")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InvalidOptionError(f"{directory}: not writable (permission denied)")
    _try_writing(out)


def _try_writing(out: Path) -> None:
    # os.access answers yes to root everywhere, and knows nothing of read-only mounts
    # or kernel folders (/sys, /proc): creating a file is the only sure test, and it
    # costs less than the export it saves from failing at its very end.
    probe = out.parent / f".{out.name}.{secrets.token_hex(4)}.probe"
    try:
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise InvalidOptionError(
            f"{out}: cannot write there ({exc.strerror or exc}); choose another --out"
        ) from None
    os.close(descriptor)
    probe.unlink(missing_ok=True)


@contextlib.contextmanager
def staged(out: Path, *, directory: bool = False) -> Iterator[Path]:
    """A temporary path beside ``out`` that becomes ``out`` if the block succeeds.

    The block writes and checks the temporary file (or directory); any error removes
    it and leaves ``out`` untouched.

    Raises:
        LeptonError: the disk refused a write (full, read-only...), with the reason.
    """
    temporary = out.parent / f".{out.name}.{secrets.token_hex(4)}.partial"
    try:
        if directory:
            temporary.mkdir()
        yield temporary
        _publish(temporary, out)
    except OSError as exc:
        raise LeptonError(f"cannot write {out}: {exc.strerror or exc}") from None
    except RuntimeError as exc:
        # torch's writers report a refused write as a RuntimeError ("open file failed")
        if "file" not in str(exc).lower():
            raise
        raise LeptonError(f"cannot write {out}: {_first_line(str(exc))}") from None
    finally:
        _remove(temporary)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else "the write failed"


def _publish(temporary: Path, out: Path) -> None:
    # Checked again: something may have appeared at ``out`` while the export ran, and
    # os.replace would silently overwrite a file there.
    if out.exists() or out.is_symlink():
        raise OutputExistsError(
            f"{out} appeared while exporting; nothing was overwritten, the export was dropped"
        )
    os.replace(temporary, out)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()

"""Errors a user can cause and can understand.

Every error a user's input can trigger derives from :class:`LeptonError`; the CLI
prints its message as one ``error: ...`` line and exits 2, and the GUI shows it in a
dialog. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class LeptonError(Exception):
    """A problem caused by the user's input or environment, with a readable message."""


class NotAProjectError(LeptonError):
    """The file is not a Lepton project (or not readable as one)."""


class DamagedProjectError(NotAProjectError):
    """The project file's bytes are damaged (a flipped bit, a cut-off copy); the message
    says what was found and how to get the data back."""


class SchemaTooNewError(LeptonError):
    """The project was written by a newer Lepton Desktop; it is never modified."""


class SchemaTooOldError(LeptonError):
    """The project needs an upgrade before this version can use it."""


class ProjectExistsError(LeptonError):
    """Refusing to create a project over an existing file."""


class NotFoundError(LeptonError):
    """A named dataset, version, job or model does not exist."""


class DataImportError(LeptonError):
    """A source file cannot be imported; the message names the file and line."""


class InvalidOptionError(LeptonError):
    """An option value is impossible or contradicts another one."""


class CancelledError(LeptonError):
    """Work stopped because the user asked for it."""

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message)


class PassphraseNeededError(NotAProjectError):
    """The project file is encrypted and no passphrase for it was given."""


class WrongPassphraseError(NotAProjectError):
    """The passphrase given does not open the encrypted project (nothing was written)."""

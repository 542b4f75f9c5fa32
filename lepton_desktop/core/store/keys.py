"""The keys of encrypted project files, held in memory for the process and its children.

An encrypted project is an SQLCipher 4 database (AES-256 in CBC mode per page with an
HMAC-SHA512, SQLCipher 4's defaults). Its key comes from a passphrase through
SQLCipher 4's own derivation (PBKDF2-HMAC-SHA512, 256,000 iterations, the random
16-byte salt SQLCipher keeps in the file's first bytes). The derivation is computed
here once per process with :func:`hashlib.pbkdf2_hmac` (the same function with the
same parameters: a test opens our files with a plain ``PRAGMA key = 'passphrase'``)
and handed to SQLCipher as a raw key: SQLCipher would spend 0.4 s on it for every
connection, and a project opens many.

The raw key lives only in memory: in this module for this process, and in the
``LEPTON_PROJECT_KEYS`` environment variable for the processes it starts (workers,
trial workers, server processes). An environment is readable by its own user only
(``/proc/PID/environ`` is private to the user, unlike a command line, which every
user sees in ``ps``), it is never written to disk, and it carries the derived key,
not the passphrase (which may open other files).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path

from lepton_desktop.core.errors import InvalidOptionError

#: The environment variable that hands keys to child processes (JSON: path -> key).
KEYS_ENV = "LEPTON_PROJECT_KEYS"
#: SQLCipher 4's defaults: the salt in the file's first 16 bytes, PBKDF2-HMAC-SHA512.
SALT_BYTES = 16
KDF_ITERATIONS = 256_000
KEY_BYTES = 32
#: SQLCipher 4's page size: an encrypted file is a whole number of these.
CIPHER_PAGE_BYTES = 4096
#: Shorter passphrases are refused when a project is encrypted.
MIN_PASSPHRASE_CHARS = 8
#: Longer passphrases are refused (every size a user controls is bounded).
MAX_PASSPHRASE_CHARS = 1024
SQLITE_MAGIC = b"SQLite format 3\x00"
#: A zip archive (a served bundle) starts so; a random salt does once in 2^32 files.
ZIP_MAGIC = b"PK\x03\x04"

_KEYS: dict[str, str] = {}
_LOCK = threading.Lock()
# Whether a file (device, inode) is encrypted, as first seen: a file that SQLite holds
# open in this process must not be opened raw again (see db._SQLITE_FILES), and a
# replaced file (encrypt, decrypt) is a new inode.
_ENCRYPTED: dict[tuple[int, int], bool] = {}


def derive_key(passphrase: str, salt: bytes) -> str:
    """The raw SQLCipher key of ``passphrase`` for a file with ``salt``: ``x'KEYSALT'``."""
    key = hashlib.pbkdf2_hmac("sha512", passphrase.encode(), salt, KDF_ITERATIONS, KEY_BYTES)
    return f"x'{key.hex()}{salt.hex()}'"


def check_passphrase(passphrase: str) -> str:
    """A passphrase fit to encrypt with, or a clear refusal.

    Raises:
        InvalidOptionError: too short, too long, or blank at either end only.
    """
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise InvalidOptionError(
            f"the passphrase is too short ({len(passphrase)} characters; at least "
            f"{MIN_PASSPHRASE_CHARS})"
        )
    if len(passphrase) > MAX_PASSPHRASE_CHARS:
        raise InvalidOptionError(
            f"the passphrase is longer than {MAX_PASSPHRASE_CHARS} characters"
        )
    return passphrase


def key_literal_ok(key: str) -> bool:
    """Whether ``key`` is a raw key literal (only hex inside ``x'...'``; safe in SQL)."""
    body = key[2:-1] if key.startswith("x'") and key.endswith("'") else ""
    return len(body) == 2 * (KEY_BYTES + SALT_BYTES) and all(c in "0123456789abcdef" for c in body)


def _name(path: Path | str) -> str:
    return str(Path(path).resolve())


def remember(path: Path | str, key: str) -> None:
    """Hold ``key`` for ``path`` in this process and in the environment of its children."""
    if not key_literal_ok(key):
        raise ValueError("not a raw SQLCipher key")
    with _LOCK:
        _KEYS[_name(path)] = key
        _publish()


def forget(path: Path | str) -> None:
    """Drop the key of ``path`` (after it was decrypted)."""
    name = _name(path)
    with _LOCK:
        _KEYS.pop(name, None)
        _publish(without=name)


def key_for(path: Path | str) -> str | None:
    """The key held for ``path`` (given here or by the parent process), if any."""
    name = _name(path)
    with _LOCK:
        key = _KEYS.get(name) or _inherited().get(name)
    return key if key is not None and key_literal_ok(key) else None


def _inherited() -> dict[str, str]:
    try:
        keys = json.loads(os.environ.get(KEYS_ENV, "{}"))
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in keys.items()} if isinstance(keys, dict) else {}


def _publish(without: str | None = None) -> None:
    keys = {**_inherited(), **_KEYS}
    keys.pop(without or "", None)
    if keys:
        os.environ[KEYS_ENV] = json.dumps(keys)
    else:
        os.environ.pop(KEYS_ENV, None)


def looks_encrypted(head: bytes, size: int) -> bool:
    """Whether a file's first bytes and size are those of an SQLCipher database.

    Not an SQLite header, and a whole number of cipher pages: an encrypted file is
    random to anyone without the key, so this is as far as looking can go.
    """
    return (
        len(head) >= SALT_BYTES
        and not head.startswith(SQLITE_MAGIC)
        and not head.startswith(ZIP_MAGIC)
        and size >= CIPHER_PAGE_BYTES
        and size % CIPHER_PAGE_BYTES == 0
    )


def is_encrypted(path: Path | str, *, opened_here: bool = False) -> bool:
    """Whether the file at ``path`` is an encrypted project (False when it does not exist).

    Args:
        opened_here: SQLite holds the file open in this process, so it must not be
            opened raw (see ``db._SQLITE_FILES``): the answer is the one found when it
            was first opened. A file first seen that way was opened by a library other
            than ours (Optuna on a plain project): an encrypted one only opens through us.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return False
    ident = (stat.st_dev, stat.st_ino)
    if opened_here:
        with _LOCK:
            return _ENCRYPTED.get(ident, False)
    encrypted = False
    if stat.st_size > 0:
        with contextlib.suppress(OSError), open(path, "rb") as handle:
            encrypted = looks_encrypted(handle.read(len(SQLITE_MAGIC)), stat.st_size)
    with _LOCK:
        _ENCRYPTED[ident] = encrypted
    return encrypted


def salt_of(path: Path | str) -> bytes:
    """The salt SQLCipher keeps in an encrypted file's first bytes."""
    with open(path, "rb") as handle:
        return handle.read(SALT_BYTES)


#: The service name passphrases are saved under in the OS keyring (one per project path).
KEYRING_SERVICE = "lepton-desktop"


def saved_passphrase(path: Path | str) -> str | None:
    """The passphrase of ``path`` saved in the OS keyring, if there is a keyring and one."""
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, _name(path))
    except Exception:  # no backend (a headless machine), a locked or broken keyring
        return None


def save_passphrase(path: Path | str, passphrase: str) -> str | None:
    """Save the passphrase of ``path`` in the OS keyring; the reason when it cannot be."""
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, _name(path), passphrase)
    except Exception as exc:  # keyring.errors.NoKeyringError on a machine without one
        return f"the passphrase was not saved: no usable keyring ({type(exc).__name__})"
    return None


def drop_saved_passphrase(path: Path | str) -> None:
    """Remove the saved passphrase of ``path`` from the keyring (after decrypting)."""
    with contextlib.suppress(Exception):
        import keyring

        keyring.delete_password(KEYRING_SERVICE, _name(path))

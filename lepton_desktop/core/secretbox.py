"""Secrets kept out of the project file in clear: sealed with a key that stays on this machine.

A project file travels (it is copied, mailed, put on a share); a webhook URL with a
token in it must not travel with it readable. :func:`seal` encrypts text with Fernet
(AES-128-CBC + HMAC-SHA256, from the ``cryptography`` package) under a key created once
in the user's data folder (``secret.key``, readable by the user only); :func:`unseal`
reverses it. On another machine (another key) unsealing fails with a clear message, and
the secret has to be given again there.
"""

from __future__ import annotations

import os
from pathlib import Path

from lepton_desktop import paths
from lepton_desktop.core.errors import LeptonError

PREFIX = "sealed:v1:"


def seal(text: str, key_file: Path | None = None) -> str:
    """``text`` encrypted under this machine's key, as printable text."""
    from cryptography.fernet import Fernet

    return PREFIX + Fernet(_key(key_file)).encrypt(text.encode()).decode()


def unseal(sealed: str, key_file: Path | None = None) -> str:
    """The text :func:`seal` sealed.

    Raises:
        LeptonError: not sealed text, or sealed on another machine (another key).
    """
    from cryptography.fernet import Fernet, InvalidToken

    if not sealed.startswith(PREFIX):
        raise LeptonError("not a sealed secret")
    try:
        return Fernet(_key(key_file)).decrypt(sealed[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise LeptonError(
            "this secret was saved on another machine (or its key was replaced): "
            "give it again here"
        ) from None


def _key(key_file: Path | None) -> bytes:
    from cryptography.fernet import Fernet

    path = key_file or paths.user_data_dir() / "secret.key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # Created readable by the user only; O_EXCL: two processes racing keep one key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def hash_key(key_file: Path | None = None) -> bytes:
    """This machine's key for keyed hashes (HMAC-SHA256) of personal data, 32 bytes.

    Kept beside the sealing key (``pii-hash.key``, readable by the user only) and never
    in a project: a hashed column can be joined on here, and not reversed by whoever
    gets the project (a plain SHA-256 of an e-mail address is found by hashing a list
    of addresses).
    """
    path = key_file or paths.user_data_dir() / "pii-hash.key"
    try:
        key = bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        key = b""
    except ValueError:
        raise LeptonError(f"{path}: not a hash key (64 hexadecimal digits expected)") from None
    if len(key) == 32:
        return key
    if key:
        raise LeptonError(f"{path}: not a hash key (64 hexadecimal digits expected)")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _written_by_another(path)
    key = os.urandom(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    return key


def _written_by_another(path: Path) -> bytes:
    # Another process created the key file a moment ago: wait for its 64 digits.
    import time

    for _ in range(100):
        text = path.read_text().strip()
        if len(text) == 64:
            return bytes.fromhex(text)
        time.sleep(0.02)
    raise LeptonError(f"{path}: not a hash key (64 hexadecimal digits expected)")

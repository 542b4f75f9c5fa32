"""Encrypted project files (SQLCipher 4): encrypt, open, refuse, decrypt, on real files."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import sqlcipher3.dbapi2 as sqlcipher

from lepton_desktop.core.errors import (
    InvalidOptionError,
    LeptonError,
    NotAProjectError,
    PassphraseNeededError,
    WrongPassphraseError,
)
from lepton_desktop.core.project import Project
from lepton_desktop.core.store import keys
from lepton_desktop.core.store.db import connect
from tests.helpers import snapshot, write_csv

PASSPHRASE = "correct horse battery"
#: Values that must never appear in an encrypted file's bytes.
SECRETS = ("alice.secret@example.org", "4929123456789012", "Zanzibar-Quokka-77")


pytestmark = pytest.mark.usefixtures("forgotten_keys")


@pytest.fixture
def plain(tmp_project: Path, tmp_path: Path) -> Path:
    rows = [[i, SECRETS[i % 3], ["yes", "no"][i % 2]] for i in range(60)]
    source = write_csv(tmp_path / "people.csv", ["id", "contact", "label"], rows)
    with Project.open(tmp_project) as project:
        project.import_dataset(source, "people", target="label")
    return tmp_project


def _companions(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p.name.startswith(path.name)]


def _all_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = connect(path, readonly=True)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND rootpage > 0 "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )]  # fmt: skip
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr)
                for n in names}  # fmt: skip
    finally:
        conn.close()


def test_encrypted_file_holds_no_dataset_value(plain: Path) -> None:
    assert any(s.encode() in plain.read_bytes() for s in SECRETS)  # the test can fail
    result = Project.encrypt_file(plain, PASSPHRASE)
    assert result.encrypted and result.rows > 60
    with Project.open(plain) as project:  # opened and written while encrypted: the WAL too
        project.import_dataset(plain.parent / "people.csv", "again", target="label")
        left = {p.name: p.read_bytes() for p in _companions(plain)}
        assert f"{plain.name}-wal" in left  # the WAL while the project is open
        for name, data in left.items():
            for secret in SECRETS:
                assert secret.encode() not in data, (name, secret)
        assert project.dataset("again").n_rows == 60
    assert [p.name for p in _companions(plain)] == [plain.name]
    data = plain.read_bytes()
    assert not data.startswith(b"SQLite format 3") and len(data) % keys.CIPHER_PAGE_BYTES == 0
    for secret in SECRETS:
        assert secret.encode() not in data


def test_sqlcipher_opens_it_with_the_passphrase_itself(plain: Path) -> None:
    """Our key derivation is SQLCipher 4's: its own PRAGMA key reads the file."""
    Project.encrypt_file(plain, PASSPHRASE)
    conn = sqlcipher.connect(str(plain))
    try:
        conn.execute("PRAGMA key = 'correct horse battery'")
        rows = conn.execute(f'SELECT * FROM "{_table_of(conn, "people")}"').fetchall()
        assert len(rows) == 60 and set(SECRETS) <= {v for row in rows for v in row}
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x4C455054
    finally:
        conn.close()


def _table_of(conn: sqlcipher.Connection, dataset: str) -> str:
    version_id = conn.execute(
        "SELECT v.id FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id "
        "WHERE d.name = ?", (dataset,),
    ).fetchone()[0]  # fmt: skip
    return f"ds_{version_id}"


def test_decrypt_round_trip_gives_identical_rows(plain: Path) -> None:
    before = _all_rows(plain)
    Project.encrypt_file(plain, PASSPHRASE)
    assert Project.is_encrypted(plain)
    Project.decrypt_file(plain)
    assert not Project.is_encrypted(plain)
    assert plain.read_bytes().startswith(b"SQLite format 3\x00")
    assert _all_rows(plain) == before
    with Project.open(plain) as project:  # and a plain project again, full-text search too
        assert project.dataset("people").n_rows == 60


def test_without_the_passphrase_it_is_a_clear_refusal(plain: Path) -> None:
    Project.encrypt_file(plain, PASSPHRASE)
    keys._KEYS.clear()
    os.environ.pop(keys.KEYS_ENV, None)
    before = plain.read_bytes()
    with pytest.raises(PassphraseNeededError, match="encrypted Lepton project"):
        Project.open(plain)
    assert plain.read_bytes() == before and _companions(plain) == [plain]


def test_a_wrong_passphrase_is_refused_and_never_writes(plain: Path) -> None:
    Project.encrypt_file(plain, PASSPHRASE)
    keys._KEYS.clear()
    os.environ.pop(keys.KEYS_ENV, None)
    before = plain.read_bytes()
    with pytest.raises(WrongPassphraseError, match="does not open this project"):
        Project.unlock(plain, "correct horse battery staple")
    assert plain.read_bytes() == before and _companions(plain) == [plain]
    with pytest.raises(PassphraseNeededError):  # the wrong key was not kept
        Project.open(plain)
    Project.unlock(plain, PASSPHRASE)
    with Project.open(plain) as project:
        assert project.dataset("people").n_rows == 60


def test_encrypting_twice_is_refused_unchanged(plain: Path) -> None:
    Project.encrypt_file(plain, PASSPHRASE)
    before = plain.read_bytes()
    with pytest.raises(InvalidOptionError, match="already encrypted"):
        Project.encrypt_file(plain, "another passphrase")
    assert plain.read_bytes() == before and _companions(plain) == [plain]


def test_decrypting_a_plain_project_is_refused_unchanged(plain: Path) -> None:
    before = snapshot(plain)
    with pytest.raises(InvalidOptionError, match="not encrypted"):
        Project.decrypt_file(plain)
    assert snapshot(plain) == before


def test_a_short_passphrase_or_foreign_file_is_refused_unchanged(plain: Path) -> None:
    before = snapshot(plain)
    with pytest.raises(InvalidOptionError, match="too short"):
        Project.encrypt_file(plain, "short")
    assert snapshot(plain) == before and not Project.is_encrypted(plain)
    foreign = plain.parent / "notes.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    raw = foreign.read_bytes()
    with pytest.raises(NotAProjectError, match="not a Lepton project"):
        Project.encrypt_file(foreign, PASSPHRASE)
    assert foreign.read_bytes() == raw


def test_a_project_in_use_elsewhere_is_not_converted(plain: Path) -> None:
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
         "c.execute('SELECT count(*) FROM jobs').fetchall(); print('open', flush=True); "
         "sys.stdin.read()", str(plain)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        before = snapshot(plain)
        with pytest.raises(LeptonError, match="in use by another program"):
            Project.encrypt_file(plain, PASSPHRASE)
    finally:
        holder.communicate("", timeout=30)
    assert snapshot(plain) == before and not Project.is_encrypted(plain)
    assert not (plain.parent / f".{plain.name}.encrypting").exists()


def test_upgrade_backups_of_an_encrypted_project_stay_encrypted(plain: Path) -> None:
    from lepton_desktop.core.store.db import backup_to, encryption_key

    Project.encrypt_file(plain, PASSPHRASE)
    copy = plain.parent / "copy.lepton"
    conn = connect(plain, readonly=True)
    try:
        backup_to(conn, copy, encryption_key(plain))
    finally:
        conn.close()
    assert all(s.encode() not in copy.read_bytes() for s in SECRETS)
    Project.unlock(copy, PASSPHRASE)  # same salt, same passphrase
    with Project.open(copy) as project:
        assert project.dataset("people").n_rows == 60


def test_the_request_journal_of_an_encrypted_project_is_sealed(plain: Path) -> None:
    from lepton_desktop.core.serving.journal import (
        LineSeal,
        RequestJournal,
        journal_dir,
        parse_lines,
    )

    def journal_bytes(project: Path) -> bytes:
        journal = RequestJournal(project, 1, capture_inputs=True)
        journal.feedback("req-1", SECRETS[2], 0)
        journal.close()
        (written,) = list(journal_dir(project).iterdir())
        data = written.read_bytes()
        written.unlink()
        return data

    assert SECRETS[2].encode() in journal_bytes(plain)  # a plain project's is plain
    Project.encrypt_file(plain, PASSPHRASE)
    data = journal_bytes(plain)
    assert data.startswith(LineSeal.PREFIX) and SECRETS[2].encode() not in data
    _, feedback = parse_lines(data.splitlines(), LineSeal.of(plain))
    assert [(f[1], f[3]) for f in feedback] == [("req-1", f'"{SECRETS[2]}"')]
    other = LineSeal(keys.derive_key("another passphrase", os.urandom(16)))
    assert parse_lines(data.splitlines(), other) == ([], [])  # another key: skipped

"""``info`` and ``prep --pii``, ``forget`` and ``share`` in real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import assert_user_error, cli
from tests.helpers import snapshot, write_csv
from tests.request_log_factory import logged_project


@pytest.fixture
def people(tmp_path: Path) -> Path:
    rows = [[f"p{i}@mail.example", f"Name{i} Surname", i % 50 + 18, "ny"[i % 2]]
            for i in range(60)]  # fmt: skip
    source = write_csv(tmp_path / "people.csv", ["email", "full_name", "age", "churned"], rows)
    project = tmp_path / "p.lepton"
    cli("new", project)
    imported = cli("import", project, source, "--name", "people", "--target", "churned")
    assert "warning: personal data found in 2 column(s): email (email, 100%)" in imported.stderr
    return project


def test_info_lists_personal_data(people: Path) -> None:
    info = json.loads(cli("info", people, "--json").stdout)
    assert info["datasets"][0]["pii"] == [
        {"column": "email", "kind": "email", "share": 1.0},
        {"column": "full_name", "kind": "name", "share": 1.0},
    ]
    text = cli("info", people).stdout
    assert "personal data: email (email, 100% of its cells)" in text


def test_prep_pii_hashes_and_records_it(people: Path, tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "home")}
    out = cli("prep", people, "people", "--pii", "hash", "--pii-column", "full_name=drop",
              "--json", env=env).stdout  # fmt: skip
    result = json.loads(out)
    assert result["dataset"] == "people:2" and result["columns"] == 3
    assert result["warnings"] == []
    info = json.loads(cli("info", people, "--json").stdout)["datasets"][1]
    assert info["column_names"] == ["email", "age", "churned"] and info["pii"] == []
    assert info["operations"] == ["pii"]
    assert (tmp_path / "home" / "lepton-desktop" / "pii-hash.key").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pii-column", "churned=hash"], "cannot hash 'churned': it is the target of people:1"),
        (["--pii-column", "nope=drop"], "--pii-column nope: people:1 has no such column"),
        (["--pii-column", "email"], "write COLUMN=ACTION"),
        (["--pii-column", "email=burn"], "the action is drop, hash, mask or keep"),
        (["--pii", "encrypt"], "invalid choice: 'encrypt'"),
    ],
)
def test_bad_prep_pii_is_one_error_line(people: Path, args: list[str], message: str) -> None:
    before = people.read_bytes()
    assert_user_error(cli("prep", people, "people", *args, check=False), message)
    assert people.read_bytes() == before


def test_forget_and_share(tmp_path: Path) -> None:
    logged = logged_project(tmp_path / "log.lepton")
    one = json.loads(cli("forget", logged, "--request", "iris-a", "--json").stdout)
    assert one == {"requests": 1, "inputs_cleared": 1, "feedback_deleted": 0}
    ranged = cli("forget", logged, "--since", "2000-01-01T00:00", "--model", "iris-mlp")
    assert ranged.stdout.startswith("forgot 4 request(s): 3 captured input(s) cleared")
    shared = json.loads(cli("share", logged, tmp_path / "copy.lepton", "--without-data",
                            "--json").stdout)  # fmt: skip
    assert shared["left_out"]["request_inputs"] == 3 and shared["without_data"] is True
    assert b"bmi" not in (tmp_path / "copy.lepton").read_bytes()
    text = cli("share", logged, tmp_path / "copy2.lepton").stdout
    assert "leaving out:" in text and "request inputs: 3" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forget", "{p}", "--request", "nope"], "no logged request with id 'nope'"),
        (["forget", "{p}"], "say what to forget"),
        (["forget", "{p}", "--since", "yesterday"], "--since 'yesterday': give a time"),
        (["forget", "{p}", "--since", "2030-01-01", "--until", "2020-01-01"],
         "--since must be before --until"),
        (["share", "{p}", "{p}"], "already exists"),
        (["share", "{p}", "{taken}"], "already exists"),
    ],
)  # fmt: skip
def test_bad_forget_and_share_change_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    logged = logged_project(tmp_path / "log.lepton")
    taken = tmp_path / "taken.lepton"
    taken.write_bytes(b"keep me")
    before = snapshot(logged)
    filled = [a.format(p=logged, taken=taken) for a in args]
    assert_user_error(cli(*filled, check=False), message)
    assert snapshot(logged) == before and taken.read_bytes() == b"keep me"

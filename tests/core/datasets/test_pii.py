"""Personal data found at import, and prepared away by prep --pii (drop, hash, mask)."""

from __future__ import annotations

import csv
import hashlib
import hmac
import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from faker import Faker

from lepton_desktop.core.datasets import pii
from lepton_desktop.core.datasets.prep import PrepOptions
from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.project import Project
from tests.helpers import snapshot

ROWS = 300


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's data folder (where the hash key lives), apart from the project."""
    home = tmp_path / "data-home"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home / "lepton-desktop"


def people(n: int = ROWS, seed: int = 3) -> dict[str, list[Any]]:
    """A table of made-up people: one column per kind, and columns that are not personal."""
    fake = Faker("en_US")
    Faker.seed(seed)
    rng = random.Random(seed)
    return {
        "email": [fake.email() for _ in range(n)],
        "full_name": [fake.name() for _ in range(n)],
        "phone": [fake.phone_number() for _ in range(n)],
        "card": [fake.credit_card_number() for _ in range(n)],
        "iban": [fake.iban() for _ in range(n)],
        "ssn": [fake.ssn() for _ in range(n)],
        "ip_address": [fake.ipv4() if i % 3 else fake.ipv6() for i in range(n)],
        "date_of_birth": [fake.date_of_birth().isoformat() for _ in range(n)],
        # not personal: look-alikes and ordinary columns
        "order_id": [str(rng.randrange(10**15, 10**16)) for _ in range(n)],  # 16 digits
        "shipped": [fake.date() for _ in range(n)],  # dates, but not of birth
        "city": [fake.city() for _ in range(n)],
        "filename": [fake.file_name() for _ in range(n)],
        "comment": [fake.sentence() for _ in range(n)],
        "amount": [round(rng.uniform(1, 500), 2) for _ in range(n)],
        "items": [rng.randint(1, 9) for _ in range(n)],
        "churned": [rng.choice(["yes", "no"]) for _ in range(n)],
    }


EXPECTED = {
    "email": "email", "full_name": "name", "phone": "phone", "card": "card", "iban": "iban",
    "ssn": "national_id", "ip_address": "ip", "date_of_birth": "date_of_birth",
}  # fmt: skip


def write_people(path: Path, columns: dict[str, list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(columns))
        writer.writerows(zip(*columns.values(), strict=True))
    return path


def test_each_kind_is_found_and_lookalikes_are_not() -> None:
    found = {f.column: f for f in pii.scan_table(pa.table(people()))}
    assert {name: f.kind for name, f in found.items()} == EXPECTED
    for finding in found.values():
        assert finding.share >= 0.95, finding


def test_checksums_decide_cards_and_ibans() -> None:
    from schwifty import IBAN  # the reference: schwifty's own IBAN validation

    fake = Faker()
    Faker.seed(5)
    ibans = [fake.iban() for _ in range(200)]
    broken = [i[:-1] + str((int(i[-1]) + 1) % 10) if i[-1].isdigit() else i[:-1] + "0"
              for i in ibans]  # fmt: skip
    values = ibans + broken
    ours = pii.iban_valid(pa.array(values))

    def schwifty_ok(value: str) -> bool:
        try:
            IBAN(value)
        except ValueError:
            return False
        return True

    assert ours.tolist() == [schwifty_ok(v) for v in values]
    assert ours[:200].all() and not ours[200:].any()
    cards = [fake.credit_card_number().replace(" ", "") for _ in range(200)]
    # One digit changed: Luhn catches every single-digit error.
    wrong = [c[:-2] + str((int(c[-2]) + 3) % 10) + c[-1] for c in cards]
    assert pii.luhn_valid(pa.array(cards)).all()
    assert not pii.luhn_valid(pa.array(wrong)).any()


def test_ssn_validity_rules() -> None:
    values = ["123-45-6789", "000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567",
              "123-45-0000", "123456789"]  # fmt: skip
    kinds = pii.classify(pa.array(values)).tolist()
    assert kinds == ["national_id", "", "", "", "", "", ""]
    assert pii.classify(pa.array(["123456789"]), header="SSN").tolist() == ["national_id"]


def test_name_headers() -> None:
    for header in ("name", "first_name", "LastName", "Surname", "customer name", "Vorname"):
        assert pii.name_like(header), header
    for header in ("filename", "product_name", "hostname", "username_count", "amount"):
        assert not pii.name_like(header), header


def test_import_keeps_findings_and_info_lists_them(tmp_project: Path, tmp_path: Path) -> None:
    source = write_people(tmp_path / "people.csv", people())
    with Project.open(tmp_project) as project:
        version = project.import_dataset(source, "people", target="churned")
        info = project.info()["datasets"][0]
    listed = {item["column"]: item["kind"] for item in info["pii"]}
    assert listed == EXPECTED
    assert all(set(item) == {"column", "kind", "share"} for item in info["pii"])
    assert version.column("email").stats["pii"] == {"kind": "email", "share": 1.0}
    assert "pii" not in version.column("city").stats


def test_confirmed_on_all_rows_not_just_the_sample() -> None:
    # e-mail addresses in the first rows only: the sample suggests them, all rows decide.
    counter = pii.PiiCounter("contact", pa.string())
    counter.add(pa.array(["a@example.com"] * 100))
    counter.add(pa.array(["call me"] * 900))
    assert counter.finding() is None
    assert counter.counts["email"] == 100


def prepared_people(project: Project, tmp_path: Path) -> None:
    columns = {k: v for k, v in people(120).items() if k in ("email", "full_name", "card",
                                                             "amount", "items", "churned")}
    project.import_dataset(write_people(tmp_path / "p.csv", columns), "people",
                           target="churned")  # fmt: skip


def test_prep_drops_hashes_and_masks(tmp_project: Path, tmp_path: Path, data_home: Path) -> None:
    with Project.open(tmp_project) as project:
        prepared_people(project, tmp_path)
        raw = project.dataset("people:1")
        raw_rows = project.rows(raw, 0, raw.n_rows)
        options = PrepOptions(pii="hash", pii_columns={"full_name": "drop", "card": "mask"})
        ready = project.prep("people", options)
        rows = project.rows(ready, 0, ready.n_rows)
    names = [c.name for c in ready.columns]
    assert "full_name" not in names
    key = bytes.fromhex((data_home / "pii-hash.key").read_text())
    email_at = names.index("email")
    for raw_row, row in zip(raw_rows, rows, strict=True):
        digest = hmac.new(key, raw_row[0].encode(), hashlib.sha256).hexdigest()[:32]
        assert row[email_at] == digest
        card = row[names.index("card")]
        assert card[-4:] == str(raw_row[2])[-4:] and set(card[:-4]) <= {"*", " ", "-"}
    assert ready.operations[0] == {
        "op": "pii", "columns": {"email": "hash", "full_name": "drop", "card": "mask"},
        "kinds": {"email": "email", "full_name": "name", "card": "card"},
        "hash": "hmac-sha256, key kept outside the project",
    }  # fmt: skip
    assert ready.column("email").stats["pii_treated"] == "hash"
    assert ready.column("email").dtype == "text"
    # Nothing left to warn about, and the key is nowhere in the project.
    assert [c.name for c in ready.columns if "pii" in c.stats] == []
    assert key.hex().encode() not in tmp_project.read_bytes() and key not in \
        tmp_project.read_bytes()


def test_masks_by_kind() -> None:
    from lepton_desktop.core.datasets.pii_prep import mask

    assert mask("jane.doe@example.com", "email") == "j***@example.com"
    assert mask("4111 1111 1111 1234", "card") == "**** **** **** 1234"
    assert mask("1984-03-02", "date_of_birth") == "1984-**-**"
    assert mask("Jane Doe", "name") == "J***"
    assert mask("192.168.10.7", "ip") == "192.***.**.*"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (PrepOptions(pii_columns={"churned": "hash"}), "cannot hash 'churned': it is the target"),
        (PrepOptions(pii="drop", pii_columns={"churned": "drop"}), "it is the target"),
        (PrepOptions(pii_columns={"nope": "drop"}), "--pii-column nope: people:1 has no such"),
        (PrepOptions(pii_columns={"email": "shred"}), "the action is drop, hash, mask or keep"),
        (PrepOptions(pii="encrypt"), "--pii 'encrypt': use drop, hash or mask"),
    ],
)
def test_bad_pii_options_change_nothing(
    tmp_project: Path, tmp_path: Path, data_home: Path, options: PrepOptions, message: str
) -> None:
    with Project.open(tmp_project) as project:
        prepared_people(project, tmp_path)
    before = snapshot(tmp_project)
    with Project.open(tmp_project) as project, pytest.raises(InvalidOptionError, match=message):
        project.prep("people", options)
    assert snapshot(tmp_project) == before


def test_pii_on_a_table_without_personal_data_is_refused(
    tmp_project: Path, tmp_path: Path
) -> None:
    source = write_people(tmp_path / "plain.csv", {"amount": [1.5, 2.5, 3.5], "y": [0, 1, 0]})
    with Project.open(tmp_project) as project:
        project.import_dataset(source, "plain", target="y")
    before = snapshot(tmp_project)
    with Project.open(tmp_project) as project, pytest.raises(InvalidOptionError,
                                                              match="no column of plain:1"):
        project.prep("plain", PrepOptions(pii="mask"))
    assert snapshot(tmp_project) == before


def test_flagged_columns_are_never_features(tmp_project: Path, tmp_path: Path) -> None:
    from lepton_desktop.core.training.config import TrainConfig
    from lepton_desktop.core.training.data import load

    with Project.open(tmp_project) as project:
        prepared_people(project, tmp_path)
        version = project.dataset("people")
        data = load(project.conn, version, TrainConfig(arch="mlp"))
    assert data.feature_names == ["amount", "items"]
    assert np.isfinite(data.x["train"]).all()


def test_a_damaged_hash_key_is_refused_and_nothing_changes(
    tmp_project: Path, tmp_path: Path, data_home: Path
) -> None:
    from lepton_desktop.core.errors import LeptonError

    with Project.open(tmp_project) as project:
        prepared_people(project, tmp_path)
    data_home.mkdir(parents=True)
    (data_home / "pii-hash.key").write_text("not hexadecimal")
    before = snapshot(tmp_project)
    with Project.open(tmp_project) as project, pytest.raises(LeptonError, match="not a hash key"):
        project.prep("people", PrepOptions(pii="hash"))
    assert snapshot(tmp_project) == before

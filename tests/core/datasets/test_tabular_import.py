"""Importing tables: dtype inference, statistics, paging, and every bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lepton_desktop.core.errors import DataImportError, InvalidOptionError
from lepton_desktop.core.project import Project
from tests.helpers import snapshot, write_csv


@pytest.fixture
def project(tmp_project: Path):
    with Project.open(tmp_project) as p:
        yield p


def test_dtypes_and_statistics_are_inferred(project: Project, tmp_path: Path) -> None:
    rows = [
        [
            i,
            f"name {i}",
            ["red", "blue"][i % 2],
            f"2024-01-{i + 1:02d}",
            i * 0.5,
            None if i == 3 else i,
        ]
        for i in range(10)
    ]
    csv = write_csv(tmp_path / "t.csv", ["id", "note", "colour", "day", "x", "y"], rows)
    version = project.import_dataset(csv, "t", target="colour")
    dtypes = {c.name: c.dtype for c in version.columns}
    assert dtypes == {
        "id": "numeric",
        "note": "text",
        "colour": "categorical",
        "day": "datetime",
        "x": "numeric",
        "y": "numeric",
    }
    x = version.column("x").stats
    assert x["mean"] == pytest.approx(2.25) and x["std"] == pytest.approx(
        np.std(np.arange(10) * 0.5, ddof=1)
    )
    assert (x["min"], x["max"], x["missing"], x["unique"]) == (0.0, 4.5, 0, 10)
    assert version.column("y").stats["missing"] == 1
    assert version.column("day").stats["min"] == "2024-01-01"
    assert (version.ref, version.n_rows, version.target) == ("t:1", 10, "colour")


def test_rows_are_paged_by_position(project: Project, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "n.csv", ["n"], [[i] for i in range(1000)])
    version = project.import_dataset(csv, "n")
    assert project.rows(version, 990, 20) == [(i, None) for i in range(990, 1000)]
    assert project.rows(version, 0, 2) == [(0, None), (1, None)]


def test_types_widen_when_a_later_block_disagrees(project: Project, tmp_path: Path) -> None:
    # The reader infers types from its first 4 MB block; the float comes after it.
    n = 400_000
    ints = np.arange(n).astype(object)
    ints[-1] = 2.5
    frame = pd.DataFrame({"a": ints, "b": np.arange(n), "c": ["x"] * (n - 1) + ["2020-01-01"]})
    csv = tmp_path / "late.csv"
    frame.to_csv(csv, index=False)
    assert csv.stat().st_size > 4 << 20
    version = project.import_dataset(csv, "late")
    assert version.n_rows == n
    assert version.column("a").stats["max"] == n - 2
    assert project.rows(version, n - 1, 1) == [(2.5, n - 1, "2020-01-01", None)]


def test_parquet_npz_and_tsv_import(project: Project, tmp_path: Path) -> None:
    frame = pd.DataFrame({"f": [1.0, 2.0, 3.0], "label": ["a", "b", "a"]})
    frame.to_parquet(tmp_path / "t.parquet")
    assert project.import_dataset(tmp_path / "t.parquet", "pq", target="label").n_rows == 3
    np.savez(tmp_path / "t.npz", X=np.eye(3), y=np.array([0, 1, 0]))
    version = project.import_dataset(tmp_path / "t.npz", "npz", target="y")
    assert [c.name for c in version.columns] == ["x0", "x1", "x2", "y"]
    (tmp_path / "t.tsv").write_text("a\tb\n1\tx\n2\ty\n")
    assert project.dataset(project.import_dataset(tmp_path / "t.tsv", "tsv").ref).n_rows == 2


def test_importing_a_known_name_adds_a_version(project: Project, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "a.csv", ["a"], [[1], [2]])
    project.import_dataset(csv, "a")
    second = project.import_dataset(csv, "a")
    assert second.ref == "a:2"
    assert project.dataset("a").ref == "a:2" and project.dataset("a:1").version == 1


def test_a_known_name_of_another_kind_is_refused(project: Project, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "a.csv", ["t", "v"], [[1, 2], [2, 3]])
    project.import_dataset(csv, "a")
    before = snapshot(project.path)
    with pytest.raises(InvalidOptionError, match="holds tabular data"):
        project.import_dataset(csv, "a", kind="timeseries")
    assert snapshot(project.path) == before


def _ragged(tmp: Path) -> Path:
    return write_csv(tmp / "ragged.csv", ["a", "b", "c"], [[1, 2, 3], [4, 5], [6, 7, 8]])


def _ragged_after_a_long_cell(tmp: Path) -> Path:
    # A 200 KB cell is over the csv module's default field limit: still named by line.
    path = tmp / "long_ragged.csv"
    path.write_text("a,b\n1," + "x" * 200_000 + "\n2\n")
    return path


def _junk(tmp: Path) -> Path:
    path = tmp / "junk.csv"
    path.write_bytes(os.urandom(5000))
    return path


def _latin1(tmp: Path) -> Path:
    path = tmp / "latin1.csv"
    path.write_bytes("city,n\nZürich,1\nGenève,2\n".encode("latin-1"))
    return path


def _latin1_late(tmp: Path) -> Path:
    path = tmp / "latin1_late.csv"
    body = "".join(f"city{i},{i}\n" for i in range(20_000))
    path.write_bytes(("city,n\n" + body).encode() + "Genève,2\n".encode("latin-1"))
    return path


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.csv"
    path.write_bytes(b"")
    return path


def _header_only(tmp: Path) -> Path:
    path = tmp / "header.csv"
    path.write_text("a,b,c\n")
    return path


def _missing(tmp: Path) -> Path:
    return tmp / "does-not-exist.csv"


def _bad_parquet(tmp: Path) -> Path:
    path = tmp / "bad.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    return path


def _duplicate_names(tmp: Path) -> Path:
    return write_csv(tmp / "dupes.csv", ["a", "a"], [[1, 2]])


def _wide(tmp: Path) -> Path:
    # SQLite stores at most 2,000 columns per table: the import refuses, naming the limit.
    names = [f"c{i}" for i in range(10_000)]
    return write_csv(tmp / "wide.csv", names, [list(range(10_000))] * 3)


def _huge_cell(tmp: Path) -> Path:
    path = tmp / "huge.csv"
    path.write_text("a,b\n1,x\n2," + "y" * (50 << 20) + "\n3,z\n")
    return path


def _huge_cell_late(tmp: Path) -> Path:
    # Past the reader's first 4 MB block: found by the import itself, not the check.
    path = tmp / "huge_late.csv"
    rows = "".join(f"{i},x\n" for i in range(600_000))
    path.write_text("a,b\n" + rows + "2," + "y" * (20 << 20) + "\n3,z\n")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_wide, "wide.csv: 10,000 columns; a dataset holds at most 1,998"),
        (_huge_cell, "huge.csv, line 3: row 2 is 50.0 MB long, larger than the 4 MB limit"),
        (
            _huge_cell_late,
            "huge_late.csv, line 600002: row 600001 is 20.0 MB long, larger than the 4 MB",
        ),
        (_ragged, "ragged.csv, line 3: expected 3 fields like the header, found 2"),
        (_ragged_after_a_long_cell, "long_ragged.csv, line 3: expected 2 fields"),
        (_junk, "junk.csv: binary data, not a CSV text file"),
        (_latin1, "latin1.csv, line 2: the text is not UTF-8"),
        (_latin1_late, "latin1_late.csv, line 20002: the text is not UTF-8"),
        (_empty, "empty.csv: the file is empty"),
        (_header_only, "header.csv: the file has a header but no data rows"),
        (_missing, "does-not-exist.csv: no such file"),
        (_bad_parquet, "bad.parquet: not a readable Parquet file"),
        (_duplicate_names, "dupes.csv: duplicate column names: a"),
    ],
)
def test_bad_files_fail_clearly_and_change_nothing(
    project: Project, tmp_path: Path, make, message
) -> None:
    write_csv(tmp_path / "ok.csv", ["a"], [[1]])
    project.import_dataset(tmp_path / "ok.csv", "existing")
    before = snapshot(project.path)
    with pytest.raises(DataImportError, match=message.replace(".", r"\.")):
        project.import_dataset(make(tmp_path), "new")
    assert snapshot(project.path) == before
    assert before["integrity"] == "ok"


def test_a_missing_target_column_is_named(project: Project, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "t.csv", ["a", "b"], [[1, 2]])
    before = snapshot(project.path)
    with pytest.raises(DataImportError, match="no target column 'label'; the columns are: a, b"):
        project.import_dataset(csv, "t", target="label")
    assert snapshot(project.path) == before

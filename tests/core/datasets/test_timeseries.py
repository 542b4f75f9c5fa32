"""Time series are tables sorted by their time column; refusals leave nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from lepton_desktop.core.errors import DataImportError
from lepton_desktop.core.project import Project
from tests.conftest import SAMPLE_DATA


def snapshot(project: Project) -> tuple[list[str], list[str], bool]:
    tables = sorted(r[0] for r in project.conn.execute("SELECT name FROM sqlite_master"))
    return [v.ref for v in project.datasets()], tables, project.integrity_ok()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_unsorted_rows_are_sorted_by_the_detected_date_column(
    tmp_project: Path, tmp_path: Path
) -> None:
    # The date column is not the first one: detection goes by type, not position.
    csv = write(tmp_path / "sales.csv", "units,date\n30,2024-01-03\n10,2024-01-01\n"
                "40,2024-01-04\n20,2024-01-02\n")
    with Project.open(tmp_project) as project:
        version = project.import_dataset(csv, "sales", kind="timeseries")
        assert version.kind == "timeseries"
        assert version.time_column == "date"
        assert [r[0] for r in project.rows(version, 0, 10)] == [10, 20, 30, 40]
        assert version.column("date").dtype == "datetime"


def test_a_numeric_first_column_is_the_time_when_there_is_no_date(
    tmp_project: Path, tmp_path: Path
) -> None:
    csv = write(tmp_path / "years.csv", "year,flow\n1902,5\n1900,3\n1901,4\n")
    with Project.open(tmp_project) as project:
        version = project.import_dataset(csv, "flow", kind="timeseries")
        assert version.time_column == "year"
        assert project.rows(version, 0, 3) == [(1900, 3, None), (1901, 4, None), (1902, 5, None)]


def test_an_explicit_time_column_wins(tmp_project: Path, tmp_path: Path) -> None:
    csv = write(tmp_path / "t.csv", "id,step,value\n1,3,0.3\n2,1,0.1\n3,2,0.2\n")
    with Project.open(tmp_project) as project:
        version = project.import_dataset(csv, "t", kind="timeseries", time_column="step")
        assert [r[1] for r in project.rows(version, 0, 3)] == [1, 2, 3]


def test_sample_nile_series(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        version = project.import_dataset(SAMPLE_DATA / "nile.csv", "nile", kind="timeseries",
                                         target="volume")
        rows = project.rows(version, 0, 100)
        assert version.n_rows == 100
        assert [r[0] for r in rows] == list(range(1871, 1971))


def test_a_file_without_numeric_values_is_refused(tmp_project: Path, tmp_path: Path) -> None:
    csv = write(tmp_path / "words.csv", "date,word\n2024-01-02,b\n2024-01-01,a\n")
    with Project.open(tmp_project) as project:
        before = snapshot(project)
        with pytest.raises(DataImportError, match="at least one numeric value column"):
            project.import_dataset(csv, "words", kind="timeseries")
        assert snapshot(project) == before


def test_missing_time_cells_are_refused(tmp_project: Path, tmp_path: Path) -> None:
    csv = write(tmp_path / "gaps.csv", "date,value\n2024-01-01,1\n,2\n2024-01-03,3\n,4\n")
    with Project.open(tmp_project) as project:
        project.import_dataset(SAMPLE_DATA / "nile.csv", "nile", kind="timeseries")
        before = snapshot(project)
        with pytest.raises(DataImportError, match="time column 'date' has 2 empty cells"):
            project.import_dataset(csv, "gaps", kind="timeseries")
        assert snapshot(project) == before


def test_an_unknown_time_column_is_refused(tmp_project: Path, tmp_path: Path) -> None:
    csv = write(tmp_path / "t.csv", "step,value\n1,2\n")
    with Project.open(tmp_project) as project:
        before = snapshot(project)
        with pytest.raises(DataImportError, match="no time column 'when'"):
            project.import_dataset(csv, "t", kind="timeseries", time_column="when")
        assert snapshot(project) == before

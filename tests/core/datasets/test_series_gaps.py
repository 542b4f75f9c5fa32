"""A time series with gaps keeps a regular grid when its target is filled (issue 11, item 10).

The bug report: a weekly CO2 series with 59 missing weeks lost those 59 rows in
``prep --fill median``. Here a weekly series made from the Nile sample (100 values,
one a week) has weeks missing as blank targets and as absent rows; filling it keeps
one row a week, with the values pandas' own time interpolation gives on the same grid.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lepton_desktop.core.datasets.gaps import MAX_INSERTED_FACTOR
from lepton_desktop.core.datasets.prep import PrepOptions
from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.project import Project
from tests.conftest import SAMPLE_DATA
from tests.helpers import snapshot

BLANK = (5, 6, 30, 61, 62, 63, 90)  # weeks whose value is missing
ABSENT = (12, 13, 14, 47, 70)  # weeks with no row at all


def _weekly(path: Path) -> tuple[Path, pd.Series]:
    """The Nile volumes as a weekly series with gaps, and the full series."""
    with open(SAMPLE_DATA / "nile.csv", newline="") as handle:
        volumes = [float(r["volume"]) for r in csv.DictReader(handle)]
    weeks = pd.date_range("1990-01-06", periods=len(volumes), freq="7D")
    full = pd.Series(volumes, index=weeks)
    lines = ["week,co2"]
    for i, (week, value) in enumerate(full.items()):
        if i not in ABSENT:
            lines.append(f"{week:%Y-%m-%d},{'' if i in BLANK else value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, full


def _series(project: Project, ref: str) -> pd.Series:
    version = project.dataset(ref)
    rows = project.rows(version, 0, version.n_rows)
    times = pd.to_datetime([r[0] for r in rows])
    return pd.Series([r[1] for r in rows], index=times, dtype=float)


@pytest.mark.parametrize("method", ["linear", "time", "ffill"])
def test_filling_keeps_every_week_and_agrees_with_pandas(
    tmp_project: Path, tmp_path: Path, method: str
) -> None:
    source, full = _weekly(tmp_path / "co2.csv")
    with Project.open(tmp_project) as project:
        raw = project.import_dataset(source, "co2", kind="timeseries", target="co2")
        assert raw.n_rows == len(full) - len(ABSENT)
        ready = project.prep(raw.ref, PrepOptions(fill="median", fill_time=method,
                                                  split=(0.7, 0.15, 0.15)))  # fmt: skip
        filled = _series(project, ready.ref)
        (operation,) = [op for op in ready.operations if op["op"] == "fill_time"]
    assert ready.n_rows == len(full)  # no week lost, the absent ones added
    assert list(filled.index) == list(full.index)  # one row a week, in order
    assert not filled.isna().any()
    assert operation["inserted"] == len(ABSENT)
    assert operation["filled"] == len(ABSENT) + len(BLANK)
    known = full.drop(full.index[list(BLANK + ABSENT)])
    expected = known.reindex(full.index)
    expected = expected.ffill() if method == "ffill" else expected.interpolate(method="time")
    np.testing.assert_allclose(filled.to_numpy(), expected.to_numpy())
    assert sum(ready.splits.values()) == len(full)


def test_fill_drop_still_drops_rows_when_asked(tmp_project: Path, tmp_path: Path) -> None:
    source, full = _weekly(tmp_path / "co2.csv")
    with Project.open(tmp_project) as project:
        raw = project.import_dataset(source, "co2", kind="timeseries", target="co2")
        dropped = project.prep(raw.ref, PrepOptions(fill="drop"))
    assert dropped.n_rows == len(full) - len(ABSENT) - len(BLANK)


def test_numeric_times_with_a_gap(tmp_project: Path, tmp_path: Path) -> None:
    source = tmp_path / "flow.csv"
    source.write_text("year,flow\n1900,1\n1901,\n1902,3\n1905,9\n1906,10\n", encoding="utf-8")
    with Project.open(tmp_project) as project:
        raw = project.import_dataset(source, "flow", kind="timeseries", target="flow")
        ready = project.prep(raw.ref, PrepOptions(fill="mean", fill_time="time"))
        rows = project.rows(ready, 0, 10)
    assert [(r[0], r[1]) for r in rows] == [(1900, 1.0), (1901, 2.0), (1902, 3.0), (1903, 5.0),
                                            (1904, 7.0), (1905, 9.0), (1906, 10.0)]  # fmt: skip


def test_a_stray_time_is_refused_and_nothing_is_written(tmp_project: Path,
                                                        tmp_path: Path) -> None:  # fmt: skip
    source = tmp_path / "stray.csv"
    years = [*range(2000, 2010), 2000 + 20 * (MAX_INSERTED_FACTOR + 1)]
    source.write_text("year,v\n" + "".join(f"{y},{i}\n" for i, y in enumerate(years)),
                      encoding="utf-8")  # fmt: skip
    with Project.open(tmp_project) as project:
        raw = project.import_dataset(source, "stray", kind="timeseries", target="v")
    before = snapshot(tmp_project)
    with Project.open(tmp_project) as project, pytest.raises(InvalidOptionError) as caught:
        project.prep(raw.ref, PrepOptions(fill="median"))
    assert "check the time column 'year'" in str(caught.value)
    assert snapshot(tmp_project) == before
    with pytest.raises(InvalidOptionError, match="unknown fill-time 'cubic'"):
        PrepOptions(fill="median", fill_time="cubic").validate(raw)

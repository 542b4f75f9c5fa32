"""Property tests: random CSV files through import and preparation (issue 10).

Hypothesis writes tables of random shape: numeric columns (whole numbers, decimals,
huge and tiny values, missing cells, and the non-finite spellings ``inf``, ``-inf``,
``Infinity``, ``1e309``), text columns of any Unicode (commas, quotes, spaces,
scripts), and headers of any Unicode, repeated or not. Each file either imports
cleanly, every stored value reading back as written (non-finite ones as missing), or
is refused with a user error and the project unchanged; never a traceback. The
imported version then goes through random preparation options with the same rule,
and what preparation stores is finite and filled where a fill was asked for.
"""

from __future__ import annotations

import csv
import itertools
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lepton_desktop.core.datasets.prep import PrepOptions
from lepton_desktop.core.errors import LeptonError
from lepton_desktop.core.project import Project
from tests.helpers import snapshot

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same tables on every run: CI never meets a new one by luck
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NON_FINITE = ["inf", "-inf", "Infinity", "-Infinity", "1e309", "-1e999", "+inf", "INF"]
#: Characters of cells and headers: any Unicode letter, number, punctuation, symbol or
#: space (no control characters; a cell may not span lines in Arrow's CSV reader).
_TEXT = st.text(
    st.characters(categories=["L", "N", "P", "S", "Zs"]), min_size=0, max_size=12
)

_counter = itertools.count()


def _number_cell() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(-(10**15), 10**15).map(str),
        st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
        st.sampled_from(["0", "-0.0", "1e-300", "3e37", "2.5"]),
        st.sampled_from(NON_FINITE),
        st.just(""),
    )


def _text_cell() -> st.SearchStrategy[str]:
    # A leading "§" keeps Arrow from reading the cell as a number, a date, a boolean
    # or one of its null spellings ("NA", "null"): the column stays text.
    return st.one_of(_TEXT.map(lambda s: "§" + s), st.just(""))


@st.composite
def tables(draw: Any) -> dict[str, Any]:
    width = draw(st.integers(1, 6))
    rows = draw(st.integers(0, 25))
    header = draw(st.lists(_TEXT.filter(lambda s: s.strip() == s and s), min_size=width,
                           max_size=width))
    kinds = draw(st.lists(st.sampled_from(["number", "text"]), min_size=width,
                          max_size=width))
    cells = {"number": _number_cell(), "text": _text_cell()}
    body = [[draw(cells[kind]) for kind in kinds] for _ in range(rows)]
    return {"header": header, "kinds": kinds, "rows": body}


def _write(path: Path, table: dict[str, Any]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(table["header"])
        writer.writerows(table["rows"])


def _expected(cell: str, kind: str) -> Any:
    if cell == "":
        return None
    if kind == "text":
        return cell
    value = float(cell)
    return value if math.isfinite(value) else None


def _fresh(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / f"p{next(_counter)}.lepton"
    shutil.copy(template, path)
    return path


def _refused_cleanly(project: Project, before: dict[str, Any], exc: LeptonError) -> None:
    assert str(exc) and "\n" not in str(exc) and "Traceback" not in str(exc)
    assert snapshot(project.path) == before


@given(table=tables())
@SETTINGS
def test_any_csv_imports_with_its_values_or_is_refused_cleanly(
    table: dict[str, Any], _template_project: Path, tmp_path: Path
) -> None:
    source = tmp_path / "random.csv"
    _write(source, table)
    with Project.open(_fresh(_template_project, tmp_path)) as project:
        before = snapshot(project.path)
        try:
            version = project.import_dataset(source, "random")
        except LeptonError as exc:
            _refused_cleanly(project, before, exc)
            assert len(set(table["header"])) < len(table["header"]) or not table["rows"], exc
            return
        assert [c.name for c in version.columns] == table["header"]
        stored = project.rows(version, 0, version.n_rows)
    assert len(stored) == len(table["rows"])
    for got, written in zip(stored, table["rows"], strict=True):
        wanted = [_expected(c, k) for c, k in zip(written, table["kinds"], strict=True)]
        assert list(got[:-1]) == wanted


@st.composite
def preparations(draw: Any) -> PrepOptions:
    return PrepOptions(
        dedupe=draw(st.booleans()),
        fill=draw(st.sampled_from([None, "mean", "median", "mode", "zero", "drop"])),
        scale=draw(st.sampled_from(["none", "standard", "minmax"])),
        onehot=draw(st.booleans()),
        split=draw(st.sampled_from([None, (0.6, 0.2, 0.2), (1.0, 0.0, 0.0)])),
        seed=draw(st.integers(0, 3)),
    )


@given(table=tables(), options=preparations())
@SETTINGS
def test_any_imported_table_prepares_to_finite_values_or_is_refused_cleanly(
    table: dict[str, Any], options: PrepOptions, _template_project: Path, tmp_path: Path
) -> None:
    source = tmp_path / "random.csv"
    _write(source, table)
    with Project.open(_fresh(_template_project, tmp_path)) as project:
        try:
            project.import_dataset(source, "random")
        except LeptonError:
            return  # (the import property above covers refusals)
        before = snapshot(project.path)
        try:
            prepared = project.prep("random", options)
        except LeptonError as exc:
            _refused_cleanly(project, before, exc)
            return
        rows = project.rows(prepared, 0, prepared.n_rows)
    numeric = [i for i, c in enumerate(prepared.columns) if c.dtype == "numeric"]
    for row in rows:
        for index in numeric:
            value = row[index]
            assert value is None or (isinstance(value, int | float) and math.isfinite(value))
    if options.fill is not None:
        for index in numeric:
            column = prepared.columns[index]
            if column.stats.get("count"):  # a column with values has none missing now
                assert column.stats["missing"] == 0, column


@pytest.mark.parametrize("token", NON_FINITE)
def test_each_non_finite_spelling_reads_as_missing(
    token: str, tmp_project: Path, tmp_path: Path
) -> None:
    source = tmp_path / "t.csv"
    _write(source, {"header": ["x"], "kinds": ["number"], "rows": [["1.5"], [token]]})
    with Project.open(tmp_project) as project:
        version = project.import_dataset(source, "t")
        assert project.rows(version, 0, 2) == [(1.5, None), (None, None)]
        assert version.column("x").stats["nonfinite"] == 1

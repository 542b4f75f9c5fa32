"""Labels imported later from a CSV: checked line by line, stored all or none.

The request log is written the way a server's journal shipper writes it
(tests/monitoring_factory.py); the quality after an import is compared with
scikit-learn's metrics on the same labels and the answers read from the log.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from sklearn import metrics

from lepton_desktop.core.errors import DataImportError, InvalidOptionError
from lepton_desktop.core.monitoring import labels
from lepton_desktop.core.project import Project
from tests.helpers import snapshot, write_csv
from tests.monitoring_factory import CLASSES, log_traffic


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    path = tmp_path / "logged.lepton"
    Project.create(path).close()
    log_traffic(path, 300, start=time.time() - 600, seconds=500, feedback_share=0.0, seed=4)
    return path


def _answers(path: Path) -> list[tuple[str, str]]:
    """``(request_id, predicted label)`` of the answered requests, in log order."""
    conn = sqlite3.connect(path)
    try:
        found = conn.execute(
            "SELECT request_id, outputs FROM request_log WHERE status = 200 ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    return [(rid, json.loads(outputs)[0]["label"]) for rid, outputs in found]


def test_imported_labels_give_scikit_learns_quality(logged: Path, tmp_path: Path) -> None:
    answers = _answers(logged)
    truth = [CLASSES[(i * 7) % 3] if i % 4 == 0 else label for i, (_, label) in enumerate(answers)]
    csv_path = write_csv(
        tmp_path / "labels.csv",
        ["request_id", "label", "row"],
        [[rid, t, 0] for (rid, _), t in zip(answers, truth, strict=True)],
    )
    with Project.open(logged) as project:
        stored = project.import_feedback(csv_path)
        report = project.monitor("all")
    assert stored.labels == stored.requests == len(answers)
    assert stored.by_model == {"iris:1": len(answers)}
    predicted = [label for _, label in answers]
    assert report["quality"]["labelled"] == len(answers)
    assert report["quality"]["metrics"]["accuracy"] == pytest.approx(
        metrics.accuracy_score(truth, predicted)
    )
    assert report["quality"]["metrics"]["f1"] == pytest.approx(
        metrics.f1_score(truth, predicted, average="macro", zero_division=0)
    )


def test_row_column_is_optional_and_a_later_label_wins(logged: Path, tmp_path: Path) -> None:
    (rid, predicted), *_ = _answers(logged)
    other = next(c for c in CLASSES if c != predicted)
    with Project.open(logged) as project:
        project.import_feedback(
            write_csv(tmp_path / "a.csv", ["request_id", "label"], [[rid, other]])
        )
        project.import_feedback(
            write_csv(tmp_path / "b.csv", ["label", "request_id"], [[predicted, rid]])
        )
        quality = project.monitor("all")["quality"]
    assert quality["labelled"] == 1
    assert quality["confusion"] == [
        [1 if t == p == predicted else 0 for p in quality["labels"]] for t in quality["labels"]
    ]


def _refused(path: Path, csv_path: Path, message: str) -> None:
    before = snapshot(path)
    with Project.open(path) as project, pytest.raises(DataImportError) as caught:
        project.import_feedback(csv_path)
    assert message in str(caught.value)
    assert snapshot(path) == before


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([["nope-id", "setosa", 0]], "line 3: no request with id 'nope-id' in the log"),
        ([["{rid2}", "daisy", 0]], "line 3: 'daisy' is not a class of iris:1 (setosa, versicolor"),
        ([["{rid2}", "setosa", 1]], "line 3: request {rid2} had 1 row; row 1 is not one"),
        ([["{rid2}", "setosa", -1]], "line 3: row '-1' is not a row number"),
        ([["{rid2}", "", 0]], "line 3: the label is empty"),
        ([["{rid2}", "setosa"]], "line 3: 2 fields where the header has 3"),
        ([["{rid}", "setosa", 0]], "line 3: request {rid} row 0 is labelled on line 2 too"),
        (
            [["{bad}", "setosa", 0]],
            "line 3: request {bad} was not answered by a model (status 400)",
        ),
    ],
)
def test_one_bad_line_stores_nothing(
    logged: Path, tmp_path: Path, lines: list[list[str]], message: str
) -> None:
    (rid, predicted), (rid2, _), *_ = _answers(logged)
    conn = sqlite3.connect(logged)
    bad = conn.execute("SELECT request_id FROM request_log WHERE status = 400").fetchone()[0]
    conn.close()
    rows = [[rid, predicted, 0]] + [
        [f.format(rid=rid, rid2=rid2, bad=bad) if isinstance(f, str) else f for f in line]
        for line in lines
    ]
    _refused(
        logged,
        write_csv(tmp_path / "bad.csv", ["request_id", "label", "row"], rows),
        message.format(rid=rid, rid2=rid2, bad=bad),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("request_id,truth\nabc,setosa\n", "line 1: the header is 'request_id,truth'"),
        ("request_id,label\n", "no labels after the header"),
        ('request_id,label\n"abc,setosa\n', "malformed CSV"),
    ],
)
def test_malformed_files_are_refused(
    logged: Path, tmp_path: Path, text: str, message: str
) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(text, encoding="utf-8")
    _refused(logged, csv_path, message)


def test_binary_and_huge_files_are_refused_before_reading(
    logged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = tmp_path / "labels.csv"
    binary.write_bytes(b"request_id,label\n\xff\xfe\x00")
    _refused(logged, binary, "not UTF-8 text")
    big = tmp_path / "big.csv"
    with big.open("wb") as handle:  # sparse: its size is over the bound, nothing written
        handle.truncate(labels.MAX_BYTES + 1)
    _refused(logged, big, f"{labels.MAX_BYTES + 1:,} bytes is over the 256 MiB")
    monkeypatch.setattr(labels, "MAX_LABELS", 2)
    (rid, label), (rid2, label2), (rid3, label3), *_ = _answers(logged)
    many = write_csv(
        tmp_path / "many.csv",
        ["request_id", "label"],
        [[rid, label], [rid2, label2], [rid3, label3]],
    )
    _refused(logged, many, "more than 2 labels")


def test_count_window_and_quality_over_time(logged: Path, tmp_path: Path) -> None:
    """The newest N labelled rows (by the answer's time) give scikit-learn's accuracy
    on those rows; the chart's bins add up to the window's labelled rows."""
    answers = _answers(logged)  # in log order, which is time order here
    truth = [CLASSES[i % 3] for i in range(len(answers))]
    with Project.open(logged) as project:
        project.import_feedback(
            write_csv(
                tmp_path / "labels.csv",
                ["request_id", "label"],
                [[rid, t] for (rid, _), t in zip(answers, truth, strict=True)],
            )
        )
        report = project.monitor("1h", model="iris", last_labelled=50)
        with pytest.raises(InvalidOptionError, match="--last-labelled 0"):
            project.monitor("1h", model="iris", last_labelled=0)
    predicted = [label for _, label in answers]
    last = report["quality_last_labelled"]
    assert last["last"] == 50 and last["labelled"] == 50
    assert last["metrics"]["accuracy"] == pytest.approx(
        metrics.accuracy_score(truth[-50:], predicted[-50:])
    )
    series = report["quality_series"]
    assert series["metric"] == "accuracy"
    assert sum(series["labelled"]) == report["quality"]["labelled"] == len(answers)
    assert all(
        v is None for v, n in zip(series["values"], series["labelled"], strict=True) if n < 20
    )
    assert report["quality"]["reference"] is None  # iris was never registered here

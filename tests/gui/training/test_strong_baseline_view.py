"""The strong baseline and partial dependence in the Training tab's evaluation view and
runs table, on runs trained for real (in this process) in a real project file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.gui.training.eval_view import EvaluationView
from lepton_desktop.gui.training.ops import RunsSnapshot
from lepton_desktop.gui.training.run_table import COLUMNS, RunTable
from tests.core.training.test_strong_baseline import SAMPLES, checkerboard_csv
from tests.explain_factory import shop_rows
from tests.helpers import write_csv

pytestmark = pytest.mark.gui
GAIN = COLUMNS.index("Gain vs strong")
#: Set to a folder to keep a picture of the categorical chart.
SHOTS = os.environ.get("LEPTON_SCREENSHOTS")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A network that loses to gradient boosting, one that trains longer, one without a
    strong baseline (trained once for the module's tests)."""
    folder = tmp_path_factory.mktemp("strong")
    with Project.create(folder / "p.lepton") as project:
        project.import_dataset(SAMPLES / "iris.csv", "iris", target="species")
        project.import_dataset(checkerboard_csv(folder / "board.csv"), "board", target="label")
        losing = project.train("board", arch="mlp", epochs=1, seed=0).run
        longer = project.train("iris", arch="mlp", epochs=30, seed=0).run
        skipped = project.train("iris", arch="mlp", epochs=2, strong_baseline=False).run
        return {"losing": losing, "longer": longer, "skipped": skipped,
                "runs": project.runs.list()}  # fmt: skip


def test_the_view_says_when_the_network_loses_and_draws_dependence(
    qtbot: QtBot, runs: dict[str, object]
) -> None:
    view = EvaluationView()
    qtbot.addWidget(view)
    view.resize(1100, 900)
    view.show()
    losing = runs["losing"]
    view.set_run(losing)
    evaluation = losing.evaluation
    strong = evaluation["strong_baseline"]
    ours, theirs = evaluation["test"]["accuracy"], strong["metrics"]["accuracy"]
    assert view.strong_verdict.isVisible()
    assert (
        f"HistGradientBoosting beats this network on the test split: accuracy {theirs:.3f} "
        f"vs {ours:.3f}"
    ) in view.strong_verdict.text()
    assert view.metrics.horizontalHeaderItem(3).text() == "Strong: HistGradientBoosting"
    assert not view.metrics.isColumnHidden(3)
    assert view.metrics.value(0, 0) == "Accuracy"
    assert view.metrics.value(0, 3) == f"{theirs:.4f}"
    assert "beats the network" in view.metrics.item(0, 3).toolTip()

    chart = view.dependence
    assert chart.isVisible()
    columns = [c["column"] for c in evaluation["dependence"]["columns"]]
    assert sorted(columns) == ["a", "b"]
    assert [chart.column.itemText(i) for i in range(chart.column.count())] == columns
    assert chart.output.isHidden()  # binary: the second class's probability only
    assert chart.line_count == len(evaluation["dependence"]["columns"][0]["ice"][0])
    x, y = chart.average_item.getData()
    assert list(x) == evaluation["dependence"]["columns"][0]["grid"]
    chart.column.setCurrentIndex(1)
    x, y = chart.average_item.getData()
    assert list(y) == evaluation["dependence"]["columns"][1]["average"][0]
    assert chart.plot.getPlotItem().getAxis("bottom").labelText == columns[1]

    view.set_run(runs["skipped"])
    assert view.metrics.isColumnHidden(3) and not view.strong_verdict.isVisible()
    view.set_run(runs["longer"])
    longer = runs["longer"].evaluation
    if longer["strong_baseline"]["gain"]["value"] >= 0:
        assert view.strong_verdict.text().count("This network beats") == 1
    assert view.dependence.output.count() == 3  # iris: one curve per class, selectable


def test_the_runs_table_sorts_by_gain_over_the_strong_baseline(
    qtbot: QtBot, runs: dict[str, object]
) -> None:
    table = RunTable()
    qtbot.addWidget(table)
    table.runs.set_snapshot(RunsSnapshot(runs["runs"], {}, frozenset()))
    gains = {r.id: (r.evaluation.get("strong_baseline") or {}).get("gain", {}).get("value")
             for r in runs["runs"]}  # fmt: skip
    assert gains[runs["losing"].id] < 0 and gains[runs["skipped"].id] is None
    table.sortByColumn(GAIN, Qt.SortOrder.DescendingOrder)
    order = [table.proxy.index(row, 0).data(Qt.ItemDataRole.UserRole).id
             for row in range(table.proxy.rowCount())]  # fmt: skip
    expected = sorted(gains, key=lambda i: float("-inf") if gains[i] is None else gains[i],
                      reverse=True)  # fmt: skip
    assert order == expected and order[-1] == runs["skipped"].id
    losing_row = table.runs.row_of(runs["losing"].id)
    text = table.runs.data(table.runs.index(losing_row, GAIN))
    assert text == f"−{abs(gains[runs['losing'].id]):.3f} Accuracy"
    tip = table.runs.data(table.runs.index(losing_row, GAIN), Qt.ItemDataRole.ToolTipRole)
    assert "HistGradientBoosting" in tip
    skipped_row = table.runs.row_of(runs["skipped"].id)
    assert table.runs.data(table.runs.index(skipped_row, GAIN)) == ""


def test_a_categorical_column_is_drawn_as_one_bar_per_category(
    qtbot: QtBot, tmp_path: Path
) -> None:
    with Project.create(tmp_path / "shop.lepton") as project:
        project.import_dataset(write_csv(tmp_path / "shop.csv", *shop_rows()), "shop",
                               target="bought")  # fmt: skip
        run = project.train("shop", arch="mlp", epochs=3, strong_baseline=False).run
    view = EvaluationView()
    qtbot.addWidget(view)
    view.set_run(run)
    chart = view.dependence
    columns = run.evaluation["dependence"]["columns"]
    colour = next(c for c in columns if c.get("categorical"))
    chart.column.setCurrentIndex(columns.index(colour))
    assert chart.bars is not None and chart.line_count == 0
    assert list(chart.bars.opts["height"]) == colour["average"][0]
    ticks = chart.plot.getPlotItem().getAxis("bottom")._tickLevels[0]
    assert [label for _, label in ticks] == colour["grid"] == ["blue", "green", "red"]
    if SHOTS:
        view.resize(900, 700)
        qtbot.wait(200)
        chart.grab().save(str(Path(SHOTS) / "dependence-categorical-light.png"))
    numeric = next(c for c in columns if not c.get("categorical"))
    chart.column.setCurrentIndex(columns.index(numeric))  # back to lines: the bars go
    assert chart.bars is None and chart.line_count == len(numeric["ice"][0])

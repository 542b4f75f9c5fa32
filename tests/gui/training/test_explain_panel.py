"""The Training tab's Explain page: test rows, a confusion cell's rows, an explanation drawn."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.gui.main_window import MainWindow
from lepton_desktop.gui.training.tab import TrainingTab
from tests.explain_factory import explain_project  # noqa: F401 (a fixture)
from tests.helpers import snapshot

pytestmark = [pytest.mark.gui, pytest.mark.slow]
#: Set to a folder to keep the pictures the README shows.
SHOTS = os.environ.get("LEPTON_SCREENSHOTS")


@pytest.fixture
def project(explain_project: Path, tmp_path: Path) -> Path:  # noqa: F811
    path = tmp_path / "explain.lepton"
    shutil.copy(explain_project, path)
    return path


def _explain_page(qtbot: QtBot, window: MainWindow, path: Path, model: str,
                  open_project: Callable[[Path], None]) -> TrainingTab:  # fmt: skip
    with Project.open(path) as opened:
        run_id = opened.models.get(model).run_id
    if SHOTS:
        window.resize(1400, 860)
    open_project(path)
    tab = window.training_tab
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: tab.table.runs.run(run_id) is not None, timeout=10_000)
    tab.table.select_ids([run_id])
    qtbot.waitUntil(lambda: tab.evaluation.has_evaluation, timeout=10_000)
    return tab


def _choose_row(qtbot: QtBot, tab: TrainingTab, row: int) -> None:
    panel = tab.explain
    qtbot.waitUntil(lambda: panel.rows.rowCount() > 0, timeout=30_000)
    panel.rows.selectRow(row)
    qtbot.waitUntil(lambda: panel.explanation is not None, timeout=30_000)


def test_a_confusion_cell_lists_its_rows_and_one_is_explained(
    qtbot: QtBot, window: MainWindow, project: Path, open_project: Callable[[Path], None]
) -> None:
    tab = _explain_page(qtbot, window, project, "shop", open_project)
    tab.evaluation.confusion.cellClicked.emit("yes", "yes")
    assert tab.views.currentWidget() is tab.explain
    panel = tab.explain
    qtbot.waitUntil(lambda: panel.rows.rowCount() > 0, timeout=30_000)
    shown = [r for r in range(panel.rows.rowCount()) if not panel.rows.isRowHidden(r)]
    assert shown and len(shown) < panel.rows.rowCount()
    assert all(panel.rows.item(r, 1).text() == panel.rows.item(r, 2).text() == "yes"
               for r in shown)  # fmt: skip
    _choose_row(qtbot, tab, shown[0])
    explanation = panel.explanation
    assert explanation.kind == "tabular" and explanation.prediction["label"] == "yes"
    text = panel.view.title.text()
    assert "Integrated Gradients" in text and "the training mean of every column" in text
    ticks = panel.view.chart.getPlotItem().getAxis("left")._tickLevels[0]
    assert {label.split(" = ")[0] for _, label in ticks} == {"price", "colour"}
    if SHOTS:
        qtbot.wait(300)  # the layout settles around the new title and axis
        panel.grab().save(str(Path(SHOTS) / "explain-table-light.png"))
    panel.show_cell(None)
    assert not any(panel.rows.isRowHidden(r) for r in range(panel.rows.rowCount()))


def test_an_image_row_is_drawn_as_a_heat_map_by_the_chosen_method(
    qtbot: QtBot, window: MainWindow, project: Path, open_project: Callable[[Path], None]
) -> None:
    tab = _explain_page(qtbot, window, project, "digits", open_project)
    tab.views.setCurrentWidget(tab.explain)
    panel = tab.explain
    panel.method.setCurrentText("Grad-CAM")
    _choose_row(qtbot, tab, 2)
    assert panel.explanation.method == "gradcam" and panel.explanation.heatmap.shape == (8, 8)
    assert "Grad-CAM" in panel.view.title.text()
    assert any(type(i).__name__ == "ImageItem" for i in panel.view.chart.getPlotItem().items)
    if SHOTS:
        qtbot.wait(300)
        panel.grab().save(str(Path(SHOTS) / "explain-image-light.png"))


def test_a_typed_record_is_explained_as_explain_record_does(
    qtbot: QtBot, window: MainWindow, project: Path, open_project: Callable[[Path], None]
) -> None:
    tab = _explain_page(qtbot, window, project, "shop", open_project)
    tab.views.setCurrentWidget(tab.explain)
    panel, form = tab.explain, tab.explain.form
    qtbot.waitUntil(lambda: bool(form.fields), timeout=30_000)
    assert panel.inputs.isTabEnabled(1)
    panel.inputs.setCurrentWidget(form)
    with Project.open(project) as opened:
        rows = opened.explain_rows("shop")[0]
    prices = [r["price"] for r in rows.train_records]
    price, colour = form.editors["price"], form.editors["colour"]
    low, high = f"{min(prices):.10g}", f"{max(prices):.10g}"
    assert f"training range {low} to {high}" in price.placeholderText()
    assert float(price.text()) == pytest.approx(sum(prices) / len(prices), rel=1e-3)
    seen = {r["colour"] for r in rows.train_records}
    assert {colour.itemText(i) for i in range(colour.count())} == seen
    before = snapshot(project)
    price.setText("cheap")
    form.explain_button.click()
    assert form.error("price") == (f"'cheap' is not a number (training range {low} to {high})")
    assert form.error("colour") is None and panel.explanation is None
    price.setText("2.5")
    colour.setCurrentText("green")
    form.explain_button.click()
    assert form.error("price") is None
    qtbot.waitUntil(lambda: panel.explanation is not None, timeout=30_000)
    with Project.open(project) as opened:
        expected = opened.explain("shop", record={"price": 2.5, "colour": "green"})
    shown = panel.explanation
    assert shown.prediction == expected.prediction
    assert [(f["column"], f["value"]) for f in shown.features] == [
        (f["column"], f["value"]) for f in expected.features
    ]
    for ours, theirs in zip(shown.features, expected.features, strict=True):
        assert ours["attribution"] == pytest.approx(theirs["attribution"], rel=1e-5, abs=1e-7)
    assert snapshot(project) == before  # nothing is written by explaining
    if SHOTS:
        qtbot.wait(300)
        panel.grab().save(str(Path(SHOTS) / "explain-record-light.png"))
    panel.inputs.setCurrentIndex(0)  # a chosen test row is copied into the form
    panel.rows.selectRow(3)
    assert float(price.text()) == pytest.approx(rows.records[3]["price"])
    assert colour.currentText() == rows.records[3]["colour"]

"""The personal-data warning: in the Import dialog (first rows), the Datasets tab (all
rows) and the Prepare dialog's choice; rendered offscreen for the README."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from faker import Faker
from pytestqt.qtbot import QtBot

from lepton_desktop.core.project import Project
from lepton_desktop.gui.datasets.import_dialog import ImportDialog
from lepton_desktop.gui.datasets.prep_dialog import PrepDialog
from lepton_desktop.gui.main_window import MainWindow
from tests.helpers import write_csv

pytestmark = pytest.mark.gui
SCREENSHOTS = Path(__file__).resolve().parents[3] / "resources" / "screenshots"


@pytest.fixture
def customers(tmp_path: Path) -> Path:
    fake = Faker("en_US")
    Faker.seed(11)
    rows = [[fake.name(), fake.email(), fake.phone_number(), fake.credit_card_number(),
             round(fake.pyfloat(min_value=0, max_value=5000), 2), fake.random_int(1, 40),
             "yes" if i % 3 else "no"] for i in range(200)]  # fmt: skip
    return write_csv(tmp_path / "customers.csv", ["full_name", "email", "phone", "card",
                                                  "spend", "visits", "churned"], rows)


def test_import_dialog_warns_from_the_first_rows(
    qtbot: QtBot, open_session, tmp_project: Path, customers: Path
) -> None:
    session = open_session(tmp_project)
    dialog = ImportDialog(session)
    qtbot.addWidget(dialog)
    dialog.set_source(customers)
    qtbot.waitUntil(lambda: dialog.pii_note.isVisibleTo(dialog), timeout=20_000)
    text = dialog.pii_note.text()
    for line in ("full_name: name (100%", "email: email (100%", "phone: phone (100%",
                 "card: card"):  # fmt: skip
        assert line in text, text
    assert "spend" not in text and "visits" not in text
    dialog.set_source(customers.with_name("missing.csv"))  # another source: no stale note
    assert not dialog.pii_note.isVisibleTo(dialog)
    dialog.set_source(customers)
    qtbot.waitUntil(lambda: dialog.pii_note.isVisibleTo(dialog), timeout=20_000)


def test_datasets_tab_and_prepare_dialog(
    qtbot: QtBot, window: MainWindow, open_project, tmp_project: Path, customers: Path
) -> None:
    with Project.open(tmp_project) as project:
        project.import_dataset(customers, "customers", target="churned")
    open_project(tmp_project)
    view = window.datasets_tab.view
    qtbot.waitUntil(lambda: view.version is not None, timeout=10_000)
    assert view.pii_note.isVisibleTo(view)
    assert "email: email (100% of its cells)" in view.pii_note.text()
    assert window.session is not None and view.version is not None
    if os.environ.get("LEPTON_SCREENSHOTS"):
        window.resize(1200, 600)
        qtbot.waitUntil(lambda: view.preview.data(view.preview.index(0, 1)) is not None,
                        timeout=10_000)  # fmt: skip
        qtbot.wait(500)
        _save(window, "datasets-pii-light.png")
        importing = ImportDialog(window.session, parent=window)
        qtbot.addWidget(importing)
        importing.set_source(customers)
        importing.target.setCurrentText("churned")
        qtbot.waitUntil(lambda: importing.pii_note.isVisibleTo(importing), timeout=20_000)
        importing.show()
        qtbot.wait(300)
        _save(importing, "import-pii-warning-light.png")
    dialog = PrepDialog(window.session, view.version)
    qtbot.addWidget(dialog)
    assert dialog.pii.isEnabled() and dialog.problem() == ""
    dialog.pii.setCurrentIndex(dialog.pii.findData("hash"))
    assert dialog.options().pii == "hash" and dialog._anything_chosen()
    qtbot.waitUntil(lambda: dialog.preview is not None, timeout=20_000)
    assert dialog.preview.rows_after == 200


def _save(widget, name: str) -> None:
    # Rendered for the README when asked (LEPTON_SCREENSHOTS=1), never on ordinary runs.
    if os.environ.get("LEPTON_SCREENSHOTS"):
        widget.grab().save(str(SCREENSHOTS / name))

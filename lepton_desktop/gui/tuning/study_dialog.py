"""The "New Study" dialog: dataset, architecture, an editable search space, and how to search.

The space table starts from ``default_space(arch)`` (``core/tuning/space.py``) and
every range, scale and choice list can be edited, rows added or removed. The dialog
only turns what was typed into ``project.tuning.create`` options; the core checks
them (an unknown hyperparameter, low >= high, ...) and its message is shown here,
the dialog staying open, nothing created.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QLocale, Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import DatasetVersion
from lepton_desktop.core.training.config import ARCH_KINDS, ARCHS
from lepton_desktop.core.tuning.objectives import METRICS, SECONDARY
from lepton_desktop.core.tuning.space import (
    HYPERPARAMETERS,
    PRUNERS,
    SAMPLERS,
    TYPES,
    default_space,
)

COLUMNS = ("Hyperparameter", "Type", "Low", "High", "Log", "Choices")
SAMPLER_NAMES = {
    "tpe": "TPE (default)",
    "gp": "Gaussian process",
    "grid": "Grid",
    "random": "Random",
    "cmaes": "CMA-ES",
}
PRUNER_NAMES = {"median": "Median (default)", "hyperband": "Hyperband", "none": "None"}


class SpaceError(ValueError):
    """A cell of the space table holds something that is not a number or a list."""


class SpaceTable(QTableWidget):
    """The search space, one hyperparameter a row."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().hide()
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.arch = "mlp"

    def load(self, space: dict[str, dict[str, Any]], arch: str) -> None:
        """Show ``space`` (replacing every row)."""
        self.arch = arch
        self.setRowCount(0)
        for name, spec in space.items():
            self.add_row(name, spec)

    def add_row(self, name: str = "", spec: dict[str, Any] | None = None) -> None:
        """Append a row (a new, unused hyperparameter of the architecture by default)."""
        if not name:
            used = set(self.names())
            name = next((h for h in HYPERPARAMETERS[self.arch] if h not in used), "")
            spec = default_space(self.arch).get(name) or {
                "type": "float",
                "low": 0.0,
                "high": 1.0,
                "log": False,
            }
        spec = spec or {}
        row = self.rowCount()
        self.insertRow(row)
        self.setItem(row, 0, QTableWidgetItem(name))
        kind = QComboBox(self)
        kind.addItems(TYPES)
        kind.setCurrentText(str(spec.get("type", "float")))
        kind.currentTextChanged.connect(lambda _t, r=row: self._enable_cells(r))
        self.setCellWidget(row, 1, kind)
        self.setItem(row, 2, QTableWidgetItem(_text(spec.get("low"))))
        self.setItem(row, 3, QTableWidgetItem(_text(spec.get("high"))))
        log = QTableWidgetItem()
        log.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
        log.setCheckState(Qt.CheckState.Checked if spec.get("log") else Qt.CheckState.Unchecked)
        self.setItem(row, 4, log)
        choices = ", ".join(str(c) for c in spec.get("choices", []))
        self.setItem(row, 5, QTableWidgetItem(choices))
        self._enable_cells(row)

    def remove_selected(self) -> None:
        """Remove the selected rows."""
        for row in sorted({i.row() for i in self.selectedIndexes()}, reverse=True):
            self.removeRow(row)

    def names(self) -> list[str]:
        """Hyperparameter names, in table order."""
        return [self.item(r, 0).text().strip() for r in range(self.rowCount())]

    def space(self) -> dict[str, dict[str, Any]]:
        """The space as ``project.tuning.create`` takes it.

        Raises:
            SpaceError: a cell is not a number, a name is missing or repeated.
        """
        space: dict[str, dict[str, Any]] = {}
        for row, name in enumerate(self.names()):
            if not name:
                raise SpaceError(f"search space row {row + 1}: give the hyperparameter a name")
            if name in space:
                raise SpaceError(f"search space: {name} appears twice")
            space[name] = self._spec(row, name)
        return space

    def _spec(self, row: int, name: str) -> dict[str, Any]:
        kind = self.cellWidget(row, 1).currentText()  # type: ignore[union-attr]
        if kind == "categorical":
            choices = [_parse_choice(c) for c in self.item(row, 5).text().split(",") if c.strip()]
            return {"type": kind, "choices": choices}
        number = int if kind == "int" else float
        spec: dict[str, Any] = {"type": kind}
        for column, key in ((2, "low"), (3, "high")):
            text = self.item(row, column).text().strip()
            try:
                spec[key] = number(float(text)) if kind == "int" else number(text)
            except ValueError:
                raise SpaceError(f"search space: {name} {key} {text!r} is not a number") from None
        spec["log"] = self.item(row, 4).checkState() == Qt.CheckState.Checked
        return spec

    def _enable_cells(self, row: int) -> None:
        kind = self.cellWidget(row, 1).currentText()  # type: ignore[union-attr]
        categorical = kind == "categorical"
        for column in (2, 3, 4):
            item = self.item(row, column)
            if item is not None:
                flags = item.flags()
                on = flags | Qt.ItemFlag.ItemIsEnabled
                item.setFlags(on & ~Qt.ItemFlag.ItemIsEnabled if categorical else on)
        item = self.item(row, 5)
        if item is not None:
            flags = item.flags() | Qt.ItemFlag.ItemIsEnabled
            item.setFlags(flags if categorical else flags & ~Qt.ItemFlag.ItemIsEnabled)


def _text(value: Any) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _parse_choice(text: str) -> Any:
    """``16`` -> 16, ``0.5`` -> 0.5, ``true`` -> True, anything else stays text."""
    text = text.strip()
    try:
        value = json.loads(text.lower() if text.lower() in ("true", "false") else text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float, bool)) else text


class StudyDialog(QDialog):
    """Collects the options of a new study; emits :attr:`submitted` until one is created.

    Args:
        versions: the dataset versions a study can tune on.
        parent: the parent widget.
    """

    submitted = Signal(dict, bool)  # options for project.tuning.create, start it at once

    def __init__(self, versions: Sequence[DatasetVersion], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New Study")
        self.setObjectName("studyDialog")
        self.versions = list(versions)
        self.dataset = QComboBox(self)
        for version in self.versions:
            self.dataset.addItem(
                f"{version.ref} · {version.kind}, {version.n_rows:,} rows", version.ref
            )
        self.arch = QComboBox(self)
        for arch in ARCHS:
            self.arch.addItem(arch.upper(), arch)
        self.name = QLineEdit(self)
        self.name.setPlaceholderText("automatic (dataset-arch)")
        self.space = SpaceTable(self)
        self._build_search_fields()
        self.error = QLabel(self)
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d64545;")
        self.error.hide()
        self._build_layout()
        self.dataset.currentIndexChanged.connect(self._on_dataset_changed)
        self.arch.currentIndexChanged.connect(self._on_arch_changed)
        self._on_dataset_changed()

    def _build_search_fields(self) -> None:
        self.sampler = QComboBox(self)
        for name in SAMPLERS:
            self.sampler.addItem(SAMPLER_NAMES.get(name, name), name)
        self.pruner = QComboBox(self)
        for name in PRUNERS:
            self.pruner.addItem(PRUNER_NAMES.get(name, name), name)
        self.trials = _spin(self, 1, 100_000, 20)
        self.jobs = _spin(self, 1, 64, 1)
        self.jobs.setToolTip("Trials trained at once on this machine")
        self.epochs = _spin(self, 0, 100_000, 0)
        self.epochs.setSpecialValueText("automatic")
        self.dp_epsilon = QDoubleSpinBox(self)
        self.dp_epsilon.setLocale(QLocale.c())
        self.dp_epsilon.setRange(0.0, 1000.0)
        self.dp_epsilon.setDecimals(2)
        self.dp_epsilon.setSingleStep(1.0)
        self.dp_epsilon.setSpecialValueText("off")
        self.dp_epsilon.setToolTip(
            "Train every trial (and the retrained best) with differential privacy at this "
            "ε (DP-SGD with Opacus; smaller is more private); off: no privacy"
        )
        self.metric_choice = QComboBox(self)
        self.second_objective = QComboBox(self)
        self.second_objective.addItem("none (one objective)", "")
        for name in SECONDARY:
            self.second_objective.addItem(f"{name} (minimized)", name)
        self.second_objective.setToolTip(
            "A second objective makes a multi-objective study: a Pareto "
            "front instead of one best trial, and no pruning"
        )

    def _build_layout(self) -> None:
        form = QFormLayout()
        for label, field in (
            ("Dataset", self.dataset),
            ("Architecture", self.arch),
            ("Name", self.name),
        ):
            form.addRow(label, field)
        search = QFormLayout()
        for label, field in (
            ("Sampler", self.sampler),
            ("Pruner", self.pruner),
            ("Trials", self.trials),
            ("Parallel jobs", self.jobs),
            ("Epochs per trial", self.epochs),
            ("Privacy ε", self.dp_epsilon),
            ("Metric", self.metric_choice),
            ("Second objective", self.second_objective),
        ):
            search.addRow(label, field)
        space_buttons = QHBoxLayout()
        for text, slot in (
            ("Add", self.space.add_row),
            ("Remove", self.space.remove_selected),
            ("Defaults", self._on_arch_changed),
        ):
            button = QPushButton(text, self)
            button.setAutoDefault(False)
            button.clicked.connect(lambda _c=False, s=slot: s())
            space_buttons.addWidget(button)
        space_buttons.addStretch(1)
        buttons = QDialogButtonBox(self)
        self.create_button = buttons.addButton("Create", QDialogButtonBox.ButtonRole.AcceptRole)
        self.start_button = buttons.addButton(
            "Create and Start", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.start_button.setDefault(True)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.rejected.connect(self.reject)
        self.create_button.clicked.connect(lambda: self._submit(start=False))
        self.start_button.clicked.connect(lambda: self._submit(start=True))
        columns = QHBoxLayout()
        columns.addLayout(form, 1)
        columns.addLayout(search, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(columns)
        layout.addWidget(QLabel("Search space", self))
        layout.addWidget(self.space, 1)
        layout.addLayout(space_buttons)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(760, 620)

    # -- fields -------------------------------------------------------------------------

    def selected_version(self) -> DatasetVersion | None:
        """The chosen dataset version."""
        ref = self.dataset.currentData()
        return next((v for v in self.versions if v.ref == ref), None)

    def select_dataset(self, ref: str) -> None:
        """Choose a dataset version by reference."""
        self.dataset.setCurrentIndex(max(0, self.dataset.findData(ref)))

    def _on_dataset_changed(self) -> None:
        version = self.selected_version()
        kind = version.kind if version else None
        model = self.arch.model()
        assert isinstance(model, QStandardItemModel)
        for row, arch in enumerate(ARCHS):
            model.item(row).setEnabled(kind is None or kind in ARCH_KINDS[arch])
        fitting = next((a for a in ARCHS if kind in ARCH_KINDS[a]), ARCHS[0])
        if self.arch.currentData() != fitting:
            self.arch.setCurrentIndex(ARCHS.index(fitting))
        else:
            self._on_arch_changed()
        self._fill_metrics(kind)

    def _fill_metrics(self, kind: str | None) -> None:
        tasks = {"images": ("classification",), "timeseries": ("forecasting",)}.get(
            kind or "", ("classification", "regression")
        )
        names = list(dict.fromkeys(m for t in tasks for m in METRICS[t]))
        self.metric_choice.clear()
        self.metric_choice.addItem("automatic (f1, or mse for numbers)", "")
        for name in names:
            self.metric_choice.addItem(name, name)

    def _on_arch_changed(self) -> None:
        arch = self.arch.currentData()
        self.space.load(default_space(arch), arch)

    # -- submitting -----------------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """The options for ``project.tuning.create`` (raises SpaceError for bad cells)."""
        version = self.selected_version()
        if version is None:
            raise SpaceError("import a dataset first: a study tunes on one")
        options: dict[str, Any] = {
            "dataset": version.ref,
            "arch": self.arch.currentData(),
            "space": self.space.space(),
            "sampler": self.sampler.currentData(),
            "pruner": self.pruner.currentData(),
            "n_trials": self.trials.value(),
            "jobs": self.jobs.value(),
        }
        if self.name.text().strip():
            options["name"] = self.name.text().strip()
        if self.epochs.value():
            options["epochs"] = self.epochs.value()
        if self.dp_epsilon.value():
            options["dp_epsilon"] = self.dp_epsilon.value()
        metric, second = self.metric_choice.currentData(), self.second_objective.currentData()
        if second:
            options["objectives"] = [metric or _default_metric(self.metric_choice), second]
        elif metric:
            options["metric"] = metric
        return options

    def _submit(self, start: bool) -> None:
        try:
            options = self.options()
        except SpaceError as exc:
            self.show_error(str(exc))
            return
        self.set_busy(True)
        self.submitted.emit(options, start)

    def set_busy(self, busy: bool) -> None:
        """Disable the buttons while the study is being created."""
        self.create_button.setEnabled(not busy)
        self.start_button.setEnabled(not busy)

    def show_error(self, error: BaseException | str) -> None:
        """Show why the study was refused (the dialog stays open)."""
        self.set_busy(False)
        self.error.setText(str(error))
        self.error.setVisible(bool(str(error)))


def _default_metric(combo: QComboBox) -> str:
    # A multi-objective study names its first objective; the first listed metric is
    # the task's default (f1 for classes, mse for numbers).
    return str(combo.itemData(1))


def _spin(parent: QWidget, low: int, high: int, value: int) -> QSpinBox:
    spin = QSpinBox(parent)
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setGroupSeparatorShown(True)
    return spin

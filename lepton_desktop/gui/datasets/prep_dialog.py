"""The Prepare dialog: every preparation option, with a live preview of its effect.

Options are checked at once (``PrepOptions.validate`` looks at the version's metadata
only); the preview (``project.prep_preview``, which reads the rows) runs on the DB
thread after a short pause in typing. OK stays disabled while the options are invalid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.datasets.pii_found import findings_of
from lepton_desktop.core.datasets.prep import PrepOptions, PrepPreview
from lepton_desktop.core.entities import DatasetVersion
from lepton_desktop.core.errors import LeptonError

if TYPE_CHECKING:
    from lepton_desktop.gui.session import ProjectSession

FILLS = ((None, "Leave missing values"), ("mean", "Mean"), ("median", "Median"),
         ("mode", "Most frequent value"), ("zero", "Zero"), ("drop", "Drop rows with any"))
SCALES = (("none", "No scaling"), ("standard", "Standard (mean 0, std 1)"),
          ("minmax", "Min–max (0 to 1)"))
PII = ((None, "Keep as they are"), ("drop", "Drop those columns"),
       ("hash", "Hash (keyed; the key stays on this computer)"),
       ("mask", "Mask (keep the last digits, the domain, the year)"))


def preview_text(preview: PrepPreview) -> str:
    """``Rows: 150 → 147 · Missing cells: 12 → 0``."""
    return (f"Rows: {preview.rows_before:,} → {preview.rows_after:,}   ·   "
            f"Missing cells: {preview.missing_before:,} → {preview.missing_after:,}")


class PrepDialog(QDialog):
    """Choose how to prepare ``version`` into a new version.

    Args:
        session: runs the preview on the DB thread.
        version: the version to prepare.
        parent: the parent widget.
    """

    def __init__(
        self, session: ProjectSession, version: DatasetVersion, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Prepare {version.ref}")
        self.setMinimumWidth(480)
        self._session = session
        self.version = version
        self._generation = 0
        self.preview: PrepPreview | None = None
        self._build()
        self._debounce = QTimer(self, singleShot=True, interval=250, timeout=self._run_preview)
        self._on_changed()

    def _build(self) -> None:
        self.dedupe = QCheckBox("Remove duplicate rows", self)
        self.fill = _combo(self, FILLS)
        self.fill.setToolTip("How missing cells are filled (fitted on the train split only)")
        self.scale = _combo(self, SCALES)
        self.onehot = QCheckBox("One-hot encode categorical columns", self)
        self.pii = _combo(self, PII)
        flagged = [f.column for f in findings_of(self.version.columns)]
        self.pii.setToolTip("Columns found to hold personal data: " + (", ".join(flagged)
                            or "none"))  # fmt: skip
        self.pii.setEnabled(bool(flagged))
        self.split = QGroupBox("Split into train / validation / test", self)
        self.split.setCheckable(True)
        self.split.setChecked(not self.version.splits)
        self.fractions = [_fraction(self, v) for v in (0.7, 0.15, 0.15)]
        self.seed = QSpinBox(self, minimum=0, maximum=2**31 - 1)
        self.seed.setToolTip("The same seed gives the same split")
        split_row = QHBoxLayout()
        for label, box in zip(("Train", "Val", "Test"), self.fractions, strict=True):
            split_row.addWidget(QLabel(label, self))
            split_row.addWidget(box)
        split_form = QFormLayout(self.split)
        split_form.addRow(split_row)
        split_form.addRow("Seed:", self.seed)
        self.result_label = QLabel(self)
        self.result_label.setObjectName("previewLabel")
        self.error_label = QLabel(self)
        self.error_label.setObjectName("formError")
        self.error_label.setProperty("error", True)
        self.error_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Prepare")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._layout()
        self._connect()

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow(self.dedupe)
        form.addRow("Missing values:", self.fill)
        form.addRow("Scale numbers:", self.scale)
        form.addRow(self.onehot)
        form.addRow("Personal data:", self.pii)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.split)
        layout.addWidget(self.result_label)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

    def _connect(self) -> None:
        for box in (self.dedupe, self.onehot):
            box.toggled.connect(self._on_changed)
        self.split.toggled.connect(self._on_changed)
        for combo in (self.fill, self.scale, self.pii):
            combo.currentIndexChanged.connect(self._on_changed)
        for spin in (*self.fractions, self.seed):
            spin.valueChanged.connect(self._on_changed)

    def options(self) -> PrepOptions:
        """The options chosen (may be invalid: see :meth:`problem`)."""
        split = tuple(round(b.value(), 4) for b in self.fractions) if self.split.isChecked() \
            else None
        return PrepOptions(
            dedupe=self.dedupe.isChecked(), fill=self.fill.currentData(),
            scale=self.scale.currentData(), onehot=self.onehot.isChecked(),
            split=split, seed=self.seed.value(), pii=self.pii.currentData(),  # type: ignore[arg-type]
        )

    def problem(self) -> str:
        """Why the options cannot be used, or ``""``."""
        try:
            self.options().validate(self.version)
        except (LeptonError, ValueError, TypeError) as exc:
            return str(exc)
        return ""

    def _on_changed(self) -> None:
        self._generation += 1
        self.preview = None
        chosen = self._anything_chosen()
        problem = self.problem() if chosen else "Choose at least one step."
        self._show_problem(problem, is_error=chosen)
        self.result_label.setText("" if problem else "Computing the effect…")
        if problem:
            self._debounce.stop()
        else:
            self._debounce.start()

    def _anything_chosen(self) -> bool:
        return (self.dedupe.isChecked() or self.fill.currentData() is not None
                or self.scale.currentData() != "none" or self.onehot.isChecked()
                or self.split.isChecked() or self.pii.currentData() is not None)

    def _show_problem(self, problem: str, *, is_error: bool = True) -> None:
        self.error_label.setText(problem)
        self.error_label.setProperty("error", is_error)
        self.error_label.style().unpolish(self.error_label)
        self.error_label.style().polish(self.error_label)
        self.error_label.setVisible(bool(problem))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not problem)

    def _run_preview(self) -> None:
        options, version, generation = self.options(), self.version, self._generation
        self._session.query(
            lambda p: p.prep_preview(version, options),
            lambda preview: self._on_preview(generation, preview, ""),
            lambda exc: self._on_preview(generation, None, str(exc)),
            owner=self,
        )

    def _on_preview(self, generation: int, preview: PrepPreview | None, error: str) -> None:
        if generation != self._generation:
            return  # the options changed meanwhile; a newer preview is coming
        self.preview = preview
        if preview is None:
            self._show_problem(error)
            self.result_label.setText("")
            return
        self.result_label.setText(preview_text(preview))


def _combo(parent: QWidget, items: tuple[tuple[str | None, str], ...]) -> QComboBox:
    combo = QComboBox(parent)
    for value, text in items:
        combo.addItem(text, value)
    return combo


def _fraction(parent: QWidget, value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox(parent, minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2)
    box.setValue(value)
    return box

"""A finished run's evaluation: test metrics beside the naive and the strong baseline,
and its charts.

Classification shows the confusion matrix and per-class precision/recall/F1;
regression and forecasting show predicted against true values. Tabular models
also show permutation importance and partial dependence with ICE lines. When a strong
classical baseline beats the network on the test split, a line above says so.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHeaderView,
    QLabel,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import ModelVersion, Run
from lepton_desktop.core.training.strong_baseline import verdict
from lepton_desktop.gui.training import run_format as fmt
from lepton_desktop.gui.training.dependence_chart import DependenceChart
from lepton_desktop.gui.training.eval_charts import (
    ConfusionMatrixChart,
    GroupedBarChart,
    ImportanceChart,
    ScatterChart,
)

_CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "roc_auc")
_REGRESSION = ("mse", "mae", "rmse", "r2")
_LOWER_IS_BETTER = ("mse", "mae", "rmse")
_BETTER, _WORSE = "#2a9d8f", "#d64545"


class MetricsTable(QTableWidget):
    """Metric | this model | the naive baseline | the strong baseline; the model's value
    is marked against the naive one, a strong baseline's value that beats it in red.

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 4, parent)
        self.setHorizontalHeaderLabels(["Metric", "Model", "Baseline", "Strong baseline"])
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.verticalHeader().hide()
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)

    def show_metrics(
        self,
        test: dict[str, Any],
        baseline: dict[str, Any],
        name: str,
        strong: dict[str, Any] | None = None,
    ) -> None:
        """One row per headline metric present in ``test``; ``strong`` is the evaluation's
        ``strong_baseline`` (its column is hidden when the run fitted none)."""
        keys = [k for k in (*_CLASSIFICATION, *_REGRESSION) if k in test]
        self.setHorizontalHeaderItem(2, QTableWidgetItem(f"Baseline: {name}"))
        strong_metrics = (strong or {}).get("metrics") or {}
        self.setHorizontalHeaderItem(3, QTableWidgetItem(f"Strong: {(strong or {}).get('name')}"))
        self.setColumnHidden(3, not strong)
        self.setRowCount(len(keys))
        for row, key in enumerate(keys):
            model, base, rival = test.get(key), baseline.get(key), strong_metrics.get(key)
            self.setItem(row, 0, QTableWidgetItem(fmt.METRIC_LABELS.get(key, key)))
            self.setItem(row, 1, _number(model, _verdict(key, model, base)))
            self.setItem(row, 2, _number(base, None))
            self.setItem(row, 3, _rival(rival, _verdict(key, rival, model)))

    def value(self, row: int, column: int) -> str:
        """The text of a cell (for tests and copying)."""
        item = self.item(row, column)
        return item.text() if item else ""


def _number(value: Any, better: bool | None) -> QTableWidgetItem:
    item = QTableWidgetItem(fmt.format_value(value))
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if better is not None:
        item.setForeground(QColor(_BETTER if better else _WORSE))
        item.setToolTip("better than the baseline" if better else "not better than the baseline")
    return item


def _rival(value: Any, beats_model: bool | None) -> QTableWidgetItem:
    item = QTableWidgetItem(fmt.format_value(value))
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if beats_model:
        item.setForeground(QColor(_WORSE))
        item.setToolTip("the strong baseline beats the network here")
    return item


def _verdict(key: str, model: Any, base: Any) -> bool | None:
    if not isinstance(model, int | float) or not isinstance(base, int | float):
        return None
    return model < base if key in _LOWER_IS_BETTER else model > base


class EvaluationView(QWidget):
    """The evaluation of one run (or why there is none yet).

    Args:
        parent: the parent widget.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run: Run | None = None
        self.summary = QLabel(self)
        self.summary.setObjectName("evalSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.strong_verdict = QLabel(self)
        self.strong_verdict.setObjectName("strongVerdict")
        self.strong_verdict.setWordWrap(True)
        self.strong_verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.privacy = QLabel(self)
        self.privacy.setObjectName("evalPrivacy")
        self.privacy.setWordWrap(True)
        self.privacy.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.empty = QLabel(self)
        self.empty.setObjectName("emptyHint")
        self.empty.setWordWrap(True)
        self.metrics = MetricsTable(self)
        self.confusion = ConfusionMatrixChart(self)
        self.per_class = GroupedBarChart(self)
        self.scatter = ScatterChart(self)
        self.importance = ImportanceChart(self)
        self.dependence = DependenceChart(self)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self._build_page())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.strong_verdict)
        layout.addWidget(self.privacy)
        layout.addWidget(self.stack, 1)
        self.set_run(None)

    def _build_page(self) -> QWidget:
        page = QWidget(self)
        self.grid = QGridLayout(page)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(6)
        self.grid.setColumnStretch(0, 1)
        self.grid.setColumnStretch(1, 1)
        self.grid.setRowStretch(0, 1)
        self.grid.setRowStretch(1, 1)
        return page

    def _arrange(self, classification: bool, importance: bool, dependence: bool) -> None:
        """Classification: metrics and confusion above, per-class and importance below.
        Regression: metrics and importance on the left, the scatter on the right.
        Partial dependence, when there is some, in a row of its own at the bottom."""
        for widget in (self.metrics, self.confusion, self.per_class, self.scatter,
                       self.importance, self.dependence):
            self.grid.removeWidget(widget)
        shown = {self.confusion: classification, self.per_class: classification,
                 self.scatter: not classification, self.importance: importance,
                 self.dependence: dependence}
        for widget, visible in shown.items():
            widget.setVisible(visible)
        self.grid.setRowStretch(2, 1 if dependence else 0)
        self.grid.addWidget(self.dependence, 2, 0, 1, 2)
        if classification:
            self.grid.addWidget(self.metrics, 0, 0)
            self.grid.addWidget(self.confusion, 0, 1)
            self.grid.addWidget(self.per_class, 1, 0)
            self.grid.addWidget(self.importance, 1, 1)
            return
        self.grid.addWidget(self.metrics, 0, 0, 1 if importance else 2, 1)
        self.grid.addWidget(self.importance, 1, 0)
        self.grid.addWidget(self.scatter, 0, 1, 2, 1)

    @property
    def has_evaluation(self) -> bool:
        """True when a run's evaluation is drawn."""
        return self.stack.currentIndex() == 1

    def set_run(self, run: Run | None, model: ModelVersion | None = None) -> None:
        """Show ``run``'s evaluation, or say why there is none."""
        self.run = run
        evaluation = (run.evaluation or {}) if run else {}
        if run is None or not evaluation.get("test"):
            self.summary.setText(fmt.run_title(run) if run else "")
            self.summary.setVisible(run is not None)
            self.strong_verdict.hide()
            self.privacy.hide()
            self.empty.setText(_empty_text(run))
            self.stack.setCurrentIndex(0)
            return
        self.summary.setText(_summary(run, evaluation, model))
        self.summary.show()
        self._show_strong(evaluation)
        self._show_privacy(evaluation)
        self._show(evaluation)
        self.stack.setCurrentIndex(1)

    def _show(self, evaluation: dict[str, Any]) -> None:
        test, baseline = evaluation["test"], evaluation.get("baseline") or {}
        self.metrics.show_metrics(test, baseline, evaluation.get("baseline_name", "baseline"),
                                  evaluation.get("strong_baseline"))
        classification = "confusion_matrix" in test
        importance = evaluation.get("importance") or {}
        dependence = evaluation.get("dependence") or {}
        self._arrange(classification, bool(importance), bool(dependence.get("columns")))
        if dependence.get("columns"):
            self.dependence.show_dependence(dependence)
        if classification:
            self.confusion.show_matrix(test["confusion_matrix"], test.get("classes", []))
            self.per_class.show_classes(test.get("per_class", {}))
        else:
            scatter = evaluation.get("scatter") or {}
            self.scatter.show_points(scatter.get("true", []), scatter.get("pred", []))
        if importance:
            self.importance.show_importance(importance)

    def _show_strong(self, evaluation: dict[str, Any]) -> None:
        """Say, in words, how the network did against its strong baseline."""
        strong = evaluation.get("strong_baseline")
        if not strong:
            error = evaluation.get("strong_baseline_error")
            self.strong_verdict.setText(f"No strong baseline could be fitted: {error}")
            self.strong_verdict.setToolTip("")
            self.strong_verdict.setVisible(bool(error))
            return
        loss = verdict(evaluation)
        if loss:
            text = (f"<span style='color:{_WORSE}'><b>{loss}</b></span>. A classical model "
                    "does better here: serve it, or give the network more epochs, data or "
                    "tuning.")
        else:
            key = strong["gain"]["metric"]
            text = (f"<span style='color:{_BETTER}'>This network beats {strong['name']} on "
                    f"the test split: {key} {fmt.format_value(evaluation['test'][key])} vs "
                    f"{fmt.format_value(strong['metrics'][key])}</span>.")
        self.strong_verdict.setText(text)
        chosen = " (the better on the validation split)" if strong.get("selected_on") else ""
        self.strong_verdict.setToolTip(
            f"{strong['name']}{chosen}, fitted on the run's own training split and inputs "
            f"in {strong['fit_seconds']:.2f} s"
        )
        self.strong_verdict.show()

    def _show_privacy(self, evaluation: dict[str, Any]) -> None:
        """The privacy budget a private run spent, and what Opacus changed in the model."""
        spent = evaluation.get("privacy")
        self.privacy.setVisible(bool(spent))
        if not spent:
            return
        text = (
            f"<b>Trained with differential privacy</b>: ε = {spent['epsilon']:.3g} spent "
            f"(target {spent['target_epsilon']:g}), δ = {spent['delta']:g}, clipping "
            f"C = {spent['max_grad_norm']:g}, noise σ = {spent['noise_multiplier']:.3g}, "
            f"{spent['steps']:,} steps ({spent['accountant'].upper()} accountant)."
        )
        changes = spent.get("changes") or []
        if changes:
            text += "<br>" + "<br>".join(f"Note: {html.escape(c)}" for c in changes)
        self.privacy.setText(text)
        self.privacy.setToolTip(
            "DP-SGD (Opacus): each training row's gradient was clipped to C and Gaussian "
            "noise added, so no single row changes the model much; smaller ε is more private"
        )


def _empty_text(run: Run | None) -> str:
    if run is None:
        return "Select a run to see how it did on the test split."
    if run.status == "failed":
        return f"The run failed: {run.error or 'no reason recorded'}."
    if run.status in ("interrupted",):
        return "The run was interrupted before it was evaluated. Resume it to finish it."
    return "The evaluation on the test split appears when the run finishes."


def _summary(run: Run, evaluation: dict[str, Any], model: ModelVersion | None) -> str:
    parts = [f"<b>{fmt.run_title(run)}</b>", evaluation.get("task", run.task),
             f"{evaluation.get('n_test', '?')} test rows"]
    if evaluation.get("parameters"):
        parts.append(f"{evaluation['parameters']:,} parameters")
    if run.best_epoch:
        parts.append(f"best epoch {run.best_epoch} of {run.epochs_done}")
    if model is not None:
        aliases = f" ({', '.join(model.aliases)})" if model.aliases else ""
        parts.append(f"model <b>{model.ref}</b>{aliases}")
    return " · ".join(parts)

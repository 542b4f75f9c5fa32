"""The new-run form: dataset version, architecture and hyperparameters.

Every field starts at :class:`~lepton_desktop.core.training.config.TrainConfig`'s
default, refuses impossible values as they are typed (spin box ranges, validators),
and shows only the rows of the chosen architecture. The core still validates the
whole configuration when the run is queued; its message is shown under the form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from PySide6.QtCore import QRegularExpression, Signal
from PySide6.QtGui import QRegularExpressionValidator, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.core.entities import DatasetVersion
from lepton_desktop.core.training.config import (
    ACTIVATIONS,
    ARCH_KINDS,
    ARCHS,
    CELLS,
    DEVICES,
    DP_BATCH_NORM,
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    TASKS,
    TrainConfig,
)
from lepton_desktop.gui.widgets.fields import (
    FloatValidator,
    check_box,
    combo,
    double_spin,
    float_edit,
    int_spin,
    sizes_edit,
)

DEFAULTS = TrainConfig()
ARCH_NAMES = {"mlp": "MLP (tables)", "cnn": "CNN (images)", "rnn": "RNN (time series)"}
#: Rows shown only for one architecture.
ARCH_ROWS = {
    "mlp": ("hidden", "activation", "batch_norm"),
    "cnn": ("channels", "kernel", "augment"),
    "rnn": ("cell", "rnn_layers", "rnn_hidden", "window", "horizon", "bidirectional"),
}


class FormError(ValueError):
    """A field holds a value the form refuses; the message names the field."""


class TrainingForm(QWidget):
    """Collects a dataset reference and a :class:`TrainConfig`.

    Args:
        parent: the parent widget.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.versions: list[DatasetVersion] = []
        self.dataset = QComboBox(self)
        self.dataset.setToolTip("The dataset version to train on")
        self.dataset.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.dataset.setMinimumContentsLength(12)
        self.dataset.currentIndexChanged.connect(self._on_dataset_changed)
        self.arch = combo(self, ARCHS, DEFAULTS.arch, "The model family", ARCH_NAMES)
        self.arch.currentIndexChanged.connect(self._on_arch_changed)
        self.task = combo(self, ("auto", *TASKS), "auto",
                          "Inferred from the target; override it here")
        self._build_fields()
        self.error = QLabel(self)
        self.error.setObjectName("formError")
        self.error.setWordWrap(True)
        self.error.setProperty("error", True)
        self.error.hide()
        self._build_layout()
        self._on_arch_changed()
        self._on_optimizer_changed()

    def _build_fields(self) -> None:
        d = DEFAULTS
        self.epochs = int_spin(self, 0, 100_000, 0, "Epochs (auto: about 3000 steps, "
                               "5 to 200 epochs, with early stopping)", special="auto")
        self.batch_size = int_spin(self, 1, 65_536, d.batch_size, "Examples per step")
        self.lr = float_edit(self, d.lr, FloatValidator(0.0, 10.0, open_low=True),
                             "Learning rate, in (0, 10]")
        self.optimizer = combo(self, OPTIMIZERS, d.optimizer, "The optimizer")
        self.momentum = double_spin(self, 0.0, 0.999, d.momentum, 0.05, "SGD momentum")
        self.weight_decay = float_edit(self, d.weight_decay, FloatValidator(0.0, 1.0),
                                       "L2 penalty on the weights, in [0, 1]")
        self.loss = combo(self, ("auto", *LOSSES), "auto",
                          "auto: cross-entropy for classes, MSE for numbers")
        self.class_weights = check_box(self, d.class_weights, "by rarity",
                                       "Weight the loss of each class by its rarity")
        self.schedule = combo(self, SCHEDULES, d.schedule, "Learning-rate schedule")
        self.patience = int_spin(self, 0, 10_000, d.patience,
                                 "Early stopping: epochs without improvement (0: off)",
                                 special="off")
        self.grad_clip = double_spin(self, 0.0, 1000.0, d.grad_clip, 0.5,
                                     "Maximum gradient norm (0: off)", special="off")
        self.dropout = double_spin(self, 0.0, 0.95, d.dropout, 0.05, "Dropout probability")
        self.hidden = sizes_edit(self, d.hidden, "MLP layer widths, e.g. 128, 64")
        self.activation = combo(self, ACTIVATIONS, d.activation, "MLP activation")
        self.batch_norm = check_box(self, d.batch_norm, "after each layer",
                                    "Batch normalization after each hidden layer")
        self.channels = sizes_edit(self, d.channels, "CNN channels per block, e.g. 32, 64")
        self.kernel = int_spin(self, 1, 15, d.kernel, "Convolution kernel size")
        self.augment = check_box(self, d.augment, "flips, shifts, rotations",
                                 "Light augmentation of the training images")
        self.cell = combo(self, CELLS, d.cell, "Recurrent cell")
        self.rnn_layers = int_spin(self, 1, 16, d.rnn_layers, "Stacked recurrent layers")
        self.rnn_hidden = int_spin(self, 1, 4096, d.rnn_hidden, "Recurrent hidden size")
        self.window = int_spin(self, 0, 100_000, 0, "Input length in steps (auto: from the "
                               "series' length)", special="auto")
        self.horizon = int_spin(self, 1, 10_000, d.horizon, "Steps ahead to forecast")
        self.bidirectional = check_box(self, d.bidirectional, "read both ways",
                                       "Read each window forwards and backwards")
        self.seed = int_spin(self, 0, 2**31 - 1, d.seed, "Same seed, same CPU run")
        self.device = combo(self, DEVICES, d.device, "auto: CUDA, then MPS, then CPU")
        self.strong_baseline = check_box(self, d.strong_baseline, "fit one beside the network",
                                         "After training, fit a classical model (logistic or "
                                         "ridge regression, gradient boosting, an "
                                         "autoregressive model) on the same split and compare")
        self.model_name = QLineEdit(self)
        self.model_name.setValidator(QRegularExpressionValidator(
            QRegularExpression(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"), self))
        self.model_name.setToolTip("The registered model's name (default: DATASET-ARCH)")
        self.optimizer.currentIndexChanged.connect(self._on_optimizer_changed)
        self._build_privacy_fields()

    def _build_privacy_fields(self) -> None:
        d = DEFAULTS
        self.privacy = QGroupBox("Train with privacy", self)
        self.privacy.setObjectName("privacyGroup")
        self.privacy.setCheckable(True)
        self.privacy.setChecked(False)
        self.privacy.setToolTip(
            "Differentially private training (DP-SGD with Opacus): each row's gradient is "
            "clipped and noise is added, so the model reveals little about any one row. "
            "It costs accuracy and time"
        )
        self.dp_epsilon = float_edit(
            self,
            3.0,
            FloatValidator(0.0, 1000.0, open_low=True),
            "Privacy budget ε, above 0: how much one row may change what the model does "
            "(1: strong, 3: good, 8: weaker privacy, better accuracy)",
        )
        self.dp_delta = QLineEdit(self)
        self.dp_delta.setValidator(FloatValidator(0.0, 1.0, open_low=True))
        self.dp_delta.setPlaceholderText("auto")
        self.dp_delta.setToolTip(
            "δ, the small chance the ε guarantee fails; below 1 / training rows "
            "(auto: the power of ten below 1/n, at most 1e-5)"
        )
        self.dp_max_grad_norm = float_edit(
            self,
            d.dp_max_grad_norm,
            FloatValidator(0.0, 1000.0, open_low=True),
            "Clipping C: each row's gradient is scaled down to at most this L2 norm (it "
            "takes the place of Gradient clip, which a private run does not use)",
        )
        self.dp_batch_norm = combo(
            self,
            DP_BATCH_NORM,
            d.dp_batch_norm,
            "Batch norm mixes the rows of a batch and cannot be private: replace it by "
            "group norm (the run says so), or refuse to train",
            {"replace": "replace by group norm", "refuse": "refuse"},
        )
        form = _form(
            self,
            (
                ("ε (epsilon)", self.dp_epsilon),
                ("δ (delta)", self.dp_delta),
                ("Clipping C", self.dp_max_grad_norm),
                ("Batch norm", self.dp_batch_norm),
            ),
        )
        self.privacy.setLayout(form)

    def _build_layout(self) -> None:
        self.data_form = _form(self, (
            ("Dataset", self.dataset), ("Architecture", self.arch), ("Task", self.task)))
        self.train_form = _form(self, (
            ("Epochs", self.epochs), ("Batch size", self.batch_size), ("Learning rate", self.lr),
            ("Optimizer", self.optimizer), ("Momentum", self.momentum),
            ("Weight decay", self.weight_decay), ("Loss", self.loss),
            ("Class weights", self.class_weights), ("Schedule", self.schedule),
            ("Patience", self.patience), ("Gradient clip", self.grad_clip)))
        self.model_form = _form(self, (
            ("Hidden sizes", self.hidden), ("Activation", self.activation),
            ("Batch norm", self.batch_norm), ("Channels", self.channels),
            ("Kernel", self.kernel), ("Augment", self.augment), ("Cell", self.cell),
            ("Layers", self.rnn_layers), ("Hidden size", self.rnn_hidden),
            ("Window", self.window), ("Horizon", self.horizon),
            ("Bidirectional", self.bidirectional), ("Dropout", self.dropout)))
        self.run_form = _form(self, (
            ("Seed", self.seed), ("Device", self.device), ("Model name", self.model_name),
            ("Strong baseline", self.strong_baseline)))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for title, form in (("Data", self.data_form), ("Training", self.train_form),
                            ("Model", self.model_form), ("Run", self.run_form)):
            box = QGroupBox(title, self)
            box.setLayout(form)
            layout.addWidget(box)
        layout.addWidget(self.privacy)
        layout.addWidget(self.error)
        layout.addStretch(1)

    # -- datasets --------------------------------------------------------------------

    def set_versions(self, versions: Sequence[DatasetVersion]) -> None:
        """Offer these dataset versions (the current choice is kept when still there)."""
        current = self.selected_version()
        self.versions = list(versions)
        self.dataset.blockSignals(True)
        self.dataset.clear()
        for version in self.versions:
            label = f"{version.ref} · {version.kind}, {version.n_rows:,} rows"
            self.dataset.addItem(label, version.ref)
        refs = [v.ref for v in self.versions]
        if current is not None and current.ref in refs:
            self.dataset.setCurrentIndex(refs.index(current.ref))
        self.dataset.blockSignals(False)
        self._on_dataset_changed()

    def select_dataset(self, ref: str) -> None:
        """Choose the version ``ref`` (``name:version``)."""
        index = self.dataset.findData(ref)
        if index >= 0:
            self.dataset.setCurrentIndex(index)

    def selected_version(self) -> DatasetVersion | None:
        """The chosen dataset version."""
        ref = self.dataset.currentData()
        return next((v for v in self.versions if v.ref == ref), None)

    def _on_dataset_changed(self) -> None:
        version = self.selected_version()
        kind = version.kind if version else None
        model = self.arch.model()
        assert isinstance(model, QStandardItemModel)
        for row, arch in enumerate(ARCHS):
            fits = kind is None or kind in ARCH_KINDS[arch]
            item = model.item(row)
            item.setEnabled(fits)
            item.setToolTip("" if fits else f"{arch.upper()} trains on "
                            f"{' or '.join(ARCH_KINDS[arch])} data; {version.ref} is {kind}")
        fitting = next((a for a in ARCHS if kind in ARCH_KINDS[a]), None)
        if fitting is not None:
            self.arch.setCurrentIndex(ARCHS.index(fitting))
        self.model_name.setPlaceholderText(f"{version.name}-{self.arch.currentData()}"
                                           if version else "")
        self.changed.emit()

    def _on_arch_changed(self) -> None:
        arch = self.arch.currentData()
        for name, rows in ARCH_ROWS.items():
            for row in rows:
                self.model_form.setRowVisible(getattr(self, row), name == arch)
        version = self.selected_version()
        if version is not None:
            self.model_name.setPlaceholderText(f"{version.name}-{arch}")
        self.changed.emit()

    def _on_optimizer_changed(self) -> None:
        self.train_form.setRowVisible(self.momentum, self.optimizer.currentData() == "sgd")

    # -- reading ---------------------------------------------------------------------

    def config(self) -> TrainConfig:
        """The configuration the fields describe.

        Raises:
            FormError: a field's text is not acceptable (the field is marked).
        """
        for name, edit in (("learning rate", self.lr), ("weight decay", self.weight_decay),
                           ("hidden sizes", self.hidden), ("channels", self.channels)):
            if edit.isVisibleTo(self) and not edit.hasAcceptableInput():
                edit.setFocus()
                raise FormError(f"{name.capitalize()}: {edit.toolTip().lower()}")
        return dataclasses.replace(DEFAULTS, **self._values(), **self._privacy_values())

    def _privacy_values(self) -> dict[str, object]:
        if not self.privacy.isChecked():
            return {}
        for name, edit in (("ε", self.dp_epsilon), ("clipping C", self.dp_max_grad_norm)):
            if not edit.hasAcceptableInput():
                edit.setFocus()
                raise FormError(f"Privacy {name}: {edit.toolTip()}")
        delta = self.dp_delta.text().strip()
        if delta and not self.dp_delta.hasAcceptableInput():
            self.dp_delta.setFocus()
            raise FormError(f"Privacy δ: {self.dp_delta.toolTip()}")
        return {
            "dp_epsilon": float(self.dp_epsilon.text()),
            "dp_delta": float(delta) if delta else None,
            "dp_max_grad_norm": float(self.dp_max_grad_norm.text()),
            "dp_batch_norm": self.dp_batch_norm.currentData(),
        }

    def _values(self) -> dict[str, object]:
        arch = self.arch.currentData()
        return {
            "arch": arch, "task": _auto(self.task.currentData()),
            "epochs": self.epochs.value() or None, "batch_size": self.batch_size.value(),
            "lr": float(self.lr.text()), "optimizer": self.optimizer.currentData(),
            "momentum": self.momentum.value(), "weight_decay": float(self.weight_decay.text()),
            "loss": _auto(self.loss.currentData()),
            "class_weights": self.class_weights.isChecked(),
            "strong_baseline": self.strong_baseline.isChecked(),
            "schedule": self.schedule.currentData(), "patience": self.patience.value(),
            "grad_clip": self.grad_clip.value(), "dropout": self.dropout.value(),
            "hidden": _sizes(self.hidden.text()) if arch == "mlp" else DEFAULTS.hidden,
            "activation": self.activation.currentData(),
            "batch_norm": self.batch_norm.isChecked(),
            "channels": _sizes(self.channels.text()) if arch == "cnn" else DEFAULTS.channels,
            "kernel": self.kernel.value(), "augment": self.augment.isChecked(),
            "cell": self.cell.currentData(), "rnn_layers": self.rnn_layers.value(),
            "rnn_hidden": self.rnn_hidden.value(), "window": self.window.value() or None,
            "horizon": self.horizon.value(), "bidirectional": self.bidirectional.isChecked(),
            "seed": self.seed.value(), "device": self.device.currentData(),
            "model_name": self.model_name.text().strip() or None,
        }

    def show_error(self, text: str) -> None:
        """Show a refusal under the form (empty: hide it)."""
        self.error.setText(text)
        self.error.setVisible(bool(text))


def _form(parent: QWidget, rows: Sequence[tuple[str, QWidget]]) -> QFormLayout:
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setContentsMargins(6, 4, 6, 4)
    form.setVerticalSpacing(4)
    for label, widget in rows:
        form.addRow(label, widget)
    return form


def _auto(value: str) -> str | None:
    return None if value == "auto" else value


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.replace(" ", "").split(",") if part)

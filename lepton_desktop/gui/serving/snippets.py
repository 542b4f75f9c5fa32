"""Example client code for the running server: curl, Python httpx and tritonclient.

The snippets are generated for the address shown, the model picked and its raw inputs,
with a real record (the first row of the model's dataset), so a pasted snippet gets
an answer as it is. With a token they send ``Authorization: Bearer``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lepton_desktop.gui.serving.ops import SnippetSample
from lepton_desktop.gui.serving.server_panel import copy_text

KINDS = ("curl", "Python (httpx)", "tritonclient")
#: V2 datatypes of raw input kinds (text and categories travel as BYTES).
_V2_TYPES = {"numeric": "FP32", "series": "FP32"}


IMAGE_FILE = "picture.png"


def _is_image(sample: SnippetSample) -> bool:
    return bool(sample.inputs) and sample.inputs[0]["dtype"] == "image"


def curl_snippet(url: str, sample: SnippetSample, token: str | None) -> str:
    """A curl call of ``POST /predict`` with one record (an image model reads a file)."""
    auth = f"  -H 'Authorization: Bearer {token}' \\\n" if token else ""
    head = f"curl -s {url}/predict \\\n  -H 'Content-Type: application/json' \\\n{auth}"
    if _is_image(sample):
        # The file's base64 goes in through $(...), which double quotes leave running
        # (and whose inside they do not escape).
        body = _double_quoted(f'{{"model": "{sample.model}", "records": [{{"image": "@"}}]}}')
        image = f"$(base64 < {IMAGE_FILE} | tr -d '\\n')"
        return f'{head}  -d "{body.replace("@", image)}"\n'
    body = (
        f'{{"model": {json.dumps(sample.model)},\n'
        f'       "records": [{json.dumps(sample.record)}]}}'
    )
    return f"{head}  -d '{_shell_quoted(body)}'\n"


def httpx_snippet(url: str, sample: SnippetSample, token: str | None) -> str:
    """Python with httpx: one client (reused), ``POST /predict``, the answer printed."""
    headers = f', headers={{"Authorization": "Bearer {token}"}}' if token else ""
    if _is_image(sample):
        imports = "import base64\nfrom pathlib import Path\n\nimport httpx\n\n"
        record = f'{{"image": base64.b64encode(Path("{IMAGE_FILE}").read_bytes()).decode()}}'
    else:
        imports = "import httpx\n\n"
        record = _pythonic(json.dumps(sample.record, indent=4))
    return (
        f"{imports}"
        f'client = httpx.Client(base_url="{url}"{headers})\n'
        f"record = {record}\n"
        f'response = client.post("/predict", json={{"model": "{sample.model}", '
        '"records": [record]})\n'
        "response.raise_for_status()\n"
        'print(response.json()["predictions"][0])\n'
    )


def triton_snippet(url: str, sample: SnippetSample, token: str | None) -> str:
    """tritonclient over HTTP (Open Inference Protocol V2), one input per raw feature."""
    lines = ["import numpy as np", "import tritonclient.http as httpclient"]
    if _is_image(sample):
        lines.insert(0, "from pathlib import Path\n")
    lines += ["", f'client = httpclient.InferenceServerClient("{urlsplit(url).netloc}")',
              "inputs = []"]  # fmt: skip
    for name, value in sample.record.items():
        dtype = _v2_type(sample, name)
        shape, array = _v2_array(sample, value, dtype)
        lines += [
            f'tensor = httpclient.InferInput("{name}", {shape}, "{dtype}")',
            f"tensor.set_data_from_numpy({array})",
            "inputs.append(tensor)",
        ]
    headers = f', headers={{"Authorization": "Bearer {token}"}}' if token else ""
    lines.append(f'result = client.infer("{sample.model}", inputs{headers})')
    lines += [f'print("{name}", result.as_numpy("{name}"))' for name in sample.outputs]
    return "\n".join(lines) + "\n"


SNIPPETS = {"curl": curl_snippet, "Python (httpx)": httpx_snippet, "tritonclient": triton_snippet}


def snippet(kind: str, url: str, sample: SnippetSample, token: str | None) -> str:
    """The ``kind`` snippet (one of :data:`KINDS`)."""
    return SNIPPETS[kind](url.rstrip("/"), sample, token)


def _v2_type(sample: SnippetSample, name: str) -> str:
    dtype = next((i["dtype"] for i in sample.inputs if i["name"] == name), "numeric")
    return _V2_TYPES.get(dtype, "BYTES")


def _v2_array(sample: SnippetSample, value: Any, dtype: str) -> tuple[list[int], str]:
    """The tensor's shape and the numpy expression of its one row."""
    if _is_image(sample):
        return [1], f'np.array([Path("{IMAGE_FILE}").read_bytes()], dtype=object)'
    if dtype == "BYTES":
        return [1], f"np.array([{json.dumps(str(value))}], dtype=object)"
    if isinstance(value, list):
        return [1, len(value)], f"np.array([{json.dumps(value)}], dtype=np.float32)"
    return [1], f"np.array([{json.dumps(value)}], dtype=np.float32)"


def _double_quoted(text: str) -> str:
    """For a shell's double quotes (``$(...)`` still runs)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _shell_quoted(text: str) -> str:
    return text.replace("'", "'\\''")


def _pythonic(text: str) -> str:
    """JSON literals as Python ones (null, true, false)."""
    return (
        text.replace(": null", ": None").replace(": true", ": True").replace(": false", ": False")
    )


class SnippetView(QWidget):
    """A snippet kind, a model, the read-only code and a Copy button.

    Signals:
        modelChanged(str): another model was picked (its sample is needed).
    """

    modelChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = QComboBox(self)
        self.kind.addItems(KINDS)
        self.model = QComboBox(self)
        self.model.setMinimumContentsLength(12)
        self.copy = QPushButton("Copy", self)
        self.copy.setToolTip("Copy the snippet")
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText("Examples appear here once there is a model to serve.")
        row = QHBoxLayout()
        row.addWidget(QLabel("Example", self))
        row.addWidget(self.kind)
        row.addWidget(QLabel("for", self))
        row.addWidget(self.model, 1)
        row.addWidget(self.copy)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.text, 1)
        self.url = ""
        self.token: str | None = None
        self.sample: SnippetSample | None = None
        self.kind.currentTextChanged.connect(lambda _k: self._render())
        self.model.currentTextChanged.connect(self._on_model_changed)
        self.copy.clicked.connect(lambda: copy_text(self.text.toPlainText()))

    def set_models(self, names: list[str]) -> None:
        """The models to choose from (the current one is kept when still there)."""
        current = self.model.currentText()
        if names == [self.model.itemText(i) for i in range(self.model.count())]:
            return
        self.model.blockSignals(True)
        self.model.clear()
        self.model.addItems(names)
        self.model.blockSignals(False)
        if current in names:
            self.model.setCurrentText(current)
        self._on_model_changed(self.model.currentText())

    def set_target(self, url: str, token: str | None) -> None:
        """The address and token the snippets use."""
        if (url, token) != (self.url, self.token):
            self.url, self.token = url, token
            self._render()

    def set_sample(self, sample: SnippetSample) -> None:
        """What the snippets send (for the current model only)."""
        if sample.model == self.model.currentText():
            self.sample = sample
            self._render()

    def _on_model_changed(self, name: str) -> None:
        self.sample = None
        self._render()
        if name:
            self.modelChanged.emit(name)

    def _render(self) -> None:
        if self.sample is None or not self.url:
            self.text.clear()
            return
        self.text.setPlainText(snippet(self.kind.currentText(), self.url, self.sample, self.token))

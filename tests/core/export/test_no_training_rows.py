"""Nothing private leaves by accident: exported files carry no training row.

A model is trained on a table with personal data (e-mail addresses, people's names as
a repeating, one-hot-encodable column), free text and numbers of many digits, then
exported in every format. Every exported file (each entry of a bundle unpacked) is
scanned for every training value as it would be written: text as UTF-8, numbers as
text (``repr``, ``%g``) and as float32 / float64 bytes. The only numbers allowed
through are the fitted statistics the pipeline documents (fill values, scaling
parameters), which serving needs and which are no row.
"""

from __future__ import annotations

import json
import random
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest

from lepton_desktop.core.datasets.prep import PrepOptions
from lepton_desktop.core.project import Project
from tests.helpers import write_csv

pytestmark = pytest.mark.slow

NAMES = ["Amelia Hartley", "Bruno Castellanos", "Chiara Vanterpool", "Dmitri Okonkwo"]
FORMATS = {"bundle": "m.zip", "onnx": "m.onnx", "torchscript": "m.pt", "triton": "repo"}


def _table(n: int = 120) -> tuple[list[str], list[list[Any]]]:
    rng = random.Random(7)
    rows = []
    for i in range(n):
        rows.append([
            f"client{i:03d}.{rng.randrange(10**6)}@inbox.example",
            NAMES[i % len(NAMES)],
            round(rng.uniform(1000, 9000), 4),
            rng.randrange(100_000, 999_999),
            f"visited on day {rng.randrange(10**5)} asking about parcel {rng.randrange(10**7)}",
            "yes" if rng.random() < 0.5 else "no",
        ])  # fmt: skip
    return ["email", "customer_name", "balance", "account_age_s", "note", "churned"], rows


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[Any]], Any]:
    folder = tmp_path_factory.mktemp("no-rows")
    header, rows = _table()
    source = write_csv(folder / "people.csv", header, rows)
    with Project.create(folder / "p.lepton") as project:
        version = project.import_dataset(source, "people", target="churned")
        assert {"email", "customer_name"} <= {c.name for c in version.columns
                                              if "pii" in c.stats}  # fmt: skip
        project.prep("people", PrepOptions(split=(0.7, 0.15, 0.15), seed=1, fill="median",
                                           scale="minmax"))  # fmt: skip
        result = project.train("people", arch="mlp", epochs=1, model_name="people")
        model = project.models.get(result.model.ref)
        (folder / "out").mkdir()
        for fmt, name in FORMATS.items():
            project.export(result.model.ref, fmt, folder / "out" / name)
    return folder / "out", rows, model


def _exported_bytes(folder: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        files[str(path.relative_to(folder))] = data
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:  # scanned unpacked, not only deflated
                for entry in archive.namelist():
                    files[f"{path.name}!{entry}"] = archive.read(entry)
                    if entry.endswith(".pt") and zipfile.is_zipfile(archive.open(entry)):
                        with zipfile.ZipFile(archive.open(entry)) as inner:
                            for part in inner.namelist():
                                files[f"{entry}!{part}"] = inner.read(part)
    return files


def _renderings(value: Any) -> list[bytes]:
    if isinstance(value, str):
        return [value.encode()]
    number = float(value)
    texts = {repr(value), repr(number), f"{number:g}", f"{number:.6g}", str(value)}
    return [t.encode() for t in texts] + [struct.pack("<f", number), struct.pack("<d", number)]


def _documented_statistics(model: Any) -> set[float]:
    # Numbers the pipeline stores on purpose (fill values, min/max of a scale): fitted
    # over the training split, described in the model card, needed to serve.
    found: set[float] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, int | float) and not isinstance(node, bool):
            found.add(float(node))

    walk([s for s in model.pipeline if s.get("step") in ("fill", "scale")])
    return found


def test_no_exported_file_holds_a_training_value(
    exported: tuple[Path, list[list[Any]], Any],
) -> None:
    folder, rows, model = exported
    files = _exported_bytes(folder)
    assert any(name.endswith("model.onnx") for name in files)
    allowed = _documented_statistics(model)
    leaks = []
    for row in rows:
        for column, value in enumerate(row[:5]):
            if not isinstance(value, str) and float(value) in allowed:
                continue
            for needle in _renderings(value):
                leaks += [(name, column, value) for name, data in files.items() if needle in data]
    assert leaks == []
    # The personal columns are never model inputs: not even their names' categories.
    pipeline = json.dumps(model.pipeline)
    assert "Amelia" not in pipeline and "inbox.example" not in pipeline

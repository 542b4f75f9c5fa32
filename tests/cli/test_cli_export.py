"""``export`` on the command line: files written and checked, mistakes refused cleanly."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from lepton_desktop.core.inference.bundle import read_bundle
from tests.cli.test_cli import assert_user_error, cli
from tests.export_factory import export_project  # noqa: F401
from tests.helpers import snapshot

pytestmark = pytest.mark.slow


@pytest.fixture
def project(export_project: Path, tmp_path: Path) -> Path:  # noqa: F811
    path = tmp_path / "p.lepton"
    shutil.copy(export_project, path)
    return path


def test_export_onnx_json_and_bundle_text(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "iris.onnx"
    result = json.loads(
        cli("export", project, "iris@champion", "--format", "onnx", "--out", out, "--json").stdout
    )
    assert result["path"] == str(out) and result["model"] == "iris:1"
    assert result["format"] == "onnx" and result["max_abs_diff"] < 1e-4
    assert result["checked_on"].endswith("test rows of iris:1")
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits, probabilities = session.run(None, {"input": np.zeros((3, 4), np.float32)})
    assert logits.shape == probabilities.shape == (3, 3)

    bundle = tmp_path / "nile.zip"
    text = cli("export", project, "nile:1", "--format", "bundle", "--out", bundle).stdout
    assert f"exported nile:1 as bundle: {bundle}" in text and "max abs diff" in text
    (parts,) = read_bundle(bundle)
    assert parts.ref == "nile:1"


def test_mistakes_are_one_line_and_write_nothing(project: Path, tmp_path: Path) -> None:
    before = snapshot(project)
    taken = tmp_path / "taken.pt"
    taken.write_bytes(b"keep")
    cases = [
        (["nope", "--format", "onnx", "--out", tmp_path / "a.onnx"], "no model 'nope'"),
        (["iris", "--format", "keras", "--out", tmp_path / "a.h5"], "invalid choice: 'keras'"),
        (["iris", "--format", "torchscript", "--out", taken], "taken.pt already exists"),
        (["iris", "--format", "onnx", "--out", tmp_path / "x" / "a.onnx"], "no such directory"),
        (["iris", "--format", "bundle"], "the following arguments are required: --out"),
    ]
    for args, message in cases:
        assert_user_error(cli("export", project, *args, check=False), message)
    assert taken.read_bytes() == b"keep"
    assert {n for n in os.listdir(tmp_path) if not n.startswith("p.lepton")} == {"taken.pt"}
    assert snapshot(project) == before

"""``explain`` on the command line: text, JSON and PNG; mistakes refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.cli.test_cli import assert_user_error, cli
from tests.conftest import SAMPLE_DATA
from tests.explain_factory import explain_project  # noqa: F401 (a fixture)
from tests.helpers import snapshot

pytestmark = pytest.mark.slow


@pytest.fixture
def project(explain_project: Path, tmp_path: Path) -> Path:  # noqa: F811
    path = tmp_path / "p.lepton"
    shutil.copy(explain_project, path)
    return path


def test_explain_a_record_as_json_and_an_image_as_png(project: Path, tmp_path: Path) -> None:
    record = json.dumps({"price": 7.5, "colour": "red"})
    result = json.loads(cli("explain", project, "shop", "--record", record, "--json").stdout)
    assert result["method"] == "ig" and result["baseline"] == "the training mean of every column"
    assert [f["column"] for f in result["features"]] == ["colour", "price"]
    assert result["total"] == pytest.approx(result["output"] - result["baseline_output"],
                                            rel=0.01)  # fmt: skip

    out = tmp_path / "heat.png"
    image = SAMPLE_DATA / "digits" / "3" / "0013.png"
    text = cli("explain", project, "digits", "--image", image, "--method", "gradcam",
               "--out", out).stdout  # fmt: skip
    assert "Grad-CAM" in text and "heat map 8x8" in text
    with Image.open(out) as drawn:
        assert drawn.format == "PNG" and drawn.width > 400


def test_explain_a_test_window_as_text(project: Path) -> None:
    lines = cli("explain", project, "nile", "--row", "0").stdout.splitlines()
    assert lines[1].startswith("method: Integrated Gradients")
    assert "last value" in lines[2]
    assert len([line for line in lines if line.startswith("  t")]) == 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["shop", "--record", '{"price": 3}'], "missing feature 'colour'"),
        (["shop", "--record", "[1, 2]"], "--record must be one JSON object"),
        (["shop", "--row", "0", "--method", "lime"], "unknown explanation method 'lime'"),
        (["digits", "--image", "BIG"], "the image is 16x16 pixels"),
        (["shop", "--request", "nope"], "no logged request with id 'nope'"),
        (["shop", "--row", "0", "--out", "TAKEN"], "exists; choose another name"),
    ],
)
def test_mistakes_are_one_line_and_write_nothing(
    project: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    big, taken = tmp_path / "big.png", tmp_path / "taken.png"
    Image.new("L", (16, 16)).save(big)
    taken.write_bytes(b"mine")
    args = [{"BIG": str(big), "TAKEN": str(taken)}.get(a, a) for a in args]
    before = snapshot(project)
    assert_user_error(cli("explain", project, *args, check=False), message)
    assert snapshot(project) == before and taken.read_bytes() == b"mine"

"""``monitor export``: the report as JSON, or as one HTML page with nothing from the network."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.monitoring.alerts import RuleSpec
from lepton_desktop.core.project import Project
from tests.cli.test_cli import assert_user_error, cli
from tests.helpers import snapshot
from tests.monitoring_factory import log_traffic


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    path = tmp_path / "logged.lepton"
    Project.create(path).close()
    log_traffic(path, 800, start=time.time() - 1800, seconds=1700, seed=5)
    with Project.open(path) as project:
        project.add_alert(RuleSpec("errors", "error_rate", ">", 0.001, window="1h",
                                   webhook="http://127.0.0.1:9/hook"))  # fmt: skip
        project.check_alerts()
    return path


def test_json_is_the_monitor_report_with_the_alerts(logged: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    with Project.open(logged) as project:
        written = project.export_monitoring(out, "1h", model="iris")
        shown = project.monitor("1h", model="iris")
    data = json.loads(out.read_text(encoding="utf-8"))
    assert written == {"path": str(out), "format": "json", "bytes": out.stat().st_size,
                       "models": ["iris"]}  # fmt: skip
    for key in ("requests", "errors", "latency_ms", "quality", "estimated_quality", "drift",
                "anomalies"):  # fmt: skip
        assert data[key] == json.loads(json.dumps(shown[key])), key
    (rule,) = data["alerts"]["rules"]
    assert rule["name"] == "errors" and rule["webhook"] == "(sealed)"  # never in clear
    assert [a["rule"] for a in data["alerts"]["raised"]] == ["errors"]


def test_html_is_self_contained_with_tables_and_charts(logged: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = cli("monitor", "export", logged, out, "--since", "1h", "--model", "iris")
    assert result.stdout.startswith(f"wrote {out} (")
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page and "@import" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched
    charts = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(charts) == 3  # requests, latency, live accuracy
    for chart in charts:
        ElementTree.fromstring(chart)  # each is well-formed SVG
    with Project.open(logged) as project:
        shown = project.monitor("1h", model="iris")
    assert f"<td>requests</td><td>{shown['requests']:,}</td>" in page
    assert f"{shown['quality']['labelled']:,} labelled rows in the window" in page
    assert "errors" in page and "Confusion matrix" in page


@pytest.mark.parametrize(
    ("name", "message"),
    [("report.txt", "give a file ending in .json or .html"),
     ("missing/report.json", "no such folder")],
)  # fmt: skip
def test_bad_targets_are_refused_and_nothing_is_written(
    logged: Path, tmp_path: Path, name: str, message: str
) -> None:
    before = snapshot(logged)
    with Project.open(logged) as project, pytest.raises(InvalidOptionError, match=message):
        project.export_monitoring(tmp_path / name)
    assert_user_error(cli("monitor", "export", logged, tmp_path / name, check=False), message)
    assert not (tmp_path / name).exists()
    assert snapshot(logged) == before

"""``lepton-desktop requests``: filters, export, replay on another version, retention and
deleting deployments, on the log of a real server that answered real clients."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from lepton_desktop.core.project import Project
from tests.cli.test_cli import assert_user_error, cli
from tests.helpers import snapshot
from tests.serving_factory import copy_project, rows, running, serving_project  # noqa: F401

pytestmark = pytest.mark.slow

ANSWERED = 40


@pytest.fixture(scope="module")
def served(serving_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """iris:1 answered 40 one- or two-row requests (every third labelled), and one 400."""
    project = copy_project(serving_project, tmp_path_factory.mktemp("request-log-cli"))
    iris = rows()
    with running(project) as runner, httpx.Client(base_url=runner.url, timeout=10) as client:
        for i in range(ANSWERED):
            records = iris[i * 3 : i * 3 + 1 + i % 2]
            answer = client.post("/predict", json={"model": "iris:1", "records": records})
            assert answer.status_code == 200
            if i % 3 == 0:
                client.post("/feedback", json={"request_id": answer.headers["x-request-id"],
                                               "label": "virginica"})  # fmt: skip
        assert (
            client.post("/predict", json={"model": "iris:1", "records": [{}]}).status_code == 400
        )
    return project


def test_filters_and_pages(served: Path) -> None:
    everything = json.loads(cli("requests", served, "--model", "iris:1", "--limit", "100",
                                "--json").stdout)  # fmt: skip
    assert everything["count"] == ANSWERED + 1 and everything["more"] is False
    errors = json.loads(cli("requests", served, "--status", "4xx", "--json").stdout)
    assert [r["status"] for r in errors["requests"]] == [400]
    labelled = json.loads(cli("requests", served, "--has-feedback", "--since", "1h",
                              "--limit", "100", "--json").stdout)  # fmt: skip
    assert labelled["count"] == len(range(0, ANSWERED, 3))
    first = json.loads(cli("requests", served, "--limit", "10", "--json").stdout)
    assert first["more"] is True and first["retention"] == "keep all"
    second = json.loads(cli("requests", served, "--limit", "10", "--before",
                            str(first["next_before"]), "--json").stdout)  # fmt: skip
    ids = [r["id"] for r in first["requests"] + second["requests"]]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 20  # no row twice
    assert max(r["id"] for r in second["requests"]) < min(r["id"] for r in first["requests"])


def test_replay_on_another_version_diffs_the_answers(served: Path) -> None:
    result = json.loads(cli("requests", served, "--model", "iris:1", "--replay-on", "iris:2",
                            "--json").stdout)  # fmt: skip
    with Project.open(served) as project:
        logged = project.request_log.page(project_filter(model="iris", version=1, status=200))
        records = [record for r in logged[::-1] for record in r.inputs]
        before = [answer["label"] for r in logged[::-1] for answer in r.outputs]
        after = [answer["label"] for answer in project.predict("iris:2", records)]
    changed = sum(a != b for a, b in zip(before, after, strict=True))
    assert result["target"] == "iris:2" and result["requests"] == ANSWERED
    assert result["rows"] == len(records) == 60
    assert result["changed"] == changed and changed > 0  # the two versions disagree on some
    assert result["agreement"] == pytest.approx(1 - changed / len(records))
    truths = {(c["request_id"], c["row"]): c for c in result["changes"]}
    assert len(truths) == changed
    assert result["labelled"] == len(range(0, ANSWERED, 3))
    assert set(result["quality"]) == {"metric", "before", "after"}
    text = cli("requests", served, "--model", "iris:1", "--replay-on", "iris:2").stdout
    assert f"replayed {ANSWERED} requests (60 rows) on iris:2" in text
    assert f"{changed} rows changed" in text


def project_filter(**fields: object) -> object:
    from lepton_desktop.core.monitoring.requests import RequestFilter

    return RequestFilter(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_export_from_the_command_line(served: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"log.{suffix}"
    result = json.loads(cli("requests", served, "--has-feedback", "--export", out,
                            "--json").stdout)  # fmt: skip
    assert result["rows"] == len(range(0, ANSWERED, 3)) and result["path"] == str(out)
    if suffix == "csv":
        with open(out, newline="") as handle:
            read = list(csv.DictReader(handle))
    else:
        read = pq.read_table(out).to_pylist()
    assert len(read) == result["rows"]
    assert all(json.loads(row["labels"]) == {"0": "virginica"} for row in read)


def test_retention_from_the_command_line(served: Path, tmp_path: Path) -> None:
    project = copy_project(served, tmp_path)
    out = json.loads(cli("requests", project, "--retention", "30d", "--json").stdout)
    assert out == {"retention": "30d", "days": 30.0, "rows": None, "deleted": 0}
    listing = json.loads(cli("requests", project, "--json").stdout)
    assert listing["retention"] == "30d"


def test_deleting_a_deployment_asks_what_becomes_of_its_log(served: Path, tmp_path: Path) -> None:
    project = copy_project(served, tmp_path)
    before = snapshot(project)
    assert_user_error(
        cli("requests", project, "--delete-deployment", "1", check=False),
        "say what becomes of its requests: --keep-log or --delete-log",
    )
    assert snapshot(project) == before
    kept = json.loads(cli("requests", project, "--delete-deployment", "1", "--keep-log",
                          "--json").stdout)  # fmt: skip
    assert kept == {"deployment": 1, "kept_log": True, "requests_deleted": 0}
    with Project.open(project) as opened:
        assert opened.serving.request_count() == before["counts"]["request_log"]
        assert opened.serving.list() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--replay-on", "iris:9"], "iris:9"),
        (["--replay-on", "nope:1"], "nope"),
        (["--export", "{tmp}"], "is a folder"),
        (["--export", "{tmp}/log.xlsx"], "must end .csv or .parquet"),
        (["--retention", "1h"], "--retention '1h'"),
        (["--status", "600"], "--status '600'"),
        (["--since", "last tuesday"], "--since 'last tuesday'"),
        (["--model", "iris:x"], "--model 'iris:x'"),
        (["--keep-log"], "go with --delete-deployment N"),
        (["--delete-deployment", "7", "--delete-log"], "no deployment 7"),
        (["--search", "setosa", "--export", "{tmp}/x.csv"], "--search lists requests"),
    ],
)
def test_bad_input_is_one_error_line_and_changes_nothing(
    served: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    before = snapshot(served)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = cli("requests", served, *args, check=False)
    assert_user_error(proc, message)
    assert snapshot(served) == before
    assert not list(tmp_path.iterdir())


def test_retrain_with_feedback_adds_the_labelled_rows_and_keeps_the_held_out_ones(
    served: Path, tmp_path: Path
) -> None:
    from lepton_desktop.core.datasets.frame import load_frame
    from lepton_desktop.core.progress import NullReporter
    from lepton_desktop.core.training.config import TrainConfig
    from lepton_desktop.core.training.data import split_as_trained

    project = copy_project(served, tmp_path)
    result = json.loads(cli("monitor", "retrain", project, "iris", "--json").stdout)
    labelled = len(range(0, ANSWERED, 3))
    assert result["champion"] == "iris:2" and result["candidate"] == "iris:3"
    assert result["parent"] == "iris:1" and result["dataset"] == "iris:2"
    assert result["feedback_rows"] == result["requests"] == labelled
    assert set(result["metrics"]["candidate"]) >= {"accuracy", "f1"}
    with Project.open(project) as opened:
        labelled_ids = sorted(r.request_id for r in opened.request_log.page(
            project_filter(has_feedback=True), None, 1000))  # fmt: skip
        grown, parent = opened.dataset("iris:2"), opened.dataset("iris:1")
        assert grown.operations[-1] == {
            "op": "add_feedback",
            "rows": labelled,
            "model": "iris:2",
            "requests": labelled_ids,
        }
        assert grown.parent_id == parent.id and grown.n_rows == parent.n_rows + labelled
        champion = opened.models.get("iris:2")
        config = TrainConfig.from_dict(opened.runs.get(champion.run_id).config)
        before = split_as_trained(load_frame(opened.conn, parent, NullReporter()),
                                  "species", config, True)  # fmt: skip
        after = load_frame(opened.conn, grown, NullReporter())
        for code in (1, 2):  # validation and test: the champion's rows, as they were
            assert (after.split == code).sum() == (before.split == code).sum()
            for name in before.columns:
                assert list(after.columns[name][after.split == code]) == list(
                    before.columns[name][before.split == code])  # fmt: skip
        assert (after.split == 0).sum() == (before.split == 0).sum() + labelled
        candidate = opened.models.get("iris:3")
        assert candidate.dataset_version_id == grown.id


def test_retrain_without_labels_is_refused_and_changes_nothing(served: Path) -> None:
    before = snapshot(served)
    assert_user_error(cli("monitor", "retrain", served, "diabetes", check=False),
                      "no labelled served rows of diabetes")  # fmt: skip
    assert_user_error(cli("monitor", "retrain", served, "nope", check=False), "nope")
    assert snapshot(served) == before

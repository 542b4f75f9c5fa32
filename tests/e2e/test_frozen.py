"""The frozen app (PyInstaller one-folder build) runs the CLI and its worker entry.

The GUI starts workers through its own executable (``<exe> worker KIND --project P
--job N``, see ``lepton_desktop.core.system.launch.cli_argv``), so a bundle that misses a module
or a data file fails only there. These tests run ``dist/lepton-desktop/lepton-desktop``
and check the results in the project file through :class:`Project` from the source
tree. They are skipped when no build exists: run ``packaging/build.sh`` first.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lepton_desktop.core.project import Project
from tests.helpers import write_csv

REPO = Path(__file__).resolve().parents[2]
FROZEN = REPO / "dist" / "lepton-desktop" / "lepton-desktop"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not FROZEN.is_file(),
        reason=f"no frozen build at {FROZEN.relative_to(REPO)}; run packaging/build.sh",
    ),
]


def frozen(*args: object, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the frozen executable with no hint of the source tree (no PYTHONPATH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run(
        [str(FROZEN), *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a run that must have succeeded."""
    assert proc.returncode == 0, f"rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def table(tmp_path: Path) -> Path:
    rows = [[round(i * 0.37, 2), ["red", "green", "blue"][i % 3], ["yes", "no"][i % 2]]
            for i in range(40)]
    rows[5][0] = None  # an empty cell, as real files have
    return write_csv(tmp_path / "small.csv", ["x", "colour", "label"], rows)


def test_version_matches_the_source(tmp_path: Path) -> None:
    from lepton_desktop import __version__

    assert ok(frozen("--version", cwd=tmp_path)).strip() == f"lepton-desktop {__version__}"


def test_new_import_info(tmp_path: Path, table: Path) -> None:
    project = tmp_path / "p.lepton"
    ok(frozen("new", project, cwd=tmp_path))
    ok(frozen("import", project, table, "--name", "t", "--target", "label", cwd=tmp_path))
    info = json.loads(ok(frozen("info", project, "--json", cwd=tmp_path)))
    (dataset,) = info["datasets"]
    assert (dataset["name"], dataset["rows"], dataset["columns"], dataset["target"]) == (
        "t", 40, 3, "label"
    )
    with Project.open(project) as p:
        version = p.dataset("t")
        assert p.rows(version, 0, 2) == [(0.0, "red", "yes", None), (0.37, "green", "no", None)]
        assert version.column("x").stats["missing"] == 1
        assert p.integrity_ok()


def test_user_error_is_one_line(tmp_path: Path) -> None:
    proc = frozen("info", tmp_path / "missing.lepton", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


def test_worker_runs_a_queued_import_job(tmp_path: Path, table: Path) -> None:
    project = tmp_path / "p.lepton"
    with Project.create(project) as p:
        job_id = p.create_job("import", {"source": str(table), "name": "t", "target": "label"})
    ok(frozen("worker", "import", "--project", project, "--job", job_id, cwd=tmp_path))
    with Project.open(project) as p:
        job = p.job(job_id)
        assert job.status == "succeeded", job.error
        assert job.result is not None and job.result["rows"] == 40
        assert job.pid is not None and job.pid != os.getpid()  # it ran in the frozen process
        assert p.dataset("t").n_rows == 40
        assert p.integrity_ok()


def test_worker_records_a_failed_job(tmp_path: Path) -> None:
    project = tmp_path / "p.lepton"
    with Project.create(project) as p:
        job_id = p.create_job("import", {"source": str(tmp_path / "nope.csv"), "name": "t"})
    proc = frozen("worker", "import", "--project", project, "--job", job_id, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    with Project.open(project) as p:
        job = p.job(job_id)
        assert job.status == "failed" and "nope.csv" in (job.error or "")
        assert p.datasets() == []
        assert p.integrity_ok()


def test_demo_reads_the_bundled_sample_data(tmp_path: Path) -> None:
    # resources/ must be inside the bundle, where paths.resources_dir() looks.
    project = tmp_path / "demo.lepton"
    ok(frozen("demo", project, cwd=tmp_path, timeout=300))
    with Project.open(project) as p:
        assert "iris" in {v.name for v in p.datasets()}


def test_train_runs_torch_in_the_bundle(tmp_path: Path) -> None:
    project = tmp_path / "p.lepton"
    iris = REPO / "resources" / "sample_data" / "iris.csv"
    ok(frozen("new", project, cwd=tmp_path))
    ok(frozen("import", project, iris, "--name", "iris", "--target", "species", cwd=tmp_path))
    out = ok(frozen("train", project, "iris", "--arch", "mlp", "--epochs", "2", "--json",
                    cwd=tmp_path, timeout=300))
    result = json.loads(out)
    assert set(result["metrics"]) >= {"accuracy", "precision", "recall", "f1"}
    assert result["model"].endswith(":1")
    # The strong baseline fits in its own process, the bundle's executable started as
    # `worker strong-baseline` (a frozen app has no `python -m`): it must have answered.
    strong = result["strong_baseline"]
    assert strong["name"] and set(strong["metrics"]) >= {"accuracy", "f1"}, strong


def test_private_training_runs_opacus_in_the_bundle(tmp_path: Path) -> None:
    """Opacus imports parts of torch the spec would otherwise leave out (fsdp, sympy)."""
    project = tmp_path / "p.lepton"
    iris = REPO / "resources" / "sample_data" / "iris.csv"
    ok(frozen("new", project, cwd=tmp_path))
    ok(frozen("import", project, iris, "--name", "iris", "--target", "species", cwd=tmp_path))
    out = ok(frozen("train", project, "iris", "--arch", "mlp", "--epochs", "2",
                    "--dp-epsilon", "8", "--json", cwd=tmp_path, timeout=300))  # fmt: skip
    privacy = json.loads(out)["privacy"]
    assert 0 < privacy["epsilon"] <= 8


def test_gui_starts_offscreen(tmp_path: Path) -> None:
    # Qt's plugins (platforms, image formats) must be bundled for the window to exist.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    with subprocess.Popen(
        [str(FROZEN)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        deadline = time.monotonic() + 8
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        still_running = proc.poll() is None
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert still_running, f"the GUI exited with {proc.returncode}:\n{err}"


def test_export_onnx_torchscript_and_bundle_in_the_bundle(tmp_path: Path) -> None:
    # torch.onnx, onnx's checker and onnxruntime must all be in the frozen app.
    from lepton_desktop.core.inference.bundle import read_bundle

    project = tmp_path / "p.lepton"
    iris = REPO / "resources" / "sample_data" / "iris.csv"
    with Project.create(project) as p:
        p.import_dataset(iris, "iris", target="species")
        p.train("iris", arch="mlp", epochs=2, model_name="iris")
    for fmt, name in (("onnx", "iris.onnx"), ("torchscript", "iris.pt"), ("bundle", "iris.zip")):
        args = ("export", project, "iris", "--format", fmt, "--out", tmp_path / name, "--json")
        result = json.loads(ok(frozen(*args, cwd=tmp_path, timeout=300)))
        assert result["max_abs_diff"] < 1e-4 and "test rows" in result["checked_on"], result
    (parts,) = read_bundle(tmp_path / "iris.zip")
    assert parts.ref == "iris:1"


def test_serve_answers_from_the_bundle(tmp_path: Path) -> None:
    # uvicorn's protocol and loop modules are imported by name at run time.
    import httpx

    project = tmp_path / "p.lepton"
    iris = REPO / "resources" / "sample_data" / "iris.csv"
    with Project.create(project) as p:
        p.import_dataset(iris, "iris", target="species")
        p.train("iris", arch="mlp", epochs=2, model_name="iris")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    with subprocess.Popen(
        [str(FROZEN), "serve", str(project), "--port", "0"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the server listens
        try:
            match = re.search(r"127\.0\.0\.1:\d+", line)
            assert match, f"no address printed: {line!r}"
            url = match.group(0)
            record = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4,
                      "petal_width": 0.2}
            answer = httpx.post(f"http://{url}/predict", json=[record], timeout=30)
            assert answer.status_code == 200, answer.text
            label = answer.json()["predictions"][0]["label"]
            assert label in ("setosa", "versicolor", "virginica"), answer.text
            assert httpx.get(f"http://{url}/v2/health/ready", timeout=10).status_code == 200
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_tune_runs_a_study_in_the_bundle(tmp_path: Path) -> None:
    # Optuna's alembic files and its samplers must be in the bundle.
    project = tmp_path / "p.lepton"
    iris = REPO / "resources" / "sample_data" / "iris.csv"
    ok(frozen("new", project, cwd=tmp_path))
    ok(frozen("import", project, iris, "--name", "iris", "--target", "species", cwd=tmp_path))
    out = ok(frozen("tune", project, "iris", "--arch", "mlp", "--trials", "3", "--epochs", "2",
                    "--sampler", "cmaes", "--json", cwd=tmp_path, timeout=300))
    result = json.loads(out)
    assert result["n_trials"] >= 3 and result["model"], result


def test_explain_draws_the_same_attributions_as_the_source(tmp_path: Path) -> None:
    # captum and matplotlib (with only the fonts the bundle keeps) inside the bundle.
    from PIL import Image

    project = tmp_path / "p.lepton"
    iris = REPO / "resources" / "sample_data" / "iris.csv"
    with Project.create(project) as p:
        p.import_dataset(iris, "iris", target="species")
        p.train("iris", arch="mlp", epochs=2, model_name="iris")
    args = ("explain", project, "iris", "--row", "3", "--json")
    bundled = json.loads(ok(frozen(*args, "--out", tmp_path / "e.png", cwd=tmp_path, timeout=300)))
    source = subprocess.run([sys.executable, "-m", "lepton_desktop", *map(str, args)], cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    expected = json.loads(source.stdout)
    assert len(bundled["features"]) == len(expected["features"]) == 4
    for got, want in zip(bundled["features"], expected["features"], strict=True):
        assert got["column"] == want["column"], (got, want)
        assert got["attribution"] == pytest.approx(want["attribution"], abs=1e-5), (got, want)
    with Image.open(tmp_path / "e.png") as png:
        assert png.format == "PNG" and png.width > 200 and png.height > 100

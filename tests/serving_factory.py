"""A trained project and a real server on 127.0.0.1 for the serving tests.

``serving_project`` is built once per session: ``iris:1`` and ``iris:2`` (MLP
classifiers that disagree on some rows) and ``diabetes:1`` (an MLP regressor).
Tests that change the file (aliases, the request log) copy it first
(:func:`copy_project`). :func:`running` starts a :class:`ServerRunner` (its server
process on a free port, its journal shipped into the project) and stops it afterwards.
"""

from __future__ import annotations

import contextlib
import csv
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLE_DATA


@pytest.fixture(scope="session")
def serving_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained project (see the module docstring); do not change it."""
    from lepton_desktop.core.project import Project

    path = tmp_path_factory.mktemp("serving") / "trained.lepton"
    with Project.create(path) as project:
        project.import_dataset(SAMPLE_DATA / "iris.csv", "iris", target="species")
        project.train("iris", arch="mlp", epochs=12, model_name="iris")
        project.train("iris", arch="mlp", epochs=1, seed=3, hidden=(8,), model_name="iris")
        project.import_dataset(SAMPLE_DATA / "diabetes.csv", "diabetes", target="progression")
        project.train("diabetes", arch="mlp", epochs=3, model_name="diabetes")
    return path


def copy_project(source: Path, directory: Path) -> Path:
    """A private copy of a project file (WAL checkpointed by its last close)."""
    target = directory / source.name
    shutil.copy(source, target)
    return target


def rows(name: str = "iris.csv", target: str | None = "species") -> list[dict[str, Any]]:
    """A sample CSV's rows as raw records without the target (text values, as in the file)."""
    with open(SAMPLE_DATA / name, newline="") as handle:
        return [{k: v for k, v in r.items() if k != target} for r in csv.DictReader(handle)]


@contextlib.contextmanager
def running(
    project: Path | None = None,
    *,
    parts: Sequence[Any] | None = None,
    models: Sequence[str] = (),
    log: bool = True,
    token: str | None = None,
    host: str = "127.0.0.1",
    **options: Any,
) -> Iterator[Any]:
    """A started :class:`ServerRunner`; ``runner.url`` is its address."""
    from lepton_desktop.core.serving.runner import ServerRunner, ServeSpec

    deployment_id = None
    if project is not None and log:
        from lepton_desktop.core.project import Project

        with Project.open(project) as opened:
            deployment_id = opened.serving.create(list(models), port=0, token=token).id
    spec = ServeSpec(
        project=str(project) if project is not None else None,
        models=list(models),
        host=host,
        port=0,
        token=token,
        options=options,
        deployment_id=deployment_id,
        log_path=str(project) if project is not None and log else None,
        watch_interval=0.2,
    )
    runner = ServerRunner(spec, parts=parts)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()

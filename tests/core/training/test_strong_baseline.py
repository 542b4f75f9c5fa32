"""The strong baseline beside every network, and partial dependence, on the sample data.

Each strong baseline is checked against the same scikit-learn estimator fitted here on
the very arrays the run trained on; partial dependence against scikit-learn's own
``partial_dependence`` on the network wrapped as an estimator.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.inspection import partial_dependence as sklearn_partial_dependence
from sklearn.linear_model import LogisticRegression, Ridge
from threadpoolctl import threadpool_limits

from lepton_desktop.core.project import Project
from lepton_desktop.core.training import data as training_data
from lepton_desktop.core.training import dependence
from lepton_desktop.core.training import strong_baseline as strong
from lepton_desktop.core.training.config import TrainConfig
from lepton_desktop.core.training.evaluate import softmax
from tests.helpers import write_csv

SAMPLES = Path(__file__).resolve().parents[3] / "resources" / "sample_data"
METRICS = ("accuracy", "precision", "recall", "f1", "mse", "mae", "rmse", "r2")


@pytest.fixture
def project(tmp_project: Path):
    with Project.open(tmp_project) as p:
        p.import_dataset(SAMPLES / "iris.csv", "iris", target="species")
        p.import_dataset(SAMPLES / "diabetes.csv", "diabetes", target="progression")
        yield p


def arrays(project: Project, dataset: str, **options: Any) -> training_data.TrainData:
    """The arrays a run with ``options`` trained on, loaded again here."""
    return training_data.load(
        project.ctx.conn, project.dataset(dataset), TrainConfig.from_dict(options)
    )


def our_scores(data: training_data.TrainData, estimator: Any, split: str) -> dict[str, float]:
    """Scores of an estimator fitted here, computed with scikit-learn's own metrics."""
    from sklearn import metrics

    x = strong.features(data, split)
    y = data.y[split]
    if data.task == "classification":
        pred = estimator.predict(x)
        precision, recall, f1, _ = metrics.precision_recall_fscore_support(
            y, pred, average="macro", labels=range(len(data.classes or [])), zero_division=0
        )
        return {"accuracy": metrics.accuracy_score(y, pred), "precision": precision,
                "recall": recall, "f1": f1}  # fmt: skip
    true = y.astype(np.float64) * data.target_std + data.target_mean
    pred = estimator.predict(x).astype(np.float64) * data.target_std + data.target_mean
    mse = metrics.mean_squared_error(true, pred)
    return {"mse": mse, "mae": metrics.mean_absolute_error(true, pred),
            "rmse": float(np.sqrt(mse)), "r2": metrics.r2_score(true, pred)}  # fmt: skip


def assert_same(stored: dict[str, Any], ours: dict[str, float]) -> None:
    for key, value in ours.items():
        assert stored[key] == pytest.approx(value, rel=1e-7, abs=1e-10), key


def test_tables_pick_the_better_on_validation_and_match_sklearn(project: Project) -> None:
    for dataset, linear, boosted, key in (
        ("iris", LogisticRegression(max_iter=1000), HistGradientBoostingClassifier, "accuracy"),
        ("diabetes", Ridge(alpha=1.0), HistGradientBoostingRegressor, "r2"),
    ):
        result = project.train(dataset, arch="mlp", epochs=3, seed=4)
        stored = result.run.evaluation["strong_baseline"]
        data = arrays(project, dataset, arch="mlp", epochs=3, seed=4)
        x, y = strong.features(data, "train"), data.y["train"]
        with threadpool_limits(1):  # fast on a busy machine (see strong_baseline.fit)
            fitted = {
                "LogisticRegression" if key == "accuracy" else "Ridge": linear.fit(x, y),
                "HistGradientBoosting": boosted(random_state=4).fit(x, y),
            }
        validation = {n: our_scores(data, e, "val")[key] for n, e in fitted.items()}
        assert set(stored["candidates"]) == set(fitted)
        for name, value in validation.items():
            assert stored["candidates"][name]["validation"] == pytest.approx(value)
        best = max(validation, key=lambda n: validation[n])
        assert stored["name"] == best and stored["selected_on"] == "validation"
        assert_same(stored["metrics"], our_scores(data, fitted[best], "test"))
        gain = result.metrics[key] - stored["metrics"][key]
        assert stored["gain"] == {"metric": key, "value": pytest.approx(gain)}
        assert result.strong_baseline is not None
        assert result.strong_baseline["name"] == best
        assert set(result.strong_baseline["metrics"]) == set(result.metrics)
        assert 0 < result.strong_baseline["fit_seconds"] < 60
        assert stored["stage_seconds"] >= stored["fit_seconds"]  # imports and scoring too


def test_series_and_images_match_sklearn(project: Project) -> None:
    project.import_dataset(SAMPLES / "nile.csv", "nile", kind="timeseries")
    project.import_dataset(SAMPLES / "digits", "digits")
    series = project.train("nile", arch="rnn", epochs=2, window=6)
    stored = series.run.evaluation["strong_baseline"]
    data = arrays(project, "nile", arch="rnn", epochs=2, window=6)
    lags = data.x["train"][:, :, 0].astype(np.float64)  # the window's 6 lags, side by side
    assert lags.shape[1] == 6
    ridge = Ridge(alpha=1.0).fit(lags, data.y["train"])
    assert stored["name"] == "autoregressive (Ridge on lags)"
    assert_same(stored["metrics"], our_scores(data, ridge, "test"))
    images = project.train("digits", arch="cnn", epochs=1)
    stored = images.run.evaluation["strong_baseline"]
    data = arrays(project, "digits", arch="cnn", epochs=1)
    pixels = data.x["train"].reshape(len(data.x["train"]), -1).astype(np.float64)
    assert pixels.shape[1] == 64  # 8x8 grey digits: under the cap, not pooled
    logistic = LogisticRegression(max_iter=200).fit(pixels, data.y["train"])
    assert stored["name"] == "LogisticRegression on pixels"
    assert_same(stored["metrics"], our_scores(data, logistic, "test"))
    assert stored["metrics"]["confusion_matrix"] and len(stored["metrics"]["per_class"]) == 10


def test_large_images_are_pooled_under_the_cap() -> None:
    images = np.arange(2 * 3 * 64 * 48, dtype=np.float32).reshape(2, 3, 64, 48)
    pooled = strong.pooled(images)
    assert pooled[0, 0].size * 3 <= strong.MAX_PIXELS
    factor = 64 // pooled.shape[2]
    assert pooled[1, 2, 0, 0] == pytest.approx(images[1, 2, :factor, :factor].mean())


def checkerboard_csv(path: Path, rows: int = 1000) -> Path:
    """Two columns whose label is the colour of a 4x4 checkerboard's square: trees cut it
    along the axes, one epoch of a network does not learn it."""
    rng = np.random.default_rng(0)
    a, b = rng.random(rows), rng.random(rows)
    label = np.where((np.floor(a * 4) + np.floor(b * 4)) % 2 == 1, "odd", "even")
    rows_out = [[f"{x:.4f}", f"{y:.4f}", z] for x, y, z in zip(a, b, label, strict=True)]
    return write_csv(path, ["a", "b", "label"], rows_out)


def test_a_network_that_loses_is_told_in_words(project: Project, tmp_path: Path) -> None:
    project.import_dataset(checkerboard_csv(tmp_path / "board.csv"), "board", target="label")
    result = project.train("board", arch="mlp", epochs=1, seed=0)
    evaluation = result.run.evaluation
    assert evaluation["strong_baseline"]["name"] == "HistGradientBoosting"
    ours, theirs = result.metrics["accuracy"], evaluation["strong_baseline"]["metrics"]["accuracy"]
    assert theirs > 0.9 > ours
    assert strong.verdict(evaluation) == (
        f"HistGradientBoosting beats this network on the test split: "
        f"accuracy {theirs:.3f} vs {ours:.3f}"
    )
    winner = project.train("iris", arch="mlp", epochs=40, seed=0).run.evaluation
    if strong.gain(winner) >= 0:  # the network won (or tied): nothing to say
        assert strong.verdict(winner) is None


def test_skipping_the_strong_baseline(project: Project) -> None:
    result = project.train("iris", arch="mlp", epochs=2, strong_baseline=False)
    assert result.strong_baseline is None
    assert "strong_baseline" not in result.run.evaluation
    assert result.run.config["strong_baseline"] is False
    assert result.run.evaluation["dependence"]["columns"]  # the global views stay
    runs = {r["id"]: r for r in project.info()["runs"]}
    assert runs[result.run.id]["strong_baseline"] is None


class Wrapped(BaseEstimator):
    """A network as a scikit-learn estimator over its own input arrays."""

    def __init__(self, module: Any = None) -> None:
        self.module = module

    def fit(self, x: np.ndarray, y: np.ndarray) -> Wrapped:
        self.classes_ = np.unique(y)
        self.fitted_ = True
        return self

    def _raw(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.module(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()


class WrappedClassifier(ClassifierMixin, Wrapped):
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return softmax(self._raw(x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(1)


class WrappedRegressor(RegressorMixin, Wrapped):
    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._raw(x)[:, 0]


def test_partial_dependence_agrees_with_sklearn(project: Project) -> None:
    for dataset, wrapper in (("iris", WrappedClassifier), ("diabetes", WrappedRegressor)):
        result = project.train(dataset, arch="mlp", epochs=5, seed=1, strong_baseline=False)
        stored = result.run.evaluation["dependence"]
        module, _ = project.models.load(result.model.ref)
        module.eval()
        data = arrays(project, dataset, arch="mlp", epochs=5, seed=1)
        x = data.x["test"]
        estimator = wrapper(module).fit(x, data.y["test"])
        scale = next(s for s in data.pipeline if s.get("step") == "scale")["columns"]
        ranked = list(result.run.evaluation["importance"])
        numeric = [c for c in ranked if c in data.feature_names][: dependence.TOP_COLUMNS]
        assert [c["column"] for c in stored["columns"]] == numeric
        for column in stored["columns"]:
            index = data.feature_names.index(column["column"])
            theirs = sklearn_partial_dependence(
                estimator, x, [index], kind="both", grid_resolution=dependence.GRID_POINTS,
                percentiles=dependence.PERCENTILES, method="brute",
            )  # fmt: skip
            grid, average = theirs["grid_values"][0], theirs["average"]
            individual = theirs["individual"]
            if data.task != "classification":  # ours reads in the target's units
                average = average * data.target_std + data.target_mean
                individual = individual * data.target_std + data.target_mean
            params = scale[column["column"]]
            raw_grid = grid * (params["std"] or 1.0) + params["mean"]
            np.testing.assert_allclose(column["grid"], raw_grid, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(column["average"], average, rtol=1e-4, atol=1e-5)
            assert len(column["ice"][0]) == min(dependence.ICE_LINES, len(x))
            ice = np.asarray(column["ice"])
            # Each stored ICE line is one of sklearn's individual lines (a sample of rows).
            for output in range(ice.shape[0]):
                for line in ice[output]:
                    distance = np.abs(individual[output] - line).max(axis=1)
                    assert distance.min() < 1e-4 * (1 + np.abs(line).max())
    assert stored["kind"] == "prediction" and stored["outputs"] == ["progression"]


def test_the_bundle_card_shows_the_strong_baseline_and_dependence(
    project: Project, tmp_path: Path
) -> None:
    result = project.train("iris", arch="mlp", epochs=3)
    out = tmp_path / "iris.zip"
    project.export(result.model.ref, "bundle", out)
    with zipfile.ZipFile(out) as bundle:
        card = next(bundle.read(n).decode() for n in bundle.namelist() if n.endswith(".md"))
    stored = result.run.evaluation["strong_baseline"]
    assert "## Against a strong baseline, and partial dependence" in card
    assert f"a strong classical model fitted on the same split and inputs, {stored['name']}" in (
        card.replace("\n", " ")
    )
    for column in result.run.evaluation["dependence"]["columns"]:
        assert f"- `{column['column']}`: from " in card


def test_the_time_budget_skips_the_costlier_candidate(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = arrays(project, "iris", arch="mlp")
    network = {"accuracy": 0.5}
    monkeypatch.setattr(strong, "MIN_BUDGET_SECONDS", 0.0)  # spent by the first fit
    monkeypatch.setattr(strong, "BUDGET_SHARE", 0.0)
    result = strong.fit_strong_baseline(data, network, network_seconds=10.0)
    assert result["name"] == "LogisticRegression" and result["selected_on"] is None
    assert result["skipped"] == ["HistGradientBoosting"]
    assert list(result["candidates"]) == ["LogisticRegression"]


def test_a_comparison_that_cannot_be_made_does_not_fail_the_run(project: Project) -> None:
    from lepton_desktop.core.progress import NullReporter
    from lepton_desktop.core.training import service

    data = arrays(project, "iris", arch="mlp")
    data.y["train"] = np.zeros_like(data.y["train"])  # one class left in the training rows
    with pytest.raises(ValueError, match="class"):
        strong.fit_strong_baseline(data, {"accuracy": 0.5})
    evaluation: dict[str, Any] = {"test": {"accuracy": 0.5}, "network_fit_seconds": 1.0}
    service._global_views(data, TrainConfig(), evaluation, lambda x: np.zeros((len(x), 3)),
                          NullReporter())  # fmt: skip
    assert "strong_baseline" not in evaluation
    assert evaluation["strong_baseline_error"].startswith("ValueError: ")


def test_the_grid_quantiles_are_scipys_mquantiles() -> None:
    from scipy.stats.mstats import mquantiles

    from lepton_desktop.core.training.dependence import PERCENTILES, _mquantiles

    rng = np.random.default_rng(3)
    for values in (rng.normal(size=7), rng.exponential(size=1000), np.arange(2.0)):
        assert np.allclose(_mquantiles(values, PERCENTILES), mquantiles(values, prob=PERCENTILES))

"""Partial dependence of a categorical (one-hot) column, against scikit-learn's.

The network is wrapped as the last step of a scikit-learn pipeline that encodes the
raw test rows as training did (the price standardised, the colour one-hot over the
same categories), and ``sklearn.inspection.partial_dependence`` varies the raw colour
column, listed in ``categorical_features``: its average per category must be ours.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.inspection import partial_dependence as sklearn_partial_dependence
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from lepton_desktop.core.project import Project
from lepton_desktop.core.training import data as training_data
from lepton_desktop.core.training import dependence
from lepton_desktop.core.training.config import TrainConfig
from tests.core.training.test_strong_baseline import WrappedClassifier
from tests.explain_factory import shop_rows
from tests.helpers import write_csv

OPTIONS = {"arch": "mlp", "epochs": 6, "seed": 2, "hidden": (16,), "strong_baseline": False}


@pytest.fixture
def shop(tmp_project: Path, tmp_path: Path):
    with Project.open(tmp_project) as project:
        project.import_dataset(write_csv(tmp_path / "shop.csv", *shop_rows()), "shop",
                               target="bought")  # fmt: skip
        result = project.train("shop", **OPTIONS)
        yield project, result


def test_one_hot_columns_get_a_value_per_category_as_sklearn_computes(shop) -> None:
    project, result = shop
    stored = result.run.evaluation["dependence"]
    colour = next(c for c in stored["columns"] if c["column"] == "colour")
    assert colour["categorical"] is True and colour["grid"] == ["blue", "green", "red"]
    data = training_data.load(
        project.ctx.conn, project.dataset("shop"), TrainConfig.from_dict(OPTIONS)
    )
    x = data.x["test"]
    price = data.feature_names.index("price")
    groups = data.groups["colour"]
    scale = next(s for s in data.pipeline if s.get("step") == "scale")["columns"]["price"]
    raw = pd.DataFrame({
        "price": x[:, price].astype(np.float64) * scale["std"] + scale["mean"],
        "colour": np.array(colour["grid"])[x[:, groups].argmax(axis=1)],
    })  # fmt: skip
    module, _ = project.models.load(result.model.ref)
    module.eval()
    encode = ColumnTransformer([
        ("price", FunctionTransformer(lambda v: (v - scale["mean"]) / scale["std"]), ["price"]),
        ("colour", OneHotEncoder(categories=[colour["grid"]], sparse_output=False), ["colour"]),
    ])  # fmt: skip
    pipeline = make_pipeline(encode, WrappedClassifier(module)).fit(raw, data.y["test"])
    assert np.allclose(encode.transform(raw), x, atol=1e-5)  # the same inputs as training's
    theirs = sklearn_partial_dependence(
        pipeline, raw, ["colour"], categorical_features=["colour"], kind="both",
        method="brute",
    )  # fmt: skip
    categories = [str(c) for c in theirs["grid_values"][0]]
    assert set(categories) <= set(colour["grid"])
    ours = np.asarray(colour["average"])[:, [colour["grid"].index(c) for c in categories]]
    np.testing.assert_allclose(ours, theirs["average"], rtol=1e-4, atol=1e-5)
    ice = np.asarray(colour["ice"])[:, :, [colour["grid"].index(c) for c in categories]]
    for line in ice[0]:  # each stored ICE row is one of scikit-learn's individual rows
        assert np.abs(theirs["individual"][0] - line).max(axis=1).min() < 1e-4
    assert stored["outputs"] == ["yes"]  # binary: the positive class, as scikit-learn


def test_the_bundle_card_lists_each_categorys_average(shop, tmp_path: Path) -> None:
    project, result = shop
    colour = next(
        c for c in result.run.evaluation["dependence"]["columns"] if c["column"] == "colour"
    )
    out = tmp_path / "shop.zip"
    project.export(result.model.ref, "bundle", out)
    with zipfile.ZipFile(out) as bundle:
        card = next(bundle.read(n).decode() for n in bundle.namelist() if n.endswith(".md"))
    averages = ", ".join(
        f"{c} {v:.3g}" for c, v in zip(colour["grid"], colour["average"][0], strict=True)
    )
    assert f"- `colour`: yes: {averages}" in card


def test_many_categories_keep_those_of_the_most_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dependence, "MAX_CATEGORIES", 2)
    counts = {"a": 5, "b": 1, "c": 3}
    rows = [[1.0 if k == c else 0.0 for k in counts] for c, n in counts.items() for _ in range(n)]
    data = SimpleNamespace(
        x={"train": np.array(rows, dtype=np.float32)},
        groups={"k": [0, 1, 2]},
        feature_names=["k=a", "k=b", "k=c"],
    )
    categories, switches = dependence.one_hot_switches(data, "k")  # type: ignore[arg-type]
    assert categories == ["a", "c"]
    assert switches.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]

"""One trained project for the explanation tests (core, CLI, server, GUI), built once.

``wide:1`` is a 16-feature regression table (the size SHAP's KernelExplainer is
compared on) with an MLP ``wide``; ``shop:1`` has a categorical column (one-hot
encoded by training) and an MLP classifier ``shop``; ``digits`` is a CNN trained long
enough that its heat maps mean something; ``nile`` an LSTM over 8-step windows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SAMPLE_DATA
from tests.helpers import write_csv

WIDE_FEATURES = 16


def wide_rows(n: int = 400, seed: int = 0) -> tuple[list[str], list[list[float]]]:
    """A smooth nonlinear target of 16 features (a few matter much, most little)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, WIDE_FEATURES))
    weights = np.linspace(2.0, 0.1, WIDE_FEATURES)
    y = x @ weights + 0.5 * np.tanh(x[:, 0] * x[:, 1]) + 0.1 * rng.normal(size=n)
    header = [f"f{i}" for i in range(WIDE_FEATURES)] + ["y"]
    return header, np.column_stack([x, y]).round(4).tolist()


def shop_rows(n: int = 240, seed: int = 1) -> tuple[list[str], list[list[object]]]:
    """Buy or not from a price and a colour (red sells)."""
    rng = np.random.default_rng(seed)
    colours = rng.choice(["red", "green", "blue"], size=n)
    price = rng.uniform(1, 10, size=n).round(2)
    bought = ((colours == "red") | (price < 3)).astype(int)
    rows = [[float(p), str(c), ["no", "yes"][int(b)]]
            for p, c, b in zip(price, colours, bought, strict=True)]  # fmt: skip
    return ["price", "colour", "bought"], rows


@pytest.fixture(scope="session")
def explain_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained project (see the module docstring); copy it before changing it."""
    from lepton_desktop.core.project import Project

    folder = tmp_path_factory.mktemp("explain")
    path = folder / "explain.lepton"
    wide = write_csv(folder / "wide.csv", *wide_rows())
    shop = write_csv(folder / "shop.csv", *shop_rows())
    with Project.create(path) as project:
        project.import_dataset(wide, "wide", target="y")
        project.train("wide", arch="mlp", epochs=40, hidden=(32,), model_name="wide")
        project.import_dataset(shop, "shop", target="bought")
        project.train("shop", arch="mlp", epochs=20, hidden=(16,), model_name="shop")
        project.import_dataset(SAMPLE_DATA / "digits", "digits")
        project.train("digits", arch="cnn", epochs=12, channels=(8, 16), model_name="digits")
        project.import_dataset(SAMPLE_DATA / "nile.csv", "nile", kind="timeseries")
        project.train("nile", arch="rnn", epochs=4, window=8, model_name="nile")
    return path

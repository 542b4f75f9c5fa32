"""Default-deciding choices of the training core (see bench/train_quality.py for quality)."""

from __future__ import annotations

import numpy as np
import torch

from lepton_desktop.core.training import loop
from lepton_desktop.core.training.config import TrainConfig
from lepton_desktop.core.training.data import TrainData
from lepton_desktop.core.training.models import build, model_spec


class _NoHooks:
    def step(self, *args: object) -> None:
        pass

    def epoch(self, *args: object) -> None:
        pass

    def checkpoint(self, *args: object) -> None:
        pass

    def control(self) -> None:
        return None


def test_a_new_rnn_starts_as_the_persistence_forecast_and_old_specs_still_build() -> None:
    config = TrainConfig(arch="rnn")
    spec = model_spec(config, (6, 1), 1)
    assert spec["anchor"] == "last"
    windows = torch.randn(5, 6, 1) * 10 + 100  # levels far outside any training range
    torch.testing.assert_close(build(spec)(windows)[:, 0], windows[:, -1, 0])
    old = {k: v for k, v in spec.items() if k != "anchor"}  # models saved before anchoring
    model = build(old)
    model.load_state_dict(build(spec).state_dict())
    assert model(windows).shape == (5, 1)


def _regression(n_train: int, n_val: int) -> TrainData:
    rng = np.random.default_rng(0)
    sizes = {"train": n_train, "val": n_val, "test": 8}
    x = {k: rng.normal(size=(n, 3)).astype(np.float32) for k, n in sizes.items()}
    y = {k: (v @ np.array([1.0, -2.0, 0.5], dtype=np.float32)) for k, v in x.items()}
    return TrainData("regression", x, y, None, ["a", "b", "c"], {}, [], "y")


def _fit(data: TrainData) -> tuple[loop.FitResult, loop.Trainer]:
    config = TrainConfig(arch="mlp", epochs=12, patience=0, seed=0)
    loop.seed_everything(0)
    model = build(model_spec(config, data.input_shape, data.n_outputs))
    trainer = loop.Trainer(model, data, config, _NoHooks(), torch.device("cpu"))
    return trainer.fit(), trainer


def test_a_tiny_validation_split_keeps_the_last_weights() -> None:
    result, trainer = _fit(_regression(40, loop.MIN_VAL_ROWS - 1))
    assert result.best_epoch == result.epochs_done == 12
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(result.best_state[name], value)


def test_a_usable_validation_split_keeps_the_best_epoch() -> None:
    result, trainer = _fit(_regression(200, 40))
    assert result.best_state is trainer.best_state
    assert 1 <= result.best_epoch <= result.epochs_done == 12

"""Explanations checked, not just drawn: completeness, SHAP, the sanity check, deletion."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from tests.explain_factory import explain_project  # noqa: F401 (a fixture)

ROWS = 20


@pytest.fixture(scope="module")
def project(explain_project: Path):  # noqa: F811
    from lepton_desktop.core.project import Project

    with Project.open(explain_project) as opened:
        yield opened


@pytest.fixture(scope="module")
def wide(project):
    from lepton_desktop.core.explain import explainer_for, test_rows

    version = project.models.get("wide")
    rows = test_rows(project.ctx, "wide")
    return explainer_for(project.ctx, version, rows), rows


def _attributions(explanation, columns: list[str]) -> np.ndarray:
    by_column = {f["column"]: f["attribution"] for f in explanation.features}
    return np.array([by_column[c] for c in columns])


@pytest.mark.parametrize("model", ["wide", "shop", "nile"])
def test_integrated_gradients_are_complete(project, model: str) -> None:
    # Completeness (Sundararajan et al.): the attributions sum to f(x) - f(baseline).
    for row in range(5):
        explanation = project.explain(model, row=row)
        gap = explanation.output - explanation.baseline_output
        assert explanation.method == "ig"
        assert explanation.total == pytest.approx(gap, rel=0.01, abs=1e-6)


def test_attributions_agree_with_shap_kernel_explainer(wide) -> None:
    import shap
    from scipy.stats import spearmanr

    explainer, rows = wide
    predictor = explainer.predictor
    columns = predictor.feature_names
    background = predictor.encode(rows.train_records[:100])

    def f(x: np.ndarray) -> np.ndarray:
        return predictor.forward(x.astype(np.float32))[:, 0]

    kernel = shap.KernelExplainer(f, background)
    rhos = []
    for row in range(ROWS):
        ours = _attributions(explainer.explain(rows.record(row)), columns)
        x = predictor.encode([rows.record(row)])
        reference = np.asarray(kernel.shap_values(x, silent=True)).reshape(-1)
        rhos.append(spearmanr(ours, reference).statistic)
    assert float(np.mean(rhos)) >= 0.9, rhos


def test_randomised_weights_change_the_attributions(wide) -> None:
    # Adebayo et al.'s model randomisation test: an explanation that does not depend
    # on the weights explains nothing.
    import torch
    from scipy.stats import spearmanr

    from lepton_desktop.core.explain import Explainer
    from lepton_desktop.core.inference.predictor import Predictor

    explainer, rows = wide
    torch.manual_seed(0)
    module = explainer.predictor.module
    for layer in module.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    parts = explainer.predictor.parts
    random = Explainer(Predictor(type(parts)(**{**parts.__dict__, "weights": buffer.getvalue()})),
                       explainer.train_mean)  # fmt: skip
    original = Explainer(Predictor(parts), explainer.train_mean)
    columns = original.predictor.feature_names
    rhos = [
        spearmanr(_attributions(original.explain(rows.record(r)), columns),
                  _attributions(random.explain(rows.record(r)), columns)).statistic
        for r in range(ROWS)
    ]  # fmt: skip
    assert float(np.mean(rhos)) < 0.5, rhos


def _deletion_area(explainer, x: np.ndarray, order: np.ndarray, target: int) -> float:
    """Mean probability of ``target`` as pixels are set to the training mean in ``order``."""
    from lepton_desktop.core.inference.predictor import softmax

    height, width = x.shape[-2:]
    steps = np.linspace(0, height * width, 11).astype(int)
    batch = np.repeat(x, len(steps), axis=0)
    for i, count in enumerate(steps):
        rows, cols = np.unravel_index(order[:count], (height, width))
        batch[i, :, rows, cols] = 0.0  # the normalised training pixel mean
    return float(softmax(explainer.predictor.forward(batch))[:, target].mean())


def test_heat_map_deletion_falls_faster_than_random(project) -> None:
    from lepton_desktop.core.explain import explainer_for, test_rows

    rows = test_rows(project.ctx, "digits")
    explainer = explainer_for(project.ctx, project.models.get("digits"))
    rng = np.random.default_rng(0)
    ours, random = [], []
    for row in range(10):
        record = rows.record(row)
        explanation = explainer.explain(record)
        x = explainer.predictor.encode([record])
        target = int(explainer.predictor.forward(x).argmax())
        order = np.argsort(-explanation.heatmap.reshape(-1))
        ours.append(_deletion_area(explainer, x, order, target))
        random.append(np.mean([_deletion_area(explainer, x, rng.permutation(order.size), target)
                               for _ in range(5)]))  # fmt: skip
    assert np.mean(ours) < np.mean(random)


@pytest.mark.parametrize("model", ["wide", "shop", "nile"])
def test_the_one_pass_shortcut_is_captums_attribute(project, model: str) -> None:
    # Our single pass hands Captum's own step its Gauss-Legendre rule, computed once;
    # it must give what IntegratedGradients.attribute gives, with the module itself.
    import torch
    from captum.attr import IntegratedGradients

    from lepton_desktop.core.explain import explainer_for, methods, test_rows

    explainer = explainer_for(project.ctx, project.models.get(model))
    predictor = explainer.predictor
    x = predictor.encode([test_rows(project.ctx, model).record(1)])
    baseline, _ = explainer._baseline(x, "ig")
    target = int(predictor.forward(x).argmax())
    tensors = torch.from_numpy(x), torch.from_numpy(baseline)
    with torch.enable_grad():
        ours = methods.integrated_gradients(predictor.run, *tensors, target)
        theirs = IntegratedGradients(predictor.module).attribute(
            tensors[0], baselines=tensors[1], target=target, n_steps=methods.IG_STEPS
        )
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-5, atol=1e-7)

"""Explanations: time per explained input against SHAP, and what ``/explain`` costs a server.

In-process (one thread, as the server's executor runs it; the model loaded once):

* **one table row**: the 16-feature MLP classifier of ``bench.serving_latency``,
  Integrated Gradients (50 steps, the training mean as baseline) on the predicted
  class's logit, against SHAP's ``KernelExplainer`` (100 training rows as background,
  its default number of samples) on the same function and row; the rank correlation
  (Spearman) between the two over 20 rows, and with a zero baseline for comparison;
* **one 32x32 image**: a CNN trained here on synthetic pictures, Integrated Gradients
  (blurred baseline) and Grad-CAM, against a plain prediction of the same input;
* **one 50-step window**: an LSTM trained here on a synthetic series, against a plain
  prediction.

Served (``wrk``, as ``bench.serving_latency``): one server process with the route,
``/predict`` and ``/explain`` at concurrency 8; and ``/predict`` on the same app
built without the ``/explain`` route (both without a request log), for the claim that
the new route leaves ``/predict`` as it was.

Usage: ``python -m bench.explain_speed [--rows 20] [--seconds 5] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import machine_line, markdown_table
from bench.serving_latency import OUT, Target, _stop, make_project, start, wrk

SIZE, WINDOW = 32, 50


def _median_ms(work: Any, repeat: int) -> float:
    work()  # warm-up: lazy imports, allocator, Captum's first call
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


# -- tables: ours vs SHAP -------------------------------------------------------------


def table_row(rows: int) -> dict[str, Any]:
    """Explain one row of the 16-feature MLP: ms per row, and ρ against SHAP on two models."""
    path, _, _ = make_project()
    result = _against_shap(path, "syn", rows, timed=True)
    graded = _against_shap(_graded_project(), "graded", rows, timed=False)
    result["rho_graded"], result["rho_graded_zero"] = graded["rho"], graded["rho_zero"]
    return result


def _graded_project() -> Path:
    """16 features that all matter, by decreasing weights (a regression MLP)."""
    from lepton_desktop.core.project import Project

    folder = OUT / "explain"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "graded.lepton"
    path.unlink(missing_ok=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 16))
    y = x @ np.linspace(2.0, 0.1, 16) + 0.5 * np.tanh(x[:, 0] * x[:, 1])
    header = ",".join(f"f{i}" for i in range(16)) + ",y\n"
    table = np.column_stack([x, y])
    body = "".join(",".join(f"{v:.4f}" for v in row) + "\n" for row in table)
    (folder / "graded.csv").write_text(header + body, encoding="utf-8")
    with Project.create(path) as project:
        project.import_dataset(folder / "graded.csv", "graded", target="y")
        project.train("graded", arch="mlp", epochs=30, hidden=(32,), model_name="graded")
    return path


def _against_shap(path: Path, model: str, rows: int, *, timed: bool) -> dict[str, Any]:
    import shap
    from scipy.stats import spearmanr

    from lepton_desktop.core.explain import Explainer, explainer_for, test_rows
    from lepton_desktop.core.project import Project

    with Project.open(path) as project:
        test = test_rows(project.ctx, model)
        explainer = explainer_for(project.ctx, project.models.get(model), test)
    predictor = explainer.predictor
    columns = predictor.feature_names
    background = predictor.encode(test.train_records[:100])
    zeros = Explainer(predictor, np.zeros_like(explainer.train_mean))

    def kernel(record: dict[str, Any]) -> tuple[Any, np.ndarray]:
        x = predictor.encode([record])
        target = int(predictor.forward(x).argmax())
        return shap.KernelExplainer(
            lambda z: predictor.forward(z.astype(np.float32))[:, target], background
        ), x

    result: dict[str, Any] = {"rows": rows}
    if timed:
        reference, x = kernel(test.record(0))
        result["ours_ms"] = _median_ms(lambda: explainer.explain(test.record(0)), 30)
        result["shap_ms"] = _median_ms(lambda: reference.shap_values(x, silent=True), 3)
    rho: list[float] = []
    rho_zero: list[float] = []
    for row in range(rows):
        reference, x = kernel(test.record(row))
        values = np.asarray(reference.shap_values(x, silent=True)).reshape(-1)
        for explained, sink in ((explainer, rho), (zeros, rho_zero)):
            by = {
                f["column"]: f["attribution"] for f in explained.explain(test.record(row)).features
            }
            sink.append(spearmanr([by[c] for c in columns], values).statistic)
    result["rho"], result["rho_zero"] = float(np.mean(rho)), float(np.mean(rho_zero))
    return result


# -- images and windows -----------------------------------------------------------------


def _pictures(folder: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, corner in (("left", 0), ("right", SIZE // 2)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(40):
            pixels = rng.integers(0, 80, size=(SIZE, SIZE, 3), dtype=np.uint8)
            pixels[8:24, corner : corner + SIZE // 2] += 150
            Image.fromarray(pixels).save(folder / label / f"{i:03d}.png")


def _series(path: Path) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(800)
    values = 10 * np.sin(t / 12) + 0.02 * t + rng.normal(0, 1, len(t))
    lines = ["day,value"] + [f"{i},{v:.4f}" for i, v in zip(t, values, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def image_and_window() -> dict[str, float]:
    """ms to explain one 32x32 image (IG, Grad-CAM) and one 50-step window, vs a predict."""
    from lepton_desktop.core.explain import explainer_for, test_rows
    from lepton_desktop.core.project import Project

    folder = OUT / "explain"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "explain-bench.lepton"
    path.unlink(missing_ok=True)
    _pictures(folder / "pictures")
    _series(folder / "series.csv")
    with Project.create(path) as project:
        project.import_dataset(folder / "pictures", "pictures")
        project.train("pictures", arch="cnn", epochs=2, channels=(16, 32), model_name="pictures")
        project.import_dataset(folder / "series.csv", "series", kind="timeseries")
        project.train("series", arch="rnn", epochs=2, window=WINDOW, model_name="series")
        found = {}
        for model in ("pictures", "series"):
            found[model] = (explainer_for(project.ctx, project.models.get(model)),
                            test_rows(project.ctx, model).record(0))  # fmt: skip
    result = {}
    for model, methods in (("pictures", ("ig", "gradcam")), ("series", ("ig",))):
        explainer, record = found[model]
        result[f"{model}_predict_ms"] = _median_ms(lambda e=explainer, r=record:
                                                   e.predictor.predict([r]), 20)  # fmt: skip
        for method in methods:
            result[f"{model}_{method}_ms"] = _median_ms(
                lambda e=explainer, r=record, m=method: e.explain(r, m), 10
            )
    return result


# -- served ------------------------------------------------------------------------------


def serve(port: int, with_explain: bool, project: str) -> None:
    """A child: the project's models on uvicorn, with or without the /explain route."""
    import uvicorn

    from lepton_desktop.core.serving import app as serving_app
    from lepton_desktop.core.serving.models import ModelSet

    if not with_explain:
        serving_app.ROUTES = [r for r in serving_app.ROUTES if r.path != "/explain"]
    app = serving_app.create_app(ModelSet.from_project(Path(project)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools")  # fmt: skip


def served(seconds: float, rounds: int) -> dict[str, float]:
    """req/s and p50 at c8: /predict and /explain with the route, /predict without it."""
    path, record, _ = make_project()
    body = json.dumps({"model": "syn", "records": [record]}).encode()
    argv = [sys.executable, "-m", "bench.explain_speed", "--project", str(path), "--serve"]
    with_route = Target("with /explain", [*argv, "8791", "--with-explain"], 8791, "/predict",
                        body)  # fmt: skip
    without = Target("without /explain", [*argv, "8792"], 8792, "/predict", body)
    explain = Target("/explain", [], 8791, "/explain", body)
    processes = [start(t)[0] for t in (with_route, without)]
    try:
        runs: dict[str, list[Any]] = {"with": [], "without": [], "explain": []}
        for target in (with_route, without, explain):  # warm-up
            wrk(target, 8, 1.0)
        for _ in range(rounds):
            runs["with"].append(wrk(with_route, 8, seconds))
            runs["without"].append(wrk(without, 8, seconds))
            runs["explain"].append(wrk(explain, 8, seconds))
    finally:
        for process in processes:
            _stop(process)
    out = {}
    for name, loads in runs.items():
        out[f"{name}_rps"] = statistics.median(x.rps for x in loads)
        out[f"{name}_p50_ms"] = statistics.median(x.p50_ms for x in loads)
        out[f"{name}_errors"] = sum(x.errors for x in loads)
    return out


# -- the report --------------------------------------------------------------------------


def report(tab: dict[str, Any], pictures: dict[str, float], net: dict[str, float]) -> str:
    speedup = tab["shap_ms"] / tab["ours_ms"]
    rows = [
        ["one table row (16 features), IG", f"{tab['ours_ms']:.1f}",
         f"SHAP KernelExplainer {tab['shap_ms']:.0f}", f"{speedup:.0f}x faster",
         f"≤ 50 ms, ≥ 20x at ρ ≥ 0.9: "
         f"{_ok(tab['ours_ms'] <= 50 and speedup >= 20 and tab['rho_graded'] >= 0.9)}"],
        ["one 32x32 image, IG", f"{pictures['pictures_ig_ms']:.0f}",
         f"predict {pictures['pictures_predict_ms']:.1f}",
         f"{pictures['pictures_ig_ms'] / pictures['pictures_predict_ms']:.0f}x a predict",
         f"≤ 1000 ms: {_ok(pictures['pictures_ig_ms'] <= 1000)}"],
        ["one 32x32 image, Grad-CAM", f"{pictures['pictures_gradcam_ms']:.0f}",
         f"predict {pictures['pictures_predict_ms']:.1f}",
         f"{pictures['pictures_gradcam_ms'] / pictures['pictures_predict_ms']:.0f}x a predict",
         f"≤ 1000 ms: {_ok(pictures['pictures_gradcam_ms'] <= 1000)}"],
        [f"one {WINDOW}-step window, IG", f"{pictures['series_ig_ms']:.0f}",
         f"predict {pictures['series_predict_ms']:.1f}",
         f"{pictures['series_ig_ms'] / pictures['series_predict_ms']:.0f}x a predict",
         f"≤ 500 ms: {_ok(pictures['series_ig_ms'] <= 500)}"],
    ]  # fmt: skip
    unchanged = net["with_rps"] / net["without_rps"]
    served_rows = [
        ["/predict, app with /explain", f"{net['with_rps']:,.0f}", f"{net['with_p50_ms']:.2f}",
         f"{unchanged:.3f}x without", f"≥ 0.98x: {_ok(unchanged >= 0.98)}"],
        ["/predict, app without /explain", f"{net['without_rps']:,.0f}",
         f"{net['without_p50_ms']:.2f}", "1.000x", ""],
        ["/explain (IG, one row)", f"{net['explain_rps']:,.0f}", f"{net['explain_p50_ms']:.2f}",
         f"{net['explain_rps'] / net['with_rps']:.3f}x /predict", ""],
    ]  # fmt: skip
    return "\n".join(
        [
            "Explaining one prediction (in process, one thread) and serving /explain",
            machine_line(),
            "",
            markdown_table(["input", "ours ms", "anchor ms", "ratio", "goal"], rows),
            "",
            f"Spearman ρ with SHAP's KernelExplainer, mean over {tab['rows']} test rows "
            "(training-mean baseline / zeros): the timed model (4 informative features of "
            f"16) {tab['rho']:.3f} / {tab['rho_zero']:.3f}; a 16-feature MLP whose every "
            f"feature matters {tab['rho_graded']:.3f} / {tab['rho_graded_zero']:.3f}",
            "",
            markdown_table(
                [
                    "served (wrk -c8, one process, no request log)",
                    "req/s",
                    "p50 ms",
                    "ratio",
                    "goal",
                ],
                served_rows,
            ),
            "",
            f"errors: /predict {net['with_errors'] + net['without_errors']}, "
            f"/explain {net['explain_errors']}",
        ]
    )


def _ok(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20, help="rows compared with SHAP")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds (median)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--with-explain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.with_explain, args.project)
        return 0
    import torch

    torch.set_num_threads(1)
    tab = table_row(args.rows)
    pictures = image_and_window()
    net = served(args.seconds, args.rounds)
    print(report(tab, pictures, net))
    return 0


if __name__ == "__main__":
    sys.exit(main())

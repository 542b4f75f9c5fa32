"""A model's lineage and its model card: where it came from, how it was made, how good.

Both are written into bundles (``model.json`` keeps the lineage as data,
``MODEL_CARD.md`` says the same for people) so an exported model carries its story
without the project file it came from.
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.errors import NotFoundError
from lepton_desktop.core.store import datasets as dataset_store
from lepton_desktop.core.store import runs as run_store

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.entities import DatasetVersion, ModelVersion
    from lepton_desktop.core.inference.predictor import ModelParts


def lineage(ctx: ProjectContext, version: ModelVersion) -> dict[str, Any]:
    """Run, creation time and the dataset versions the model was trained on, newest first."""
    return {
        "run_id": version.run_id,
        "created_at": version.created_at,
        "dataset": version.params.get("dataset"),
        "datasets": _dataset_chain(ctx, version.dataset_version_id),
        "notes": version.notes,
        "importance": _importance(ctx, version.run_id),
        "evaluation": _global_views(ctx, version.run_id),
    }


def _run_evaluation(ctx: ProjectContext, run_id: int | None) -> dict[str, Any]:
    """The run's stored evaluation, or ``{}`` when there is no run (deleted: its model
    stays)."""
    if run_id is None:
        return {}
    try:
        return run_store.get(ctx.conn, run_id).evaluation or {}
    except NotFoundError:
        return {}


def _importance(ctx: ProjectContext, run_id: int | None) -> dict[str, Any]:
    """The run's global importances (permutation importance of its evaluation), if any."""
    permutation = _run_evaluation(ctx, run_id).get("importance") or {}
    return {"permutation": permutation} if permutation else {}


def _global_views(ctx: ProjectContext, run_id: int | None) -> dict[str, Any]:
    """The run's strong baseline and partial dependence (averages; ICE lines stay in the
    project), or ``{}`` when the run is gone or predates them."""
    evaluation = _run_evaluation(ctx, run_id)
    views: dict[str, Any] = {}
    if evaluation.get("strong_baseline"):
        strong = evaluation["strong_baseline"]
        views["strong_baseline"] = {
            "name": strong["name"],
            "metrics": {k: v for k, v in strong["metrics"].items() if isinstance(v, float)},
            "fit_seconds": strong["fit_seconds"],
            "gain": strong["gain"],
        }
    if evaluation.get("dependence", {}).get("columns"):
        dependence = evaluation["dependence"]
        views["partial_dependence"] = {
            "outputs": dependence["outputs"],
            "kind": dependence["kind"],
            "columns": [
                {"column": c["column"], "grid": c["grid"], "average": c["average"]}
                | ({"categorical": True} if c.get("categorical") else {})
                for c in dependence["columns"]
            ],
        }
    return views


def _dataset_chain(ctx: ProjectContext, version_id: int | None) -> list[dict[str, Any]]:
    chain: list[dict[str, Any]] = []
    while version_id is not None:
        try:
            dataset = dataset_store.get_version(ctx.conn, version_id)
        except NotFoundError:  # deleted since: the lineage stops at what is left
            chain.append({"id": version_id, "missing": True})
            break
        chain.append(
            {
                "ref": dataset.ref,
                "kind": dataset.kind,
                "rows": dataset.n_rows,
                "source": dataset.source,
                "operations": [op.get("op", op.get("step", "?")) for op in dataset.operations],
                "created_at": dataset.created_at,
            }
            | _personal_data(dataset)
        )
        version_id = dataset.parent_id
    return chain


def _personal_data(dataset: DatasetVersion) -> dict[str, Any]:
    # Which columns held personal data and what prep did to them (names and kinds
    # only, never a value), so a model's card says how its data was protected.
    from lepton_desktop.core.datasets.pii_found import findings_of

    found = {f.column: f.kind for f in findings_of(dataset.columns)}
    treated = {
        name: action
        for op in dataset.operations
        if op.get("op") == "pii"
        for name, action in op.get("columns", {}).items()
    }
    out: dict[str, Any] = {}
    if found:
        out["personal_data"] = found
    if treated:
        out["personal_data_treated"] = treated
    return out


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "unknown"
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def model_card(parts: ModelParts, story: dict[str, Any], files: list[str]) -> str:
    """``MODEL_CARD.md`` for ``parts`` with lineage ``story`` (see :func:`lineage`)."""
    sections = [
        _header(parts, story),
        _data(parts, story),
        _training(parts, story),
        _metrics(parts),
        *_global_importance(parts, story),
        _global_section(story.get("evaluation") or {}),
        _use(parts, files),
    ]
    return "\n\n".join(sections) + "\n"


def _header(parts: ModelParts, story: dict[str, Any]) -> str:
    lines = [
        f"# Model card: {parts.ref}",
        "",
        f"A {parts.task} model ({parts.arch.upper()}) trained with Lepton Desktop on "
        f"{_when(story.get('created_at'))}; exported on {_when(story.get('exported_at'))}.",
    ]
    if parts.aliases:
        lines.append(f"Aliases when exported: {', '.join('@' + a for a in parts.aliases)}.")
    if story.get("notes"):
        lines += ["", f"Notes: {story['notes']}"]
    return "\n".join(lines)


def _data(parts: ModelParts, story: dict[str, Any]) -> str:
    params = parts.params
    lines = ["## Data", ""]
    lines.append(f"- Trained on dataset version `{story.get('dataset')}`.")
    if not story.get("datasets"):
        lines.append("  - no longer in the project (deleted since)")
    for entry in story.get("datasets", []):
        if entry.get("missing"):
            lines.append(f"  - dataset version id {entry['id']}: no longer in the project")
            continue
        ops = f", steps: {', '.join(entry['operations'])}" if entry["operations"] else ""
        lines.append(
            f"  - `{entry['ref']}` ({entry['kind']}, {entry['rows']:,} rows, from "
            f"`{entry['source']}`{ops})"
        )
        lines += _personal_lines(entry)
    lines.append(f"- Target: `{params.get('target')}`.")
    if params.get("classes"):
        lines.append(f"- Classes: {', '.join(f'`{c}`' for c in params['classes'])}.")
    inputs = ", ".join(f"`{i['name']}` ({i['dtype']})" for i in parts.signature.get("inputs", []))
    lines.append(f"- Raw inputs: {inputs or 'see the pipeline'}.")
    shape = ", ".join(str(d) for d in parts.params["spec"]["input_shape"])
    lines.append(
        f"- Model input: float32 of shape [N, {shape}], made from raw inputs by the "
        f"{len(parts.pipeline)} pipeline step(s) in `model.json`."
    )
    return "\n".join(lines)


def _personal_lines(entry: dict[str, Any]) -> list[str]:
    lines = []
    treated = entry.get("personal_data_treated") or {}
    if treated:
        done = ", ".join(
            f"`{name}` {action}{'ped' if action == 'drop' else 'ed'}"
            for name, action in treated.items()
        )
        lines.append(f"    - personal data prepared away: {done}")
    found = entry.get("personal_data") or {}
    if found:
        kinds = ", ".join(f"`{name}` ({kind.replace('_', ' ')})" for name, kind in found.items())
        lines.append(f"    - personal data found in: {kinds} (never a model input)")
    return lines


#: Hyperparameters that only mean something for some architectures.
_ONLY_FOR = {
    "hidden": "mlp", "activation": "mlp", "batch_norm": "mlp",
    "channels": "cnn", "kernel": "cnn", "augment": "cnn", "flip": "cnn",
    "cell": "rnn", "rnn_layers": "rnn", "rnn_hidden": "rnn", "window": "rnn",
    "horizon": "rnn", "bidirectional": "rnn",
}  # fmt: skip


def _training(parts: ModelParts, story: dict[str, Any]) -> str:
    config = {
        k: v
        for k, v in parts.params.get("config", {}).items()
        if _ONLY_FOR.get(k, parts.arch) == parts.arch
    }
    lines = ["## Training", "", f"- Run {story.get('run_id')}."]
    lines += _privacy_lines(parts.params.get("privacy"))
    lines += [
        "",
        "| hyperparameter | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | `{json.dumps(v)}` |" for k, v in sorted(config.items()) if v is not None]
    lines += [
        "",
        "Architecture (rebuilds the model with the weights):",
        "",
        "```json",
        json.dumps(parts.params.get("spec")),
        "```",
    ]
    return "\n".join(lines)


def _privacy_lines(privacy: dict[str, Any] | None) -> list[str]:
    """What a private run spent, and what it changed in the model to train privately."""
    if not privacy:
        return ["- Trained without differential privacy."]
    accountant = {"rdp": "Rényi DP", "prv": "PRV"}.get(
        privacy["accountant"], privacy["accountant"]
    )
    lines = [
        f"- Trained with differential privacy: ε={privacy['epsilon']:.3g}, "
        f"δ={privacy['delta']:g}, clipping C={privacy['max_grad_norm']:g}, "
        f"{accountant} accountant ({privacy.get('library', 'Opacus')}): DP-SGD with "
        f"noise σ={privacy['noise_multiplier']:.3g} over {privacy['steps']:,} steps of "
        f"Poisson-sampled batches (sample rate {privacy['sample_rate']:.3g}); the target "
        f"was ε={privacy['target_epsilon']:g}. The guarantee covers the training rows."
    ]
    lines += [f"  - {change}" for change in privacy.get("changes", [])]
    return lines


def _metrics(parts: ModelParts) -> str:
    if not parts.metrics:
        return "## Metrics\n\nNone recorded."
    rows = [
        f"| {k} | {v:.4g} |" if isinstance(v, int | float) else f"| {k} | {v} |"
        for k, v in parts.metrics.items()
    ]
    return "\n".join(["## Metrics (test split)", "", "| metric | value |", "|---|---|", *rows])


def _global_importance(parts: ModelParts, story: dict[str, Any]) -> list[str]:
    """Which source columns matter overall (none for images and series: no section)."""
    permutation = story.get("importance", {}).get("permutation") or {}
    if not permutation:
        return []
    score = "accuracy" if parts.params.get("classes") else "R²"
    rows = [f"| {column} | {drop:.4g} |" for column, drop in permutation.items()]
    return ["\n".join([
        "## Global importance (test split)", "",
        f"Permutation importance: the drop in {score} when a source column's values are "
        "shuffled (one-hot groups together). `lepton-desktop explain` explains single "
        "answers.", "",
        "| column | permutation importance |", "|---|---|", *rows,
    ])]  # fmt: skip


def _global_section(views: dict[str, Any]) -> str:
    """The strong baseline beside the network, and partial dependence per top column."""
    lines = ["## Against a strong baseline, and partial dependence", ""]
    strong = views.get("strong_baseline")
    if strong:
        gain = strong["gain"]
        verdict = "beats" if gain["value"] > 0 else "does not beat"
        lines.append(
            f"- This network {verdict} a strong classical model fitted on the same "
            f"split and inputs, {strong['name']} ({strong['fit_seconds']:.2f} s to fit): "
            f"gain in test {gain['metric']} {gain['value']:+.4g}."
        )
        lines += ["", "| metric | strong baseline |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in strong["metrics"].items()]
    else:
        lines.append("- No strong baseline was fitted for this run.")
    dependence = views.get("partial_dependence")
    if dependence:
        lines += ["", f"Partial dependence (average {dependence['kind']} on the test split "
                  "as one column varies, the others as they are):", ""]  # fmt: skip
        for column in dependence["columns"]:
            lines.append(f"- `{column['column']}`: " + _curve(column, dependence["outputs"]))
    return "\n".join(lines)


def _curve(column: dict[str, Any], outputs: list[str]) -> str:
    grid = column["grid"]
    if column.get("categorical"):  # one average per category
        return "; ".join(
            f"{name}: " + ", ".join(f"{c} {v:.3g}" for c, v in zip(grid, curve, strict=True))
            for name, curve in zip(outputs, column["average"], strict=True)
        )
    ends = [
        f"{name} {curve[0]:.3g} → {curve[-1]:.3g}"
        for name, curve in zip(outputs, column["average"], strict=True)
    ]
    return f"from {grid[0]:.4g} to {grid[-1]:.4g}: " + ", ".join(ends)


def _use(parts: ModelParts, files: list[str]) -> str:
    outputs = "`logits` and `probabilities`" if parts.params.get("classes") else "`value`"
    lines = [
        "## How to use",
        "",
        "- Serve it: `lepton-desktop serve THIS_BUNDLE.zip` (HTTP: KServe V2, MLflow "
        "scoring and `/predict` with raw records).",
        "- In Python: `lepton_desktop.core.inference.bundle.read_bundle(path)` checks the "
        "bundle and returns its models; `Predictor(parts).predict(records)` answers.",
    ]
    if any(f.endswith("model.onnx") for f in files):
        lines.append(
            f"- `model.onnx` (onnxruntime and any ONNX runtime): input `input`, outputs "
            f"{outputs}; the pipeline steps in `model.json` turn raw inputs into `input`."
        )
    lines.append(
        "- `manifest.json` lists the SHA-256 of every file; `read_bundle` refuses a bundle "
        "whose files do not match it."
    )
    return "\n".join(lines)

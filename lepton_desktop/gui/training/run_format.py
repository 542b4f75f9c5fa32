"""How runs read in the Training tab: status words and colours, headline metrics.

Pure functions over :class:`~lepton_desktop.core.entities.Run`, shared by the runs
table, the evaluation view and the end-of-run notification.
"""

from __future__ import annotations

import math
import time
from typing import Any

from lepton_desktop.core.entities import Run
from lepton_desktop.core.training import strong_baseline

#: Statuses of a run whose worker is (or should be) alive.
ACTIVE_STATUSES = ("queued", "running", "paused")
#: Colours of the status column, readable on light and dark backgrounds.
STATUS_COLORS = {
    "queued": "#8a8f98",
    "running": "#3a7bd5",
    "paused": "#d4a017",
    "finished": "#2a9d8f",
    "stopped": "#9b5de5",
    "failed": "#d64545",
    "interrupted": "#e76f51",
    "stale": "#e76f51",
}
#: Headline metric of each task: (key in the evaluation, label).
HEADLINES = {
    "classification": ("accuracy", "accuracy"),
    "regression": ("r2", "R²"),
    "forecasting": ("mse", "MSE"),
}
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "precision": "Precision (macro)",
    "recall": "Recall (macro)",
    "f1": "F1 (macro)",
    "roc_auc": "ROC-AUC",
    "mse": "MSE",
    "mae": "MAE",
    "rmse": "RMSE",
    "r2": "R²",
}


def is_active(run: Run) -> bool:
    """True while the run is queued, running or paused (its worker should be alive)."""
    return run.status in ACTIVE_STATUSES


def status_text(run: Run, stale: bool = False) -> str:
    """The status word shown for a run ("stale" when its worker stopped reporting)."""
    return "stale" if stale and is_active(run) else run.status


def status_color(run: Run, stale: bool = False) -> str:
    """The colour of the run's status word."""
    return STATUS_COLORS.get(status_text(run, stale), STATUS_COLORS["queued"])


def live_duration(run: Run, now: float | None = None) -> float | None:
    """Seconds the run has trained: up to now while it runs, else start to finish."""
    if run.started_at is None:
        return None
    if run.status in ("running", "paused") and run.finished_at is None:
        return max(0.0, (now or time.time()) - run.started_at)
    return run.duration


def format_value(value: Any) -> str:
    """A metric value: four decimals below 10, else one (``—`` when missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, int | float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def _task(run: Run) -> str:
    task = (run.evaluation or {}).get("task") or run.task
    return task if task in HEADLINES else "classification"


def headline(run: Run, part: str = "test") -> tuple[str, float] | None:
    """The run's headline metric as ``(label, value)`` once evaluated (``part``: test or
    baseline)."""
    key, label = HEADLINES[_task(run)]
    value = ((run.evaluation or {}).get(part) or {}).get(key)
    return None if value is None else (label, float(value))


def best_text(run: Run) -> str:
    """The runs table's "best" cell: the test headline, else the best validation loss."""
    top = headline(run)
    if top is not None:
        return f"{top[0]} {top[1]:.3f}"
    if run.best_value is not None:
        return f"{run.monitor or 'val_loss'} {run.best_value:.4g} (epoch {run.best_epoch})"
    return ""


def gain_text(run: Run) -> str:
    """The runs table's gain over the strong baseline: ``+0.034 accuracy`` (empty when the
    run has none). Positive: the network beats it (for MSE, by that much lower)."""
    gain = strong_baseline.gain(run.evaluation)
    if gain is None:
        return ""
    metric = (run.evaluation or {})["strong_baseline"]["gain"]["metric"]
    number = f"{gain:+.3f}" if abs(gain) < 100 else f"{gain:+,.1f}"
    return f"{number.replace('-', '−')} {METRIC_LABELS.get(metric, metric)}"


def gain_color(gain: float) -> str:
    """Green when the network beats its strong baseline, red when it loses."""
    return STATUS_COLORS["finished"] if gain >= 0 else STATUS_COLORS["failed"]


def gain_tooltip(run: Run) -> str:
    """Which strong baseline the gain is measured against, or why there is none."""
    strong = (run.evaluation or {}).get("strong_baseline")
    if strong:
        return (f"Test {strong['gain']['metric']} of the network minus that of "
                f"{strong['name']} fitted on the same split (positive: the network wins)")
    if run.evaluation:
        return "No strong baseline was fitted for this run"
    return "Known once the run is evaluated"


def run_title(run: Run) -> str:
    """``Run 3 (iris:2, mlp)``."""
    return f"Run {run.id} ({run.dataset_ref}, {run.arch})"


def outcome_text(run: Run) -> str:
    """One line on how a run ended, for the notification and the status bar."""
    text = f"{run_title(run)} {run.status}"
    top, base = headline(run), headline(run, "baseline")
    if top is not None:
        text += f": test {top[0]} {top[1]:.3f}"
        if base is not None:
            text += f" (baseline {base[1]:.3f})"
    elif run.error:
        text += f": {run.error}"
    return text + "."


def epsilon(run: Run) -> float | None:
    """The ε a private run spent (or, before it is evaluated, its target); None if the run
    is not private."""
    spent = (run.evaluation or {}).get("privacy")
    if spent:
        return float(spent["epsilon"])
    target = run.config.get("dp_epsilon")
    return None if target is None else float(target)


def epsilon_text(run: Run) -> str:
    """The runs table's ε: ``2.99`` spent, ``≤ 3`` while training, empty if not private."""
    value = epsilon(run)
    if value is None:
        return ""
    return f"{value:.3g}" if (run.evaluation or {}).get("privacy") else f"≤ {value:g}"


def privacy_tooltip(run: Run) -> str:
    """What the ε column means for this run."""
    spent = (run.evaluation or {}).get("privacy")
    if spent:
        return (
            f"Trained with differential privacy: ε = {spent['epsilon']:.3g} spent of "
            f"{spent['target_epsilon']:g}, δ = {spent['delta']:g}, clipping C = "
            f"{spent['max_grad_norm']:g}, noise σ = {spent['noise_multiplier']:.3g} "
            f"({spent['accountant'].upper()} accountant). Smaller ε: more private"
        )
    if run.config.get("dp_epsilon") is not None:
        return f"Private run: it will spend at most ε = {run.config['dp_epsilon']:g}"
    return "Trained without differential privacy"

"""Training and the registry: ``train`` (or resume a run) and ``models``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lepton_desktop.cli.common import Command, open_project, print_json, run_in_foreground
from lepton_desktop.core.errors import LeptonError

#: The ``train`` options that become the run's TrainConfig (when given).
TRAIN_OPTIONS = (
    "arch",
    "task",
    "target",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "loss",
    "class_weights",
    "schedule",
    "patience",
    "grad_clip",
    "weight_decay",
    "hidden",
    "dropout",
    "channels",
    "augment",
    "flip",
    "cell",
    "window",
    "horizon",
    "device",
    "seed",
    "model_name",
    "strong_baseline",
    "dp_epsilon",
    "dp_delta",
    "dp_max_grad_norm",
    "dp_batch_norm",
)
#: The options of private training, which mean nothing without --dp-epsilon.
DP_OPTIONS = ("dp_delta", "dp_max_grad_norm", "dp_batch_norm")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give sizes like 128,64") from None


def _add_train(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a model on a dataset (or resume a run)")
    p.add_argument("project", type=Path)
    p.add_argument("dataset", nargs="?", help="NAME or NAME:VERSION (omit with --resume)")
    p.add_argument("--resume", type=int, metavar="RUN_ID", help="continue an interrupted run")
    p.add_argument("--arch", choices=("mlp", "cnn", "rnn"))
    p.add_argument("--task", choices=("classification", "regression", "forecasting"))
    p.add_argument("--target", help="column to predict (default: the dataset's target)")
    p.add_argument("--epochs", type=int, help="default: about 3000 steps, 5..200 epochs")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd"))
    p.add_argument("--loss", choices=("cross_entropy", "mse", "huber"))
    p.add_argument(
        "--class-weights", action="store_true", default=None, help="weight classes by rarity"
    )
    p.add_argument("--schedule", choices=("none", "cosine", "step", "plateau"))
    p.add_argument("--patience", type=int, help="early stopping: epochs without improvement")
    p.add_argument("--grad-clip", type=float, help="max gradient norm (0: off)")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--hidden", type=_sizes, help="MLP widths, e.g. 128,64")
    p.add_argument("--dropout", type=float)
    p.add_argument("--channels", type=_sizes, help="CNN channels per block, e.g. 32,64")
    p.add_argument("--no-augment", dest="augment", action="store_false", default=None)
    p.add_argument(
        "--flip",
        action="store_true",
        default=None,
        help="CNN: also mirror images left-right when augmenting",
    )
    p.add_argument("--cell", choices=("lstm", "gru"))
    p.add_argument("--window", type=int, help="time series: input length")
    p.add_argument("--horizon", type=int, help="time series: steps ahead to forecast")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--seed", type=int)
    p.add_argument("--name", dest="model_name", help="model name (default: DATASET-ARCH)")
    p.add_argument(
        "--no-strong-baseline",
        dest="strong_baseline",
        action="store_false",
        default=None,
        help="do not fit a classical model (logistic/ridge, gradient boosting, "
        "autoregressive) beside the network",
    )
    _add_privacy(p)
    p.add_argument("--json", action="store_true")
    return p


def _add_privacy(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("differential privacy (DP-SGD with Opacus)")
    group.add_argument(
        "--dp-epsilon",
        type=float,
        metavar="E",
        help="train with differential privacy, spending at most this ε (e.g. 1, 3, 8: "
        "smaller is more private and less accurate)",
    )
    group.add_argument(
        "--dp-delta",
        type=float,
        metavar="D",
        help="δ of the guarantee, below 1/training rows (default: the power of ten "
        "below 1/n, at most 1e-5)",
    )
    group.add_argument(
        "--dp-max-grad-norm",
        type=float,
        metavar="C",
        help="clip each example's gradient to this L2 norm (default 1.0)",
    )
    group.add_argument(
        "--dp-batch-norm",
        choices=("replace", "refuse"),
        help="batch norm cannot be private: replace it by group norm (default) or refuse",
    )


def _add_models(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("models", help="list registered model versions")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--alias",
        nargs=2,
        metavar=("MODEL[:VERSION]", "ALIAS"),
        help="point ALIAS (e.g. champion) at a version first",
    )
    return p


def cmd_train(args: argparse.Namespace) -> None:
    """``train PROJECT DATASET --arch A [...]`` or ``train PROJECT --resume RUN``."""
    from lepton_desktop.core.training import strong_baseline
    from lepton_desktop.core.training.config import TrainConfig

    if args.strong_baseline is not False and args.resume is None:
        # First of all: checking the options imports torch, and scikit-learn's import
        # in the strong baseline's own process should run beside that one.
        strong_baseline.prewarm()
    with open_project(args.project) as project:
        if args.resume is not None:
            _check_resume_options(args)
            project.check_intact()
            job_id = project.runs.queue_resume(args.resume)
        else:
            if not args.dataset or not args.arch:
                raise LeptonError("train: give DATASET and --arch (or --resume RUN_ID)")
            options = {k: v for k in TRAIN_OPTIONS if (v := getattr(args, k)) is not None}
            _check_privacy_options(options)
            project.check_intact(project.dataset(args.dataset))
            _, job_id = project.runs.queue(args.dataset, TrainConfig.from_dict(options))
    result = run_in_foreground(args.project, job_id, "train", "training", unit="epoch")
    if args.json:
        print_json(result)
        return
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in result["metrics"].items())
    baseline = ", ".join(f"{k} {v:.4g}" for k, v in result["baseline"].items())
    print(
        f"run {result['run_id']} {result['status']}: model {result['model']} "
        f"({result['epochs']} epochs on {result['device']})"
    )
    print(f"  test:     {metrics}")
    print(f"  baseline: {baseline}")
    _print_strong_baseline(result)
    _print_privacy(result)


def _check_privacy_options(options: dict[str, Any]) -> None:
    given = [k for k in DP_OPTIONS if k in options]
    if given and "dp_epsilon" not in options:
        flag = "--" + given[0].replace("_", "-")
        raise LeptonError(f"train: {flag} applies to private training; give --dp-epsilon E")


def _print_privacy(result: dict[str, Any]) -> None:
    private = result.get("privacy")
    if not private:
        return
    print(
        f"  privacy:  ε = {private['epsilon']:.3g} spent of {private['target_epsilon']:g}, "
        f"δ = {private['delta']:g}, clipping C = {private['max_grad_norm']:g}, noise σ = "
        f"{private['noise_multiplier']:.3g} ({private['accountant'].upper()} accountant)"
    )
    for change in private.get("changes", []):
        print(f"  note: {change}")


def _check_resume_options(args: argparse.Namespace) -> None:
    # A resumed run keeps the options it was queued with: a new one would be ignored.
    if args.dp_epsilon is not None or any(getattr(args, k) is not None for k in DP_OPTIONS):
        raise LeptonError(
            "train: --dp-* options apply to a new run; a resumed run keeps its privacy settings"
        )
    if args.strong_baseline is not None:
        raise LeptonError(
            "train: --no-strong-baseline applies to a new run; a resumed run keeps the "
            "options it started with"
        )


def _print_strong_baseline(result: dict[str, Any]) -> None:
    strong = result.get("strong_baseline")
    if not strong:
        return
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in strong["metrics"].items())
    print(f"  strong:   {metrics}  ({strong['name']}, fitted in {strong['fit_seconds']:.2f} s)")
    from lepton_desktop.core.training.strong_baseline import verdict

    words = verdict({"test": result["metrics"], "strong_baseline": strong})
    if words:
        print(f"  {words}")


def cmd_models(args: argparse.Namespace) -> None:
    """``models PROJECT [--json] [--alias MODEL ALIAS]``."""
    with open_project(args.project) as project:
        if args.alias:
            project.check_intact()
            project.models.set_alias(*args.alias)
        summary = project.models.summary()
    if args.json:
        print_json({"models": summary})
        return
    if not summary:
        print("no models yet")
    for m in summary:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in m["metrics"].items())
        aliases = f" @{', @'.join(m['aliases'])}" if m["aliases"] else ""
        head = f"{m['model']:<28} {m['arch']:<4} {m['task']:<15} run {m['run_id']}"
        print(f"  {head}{aliases}  {metrics}")


#: This group's subcommands, for ``entry.build_parser``.
COMMANDS = (
    Command("train", _add_train, cmd_train),
    Command("models", _add_models, cmd_models),
)

"""The one entry point: the GUI, the headless commands, and ``worker`` (DESIGN §4).

A user's mistake ends with one ``error: ...`` line on stderr and exit status 2,
never a traceback. ``--json`` prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from lepton_desktop import __version__
from lepton_desktop.core.errors import InvalidOptionError, LeptonError

COMMANDS = (
    "new",
    "info",
    "import",
    "prep",
    "train",
    "tune",
    "models",
    "export",
    "serve",
    "demo",
    "worker",
)
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as one ``error: ...`` line."""

    def error(self, message: str) -> NoReturn:
        raise LeptonError(f"{self.prog.split()[-1]}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every headless command (the GUI form is handled in ``main``)."""
    parser = _Parser(prog="lepton-desktop", description="Lepton Desktop command line.")
    parser.add_argument("--version", action="version", version=f"lepton-desktop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("new", help="create an empty project file")
    p.add_argument("project", type=Path)

    p = sub.add_parser("info", help="summarise a project")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("import", help="import a CSV, Parquet or .npz file, or an image folder")
    p.add_argument("project", type=Path)
    p.add_argument("source", type=Path)
    p.add_argument(
        "--name", required=True, help="dataset name (an existing one gets a new version)"
    )
    p.add_argument("--kind", choices=("tabular", "images", "timeseries"))
    p.add_argument("--target", help="the column to predict")
    p.add_argument(
        "--time-column", help="time series: the time column (default: first date column)"
    )
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("prep", help="preprocess a dataset into a new version")
    p.add_argument("project", type=Path)
    p.add_argument("dataset", help="NAME (latest version) or NAME:VERSION")
    p.add_argument("--dedupe", action="store_true", help="remove duplicate rows (runs first)")
    p.add_argument("--fill", choices=("mean", "median", "mode", "zero", "drop"))
    p.add_argument("--scale", choices=("standard", "minmax", "none"), default="none")
    p.add_argument("--onehot", action="store_true", help="one-hot encode categorical columns")
    p.add_argument("--split", help="train,val,test fractions, e.g. 0.7,0.15,0.15")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")

    _add_train(sub)
    _add_tune(sub)

    p = sub.add_parser("models", help="list registered model versions")
    p.add_argument("project", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--alias",
        nargs=2,
        metavar=("MODEL[:VERSION]", "ALIAS"),
        help="point ALIAS (e.g. champion) at a version first",
    )

    p = sub.add_parser("export", help="export a model as TorchScript, ONNX, a bundle or Triton")
    p.add_argument("project", type=Path)
    p.add_argument("model", help="NAME (latest), NAME:VERSION or NAME@ALIAS")
    p.add_argument("--format", required=True, choices=("torchscript", "onnx", "bundle", "triton"))
    p.add_argument(
        "--out", required=True, type=Path, help="file to write (triton: repository directory)"
    )
    p.add_argument("--json", action="store_true")

    _add_serve(sub)

    p = sub.add_parser("demo", help="create the demo project from the bundled sample data")
    p.add_argument("project", type=Path, nargs="?", help="default: the per-user demo path")

    p = sub.add_parser("worker", help="internal: run one queued job (started by the GUI)")
    p.add_argument(
        "kind", choices=("import", "prep", "train", "export", "tune", "trial", "serve")
    )
    p.add_argument("--project", type=Path, required=True)
    p.add_argument("--job", type=int, required=True)
    return parser


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give sizes like 128,64") from None


def _add_tune(sub: Any) -> None:
    p = sub.add_parser("tune", help="tune hyperparameters with Optuna (or extend a study)")
    p.add_argument("project", type=Path)
    p.add_argument("dataset", nargs="?", help="NAME or NAME:VERSION (omit with --resume)")
    p.add_argument("--arch", choices=("mlp", "cnn", "rnn"))
    p.add_argument("--trials", type=int, help="trials to finish (with --resume: this many more)")
    p.add_argument("--sampler", help="tpe (default), gp, grid, random or cmaes")
    p.add_argument("--pruner", help="median (default), hyperband or none")
    p.add_argument("--jobs", type=int, help="trials at once on this machine (default 1)")
    p.add_argument("--storage", help="shared Optuna storage URL (default: the project file)")
    p.add_argument("--space", type=Path, help="search space, a .json or .toml file")
    p.add_argument("--metric", help="validation metric to optimize (default f1, or mse)")
    p.add_argument("--objectives", help="several objectives, e.g. f1,params")
    p.add_argument("--epochs", type=int, help="epochs per trial (default: as training decides)")
    p.add_argument("--study", help="the study's name (join it on a shared --storage)")
    p.add_argument("--resume", metavar="STUDY", help="extend a study with --trials more")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")


def _add_serve(sub: Any) -> None:
    from lepton_desktop.commands_serving import add_serve_parser

    add_serve_parser(sub)


def _add_train(sub: Any) -> None:
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
    p.add_argument("--json", action="store_true")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
            return _run_gui(argv)
        args = build_parser().parse_args(argv)
        return int(_dispatch(args) or 0)
    except LeptonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _run_gui(argv: list[str]) -> int:
    paths = [a for a in argv if not a.startswith("-")]
    if paths and not Path(paths[0]).exists():
        commands = ", ".join(COMMANDS[:-1])
        raise LeptonError(f"{paths[0]}: no such file (commands are: {commands})")
    # Imported here so that headless commands never load Qt.
    from lepton_desktop.gui.app import run

    return run(argv)


def _dispatch(args: argparse.Namespace) -> int | None:
    from lepton_desktop import commands

    if args.command == "tune":
        from lepton_desktop.commands_tuning import cmd_tune

        return cmd_tune(args)
    if args.command == "export":
        from lepton_desktop.commands_export import cmd_export

        return cmd_export(args)
    if args.command == "serve":
        from lepton_desktop.commands_serving import cmd_serve

        return cmd_serve(args)
    handler = getattr(commands, f"cmd_{args.command}")
    return handler(args)


def print_json(payload: dict[str, Any]) -> None:
    """Print exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(payload, default=str) + "\n")


def parse_split(text: str | None) -> tuple[float, float, float] | None:
    """``"0.7,0.15,0.15"`` -> fractions; refuses anything that is not three parts summing to 1."""
    if text is None:
        return None
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise InvalidOptionError(
            f"--split {text!r}: give three numbers, e.g. 0.7,0.15,0.15"
        ) from None
    if len(parts) != 3 or any(p < 0 for p in parts) or abs(sum(parts) - 1) > 1e-6 or parts[0] == 0:
        raise InvalidOptionError(
            f"--split {text!r}: three fractions (train,val,test), train > 0, summing to 1"
        )
    return parts  # type: ignore[return-value]

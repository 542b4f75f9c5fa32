"""Study plots: the Tuning tab's charts against ``optuna.visualization`` on one study.

A project file gets a seeded 10,000-trial study (``tests/study_factory.py``: six
hyperparameters, log and categorical ones, a conditional one; ten intermediate values
a trial; ~20% pruned, ~2% failed, 3 running). Then, in this process:

- ``ours``: the Tuning tab's charts (``StudyCharts``, offscreen, 1400x900) read the
  study with the incremental SQL reader (a first, full read) and redraw every plot:
  each chart's ``redraw()`` (one ``setData`` per item) followed by ``grab()`` so Qt
  really paints it. Importances are computed as the tab does, off the GUI thread in
  the app, timed here on their own row.
- ``anchor``: ``optuna.load_study`` on the same file, then ``optuna.visualization``
  builds plotly figures: ``plot_optimization_history``, ``plot_intermediate_values``,
  ``plot_param_importances`` (the same PED-ANOVA evaluator), ``plot_parallel_coordinate``,
  ``plot_slice`` and ``plot_contour`` on the two parameters our contour shows. Figures
  are only built, never rendered (plotly renders in a browser), which favours the anchor.

Then 100 new trials arrive: ours reads only the new and unfinished trials, merges
them and redraws every chart; the anchor rebuilds every figure from the same Study
object (its cached storage also fetches only new and unfinished trials).

Goal: ours at least 10x faster in total. Usage (from the repository root)::

    .venv/bin/python -m bench.study_plots                  # 10,000 trials
    .venv/bin/python -m bench.study_plots --trials 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._common import REPO, machine_line, markdown_table

GOAL = 10.0
CONTOUR = ("lr", "hidden")
PLOTS = ("history", "intermediate", "importance", "parallel", "slice", "contour")


def _build(path: Path, trials: int, epochs: int) -> None:
    sys.path.insert(0, str(REPO))
    from tests.study_factory import make_study_file

    make_study_file(path, trials, epochs=epochs, running=3)


# -- ours -----------------------------------------------------------------------------------


class Ours:
    """The Tuning tab's charts on one study, timed per plot (wall and CPU ms)."""

    def __init__(self, path: Path) -> None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from lepton_desktop.gui.app import create_app
        from lepton_desktop.gui.tuning.chart_panel import StudyCharts

        self.app = create_app()
        self.path = path
        self.charts = StudyCharts()
        self.charts.resize(1400, 900)
        self.charts.show()
        self.app.processEvents()

    def load(self) -> Any:
        """A fresh, full read of the study (what opening it in the tab does)."""
        from lepton_desktop.core.project import Project
        from lepton_desktop.core.tuning import reading
        from lepton_desktop.core.tuning.study_view import StudyView

        with Project.open(self.path) as project:
            view = StudyView(reading.list_studies(project)[0])
            view.apply(reading.read_delta(project, view.cursor()))
        return view

    def groups(self) -> dict[str, list[Any]]:
        """The charts of each plot kind."""
        c = self.charts
        return {
            "history": [c.history],
            "intermediate": [c.intermediate],
            "importance": [c.importance],
            "parallel": [c.parallel],
            "slice": list(c.slices.ensure_charts()),
            "contour": [c.contour.plot],
        }

    def full(self) -> dict[str, tuple[float, float]]:
        """Load, compute importances, redraw and paint every plot; ms per row."""
        from lepton_desktop.core.tuning import importance
        from lepton_desktop.core.tuning.reading import COMPLETE

        times: dict[str, tuple[float, float]] = {}
        view = _timed(times, "load", self.load)
        self.charts.set_view(view)
        self.charts.contour.sync_params(list(view.params))
        self.charts.contour.x_param.setCurrentText(CONTOUR[0])
        self.charts.contour.y_param.setCurrentText(CONTOUR[1])
        ranked = _timed(
            times, "importance (compute)", lambda: importance.compute(importance.snapshot(view))
        )
        self.charts.importance.importances = ranked
        self.charts.importance.computed_for = (view.study.name, view.count(COMPLETE))
        for name, charts in self.groups().items():
            _timed(times, name, lambda charts=charts: [_paint(c) for c in charts])
        return times

    def incremental(self, add: Callable[[], None]) -> tuple[float, float, int]:
        """After ``add()`` writes new trials: read them, merge, redraw every chart."""
        from lepton_desktop.core.project import Project
        from lepton_desktop.core.tuning import reading

        view = self.charts.view
        add()
        wall, cpu = time.perf_counter(), time.thread_time()
        with Project.open(self.path) as project:
            delta = reading.read_delta(project, view.cursor())
        view.apply(delta)
        for charts in self.groups().values():
            for chart in charts:
                if chart is not self.charts.importance:  # recomputed in the background
                    chart.refresh()
                    chart.grab()
        return (
            (time.perf_counter() - wall) * 1000,
            (time.thread_time() - cpu) * 1000,
            delta.rows_fetched,
        )


def _paint(chart: Any) -> None:
    chart.redraw()
    chart.grab()


def _timed(times: dict[str, tuple[float, float]], name: str, work: Callable[[], Any]) -> Any:
    wall, cpu = time.perf_counter(), time.thread_time()
    result = work()
    times[name] = ((time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000)
    return result


# -- the anchor ----------------------------------------------------------------------------


def anchor_full(path: Path) -> tuple[dict[str, float], Any]:
    """optuna.load_study, then every optuna.visualization figure; ms per row."""
    import optuna
    from optuna import visualization as vis
    from optuna.importance import PedAnovaImportanceEvaluator

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    times: dict[str, float] = {}
    started = time.perf_counter()
    study = optuna.load_study(study_name="study", storage=f"sqlite:///{path}?timeout=30")
    study.get_trials(deepcopy=False)
    times["load"] = (time.perf_counter() - started) * 1000
    figures = _anchor_figures(study, vis, PedAnovaImportanceEvaluator)
    for name, build in figures.items():
        started = time.perf_counter()
        build()
        times[name] = (time.perf_counter() - started) * 1000
    return times, study


def _anchor_figures(study: Any, vis: Any, evaluator: Any) -> dict[str, Callable[[], Any]]:
    return {
        "history": lambda: vis.plot_optimization_history(study),
        "intermediate": lambda: vis.plot_intermediate_values(study),
        "importance": lambda: vis.plot_param_importances(study, evaluator=evaluator()),
        "parallel": lambda: vis.plot_parallel_coordinate(study),
        "slice": lambda: vis.plot_slice(study),
        "contour": lambda: vis.plot_contour(study, params=list(CONTOUR)),
    }


def anchor_refresh(study: Any) -> float:
    """Every figure again after new trials (the Study's cached storage fetches the new)."""
    from optuna import visualization as vis
    from optuna.importance import PedAnovaImportanceEvaluator

    started = time.perf_counter()
    for build in _anchor_figures(study, vis, PedAnovaImportanceEvaluator).values():
        build()
    return (time.perf_counter() - started) * 1000


# -- the report ------------------------------------------------------------------------------


def report(
    ours: list[dict[str, tuple[float, float]]],
    anchor: list[dict[str, float]],
    refresh: tuple[list[tuple[float, float, int]], list[float]],
    trials: int,
) -> str:
    """The markdown tables and the goal line."""
    rows = []
    names = ["load", *PLOTS]
    for name in names:
        key = "importance (compute)" if name == "importance" else name
        wall = statistics.median(o[key][0] for o in ours)
        cpu = statistics.median(o[key][1] for o in ours)
        if name == "importance":  # compute and draw, as plot_param_importances does both
            wall += statistics.median(o["importance"][0] for o in ours)
            cpu += statistics.median(o["importance"][1] for o in ours)
        theirs = statistics.median(a[name] for a in anchor)
        rows.append((name, wall, cpu, theirs))
    total = [sum(r[i] for r in rows) for i in (1, 2, 3)]
    redraw = sum(statistics.median(o[n][0] for o in ours) for n in PLOTS)
    table = [[n, f"{w:,.1f}", f"{c:,.1f}", f"{t:,.1f}", f"{t / w:,.1f}x"] for n, w, c, t in rows]
    table.append(
        [
            "**total**",
            f"**{total[0]:,.1f}**",
            f"**{total[1]:,.1f}**",
            f"**{total[2]:,.1f}**",
            f"**{total[2] / total[0]:,.1f}x**",
        ]
    )
    ours_refresh, anchor_ms = refresh
    inc_wall = statistics.median(r[0] for r in ours_refresh)
    inc_cpu = statistics.median(r[1] for r in ours_refresh)
    rows_read = ours_refresh[0][2]
    anchor_inc = statistics.median(anchor_ms)
    lines = [
        f"Study of {trials:,} trials; {machine_line()}; load average "
        f"{os.getloadavg()[0]:.2f}. Times in ms (median of {len(ours)} rounds for ours, "
        f"{len(anchor)} for the anchor).",
        "",
        markdown_table(
            ["plot", "ours wall", "ours CPU", "optuna.visualization", "anchor / ours"], table
        ),
        "",
        f"All of our plots redrawn and painted (no load, no importance computation): "
        f"{redraw:,.1f} ms.",
        "",
        markdown_table(
            ["100 new trials arrive", "ours wall", "ours CPU", "anchor", "anchor / ours"],
            [
                [
                    "read new + unfinished, merge, redraw every plot",
                    f"{inc_wall:,.1f}",
                    f"{inc_cpu:,.1f}",
                    f"{anchor_inc:,.1f}",
                    f"{anchor_inc / inc_wall:,.1f}x",
                ]
            ],
        ),
        "",
        f"Rows read by the incremental poll: {rows_read:,}.",
        "",
        f"Goal: total at least {GOAL:.0f}x faster: "
        f"{'PASS' if total[2] / total[0] >= GOAL else 'FAIL'} ({total[2] / total[0]:,.1f}x); "
        f"full redraw under 100 ms: {'PASS' if redraw < 100 else 'FAIL'} ({redraw:,.1f} ms).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build the study, measure both sides, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1, help="anchor rounds (ours: 3x as many)")
    parser.add_argument("--new", type=int, default=100, help="trials that arrive afterwards")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="study-plots-") as tmp:
        path = Path(tmp) / "study.lepton"
        _build(path, args.trials, args.epochs)
        ours_side = Ours(path)
        ours = [ours_side.full() for _ in range(3 * args.repeat)]
        anchor, studies = [], []
        for _ in range(args.repeat):
            times, study = anchor_full(path)
            anchor.append(times)
            studies.append(study)
        refresh = _refresh(path, ours_side, studies, args)
        print(report(ours, anchor, refresh, args.trials))
    return 0


def _refresh(
    path: Path, ours: Ours, studies: list[Any], args: argparse.Namespace
) -> tuple[list[tuple[float, float, int]], list[float]]:
    from tests.study_factory import add_with_sql, generate

    ours_times, anchor_times = [], []
    for round_ in range(args.repeat):
        seed = 100 + round_

        def add(seed: int = seed) -> None:
            add_with_sql(path, "study", generate(args.new, epochs=args.epochs, seed=seed))

        ours_times.append(ours.incremental(add))
        anchor_times.append(anchor_refresh(studies[round_]))
    return ours_times, anchor_times


if __name__ == "__main__":
    sys.exit(main())

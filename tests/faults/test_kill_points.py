"""Real commands killed at every named point and at random moments, then resumed.

After each kill (see ``harness``): the session's processes all end, the file passes
``integrity_check`` and ``foreign_key_check``, opening it loses no committed row and
leaves nothing queued, running or importing, and the work resumes and ends done
exactly once. The short mode below runs in CI; ``pytest tests/faults --long`` kills
at least 200 times at random points and moments and prints a tally.

(The windows of issue 10's defect 4 have their own tests with finer assertions in
``test_crash_windows.py``: train's after-queue, after-register and mid-flush, a
trial killed mid-epoch, and the tune parent killed alone.)
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import pytest

from tests.faults.driver import Clock, chain, finish, kill_once
from tests.faults.harness import Tally
from tests.faults.scenarios import SCENARIOS

pytestmark = pytest.mark.slow

POINTS = [
    ("import", "after-queue"),
    ("import", "after-claim"),
    ("import", "after-rows@1"),
    ("import", "mid-transaction@9"),
    ("prep", "after-claim"),
    ("prep", "after-rows@2"),
    ("prep", "mid-transaction@12"),
    ("train", "after-claim"),
    ("train", "mid-transaction@20"),
    ("tune", "after-queue@2"),  # the trial worker's job: queued, its worker not started
    ("tune", "after-register:main"),  # the best trial's model, before the study knows
    ("serve", "after-claim"),
    ("serve", "serving"),
]


@pytest.mark.parametrize(("kind", "point"), POINTS, ids=[f"{k}-{p}" for k, p in POINTS])
def test_a_kill_at_a_named_point_leaves_a_sound_project_that_resumes(
    kind: str,
    point: str,
    fault_project: Path,
    fault_data: Path,
    fault_env: dict[str, str],
    tmp_path: Path,
) -> None:
    scenario = SCENARIOS[kind]
    argv = scenario.start(fault_project, fault_data)
    verdict = kill_once(scenario, argv, fault_project, fault_env, tmp_path / "kill", point=point)
    assert verdict.killed, f"{point} was never reached: {verdict.detail}"
    assert verdict.sound, str(verdict)
    assert finish(scenario, fault_project, fault_data, fault_env, tmp_path) is None


RANDOM = [("import", 11), ("prep", 12), ("train", 13), ("tune", 14), ("serve", 15)]


@pytest.mark.parametrize(("kind", "seed"), RANDOM, ids=[k for k, _ in RANDOM])
def test_a_kill_at_a_random_moment_leaves_a_sound_project_that_resumes(
    kind: str,
    seed: int,
    fault_template: Path,
    fault_data: Path,
    fault_env: dict[str, str],
    tmp_path: Path,
) -> None:
    scenario, rng, clock = SCENARIOS[kind], random.Random(seed), Clock()
    for attempt in range(4):  # a moment after the command ended is no kill: sooner, then
        project = tmp_path / f"attempt{attempt}" / "faults.lepton"
        project.parent.mkdir()
        shutil.copy(fault_template, project)
        argv = scenario.start(project, fault_data)
        verdict = kill_once(
            scenario, argv, project, fault_env, project.parent, rng=rng, clock=clock
        )
        assert verdict.sound, str(verdict)
        if verdict.killed:
            break
        clock.seconds[kind] = clock.typical(scenario) / 2
    assert verdict.killed, "every random moment came after the command had ended"
    assert finish(scenario, project, fault_data, fault_env, project.parent) is None


#: The long run's goal, and the time it may take (minutes; LEPTON_LONG_MINUTES).
LONG_KILLS = 200
#: Cheap commands (no torch) are drawn more often, so the kills fit the time.
LONG_WEIGHTS = {"import": 4, "prep": 4, "train": 3, "tune": 1, "serve": 1}


@pytest.mark.timeout(4 * 3600)  # bounded by LEPTON_LONG_MINUTES and each command's own limit
def test_long_run_of_kills(
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    fault_template: Path,
    fault_data: Path,
    fault_env: dict[str, str],
    tmp_path: Path,
) -> None:
    if not request.config.getoption("--long"):
        pytest.skip("the long run of kills needs --long")
    minutes = float(os.environ.get("LEPTON_LONG_MINUTES", "60"))
    rng = random.Random(int(os.environ.get("LEPTON_LONG_SEED", "2024")))
    kinds = [k for k, weight in LONG_WEIGHTS.items() for _ in range(weight)]
    tally, clock = Tally(), Clock()
    started = time.monotonic()
    number = 0
    while len(tally.kills) < LONG_KILLS and time.monotonic() - started < minutes * 60:
        number += 1
        project = tmp_path / f"chain{number}" / "faults.lepton"
        project.parent.mkdir()
        shutil.copy(fault_template, project)
        with capsys.disabled():  # progress and trouble, as they happen
            scenario = SCENARIOS[rng.choice(kinds)]
            chain(scenario, project, fault_data, fault_env, project.parent, rng, tally, clock)
            if number % 10 == 0:
                print(f"  {len(tally.kills)} kills in {number} chains", flush=True)
        shutil.rmtree(project.parent, ignore_errors=True)  # a chain's files: ~10 MB
    report = tally.table(time.monotonic() - started)
    with capsys.disabled():
        print("\n== long fault run ==\n" + report, flush=True)
    (Path(request.config.rootpath) / ".pytest_cache").mkdir(exist_ok=True)
    (Path(request.config.rootpath) / ".pytest_cache" / "faults-tally.txt").write_text(report)
    unsound = [str(v) for v in tally.verdicts if not v.sound]
    assert not unsound, "\n".join(unsound[:20])
    assert tally.resumes_ok == tally.resumes
    assert len(tally.kills) >= LONG_KILLS, f"only {len(tally.kills)} kills in {minutes} minutes"

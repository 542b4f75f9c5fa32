"""Driving the kills: one kill and its verdict, and chains of kills that end resumed.

:func:`kill_once` runs a scenario's command, kills it (at a kill point or at a random
moment) and judges the file. :func:`chain` kills a scenario's work again and again
(the resume gets killed too, at random) and finally lets it finish: "resume works"
is proven by the chain's end, which must leave the work done exactly once.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from tests.faults.harness import Command, Tally, Verdict, cli_env, committed, judge
from tests.faults.scenarios import Scenario, carry_on

#: A command that a kill point does not end in this long has passed the point.
COMMAND_TIMEOUT_S = 300.0
#: A server not killed by its kill point within this long is stopped instead.
SERVE_WAIT_S = 60.0
#: At most this many kills in one chain before the work must finish.
CHAIN_KILLS = 3


class Clock:
    """How long each scenario's commands take when nobody kills them (a running mean)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def typical(self, scenario: Scenario) -> float:
        """The time a random kill is drawn within."""
        return self.seconds.get(scenario.kind, scenario.typical_s)

    def saw(self, scenario: Scenario, seconds: float) -> None:
        """Note a full run's length."""
        old = self.seconds.get(scenario.kind, seconds)
        self.seconds[scenario.kind] = 0.7 * old + 0.3 * seconds


def kill_once(
    scenario: Scenario,
    argv: list[str],
    project: Path,
    env: dict[str, str],
    folder: Path,
    *,
    point: str | None = None,
    rng: random.Random | None = None,
    clock: Clock | None = None,
) -> Verdict:
    """Run ``argv`` and kill it at ``point`` or, without one, at a random moment."""
    before = committed(project)
    command = Command(argv, cli_env(env, point), folder)
    if point is not None:
        how = f"{scenario.kind} {argv[0]} at {point}"
        if scenario.serving:
            _stop_if_alive(command, SERVE_WAIT_S)
        ended = command.finish(COMMAND_TIMEOUT_S)
    else:
        rng = rng or random.Random()
        delay = rng.uniform(0.0, (clock or Clock()).typical(scenario))
        whole = rng.random() < 0.5
        how = f"{scenario.kind} {argv[0]} after {delay:.1f}s ({'group' if whole else 'command'})"
        _wait(command, delay)
        before |= committed(project)  # what is committed a moment before the kill
        killed = command.kill(whole_group=whole)
        ended = command.finish(COMMAND_TIMEOUT_S, killed_by_us=killed)
    verdict = judge(project, how, ended, before)
    if not ended.killed and ended.returncode not in (0, -15):
        verdict.resumed = False
        verdict.detail = f"exit {ended.returncode}: {ended.stderr}"
    if not ended.killed and clock is not None and not scenario.serving:
        clock.saw(scenario, ended.seconds)
    return verdict


def _wait(command: Command, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and command.process.poll() is None:
        time.sleep(0.02)


def _stop_if_alive(command: Command, seconds: float) -> None:
    """A server its kill point spared is stopped as a user would (SIGTERM)."""
    _wait(command, seconds)
    if command.process.poll() is None:
        command.process.terminate()


def finish(
    scenario: Scenario, project: Path, data: Path, env: dict[str, str], folder: Path
) -> str | None:
    """Carry the work on until done and check it; None if all went well, else why not."""
    for attempt in range(3):
        ended = carry_on(scenario, project, data, env, folder / f"resume{attempt}")
        if ended is None:
            break
        if ended.returncode != 0:
            return f"{scenario.kind} resume exit {ended.returncode}: {ended.stderr}"
        if scenario.serving:
            break  # a server's work is to start and answer, again and again
    try:
        scenario.check(project)
    except AssertionError as exc:
        return f"not done exactly once: {exc}"
    return None


def chain(
    scenario: Scenario,
    project: Path,
    data: Path,
    env: dict[str, str],
    folder: Path,
    rng: random.Random,
    tally: Tally,
    clock: Clock,
) -> None:
    """Kill the scenario's work up to :data:`CHAIN_KILLS` times, then let it finish."""
    argv: list[str] | None = scenario.start(project, data)
    for index in range(CHAIN_KILLS):
        if argv is None or (index and rng.random() < 0.4):
            break
        point = scenario.random_point(rng) if rng.random() < 0.5 else None
        verdict = kill_once(
            scenario,
            argv,
            project,
            env,
            folder / f"kill{index}",
            point=point,
            rng=rng,
            clock=clock,
        )
        tally.add(verdict)
        if not verdict.sound:
            print(f"  UNSOUND: {verdict}", flush=True)
        argv = scenario.resume(project, data)
    tally.resumes += 1
    problem = finish(scenario, project, data, env, folder / "finish")
    if problem is None:
        tally.resumes_ok += 1
    else:
        print(f"  RESUME FAILED ({scenario.kind}): {problem[-1500:]}", flush=True)

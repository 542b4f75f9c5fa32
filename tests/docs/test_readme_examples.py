"""README.md's examples, extracted from the file and run as written on the demo project.

What runs: every command of the fenced ```bash blocks (``lepton-desktop ...``,
``sqlite-utils ...`` and, in Serving, ``curl ...``), and the Python request example of
Serving, section by section, in order, in one folder per section that holds a copy of
the demo project as ``p.lepton`` (the README's project file; built once per session by
``lepton-desktop demo``). A command passes when it exits 0; with ``--json`` it must
print exactly one JSON object. The only changes made to an example, all here:

- ``lepton-desktop`` is this checkout's ``python -m lepton_desktop`` and ``sqlite-utils``
  the test interpreter's ``python -m sqlite_utils`` (shell functions);
- ``lepton-desktop demo p.lepton`` is not built again: the session's demo is copied there;
- ``lepton-desktop serve ...`` runs in the background with ``--port 0`` added, until the
  section's examples are done (then SIGTERM, and it must exit 0); the address it prints
  replaces ``localhost:8765`` in the section's later examples;
- ``curl`` runs with ``--fail-with-body`` added (a shell function), so an HTTP error
  fails the example; the ``"request_id": "..."`` placeholder of the feedback example
  becomes the id of the last ``/predict`` answer;
- the files the examples name but leave to the reader are written first
  (:data:`PLACEHOLDER_FILES`).

What does not run is listed with its reason: whole blocks in :data:`NOT_RUN`, single
commands in :data:`SKIPPED`; a new block or command that fits neither fails
:func:`test_every_example_is_run_or_listed` until it is classified.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLE_DATA

README = REPO / "README.md"
#: The project file the README's examples name.
PROJECT = "p.lepton"
#: The server address the README's request examples use.
README_ADDRESS = "localhost:8765"
#: The first words of the commands this test runs.
RUNNABLE = ("lepton-desktop", "sqlite-utils", "curl")

#: Blocks that are not examples to run: (section, language) -> why.
NOT_RUN = {
    ("Install", "bash"): "installs the .deb system-wide; tests/e2e/test_deb.py does it for real",
    ("Quick start for developers", "bash"): "dev.sh: launches the app, or runs the tests",
    ("Command line", ""): "the synopsis of every command and flag, not a command",
    ("Tuning", "toml"): "the search-space format (checked as an MLP space below)",
    ("Privacy", "text"): "needs data with personal data, a request id of the reader's",
    ("Python API", "python"): "works on the reader's own churn.csv",
    ("Development", ""): "the source tree's layout",
    ("Explain a prediction", ""): "what an explain command prints (its numbers vary by run)",
    ("Self-test", "bash"): "tests/cli/test_selftest.py runs it (it takes a minute or two)",
}
#: Commands that cannot run here: a part of the command -> why.
SKIPPED = {
    "monitor feedback p.lepton labels.csv": (
        "needs request ids from the reader's own request log; tests/cli/test_monitor_cli.py "
        "imports such a file into a real server's log"
    ),
    "--storage postgresql://user@host/db": (
        "needs a PostgreSQL server at user@host; tests/e2e/test_postgres_tune.py runs the "
        "same command against a throwaway server"
    ),
    "--delete-deployment 3 --keep-log": (
        "needs a third, stopped deployment; tests/cli/test_cli_request_log.py deletes one "
        "with --keep-log and checks its log stays"
    ),
}


def _rows_csv() -> str:
    with open(SAMPLE_DATA / "iris.csv", newline="") as handle:
        rows = [{k: v for k, v in r.items() if k != "species"} for r in csv.DictReader(handle)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows[:3])
    return out.getvalue()


#: Files the examples name but leave to the reader: a CNN search space for ``--space
#: cnn.toml``, raw iris rows (without the label) for ``--data-binary @rows.csv``, and
#: the passphrase of ``--passphrase-file passphrase.txt``.
PLACEHOLDER_FILES = {
    "cnn.toml": '[blocks]\ntype = "int"\nlow = 1\nhigh = 2\n',
    "rows.csv": _rows_csv(),
    "passphrase.txt": "correct horse battery staple\n",  # Privacy: an encrypted project's
}

_PRELUDE = """set -euo pipefail
lepton-desktop() { "$LEPTON_PYTHON" -m lepton_desktop "$@"; }
sqlite-utils() { "$LEPTON_PYTHON" -m sqlite_utils "$@"; }
curl() { command curl --fail-with-body --max-time 60 "$@"; }
"""


@dataclasses.dataclass(frozen=True)
class Block:
    """A fenced block of README.md."""

    section: str  # the ``## `` heading above it
    lang: str
    line: int  # README.md line of its first line of text
    text: str

    def commands(self) -> list[tuple[int, str]]:
        """``(line, command)``: the block's shell commands, continuation lines joined."""
        found: list[tuple[int, str]] = []
        pending, start = "", 0
        for number, line in enumerate(self.text.splitlines(), self.line):
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending, start = (f"{pending}\n{line}", start) if pending else (line, number)
            if pending.endswith("\\") or not _complete(pending):
                continue
            found.append((start, pending))
            pending = ""
        assert not pending, f"README.md:{start}: unfinished command"
        return found


def _complete(command: str) -> bool:
    try:
        shlex.split(command, comments=True)
    except ValueError:  # an open quote: the command goes on on the next line
        return False
    return True


def readme_blocks() -> list[Block]:
    """Every fenced block of README.md, with its section."""
    blocks: list[Block] = []
    section, fence, body, start = "", None, [], 0
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if fence is None and line.startswith("## "):
            section = line[3:].strip()
        elif fence is None and line.startswith("```"):
            fence, body, start = line[3:].strip(), [], number + 1
        elif fence is not None and line.startswith("```"):
            blocks.append(Block(section, fence, start, "\n".join(body)))
            fence = None
        elif fence is not None:
            body.append(line)
    return blocks


def _skip_reason(command: str) -> str | None:
    return next((why for part, why in SKIPPED.items() if part in command), None)


def _serving_sections(blocks: list[Block]) -> set[str]:
    return {
        b.section
        for b in blocks
        if b.lang == "bash"
        for _, c in b.commands()
        if shlex.split(c, comments=True)[:2] == ["lepton-desktop", "serve"]
    }


def _runnable_sections() -> list[str]:
    return sorted(
        {
            b.section
            for b in readme_blocks()
            if b.lang == "bash" and (b.section, "bash") not in NOT_RUN
        }
    )


def test_every_example_is_run_or_listed() -> None:
    blocks = readme_blocks()
    serving = _serving_sections(blocks)
    unclassified = []
    for block in blocks:
        if (block.section, block.lang) in NOT_RUN:
            continue
        if block.lang == "python" and block.section in serving:
            continue  # a request example, run against the section's server
        if block.lang != "bash":
            unclassified.append(f"README.md:{block.line}: a {block.lang or 'plain'} block")
            continue
        for line, command in block.commands():
            first = shlex.split(command, comments=True)[0]
            if first not in RUNNABLE or (first == "curl" and block.section not in serving):
                unclassified.append(f"README.md:{line}: {command}")
    # Each must be made runnable here, or listed in NOT_RUN / SKIPPED with its reason.
    assert not unclassified, unclassified
    # Every listed exception still names something in the README.
    keys = {(b.section, b.lang) for b in blocks}
    assert set(NOT_RUN) <= keys, set(NOT_RUN) - keys
    commands = [c for b in blocks if b.lang == "bash" for _, c in b.commands()]
    for part in SKIPPED:
        assert sum(part in c for c in commands) == 1, part
    sections = set(_runnable_sections())  # the extraction finds them
    assert {"Serving", "Tuning", "Reading a project file with sqlite-utils"} <= sections


def test_the_search_space_example_is_a_valid_mlp_space() -> None:
    from lepton_desktop.core.tuning.space import validate_space

    (block,) = [b for b in readme_blocks() if b.lang == "toml"]
    assert validate_space(tomllib.loads(block.text), "mlp")


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project, built once by ``lepton-desktop demo``; copy it, never change it."""
    path = tmp_path_factory.mktemp("readme-demo") / PROJECT
    subprocess.run(
        [sys.executable, "-m", "lepton_desktop", "demo", str(path)],
        env=_env(), capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), LEPTON_PYTHON=sys.executable)
    env.pop("LEPTON_SERVE_TOKEN", None)
    return env


class _Section:
    """Runs one section's examples in order in ``folder``; stops its servers at the end."""

    def __init__(self, folder: Path, demo: Path) -> None:
        self.folder = folder
        self.demo = demo
        self.address = README_ADDRESS
        self.request_id: str | None = None
        self.servers: list[subprocess.Popen[str]] = []

    def command(self, line: int, command: str) -> None:
        words = shlex.split(command, comments=True)
        if words[:2] == ["lepton-desktop", "demo"]:
            shutil.copy(self.demo, self.folder / words[2])
        elif words[:2] == ["lepton-desktop", "serve"]:
            self._serve(line, words[1:])
        else:
            self._run(line, command, json_out="--json" in words)

    def python(self, line: int, code: str) -> None:
        code = code.replace(README_ADDRESS, self.address)
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=self.folder, env=_env(),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"README.md:{line}: the Python example failed\n{proc.stderr}"

    def _run(self, line: int, command: str, json_out: bool) -> None:
        command = command.replace(README_ADDRESS, self.address)
        if self.request_id is not None:
            command = command.replace('"request_id": "..."', f'"request_id": "{self.request_id}"')
        proc = subprocess.run(
            ["bash", "-c", _PRELUDE + command], cwd=self.folder, env=_env(),
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"README.md:{line}: {command}\n{proc.stdout}{proc.stderr}"
        if json_out:
            assert proc.stdout.count("\n") == 1, f"README.md:{line}: not one JSON object"
            json.loads(proc.stdout)
        if "/predict" in command:
            self.request_id = json.loads(proc.stdout)["request_id"]

    def _serve(self, line: int, args: list[str]) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", "lepton_desktop", *args, "--port", "0"], cwd=self.folder,
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.servers.append(process)
        assert process.stdout is not None
        said = process.stdout.readline()  # the address, once it listens (or EOF)
        match = re.search(r"http://(127\.0\.0\.1:\d+)", said)
        assert match, f"README.md:{line}: the server did not start: {said!r}"
        self.address = match.group(1)

    def close(self) -> None:
        for process in self.servers:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=60)
            assert process.returncode == 0, f"the server did not stop cleanly:\n{err}"


@pytest.fixture
def section_runner(demo_project: Path, tmp_path: Path) -> Iterator[_Section]:
    shutil.copy(demo_project, tmp_path / PROJECT)
    for name, text in PLACEHOLDER_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    runner = _Section(tmp_path, demo_project)
    try:
        yield runner
    finally:
        for process in runner.servers:
            if process.poll() is None:
                process.kill()
                process.communicate()


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("section", _runnable_sections())
def test_the_examples_of_a_section_run_as_written(section: str, section_runner: _Section) -> None:
    for block in [b for b in readme_blocks() if b.section == section]:
        if (block.section, block.lang) in NOT_RUN:
            continue
        if block.lang == "python":
            section_runner.python(block.line, block.text)
            continue
        for line, command in block.commands():
            if _skip_reason(command) is None:
                section_runner.command(line, command)
    section_runner.close()

"""The request log's journal: written before each answer, shipped into the project after.

A server process never writes the project file on its request path. Before it sends an
answer it appends the request's row to its own journal file (one ``write`` call to an
``O_APPEND`` file: a few microseconds, and the row survives a crash of the process,
even SIGKILL, because it is in the operating system's cache once ``write`` returns).
The :class:`JournalShipper`, in the server's parent process (the supervisor of its
worker processes, see :mod:`.runner`), tails the journals and copies their rows into the
project in batches, one short transaction each, then deletes what it shipped. Shipping
costs 25-35 µs of CPU a row on a fresh log, about 50 on a log of millions of rows (the
log's full-text index, rollups, drift sketches) plus the file's writes and checkpoints,
and on a loaded machine that comes out of the answers (p99 at one connection was 2.2x
the unlogged bundle's). So while the servers are writing (their journals grew since
the last pass) the shipper waits, up to :data:`MAX_LAG_S` behind, and catches up when
they pause; under load that lasts longer, it ships anyway, a pass at a time, at the
lowest thread priority. The full-text index merges its segments only in passes with
nothing to ship (not a little at every batch, which was a quarter of a row's cost on a
long log). Journals left by a killed server are shipped by the next server of the project, or by
:func:`replay_orphans` whenever the project is opened, so a request answered is a
request logged. Rows are keyed by their request id, so shipping one twice stores it
once.

A journal lives in the folder ``NAME.lepton-requests`` beside the project file (not
``-journal``: SQLite reads ``NAME.lepton-journal`` as its own rollback journal), one
file ``DEPLOYMENT-PID-SEQ.journal`` per server process and segment. A line is::

    R <tab> [ts, request_id, method, path, protocol, model, version, status,
             latency_ms, n_rows, error, deployment_id] <tab> INPUTS <tab> OUTPUTS <newline>
    F <tab> [request_id, label, row, ts, deployment_id] <newline>

where INPUTS and OUTPUTS are JSON text (or empty). JSON never holds a raw tab or
newline, so the separators are unambiguous, and the shipper stores INPUTS and OUTPUTS
as they are, without parsing them.

The journal of an encrypted project is encrypted too: each line is sealed whole with
AES-256-GCM under a key derived from the project's key (:class:`LineSeal`) and written
as ``E <tab> BASE64(nonce + ciphertext) <newline>``; the shipper opens it back. A
request's inputs never reach the disk in clear, even for the second before shipping.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from lepton_desktop.core import processes

if TYPE_CHECKING:
    import sqlite3

    from lepton_desktop.core.serving.context import RequestContext

log = logging.getLogger(__name__)

SUFFIX = ".journal"
#: A segment is closed and a new one started past this size, so shipped rows can go.
SEGMENT_BYTES = 64 << 20
#: Rows per shipping transaction (a busy server ships a few transactions a second).
SHIP_ROWS = 5000
#: While requests keep coming, shipping waits at most this long (the Monitoring tab
#: and the alert rules see a busy server's requests this much later at worst).
MAX_LAG_S = 10.0
_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)\.journal$")
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class LineSeal:
    """Seals journal lines of an encrypted project (AES-256-GCM, a random nonce each).

    The key is SHA-256 of a label and the project's raw SQLCipher key: a key of its
    own, useless for the project file itself.
    """

    PREFIX = b"E\t"

    def __init__(self, project_key: str) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        raw = bytes.fromhex(project_key[2:-1])
        self._aead = AESGCM(hashlib.sha256(b"lepton request journal v1\0" + raw).digest())

    @classmethod
    def of(cls, project: Path | str) -> LineSeal | None:
        """The seal of ``project``'s journal: None for a plain project."""
        from lepton_desktop.core.store import keys

        key = keys.key_for(project)
        return cls(key) if key is not None else None

    def seal(self, line: bytes) -> bytes:
        """One journal line (newline included) as its sealed line."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, line.rstrip(b"\n"), None)
        return self.PREFIX + base64.b64encode(nonce + sealed) + b"\n"

    def open(self, line: bytes) -> bytes:
        """The line a sealed line holds (ValueError: damaged or another key's)."""
        from cryptography.exceptions import InvalidTag

        data = base64.b64decode(line[len(self.PREFIX) :], validate=True)
        try:
            return self._aead.decrypt(data[:12], data[12:], None)
        except InvalidTag:
            raise ValueError("a sealed journal line that does not open") from None


def journal_dir(project: Path | str) -> Path:
    """The journal folder of a project file (``NAME.lepton-requests`` beside it)."""
    path = Path(project)
    return path.with_name(path.name + "-requests")


# -- writing (a server process) -------------------------------------------------------------


class RequestJournal:
    """One server process's journal (see the module docstring).

    Args:
        project: the project file the rows are for (its journal folder is created).
        deployment_id: the deployment the rows belong to (None: a bundle's log).
        capture_inputs: keep the requests' inputs (else only what was answered).
    """

    def __init__(
        self,
        project: Path,
        deployment_id: int | None,
        capture_inputs: bool,
        redact: Callable[[str | None, int | None], Mapping[str, str]] | None = None,
    ) -> None:
        folder = journal_dir(project)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.project = Path(project)
        self.folder = folder
        self.deployment_id = deployment_id
        self.capture_inputs = capture_inputs
        self.redact = redact
        self._segment = 0
        self._written = 0
        self._errors = 0
        self._seal = LineSeal.of(project)
        self._fd = self._open()

    def _open(self) -> int:
        self._segment += 1
        self._written = 0
        name = f"{self.deployment_id or 0}-{os.getpid()}-{self._segment}{SUFFIX}"
        return os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def request(self, ctx: RequestContext, ts: float, latency_ms: float) -> None:
        """Append one answered (or refused) request; called before its answer is sent."""
        meta = [ts, ctx.request_id, ctx.method, ctx.path, ctx.protocol, ctx.model,
                ctx.version, ctx.status, latency_ms, ctx.n_rows, ctx.error,
                self.deployment_id]  # fmt: skip
        inputs = _json(self._redacted(ctx)) if self.capture_inputs else b""
        outputs = _json(ctx.outputs() if callable(ctx.outputs) else ctx.outputs)
        self._write(b"R\t" + orjson.dumps(meta) + b"\t" + inputs + b"\t" + outputs + b"\n")

    def shadow(self, ctx: RequestContext, version: int, answers: Any, status: int,
               error: str | None, ts: float, latency_ms: float) -> None:  # fmt: skip
        """Append a shadow candidate's answer to ``ctx`` (see :mod:`.candidates`): a row
        of its own, protocol ``shadow``, without the inputs (the request's row has them)."""
        from lepton_desktop.core.store.request_log import shadow_id

        rows = len(answers) if answers else 0
        meta = [ts, shadow_id(ctx.request_id, version), ctx.method, ctx.path, "shadow",
                ctx.model, version, status, latency_ms, rows, error,
                self.deployment_id]  # fmt: skip
        self._write(b"R\t" + orjson.dumps(meta) + b"\t\t" + _json(answers) + b"\n")

    def _redacted(self, ctx: RequestContext) -> Any:
        # Personal data is replaced before it is written anywhere (the journal is the
        # first place a request's inputs are kept).
        columns = self.redact(ctx.model, ctx.version) if self.redact is not None else {}
        return redact_records(ctx.inputs, columns) if columns else ctx.inputs

    def feedback(self, request_id: str, label: Any, row: int) -> None:
        """Append the true label of one answered row."""
        item = [request_id, label, row, time.time(), self.deployment_id]
        self._write(b"F\t" + orjson.dumps(item) + b"\n")

    def _write(self, line: bytes) -> None:
        if self._seal is not None:
            line = self._seal.seal(line)
        try:
            os.write(self._fd, line)
        except OSError as exc:  # a full disk: keep answering, say so (once a thousand)
            self._errors += 1
            if self._errors % 1000 == 1:
                log.error("the request journal cannot be written (%s); %d rows lost so far",
                          exc, self._errors)  # fmt: skip
            return
        self._written += len(line)
        if self._written >= SEGMENT_BYTES:
            os.close(self._fd)
            self._fd = self._open()

    def close(self) -> None:
        """Close the file (the shipper deletes it once shipped)."""
        with contextlib.suppress(OSError):
            os.close(self._fd)


def redact_records(inputs: Any, columns: Mapping[str, str]) -> Any:
    """Raw records with the values of ``columns`` replaced by ``<redacted KIND>``.

    Anything but a list of records (a feature array) is returned as it is: features
    never hold a column flagged as personal data (training leaves them out).
    """
    if not isinstance(inputs, list):
        return inputs
    out = []
    for record in inputs:
        if isinstance(record, dict) and columns.keys() & record.keys():
            record = {key: redaction_marker(columns[key])
                      if key in columns and value is not None else value
                      for key, value in record.items()}  # fmt: skip
        out.append(record)
    return out


def redaction_marker(kind: str) -> str:
    """What stands in a captured input for a redacted value."""
    return f"<redacted {kind.replace('_', ' ')}>"


def _json(value: Any) -> bytes:
    if value is None:
        return b""
    return orjson.dumps(value, default=_jsonable, option=_OPTIONS)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):  # an image sent as bytes: keep it readable
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return str(value)


# -- shipping (the supervising process) ---------------------------------------------------


class Segment:
    """A journal file being shipped: where the next unread line starts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        found = _NAME.match(path.name)
        self.pid = int(found[2]) if found else 0
        self.number = int(found[3]) if found else 0


class JournalShipper:
    """Copies journal rows into the project (see the module docstring).

    Args:
        folder: the journal folder.
        connect: opens a connection to the project (called in the shipping thread).
        mine: pids of the processes whose journals are still being written; anything
            else in the folder is a dead server's and is shipped and deleted too.
        interval: seconds between shipping passes.
    """

    def __init__(
        self,
        folder: Path,
        connect: Callable[[], sqlite3.Connection],
        mine: Callable[[], set[int]],
        interval: float = 0.2,
    ) -> None:
        self.folder = folder
        self._connect = connect
        self._mine = mine
        self._interval = interval
        self._segments: dict[Path, Segment] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._wake = threading.Event()
        self._ships = 0  # shipping passes done (a pass let go by a busy server is not one)
        self._seen_bytes = 0
        self._behind_since: float | None = None
        self._force_until = 0.0  # drain() makes the passes ship, busy or not, till then
        self._seal = LineSeal.of(folder.with_name(folder.name.removesuffix("-requests")))
        self._merging = True  # the search index may have segments to merge
        #: Request rows stored so far (duplicates not counted).
        self.shipped = 0

    def start(self) -> None:
        """Ship now and then every ``interval`` seconds, from a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="journal-shipper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Every row is durable in a journal before its answer goes out, so shipping can
        # wait: under load the server processes get the CPU first, and the shipper
        # catches up when they idle.
        from lepton_desktop.core.store import serving as serving_store

        processes.lower_thread_priority(19)
        # The connection belongs to this thread: SQLite objects stay in their thread.
        self._conn = self._connect()
        # This thread merges the full-text index's segments in its idle passes (_tidy),
        # not a little at every shipped batch (a quarter of a row's cost on a long log).
        try:
            serving_store.defer_search_merges(self._conn)
        except Exception:  # a busy file: FTS5 keeps merging as it writes; shipping goes on
            log.exception("the request log's search index keeps its own merging")
        try:
            while True:
                stopping = self._stop.is_set()
                forced = stopping or time.monotonic() < self._force_until
                if forced or not self._servers_busy():
                    try:
                        if not self.ship() and not forced:
                            self._tidy()
                        self._behind_since = None
                    except Exception:  # a busy or damaged file: try again next pass
                        log.exception("shipping the request journal failed")
                    self._ships += 1
                if stopping:
                    break  # that was the last pass, after the writers had stopped
                self._wake.wait(self._interval)
                self._wake.clear()
        finally:
            self._conn.close()
            self._conn = None

    def ship(self) -> int:
        """One pass: every complete line of every journal into the project; the count.

        Runs in the shipping thread (or, without :meth:`start`, in the caller's, with a
        connection it opens on first use).
        """
        if self._conn is None:
            self._conn = self._connect()
        writing = self._mine()
        stored = 0
        for segment in self._scan():
            stored += self._ship_segment(segment)
            if self._finished(segment, writing):
                segment.path.unlink(missing_ok=True)
                self._segments.pop(segment.path, None)
        return stored

    def _tidy(self) -> None:
        """A pass with nothing to ship and the servers idle: one step of merging the
        request log's full-text index, until it has nothing left to merge."""
        from lepton_desktop.core.store import serving as serving_store

        if self._merging:
            assert self._conn is not None
            self._merging = serving_store.merge_search_index(self._conn)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until what was journaled before this call is in the project."""
        goal = self._ships + 2  # the pass running now may have read the files already
        deadline = time.monotonic() + timeout
        self._force_until = max(self._force_until, deadline)  # now, busy servers or not
        while self._ships < goal and self._thread is not None and self._thread.is_alive():
            self._wake.set()
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)

    def _servers_busy(self) -> bool:
        """Whether to let this pass go by: the journals grew since the last look (the
        servers are answering) and the oldest row waiting is under MAX_LAG_S old."""
        size = self._journal_bytes()
        grew, self._seen_bytes = size > self._seen_bytes, size
        if not grew:
            return False
        now = time.monotonic()
        if self._behind_since is None:
            self._behind_since = now
        return now - self._behind_since < MAX_LAG_S

    def _journal_bytes(self) -> int:
        total = 0
        for segment in self._scan():
            with contextlib.suppress(FileNotFoundError):  # a segment just shipped
                total += segment.path.stat().st_size
        return total

    def stop(self) -> None:
        """Stop the thread after a last pass (the writers must have stopped first)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        elif self._conn is not None:
            self._conn.close()
            self._conn = None

    def _scan(self) -> list[Segment]:
        if not self.folder.is_dir():
            return []
        for path in self.folder.glob(f"*{SUFFIX}"):
            if path not in self._segments:
                self._segments[path] = Segment(path)
        return sorted(self._segments.values(), key=lambda s: (s.pid, s.number))

    def _finished(self, segment: Segment, writing: set[int]) -> bool:
        # Fully read, and nobody will append to it again: its process is gone, or it
        # has moved on to a newer segment.
        try:
            size = segment.path.stat().st_size
        except FileNotFoundError:
            return True
        if segment.offset < size:
            return False
        newer = any(s.pid == segment.pid and s.number > segment.number
                    for s in self._segments.values())  # fmt: skip
        return newer or (segment.pid not in writing and not processes.alive(segment.pid))

    def _ship_segment(self, segment: Segment) -> int:
        # A segment is at most SEGMENT_BYTES and a line: its unread part fits in memory.
        with open(segment.path, "rb") as handle:
            handle.seek(segment.offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1  # a last line still being written waits
        lines = data[:complete].splitlines()
        stored = 0
        for start in range(0, len(lines), SHIP_ROWS):
            stored += self._store(lines[start : start + SHIP_ROWS])
        segment.offset += complete
        return stored

    def _store(self, lines: Iterable[bytes]) -> int:
        from lepton_desktop.core.store import serving as serving_store

        requests, feedback = parse_lines(lines, self._seal)
        assert self._conn is not None
        stored = serving_store.ship_journal(self._conn, requests, feedback)
        self._merging = self._merging or stored > 0
        self.shipped += stored
        return stored


def parse_lines(
    lines: Iterable[bytes], seal: LineSeal | None = None
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Journal lines -> request rows and feedback rows for the store (bad lines skipped).

    ``seal``: an encrypted project's, which opens its sealed lines first.
    """
    requests: list[tuple[Any, ...]] = []
    feedback: list[tuple[Any, ...]] = []
    for line in lines:
        try:
            if seal is not None and line.startswith(LineSeal.PREFIX):
                line = seal.open(line)
            if line.startswith(b"R\t"):
                _, meta, inputs, outputs = line.split(b"\t", 3)
                ts, rid, method, path, protocol, model, version, status, latency, rows, error, \
                    deployment = orjson.loads(meta)  # fmt: skip
                requests.append((deployment, ts, rid, method, path, protocol, model, version,
                                 status, latency, rows, inputs.decode() or None,
                                 outputs.decode() or None, error))  # fmt: skip
            elif line.startswith(b"F\t"):
                rid, label, row, ts, deployment = orjson.loads(line[2:])
                feedback.append((deployment, rid, ts, orjson.dumps(label).decode(), row))
        except (ValueError, orjson.JSONDecodeError):
            log.warning("skipping a damaged request-journal line (%d bytes)", len(line))
    return requests, feedback


def replay_orphans(project: Path, connect: Callable[[], sqlite3.Connection]) -> int:
    """Ship and delete the journals of servers that died (none still writes them).

    Opening a project calls this, so rows a killed server answered reach the request
    log even if that project is never served again. Returns the rows stored.
    """
    folder = journal_dir(project)
    if not folder.is_dir():
        return 0
    shipper = JournalShipper(folder, connect, mine=set)
    try:
        return shipper.ship()
    finally:
        shipper.stop()

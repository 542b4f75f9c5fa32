"""Forgetting served requests, and a copy of a project that can be shared.

:func:`forget_requests` clears what a server captured of some requests (their inputs
and outputs) and deletes the labels sent back for them, in transactions of
:data:`~lepton_desktop.core.store.privacy.FORGET_BATCH` requests, so a running
server's log writer is never held up for long. The log rows themselves stay (when,
which model, status, latency): request counts, the monitoring rollups and the drift
sketches, which hold counts and never values, still add up.

:func:`share_copy` writes a new file with ``VACUUM INTO``, removes from it the
request inputs and outputs, the feedback, the served values drift named and (with
``without_data``) every dataset row, then ``VACUUM``\\ s it, so none of those bytes
remain anywhere in the copy. The project itself is only read.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any

from lepton_desktop.core.context import ProjectContext
from lepton_desktop.core.errors import InvalidOptionError, LeptonError, NotFoundError
from lepton_desktop.core.progress import NullReporter, Reporter
from lepton_desktop.core.store import privacy as privacy_store
from lepton_desktop.core.store.db import connect


def forget_requests(
    ctx: ProjectContext,
    *,
    request_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
    model: str | None = None,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Forget one request (``request_id``) or every request logged in ``[since, until)``.

    ``reporter`` hears ``(requests forgotten, requests found)`` after each transaction
    (a window's progress bar). Returns ``{"requests", "inputs_cleared",
    "feedback_deleted"}``.

    Raises:
        InvalidOptionError: neither a request nor a time range, both, or an empty range.
        NotFoundError: ``request_id`` names no logged request (nothing is changed).
    """
    _check_choice(request_id, since, until)
    found = privacy_store.find_requests(
        ctx.conn, request_id=request_id, since=since, until=until, model=model
    )
    if request_id is not None and not found:
        raise NotFoundError(
            f"no logged request with id {request_id!r}"
            + (f" of model {model!r}" if model else "")
            + " (lepton-desktop requests PROJECT --search ID finds one)"
        )
    reporter = reporter or NullReporter()
    cleared = deleted = 0
    batch = privacy_store.FORGET_BATCH
    reporter.update(0, len(found), "forgetting requests")
    for start in range(0, len(found), batch):
        done, gone = privacy_store.forget_batch(ctx.conn, found[start : start + batch])
        cleared, deleted = cleared + done, deleted + gone
        reporter.update(min(start + batch, len(found)), len(found), "forgetting requests")
    if found:
        privacy_store.purge_leftovers(ctx.conn)
    return {"requests": len(found), "inputs_cleared": cleared, "feedback_deleted": deleted}


def _check_choice(request_id: str | None, since: float | None, until: float | None) -> None:
    ranged = since is not None or until is not None
    if request_id is None and not ranged:
        raise InvalidOptionError("say what to forget: --request ID, or --since T --until T")
    if request_id is not None and ranged:
        raise InvalidOptionError("forget either one request (--request) or a time range, not both")
    if request_id is not None and not request_id.strip():
        raise InvalidOptionError("--request: give a request id (the answer's X-Request-ID)")
    for flag, value in (("--since", since), ("--until", until)):
        if value is not None and not math.isfinite(value):
            raise InvalidOptionError(f"{flag}: not a time")
    if since is not None and until is not None and since >= until:
        raise InvalidOptionError("--since must be before --until")


def share_copy(ctx: ProjectContext, out: Path, *, without_data: bool = False) -> dict[str, Any]:
    """Write a copy of the project for sharing at ``out`` (see the module docs).

    Returns ``{"path", "bytes", "left_out": {what: count}, "without_data"}``.

    Raises:
        LeptonError: ``out`` exists (never overwritten), is the project, or its folder
            is missing; a partly written copy is removed.
    """
    out = Path(out)
    _check_target(ctx.path, out)
    partial = out.with_name(out.name + ".partial")
    _remove(partial)
    try:
        privacy_store.copy_into(ctx.conn, partial)
        copy = connect(partial)
        try:
            left_out = privacy_store.strip_copy(copy, without_data=without_data)
            privacy_store.vacuum(copy)
        finally:
            copy.close()
        # A link, not a rename: a file that appeared at ``out`` meanwhile is kept.
        os.link(partial, out)
    except FileExistsError:
        raise LeptonError(f"{out}: already exists; a copy never replaces a file") from None
    finally:
        _remove(partial)
    return {"path": str(out), "bytes": out.stat().st_size, "left_out": left_out,
            "without_data": without_data}  # fmt: skip


def _check_target(project: Path, out: Path) -> None:
    if out.exists() or out.is_symlink():
        raise LeptonError(f"{out}: already exists; a copy never replaces a file")
    if out.resolve() == Path(project).resolve():
        raise LeptonError(f"{out}: is the project itself; name a new file")
    if not out.parent.is_dir():
        raise LeptonError(f"{out.parent}: no such folder")


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()

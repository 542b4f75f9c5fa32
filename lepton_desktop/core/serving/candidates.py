"""Shadow candidates: a copy of each answered request, predicted after the answer is sent.

A server started with ``--shadow MODEL:VERSION`` answers as usual; once an answer of
MODEL has gone out (status 200), the request's raw records go through the candidate
version on the same event loop (batched with other work as any request), and its
answers are journaled as a row of their own: ``protocol`` ``shadow``, the request id
with ``-shadow-VERSION`` appended, the candidate's model and version, its latency and
outputs. Nothing of it is ever sent to a client, and the log's rollups leave shadow
rows out (they are not traffic). Shadow work is bounded: beyond
:data:`MAX_PENDING` copies waiting, new ones are dropped and counted.

Canaries need nothing here: :meth:`~lepton_desktop.core.serving.models.ModelSet.get`
draws, per request that names no version, whether the canary answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.errors import LeptonError
from lepton_desktop.core.serving.answers import client_error_status
from lepton_desktop.core.store.request_log import shadow_id

__all__ = ["shadow_id", "start_shadows"]

if TYPE_CHECKING:
    from lepton_desktop.core.serving.context import RequestContext
    from lepton_desktop.core.serving.state import ServerState

log = logging.getLogger(__name__)

#: Shadow predictions waiting at most; beyond, copies are dropped (and counted).
MAX_PENDING = 256


def start_shadows(state: ServerState, ctx: RequestContext) -> None:
    """Schedule the shadow predictions of an answered request (after its answer)."""
    records = ctx.inputs
    if state.log is None or not isinstance(records, list) or not records:
        return  # nowhere to log, or tensors rather than raw records
    for version in state.shadows.get(ctx.model or "", ()):
        if version == ctx.version:
            continue  # the candidate answered this one itself (a canary, or pinned)
        if state.shadows_pending >= MAX_PENDING:
            state.shadows_dropped += 1
            continue
        state.shadows_pending += 1
        task = asyncio.get_running_loop().create_task(_shadow(state, ctx, version, records))
        _TASKS.add(task)  # (the loop keeps only weak references to tasks)
        task.add_done_callback(_TASKS.discard)


_TASKS: set[asyncio.Task[None]] = set()


async def _shadow(state: ServerState, ctx: RequestContext, version: int, records: Any) -> None:
    started, answers, status, error = time.perf_counter(), None, 200, None
    try:
        candidate = state.models.get(ctx.model or "", version)
        answers = candidate.decode(await state.forward(candidate, candidate.encode(records)))
    except LeptonError as exc:  # the candidate refuses these inputs, or is gone
        status, error = client_error_status(exc), str(exc)
    except Exception as exc:  # a bug: logged, never the client's problem
        log.exception("shadow prediction on %s:%s failed", ctx.model, version)
        status, error = 500, f"internal error: {type(exc).__name__}"
    finally:
        state.shadows_pending -= 1
    if state.log is not None:
        latency_ms = (time.perf_counter() - started) * 1000
        state.log.shadow(ctx, version, answers, status, error, time.time(), latency_ms)

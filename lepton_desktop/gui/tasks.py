"""Running functions off the GUI thread and bringing their results back to it.

Anki's ``taskman`` and superqt's ``ensure_main_thread`` in one small class: the
function runs on an executor thread, and a closure that calls the callback is sent
to the GUI thread through a queued Qt signal. Callbacks therefore always run on the
GUI thread, and may touch widgets; the function itself never must.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal

T = TypeVar("T")
OnDone = Callable[[Any], None]
OnError = Callable[[BaseException], None]


class TaskManager(QObject):
    """Submits functions to executors and delivers their outcome on the GUI thread.

    Args:
        on_error: called (on the GUI thread) with exceptions that have no handler.
        parent: the owning QObject.
    """

    _ready = Signal(object)

    def __init__(self, on_error: OnError, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._default_error = on_error
        self._closed = False
        self._ready.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def submit(
        self,
        executor: Executor,
        fn: Callable[[], T],
        on_done: Callable[[T], None] | None = None,
        on_error: OnError | None = None,
        owner: QObject | None = None,
    ) -> Future[None]:
        """Run ``fn`` on ``executor``; then ``on_done(result)`` or ``on_error(exc)`` here.

        Args:
            executor: where ``fn`` runs.
            fn: the work; it must not touch widgets.
            on_done: receives the result on the GUI thread.
            on_error: receives an exception on the GUI thread (default: the manager's).
            owner: when this QObject has been deleted meanwhile, no callback runs.
        """
        handler = on_error or self._default_error
        if self._closed:
            return _cancelled()

        def work() -> None:
            try:
                result = fn()
            except BaseException as exc:  # delivered to the GUI thread, never lost
                self._post(lambda e=exc: handler(e), owner)
            else:
                if on_done is not None:
                    self._post(lambda: on_done(result), owner)

        try:
            return executor.submit(work)
        except RuntimeError:  # the executor was shut down: the project is closing
            return _cancelled()

    def close(self) -> None:
        """Drop every result that arrives from now on."""
        self._closed = True

    def _post(self, callback: Callable[[], None], owner: QObject | None) -> None:
        # RuntimeError: the manager itself was deleted; the window is gone, nobody waits.
        with contextlib.suppress(RuntimeError):
            self._ready.emit((callback, owner))

    def _deliver(self, item: tuple[Callable[[], None], QObject | None]) -> None:
        callback, owner = item
        if self._closed or (owner is not None and not shiboken6.isValid(owner)):
            return
        callback()


def _cancelled() -> Future[None]:
    future: Future[None] = Future()
    future.cancel()
    return future


def report_unexpected(exc: BaseException) -> str:
    """Format an unexpected exception (a bug) for a dialog, and log it on stderr."""
    text = "".join(traceback.format_exception(exc))
    sys.stderr.write(text)
    return text

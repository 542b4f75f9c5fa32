"""App-wide operations on jobs of any kind (Anki's ``operations``): the status bar and
every tab cancel and forget jobs through these. Each feature's own operations are in
its package's ``ops.py``."""

from __future__ import annotations

from lepton_desktop.gui.session import ProjectSession


def cancel_job(session: ProjectSession, job_id: int) -> None:
    """Ask a job to stop (then terminate, then kill its worker)."""
    session.jobs.cancel(job_id)


def forget_job(session: ProjectSession, job_id: int) -> None:
    """Delete an ended job's row once its outcome has been shown.

    Housekeeping only (a run, a dataset version or an export keeps all it made), so a
    failure (the project closed meanwhile, a busy file) is not reported: the row stays.
    """
    session.query(lambda p: p.forget_job(job_id), on_error=lambda exc: None)

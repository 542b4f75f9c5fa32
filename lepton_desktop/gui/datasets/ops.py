"""The Datasets tab's operations (Anki's ``operations``): each gathers nothing, calls
core through the session, and reports what changed. Slots call these."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lepton_desktop.gui.session import Changes, ProjectSession

if TYPE_CHECKING:
    from lepton_desktop.core.datasets.prep import PrepOptions
    from lepton_desktop.core.entities import DatasetVersion
    from lepton_desktop.core.project import Project
    from lepton_desktop.gui.tasks import OnError


def load_datasets(
    session: ProjectSession, on_done: Callable[[list[DatasetVersion]], None], owner: Any = None
) -> None:
    """Read every ready dataset version."""
    session.query(lambda p: p.datasets(), on_done, owner=owner)


def start_import(
    session: ProjectSession, args: dict[str, Any], on_error: OnError | None = None
) -> None:
    """Queue an import job (source, name, kind, target, time_column) and start its worker.

    What can be checked before the import runs (the name, the file's header) is
    checked first: a refused import leaves no trace in the project file.
    """

    def check(project: Project) -> None:
        project.check_import(
            args["source"],
            args["name"],
            kind=args.get("kind"),
            target=args.get("target"),
            time_column=args.get("time_column"),
        )

    session.jobs.submit("import", args, on_error=on_error, check=check)


def start_prep(
    session: ProjectSession, ref: str, options: PrepOptions, on_error: OnError | None = None
) -> None:
    """Queue a preparation of ``ref`` into a new version and start its worker."""
    session.jobs.submit("prep", {"dataset": ref, "options": options.to_dict()}, on_error=on_error)


def delete_dataset(
    session: ProjectSession, name: str, on_error: OnError | None = None
) -> None:
    """Delete a dataset and all its versions."""
    session.command(lambda p: p.delete_dataset(name), Changes(datasets=True), on_error=on_error)

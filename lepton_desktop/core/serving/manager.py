"""``project.serving``: start, watch and stop the local server; read its request log.

A deployment row is the server's record in the project file: the GUI queues one with
:meth:`ServingManager.queue` and runs its ``serve`` job in a worker process; the
worker fills in the address it bound and the models it loaded, and its log writer
appends the requests it answered, which the GUI reads incrementally.
"""

from __future__ import annotations

import builtins
import dataclasses
import ipaddress
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.entities import Deployment, RequestRecord
from lepton_desktop.core.errors import InvalidOptionError
from lepton_desktop.core.faults import kill_point
from lepton_desktop.core.jobs import cancel_job
from lepton_desktop.core.serving.options import DEFAULT_OPTIONS, check_options
from lepton_desktop.core.serving.security import token_digest
from lepton_desktop.core.store import jobs as job_store
from lepton_desktop.core.store import models as model_store
from lepton_desktop.core.store import request_log
from lepton_desktop.core.store import serving as serving_store
from lepton_desktop.core.store.db import transaction

if TYPE_CHECKING:
    from lepton_desktop.core.context import ProjectContext
    from lepton_desktop.core.store.request_log import RequestFilter

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


#: The most requests one listing or search returns (``requests --limit``).
MAX_LISTED = 100_000
#: The longest search text accepted.
MAX_SEARCH_CHARS = 1000


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_address(host: str, port: int, token: str | None) -> None:
    """Refuse an address the server must not bind. Raises InvalidOptionError."""
    if not 0 <= port <= 65535:
        raise InvalidOptionError(f"--port {port}: choose a port between 1 and 65535 (0: any)")
    if not is_loopback(host) and not token:
        raise InvalidOptionError(
            f"--host {host}: serving beyond this machine needs a token; "
            "pass --token TOKEN (the GUI generates one)"
        )
    if token is not None and len(token) < 16:
        raise InvalidOptionError("--token: use at least 16 characters")


def check_port_free(host: str, port: int) -> None:
    """Refuse a port another program listens on, before anything is recorded.

    ``lepton-desktop serve`` asks (``check_port``) before it records a deployment; a
    deployment queued without asking fails with the same message when its worker
    cannot bind.

    Raises:
        LeptonError: the address cannot be bound (in use, or not this machine's).
    """
    from lepton_desktop.core.serving.runner import bind

    if port != 0:
        bind(host, port).close()


class ServingManager:
    """Deployments of one project (reached as ``project.serving``)."""

    def __init__(self, ctx: ProjectContext) -> None:
        self._conn = ctx.conn

    @staticmethod
    def new_token() -> str:
        """A fresh random token for ``Authorization: Bearer``."""
        return secrets.token_urlsafe(24)

    def create(
        self,
        models: Sequence[str] | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        token: str | None = None,
        check_port: bool = False,
        **options: Any,
    ) -> Deployment:
        """Validate and record a deployment (no job); see :meth:`queue`.

        ``check_port``: refuse a port in use now (for a server started at once).

        Raises:
            InvalidOptionError: a non-loopback host without a token, a bad port or
                option; NotFoundError: an unknown model; LeptonError: ``check_port``
                and the port is in use. Nothing is written.
        """
        check_address(host, port, token)
        merged = DEFAULT_OPTIONS | options
        merged["cors"] = list(merged["cors"])
        check_options(merged)
        for ref in models or ():
            model_store.resolve(self._conn, ref)  # NotFoundError names the model
        self._check_candidates(models or (), [*merged["canary"], *merged["shadow"]])
        if not models and not model_store.list_versions(self._conn, include_archived=False):
            raise InvalidOptionError("no model to serve: train or import a model first")
        if check_port:
            check_port_free(host, port)
        deployment_id = serving_store.create_deployment(
            self._conn, host=host, port=port, token=token_digest(token) if token else None,
            models=list(models or []), options=merged,
        )  # fmt: skip
        return self.get(deployment_id)

    def _check_candidates(self, models: Sequence[str], candidates: list[dict[str, Any]]) -> None:
        """Each canary or shadow version exists, and the server will load it: its model
        is served following the registry (not pinned to another version).

        Raises:
            NotFoundError: no such version. InvalidOptionError: it would not be loaded.
        """
        for entry in candidates:
            ref = f"{entry['model']}:{entry['version']}"
            version = model_store.resolve(self._conn, ref)  # NotFoundError names it
            if version.archived:
                raise InvalidOptionError(f"{ref} is archived: a server does not load it")
            chosen = [m for m in models if m.split("@")[0].rsplit(":", 1)[0] == entry["model"]]
            if models and not any(m == entry["model"] or "@" in m or m == ref for m in chosen):
                raise InvalidOptionError(
                    f"{ref}: serve its model (--model {entry['model']}) for a candidate to answer"
                )

    def queue(
        self,
        models: Sequence[str] | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        token: str | None = None,
        check_port: bool = False,
        **options: Any,
    ) -> tuple[Deployment, int]:
        """Record a deployment and queue its ``serve`` job; return ``(deployment, job id)``.

        ``models`` are names or refs to serve (all models when empty); ``options`` are
        those of :data:`DEFAULT_OPTIONS`; ``check_port`` as in :meth:`create`.
        """
        with transaction(self._conn):  # a deployment never waits without its job
            deployment = self.create(
                models, host=host, port=port, token=token, check_port=check_port, **options
            )
            job_id = job_store.create(self._conn, "serve", {"deployment_id": deployment.id})
            serving_store.update_deployment(self._conn, deployment.id, job_id=job_id)
        kill_point("after-queue")
        return self.get(deployment.id), job_id

    def candidate_options(
        self,
        deployment_id: int,
        model: str,
        *,
        canary: tuple[int, float] | None = None,
        shadow: int | None = None,
    ) -> dict[str, Any]:
        """A deployment's options with ``model``'s candidates replaced, checked (writes
        nothing): ``canary`` a ``(version, share)`` answering that share of the model's
        requests, ``shadow`` a version answering a copy of each, ``None`` none.

        Raises:
            InvalidOptionError: a share outside (0, 1), a candidate the deployment's
                models do not serve, an archived version; NotFoundError: no such
                deployment or version.
        """
        old = self.get(deployment_id)
        options = {k: v for k, v in old.options.items() if k in DEFAULT_OPTIONS}
        options["canary"] = [c for c in options.get("canary", []) if c["model"] != model]
        options["shadow"] = [c for c in options.get("shadow", []) if c["model"] != model]
        if canary is not None:
            options["canary"].append({"model": model, "version": canary[0], "share": canary[1]})
        if shadow is not None:
            options["shadow"].append({"model": model, "version": shadow})
        check_options(DEFAULT_OPTIONS | options)
        self._check_candidates(old.models, [*options["canary"], *options["shadow"]])
        return options

    def requeue_with_candidates(
        self,
        deployment_id: int,
        model: str,
        *,
        canary: tuple[int, float] | None = None,
        shadow: int | None = None,
    ) -> tuple[Deployment, int]:
        """Queue a server like a stopped deployment (its models, address and bound port,
        token and options) with ``model``'s candidates replaced (see
        :meth:`candidate_options`). A running server reads its routing when it starts,
        so changing it is a restart: check, stop the server, then call this.

        Raises:
            InvalidOptionError: the deployment is still active, or as
                :meth:`candidate_options`. Nothing is written then.
        """
        old = self.get(deployment_id)
        if old.active:
            raise InvalidOptionError(
                f"deployment {deployment_id} is {old.status}: stop its server before it is "
                "started again with other candidates"
            )
        options = self.candidate_options(deployment_id, model, canary=canary, shadow=shadow)
        # The port the server bound (a server asked for any port keeps the one it got);
        # the stored token is its digest, which the new deployment keeps as it is.
        return self.queue(old.models, host=old.host, port=old.port, token=old.token, **options)

    def get(self, deployment_id: int) -> Deployment:
        """One deployment. Raises NotFoundError."""
        return serving_store.get_deployment(self._conn, deployment_id)

    def list(self, limit: int = 100) -> builtins.list[Deployment]:
        """Deployments, newest first."""
        return serving_store.list_deployments(self._conn, limit)

    def active(self) -> Deployment | None:
        """The newest deployment that is queued, starting or running."""
        return next((d for d in self.list(20) if d.active), None)

    def update(self, deployment_id: int, **fields: Any) -> None:
        """Record the server's state (used by the ``serve`` worker)."""
        serving_store.update_deployment(self._conn, deployment_id, **fields)

    def stop(self, deployment_id: int) -> None:
        """Ask the deployment's worker to shut the server down."""
        deployment = self.get(deployment_id)
        if deployment.job_id is not None and deployment.active:
            cancel_job(self._conn, deployment.job_id)

    def requests_since(
        self, deployment_id: int | None, after_id: int = 0, limit: int = 1000
    ) -> builtins.list[RequestRecord]:
        """Logged requests with ``id > after_id`` (oldest first)."""
        return serving_store.requests_since(self._conn, deployment_id, after_id, limit)

    def request_count(self, deployment_id: int | None = None) -> int:
        """How many requests were logged."""
        return serving_store.request_count(self._conn, deployment_id)

    def list_requests(
        self,
        *,
        search: str | None = None,
        deployment_id: int | None = None,
        limit: int = 100,
        plain_words: bool = False,
        selection: RequestFilter | None = None,
    ) -> builtins.list[RequestRecord]:
        """The newest logged requests, or the newest that match ``search``; newest first.

        Args:
            search: a full-text query (SQLite FTS5 syntax: words, ``"a phrase"``,
                ``OR``, ``NOT``, ``prefix*``) over the request id, path, model, status,
                error and captured inputs and outputs; None or blank: every request.
            deployment_id: only this deployment's requests (None: all deployments).
            limit: at most this many (1 to :data:`MAX_LISTED`).
            plain_words: ``search`` is plain text: rows holding each of its words, or
                a word starting with it (a search box's as-you-type filter).
            selection: only requests this filter keeps (model, status, time, ...).

        Raises:
            InvalidOptionError: a bad limit, a search too long or not FTS5 syntax;
            NotFoundError: no such deployment.
        """
        if isinstance(limit, bool) or not 1 <= limit <= MAX_LISTED:
            raise InvalidOptionError(f"--limit {limit}: give a number from 1 to {MAX_LISTED:,}")
        if deployment_id is not None:
            self.get(deployment_id)  # NotFoundError names it
        query = (search or "").strip()
        if len(query) > MAX_SEARCH_CHARS:
            raise InvalidOptionError(
                f"the search is {len(query):,} characters long; at most {MAX_SEARCH_CHARS:,}"
            )
        if plain_words:
            query = serving_store.words_query(query)
        if selection is not None:
            selection = dataclasses.replace(selection, deployment_id=deployment_id)
            if not query:
                return request_log.page(self._conn, selection, None, limit)
            return serving_store.search_requests(self._conn, query, None, limit,
                                                 selection.where())  # fmt: skip
        if not query:
            return serving_store.latest_requests(self._conn, deployment_id, limit)
        return serving_store.search_requests(self._conn, query, deployment_id, limit)

    def find_request(self, request_id: str) -> RequestRecord | None:
        """A logged request by its id."""
        return serving_store.find_request(self._conn, request_id)

    def add_feedback(
        self, request_id: str, label: Any, row: int = 0, deployment_id: int | None = None
    ) -> int:
        """Record the true label of one answered row (for live accuracy)."""
        return serving_store.add_feedback(self._conn, deployment_id, request_id, label, row)

    def feedback_for(self, request_id: str) -> builtins.list[tuple[int, Any]]:
        """``(row, label)`` pairs given for a request."""
        return serving_store.feedback_for(self._conn, request_id)

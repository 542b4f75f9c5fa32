"""The models one server answers for: name -> versions -> Predictor, with aliases.

A :class:`ModelSet` comes either from a project's registry (it then follows the
registry: a new version, an archived one or a moved alias is picked up within about
a second) or from a fixed list of :class:`ModelParts` (an exported bundle).

Routing. ``/v2/models/NAME/...`` and ``{"model": "NAME"}`` use the model's *default*
version: the version its ``champion`` alias points at, else its newest unarchived
version. A version is chosen by number (``versions/2``, ``NAME:2``) or by alias
(``versions/champion``, ``NAME@champion``). So promoting a version (moving
``champion``) or rolling back changes what plain ``NAME`` answers with, while
clients that pin a number keep theirs.

Hot swap without dropping a request: new predictors are loaded outside any lock, a
new mapping is built beside the old one, and the reference is swapped in one
assignment. A request resolves its predictor once and finishes with it, even if the
set moved on meanwhile.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lepton_desktop.core.entities import ModelVersion
from lepton_desktop.core.errors import InvalidOptionError, NotFoundError
from lepton_desktop.core.inference.predictor import InvalidInputError, ModelParts, Predictor

log = logging.getLogger(__name__)

#: The alias whose version answers requests that name no version.
DEFAULT_ALIAS = "champion"


class ModelNotFoundError(NotFoundError):
    """A request named a model or version this server does not serve (HTTP 404)."""


@dataclasses.dataclass(frozen=True)
class ServedModel:
    """One model name: its loaded versions, its aliases and its default version."""

    name: str
    versions: Mapping[int, Predictor]
    aliases: Mapping[str, int]
    default: int

    def get(self, version: str | int | None = None) -> Predictor:
        """The version by number or alias (``None`` or ``""``: the default).

        Raises:
            ModelNotFoundError: no such version or alias among the loaded ones.
        """
        if version is None or version == "":
            return self.versions[self.default]
        text = str(version)
        number = int(text) if text.isdigit() else self.aliases.get(text)
        if number is None or number not in self.versions:
            known = ", ".join([str(v) for v in self.versions] + sorted(self.aliases))
            raise ModelNotFoundError(
                f"model {self.name!r} has no version {text!r} here (served: {known})"
            )
        return self.versions[number]

    def aliases_of(self, version: int) -> list[str]:
        """The aliases pointing at ``version``."""
        return sorted(a for a, v in self.aliases.items() if v == version)


@dataclasses.dataclass(frozen=True)
class Selection:
    """What the user asked to serve of one model.

    ``NAME`` follows the registry; ``NAME:N`` pins one version; ``NAME@ALIAS`` follows
    the registry with the alias's version as the default.
    """

    name: str
    pinned: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, ref: str) -> Selection:
        """``NAME``, ``NAME:N`` or ``NAME@ALIAS``."""
        if "@" in ref:
            name, alias = ref.split("@", 1)
            return cls(name, alias=alias)
        if ":" in ref and ref.rsplit(":", 1)[1].isdigit():
            name, number = ref.rsplit(":", 1)
            return cls(name, pinned=int(number))
        return cls(ref)


def split_ref(ref: str) -> tuple[str, str | None]:
    """A request's model reference -> ``(name, version or alias or None)``."""
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return name, alias
    if ":" in ref:
        name, version = ref.rsplit(":", 1)
        return name, version
    return ref, None


class ModelSet:
    """The served models (see the module docstring).

    Args:
        models: name -> :class:`ServedModel`.
        project_path: the project they come from, to follow its registry.
        selections: what to serve of the project (empty: every model).
    """

    def __init__(
        self,
        models: Mapping[str, ServedModel],
        *,
        project_path: Path | None = None,
        selections: Sequence[Selection] = (),
    ) -> None:
        self._models: Mapping[str, ServedModel] = dict(models)
        self._project_path = project_path
        self._selections = tuple(selections)
        self._stamp: tuple[Any, ...] | None = None
        self._by_id: dict[int, Predictor] = {}
        #: (model, version) -> personal-data columns of its training data to redact
        #: from captured inputs, by kind (empty where the model's owner opted in).
        self._redacted: dict[tuple[str, int], dict[str, str]] = {}
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        #: Bumped on every swap; the app rebuilds what depends on the set (OpenAPI).
        self.generation = 0
        self._canaries: dict[str, tuple[int, float]] = {}

    # -- building ----------------------------------------------------------------------

    @classmethod
    def from_parts(cls, parts: Iterable[ModelParts]) -> ModelSet:
        """A fixed set from model parts (a bundle); aliases come with the parts."""
        grouped: dict[str, dict[int, Predictor]] = {}
        aliases: dict[str, dict[str, int]] = {}
        for part in parts:
            grouped.setdefault(part.name, {})[part.version] = Predictor(part)
            for alias in part.aliases:
                aliases.setdefault(part.name, {})[alias] = part.version
        if not grouped:
            raise InvalidOptionError("no model to serve")
        models = {
            name: ServedModel(
                name,
                versions,
                aliases.get(name, {}),
                aliases.get(name, {}).get(DEFAULT_ALIAS, max(versions)),
            )
            for name, versions in grouped.items()
        }
        return cls(models)

    @classmethod
    def from_project(cls, path: Path, refs: Sequence[str] = ()) -> ModelSet:
        """The project's models (``refs``: names or refs to serve; empty: all).

        Raises:
            NotFoundError: a ref names no registered model or version.
            InvalidOptionError: nothing to serve.
        """
        from lepton_desktop.core.store.db import connect

        model_set = cls({}, project_path=Path(path), selections=[Selection.parse(r) for r in refs])
        conn = connect(path, readonly=True)
        try:
            model_set.refresh(conn, strict=True)
        finally:
            conn.close()
        if not model_set.models:
            raise InvalidOptionError("no model to serve: train or import a model first")
        return model_set

    # -- reading (any thread) ----------------------------------------------------------

    @property
    def project_path(self) -> Path | None:
        """The project served (None: a bundle's fixed set)."""
        return self._project_path

    @property
    def models(self) -> Mapping[str, ServedModel]:
        """The current mapping (a snapshot: it is replaced, never changed)."""
        return self._models

    def get(self, name: str, version: str | int | None = None) -> Predictor:
        """A version of model ``name``. Raises ModelNotFoundError."""
        models = self._models
        model = models.get(name)
        if model is None:
            known = ", ".join(sorted(models)) or "none"
            raise ModelNotFoundError(f"no model {name!r} here (served: {known})")
        if not version and name in self._canaries:  # (one lookup when no canary is set)
            candidate = self._canary(model)
            if candidate is not None:
                return candidate
        return model.get(version)

    def get_ref(self, ref: str | None) -> Predictor:
        """``NAME``, ``NAME:N``, ``NAME@ALIAS``; ``None`` when exactly one model is served.

        Raises:
            ModelNotFoundError: an unknown model or version.
            InvalidInputError: no ref while several models are served.
        """
        if ref is None:
            models = self._models
            if len(models) != 1:
                raise InvalidInputError(
                    f"this server has {len(models)} models ({', '.join(sorted(models))}); "
                    'name one with "model"'
                )
            return self.get(next(iter(models)))
        return self.get(*split_ref(ref))

    def set_canaries(self, canaries: Mapping[str, tuple[int, float]]) -> None:
        """Let version ``v`` answer share ``s`` of model ``name``'s requests that name no
        version (``{name: (v, s)}``); requests that pin a version or alias keep it."""
        self._canaries = dict(canaries)

    def _canary(self, model: ServedModel) -> Predictor | None:
        """The canary version, for its share of the requests (drawn per request)."""
        version, share = self._canaries[model.name]
        if version in model.versions and random.random() < share:
            return model.versions[version]
        return None

    def redacted(self, model: str | None, version: int | None) -> dict[str, str]:
        """Column -> kind of personal data to redact from ``model:version``'s inputs."""
        if model is None or version is None:
            return {}
        return self._redacted.get((model, version), {})

    def loaded(self) -> list[dict[str, Any]]:
        """``[{"name", "version", "aliases", "default"}]`` for the deployment row."""
        return [
            {
                "name": model.name,
                "version": number,
                "aliases": model.aliases_of(number),
                "default": number == model.default,
            }
            for model in self._models.values()
            for number in sorted(model.versions)
        ]

    # -- following the registry --------------------------------------------------------

    def refresh(self, conn: Any, *, strict: bool = False) -> bool:
        """Re-read the registry if it changed; swap in the new set. Returns True on a swap.

        ``conn`` is a connection of the calling thread. With ``strict`` a selection that
        names no model is an error (at start); later a deleted model is just dropped.
        """
        from lepton_desktop.core.store import models as model_store

        stamp = model_store.registry_stamp(conn)
        if stamp == self._stamp:
            return False
        versions = model_store.list_versions(conn)
        by_id: dict[int, Predictor] = {}
        models: dict[str, ServedModel] = {}
        for selection in self._selections or _every_model(versions):
            served = self._build(conn, selection, versions, by_id, strict=strict)
            if served is not None:
                models[served.name] = served
        self._redacted = _redactions(conn, versions, set(models))
        self._models = models  # the swap: one reference assignment
        self._by_id = by_id
        self._stamp = stamp
        self.generation += 1
        return True

    def _build(
        self,
        conn: Any,
        selection: Selection,
        versions: Sequence[ModelVersion],
        by_id: dict[int, Predictor],
        *,
        strict: bool,
    ) -> ServedModel | None:
        from lepton_desktop.core.store import models as model_store

        if strict:  # at start, a ref that names nothing is the user's mistake
            model_store.resolve(conn, _ref_of(selection))  # NotFoundError names it
        chosen = _chosen([v for v in versions if v.name == selection.name], selection)
        if not chosen:  # deleted while serving: stop answering for it
            return None
        loaded: dict[int, Predictor] = {}
        for version in chosen:
            predictor = self._by_id.get(version.id)
            if predictor is None:  # load outside any lock: requests go on meanwhile
                parts = ModelParts.from_version(version, model_store.weights(conn, version.id))
                predictor = Predictor(parts)
            by_id[version.id] = predictor
            loaded[version.version] = predictor
        aliases = {a: v.version for v in chosen for a in v.aliases}
        return ServedModel(selection.name, loaded, aliases, _default(selection, chosen, aliases))

    def watch(
        self, interval: float = 1.0, on_change: Callable[[ModelSet], None] | None = None
    ) -> None:
        """Follow the registry from a daemon thread with its own connection."""
        if self._project_path is None or self._watcher is not None:
            return
        self._watcher = threading.Thread(
            target=self._watch, args=(interval, on_change), name="model-set-watch", daemon=True
        )
        self._watcher.start()

    def _watch(self, interval: float, on_change: Callable[[ModelSet], None] | None) -> None:
        from lepton_desktop.core.store.db import connect

        assert self._project_path is not None
        conn = connect(self._project_path)
        try:
            while not self._stop.wait(interval):
                try:
                    if self.refresh(conn) and on_change is not None:
                        on_change(self)
                except Exception:  # a failed reload keeps serving the current set
                    log.exception("re-reading the model registry failed")
        finally:
            conn.close()

    def close(self) -> None:
        """Stop following the registry."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None


def _every_model(versions: Sequence[ModelVersion]) -> list[Selection]:
    return [Selection(name) for name in dict.fromkeys(v.name for v in versions)]


def _chosen(versions: Sequence[ModelVersion], selection: Selection) -> list[ModelVersion]:
    if selection.pinned is not None:
        return [v for v in versions if v.version == selection.pinned]
    # Archived versions stay out unless an alias still points at them.
    return [v for v in versions if not v.archived or v.aliases]


def _default(
    selection: Selection, chosen: Sequence[ModelVersion], aliases: Mapping[str, int]
) -> int:
    if selection.pinned is not None:
        return selection.pinned
    alias = aliases.get(selection.alias or DEFAULT_ALIAS)
    if alias is not None:
        return alias
    live = [v.version for v in chosen if not v.archived]
    return max(live or [v.version for v in chosen])


def _ref_of(selection: Selection) -> str:
    if selection.pinned is not None:
        return f"{selection.name}:{selection.pinned}"
    if selection.alias is not None:
        return f"{selection.name}@{selection.alias}"
    return selection.name


def _redactions(
    conn: Any, versions: Sequence[ModelVersion], served: set[str]
) -> dict[tuple[str, int], dict[str, str]]:
    # Each served version's training data, back to the raw import: the columns found to
    # hold personal data there (prepared away since or not) are what clients send.
    from lepton_desktop.core.datasets.pii_found import personal_columns_of
    from lepton_desktop.core.store import serving as serving_store

    opted_in = set(serving_store.capture_pii_models(conn))
    out: dict[tuple[str, int], dict[str, str]] = {}
    for version in versions:
        if version.name in served and version.name not in opted_in:
            columns = personal_columns_of(conn, version.dataset_version_id)
            if columns:
                out[(version.name, version.version)] = columns
    return out

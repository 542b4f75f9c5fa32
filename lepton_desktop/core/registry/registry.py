"""``project.models``: registered model versions, their aliases, and loading them."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from lepton_desktop.core.entities import ModelVersion
from lepton_desktop.core.store import models as model_store

if TYPE_CHECKING:
    from torch import nn

    from lepton_desktop.core.context import ProjectContext


class ModelRegistry:
    """Model versions of one project (reached as ``project.models``)."""

    def __init__(self, ctx: ProjectContext) -> None:
        self._conn = ctx.conn

    def list(self, *, include_archived: bool = True) -> builtins.list[ModelVersion]:
        """Every version, by name then number."""
        return model_store.list_versions(self._conn, include_archived=include_archived)

    def get(self, ref: str) -> ModelVersion:
        """``name`` (latest), ``name:N`` or ``name@alias``. Raises NotFoundError."""
        return model_store.resolve(self._conn, ref)

    def set_alias(self, ref: str, alias: str) -> ModelVersion:
        """Point ``alias`` (``champion``, or one of yours) at the version ``ref``."""
        version = self.get(ref)
        model_store.set_alias(self._conn, version, alias)
        return self.get(f"{version.name}:{version.version}")

    def remove_alias(self, name: str, alias: str) -> None:
        """Remove an alias of model ``name``."""
        model_store.remove_alias(self._conn, name, alias)

    def set_notes(self, ref: str, notes: str) -> None:
        """Replace a version's notes."""
        model_store.update(self._conn, self.get(ref).id, notes=notes)

    def archive(self, ref: str, archived: bool = True) -> None:
        """Archive (or restore) a version; ``name`` then resolves to the newest unarchived."""
        model_store.update(self._conn, self.get(ref).id, archived=archived)

    def load(self, ref: str) -> tuple[nn.Module, ModelVersion]:
        """The version's torch module in eval mode (weights loaded with weights_only)."""
        from lepton_desktop.core.training.loop import deserialize
        from lepton_desktop.core.training.models import build

        version = self.get(ref)
        module = build(version.params["spec"])
        module.load_state_dict(deserialize(model_store.weights(self._conn, version.id)))
        return module.eval(), version

    def weights(self, ref: str) -> bytes:
        """The version's serialized ``state_dict`` (read back with ``weights_only=True``)."""
        return model_store.weights(self._conn, self.get(ref).id)

    def summary(self) -> builtins.list[dict[str, Any]]:
        """One JSON-ready entry per version (for ``models --json`` and ``info``)."""
        return [
            {
                "model": v.ref,
                "name": v.name,
                "version": v.version,
                "arch": v.arch,
                "task": v.task,
                "run_id": v.run_id,
                "aliases": list(v.aliases),
                "metrics": v.metrics,
                "archived": v.archived,
                "dataset": v.params.get("dataset"),
            }
            for v in self.list()
        ]

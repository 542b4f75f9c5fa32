"""The app's own icons (SVG files under ``resources/icons``)."""

from __future__ import annotations

import functools

from PySide6.QtGui import QIcon

from lepton_desktop import paths


@functools.cache
def icon(name: str) -> QIcon:
    """The icon ``resources/icons/<name>.svg`` (an empty icon if it is missing)."""
    path = paths.resources_dir() / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()


def app_icon() -> QIcon:
    """The application's icon."""
    return icon("lepton")


def kind_icon(kind: str) -> QIcon:
    """The icon of a dataset kind (tabular, images, timeseries)."""
    return icon(f"dataset-{kind}")

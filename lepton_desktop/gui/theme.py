"""Light, dark, or whatever the OS uses, applied live.

The user's choice is handed to Qt (``styleHints().setColorScheme``), so native parts
(title bars, dialogs) follow it where the platform supports that. The widgets follow
an explicit Fusion palette chosen from the *effective* scheme, because several
platforms (offscreen, plain X11) report no scheme at all and would stay light.
Charts listen for palette changes themselves (see ``widgets/charts.py``).
"""

from __future__ import annotations

import functools
import sys

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QMenu

from lepton_desktop import paths
from lepton_desktop.gui.settings import AppSettings

_SCHEMES = {
    "system": Qt.ColorScheme.Unknown,
    "light": Qt.ColorScheme.Light,
    "dark": Qt.ColorScheme.Dark,
}
_Role = QPalette.ColorRole
_DARK = {
    _Role.Window: "#202227", _Role.WindowText: "#e6e8eb", _Role.Base: "#17181c",
    _Role.AlternateBase: "#1e2025", _Role.ToolTipBase: "#2b2e35", _Role.ToolTipText: "#e6e8eb",
    _Role.PlaceholderText: "#8a8f98", _Role.Text: "#e6e8eb", _Role.Button: "#2b2e35",
    _Role.ButtonText: "#e6e8eb", _Role.BrightText: "#ff6b6b", _Role.Link: "#6ea8fe",
    _Role.Highlight: "#3a7bd5", _Role.HighlightedText: "#ffffff", _Role.Light: "#3a3d45",
    _Role.Midlight: "#30333a", _Role.Mid: "#26282e", _Role.Dark: "#121316",
    _Role.Shadow: "#000000",
}
_DARK_DISABLED = {
    _Role.WindowText: "#6b7079", _Role.Text: "#6b7079", _Role.ButtonText: "#6b7079",
    _Role.Highlight: "#3a3d45", _Role.HighlightedText: "#9aa0a8",
}


def dark_palette() -> QPalette:
    """The dark Fusion palette."""
    palette = QPalette()
    for role, color in _DARK.items():
        palette.setColor(role, QColor(color))
    for role, color in _DARK_DISABLED.items():
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(color))
    return palette


def light_palette() -> QPalette:
    """The light Fusion palette, with the app's accent colour."""
    palette = QApplication.style().standardPalette()
    palette.setColor(_Role.Highlight, QColor("#3a7bd5"))
    palette.setColor(_Role.Link, QColor("#1f5fbf"))
    return palette


class ThemeManager(QObject):
    """Applies the chosen theme and follows the OS while the choice is "system".

    Args:
        app: the application whose palette is set.
        settings: where the choice is remembered.
        parent: the owner (default: the application).
    """

    themeChanged = Signal(str)  # the effective scheme: "light" or "dark"

    def __init__(
        self, app: QApplication, settings: AppSettings, parent: QObject | None = None
    ) -> None:
        super().__init__(parent or app)
        self._app = app
        self._settings = settings
        self._choice = settings.theme()
        self.effective = ""
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._on_os_scheme_changed)
        self.apply()

    @property
    def choice(self) -> str:
        """What the user chose: ``system``, ``light`` or ``dark``."""
        return self._choice

    def set_theme(self, choice: str) -> None:
        """Switch to ``choice`` now and remember it."""
        self._choice = choice
        self._settings.set_theme(choice)
        self.apply()

    def apply(self) -> None:
        """Hand the choice to Qt and set the matching palette."""
        QGuiApplication.styleHints().setColorScheme(_SCHEMES[self._choice])
        self._apply_palette()

    def _effective_scheme(self) -> str:
        if self._choice != "system":
            return self._choice
        os_scheme = QGuiApplication.styleHints().colorScheme()
        return "dark" if os_scheme == Qt.ColorScheme.Dark else "light"

    def _on_os_scheme_changed(self, scheme: Qt.ColorScheme) -> None:
        if self._choice == "system":
            self._apply_palette()

    def _apply_palette(self) -> None:
        effective = self._effective_scheme()
        if effective == self.effective:
            return
        self.effective = effective
        dark = effective == "dark"
        self._app.setPalette(dark_palette() if dark else light_palette())
        self._app.setStyleSheet(_style_sheet())
        # New charts start in the right colours; existing ones restyle on PaletteChange.
        # Before any chart exists pyqtgraph is not imported yet (it costs start-up time):
        # the workspace applies the colours when it builds the charts.
        if "pyqtgraph" in sys.modules:
            apply_chart_colours(self._app.palette())
        self.themeChanged.emit(effective)


THEME_NAMES = (("system", "&System"), ("light", "&Light"), ("dark", "&Dark"))


def build_theme_menu(menu: QMenu, theme: ThemeManager) -> dict[str, QAction]:
    """Fill the Theme menu with one exclusive, checkable action per choice."""
    group = QActionGroup(menu)
    group.setExclusive(True)
    actions: dict[str, QAction] = {}
    for name, text in THEME_NAMES:
        action = menu.addAction(text)
        action.setCheckable(True)
        action.setChecked(name == theme.choice)
        action.triggered.connect(lambda checked, n=name: theme.set_theme(n))
        group.addAction(action)
        actions[name] = action
    actions["system"].setToolTip("Follow the operating system's light/dark setting")
    return actions


def apply_chart_colours(palette: QPalette) -> None:
    """New pyqtgraph charts start antialiased, in the palette's base and text colours."""
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, background=palette.color(_Role.Base),
                        foreground=palette.color(_Role.Text))  # fmt: skip


@functools.cache
def _style_sheet() -> str:
    path = paths.resources_dir() / "styles" / "app.qss"
    return path.read_text(encoding="utf-8") if path.exists() else ""

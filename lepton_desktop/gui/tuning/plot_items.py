"""Fast plot items for studies of many trials: dots and colour maps for whole arrays.

pyqtgraph's ScatterPlotItem keeps Python objects per point (a style lookup each), which
costs about 1 µs a point on every ``setData``: 10,000 trials in six slice plots would
take 70 ms. :class:`DotsItem` keeps only numpy arrays and draws every dot with one
``drawPixmapFragments`` call from a small atlas holding one dot per colour, the way
ScatterPlotItem paints, so ``setData`` is a few array copies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap

#: Colours of values, low to high (matplotlib's viridis: readable on light and dark).
VALUE_MAP = pg.colormap.get("viridis")
N_LEVELS = 16


#: Where on the map the lowest level starts: viridis' darkest purple vanishes on a dark
#: background.
MAP_START = 0.18


def value_colors(n: int = N_LEVELS) -> list[QColor]:
    """``n`` colours along :data:`VALUE_MAP` (from :data:`MAP_START`), low to high."""
    return [value_color(i / max(1, n - 1)) for i in range(n)]


def value_color(fraction: float) -> QColor:
    """The colour at ``fraction`` (0: low, 1: high) of the map as drawn."""
    return VALUE_MAP.map(MAP_START + (1 - MAP_START) * fraction, mode="qcolor")


def levels(values: np.ndarray, n: int = N_LEVELS, *, reverse: bool = False) -> np.ndarray:
    """Each value's colour level 0..n-1 by rank (robust to outliers); NaN gets level 0.

    Args:
        values: the values to colour.
        n: the number of levels.
        reverse: level 0 for the largest value (for "lower is better" objectives, the
            best trials get the bright end of the map).
    """
    out = np.zeros(len(values), dtype=np.int64)
    finite = np.isfinite(values)
    count = int(finite.sum())
    if count:
        ranks = np.empty(count)
        ranks[np.argsort(values[finite], kind="stable")] = np.arange(count)
        scaled = (ranks / max(1, count - 1)) * (n - 1)
        out[finite] = np.rint((n - 1) - scaled if reverse else scaled).astype(np.int64)
    return out


class DotsItem(pg.GraphicsObject):
    """Round dots of a few colours at (x, y), all painted with one Qt call.

    Args:
        colors: the palette; :meth:`set_data` gives each dot an index into it.
        size: the dots' diameter in pixels.
        outline: an optional pen colour around each dot.
    """

    def __init__(
        self, colors: Sequence[QColor | str], size: float = 6.0, outline: QColor | None = None
    ) -> None:
        super().__init__()
        self._size = size
        self._outline = outline
        self._colors = [QColor(c) for c in colors]
        self._atlas = self._render_atlas()
        self.x = np.zeros(0)
        self.y = np.zeros(0)
        self.color_index = np.zeros(0, dtype=np.int64)
        self._bounds = QRectF()
        self._fragments = pg.Qt.internals.PrimitiveArray(QPainter.PixmapFragment, 10)

    def set_colors(self, colors: Sequence[QColor | str]) -> None:
        """Change the palette (a theme switch)."""
        self._colors = [QColor(c) for c in colors]
        self._atlas = self._render_atlas()
        self.update()

    def set_data(
        self, x: np.ndarray, y: np.ndarray, color_index: np.ndarray | None = None
    ) -> None:
        """Show these dots (NaN coordinates are skipped)."""
        keep = np.isfinite(x) & np.isfinite(y)
        self.prepareGeometryChange()
        self.x = np.asarray(x, dtype=float)[keep]
        self.y = np.asarray(y, dtype=float)[keep]
        index = np.zeros(len(keep), dtype=np.int64) if color_index is None else color_index
        self.color_index = np.clip(np.asarray(index)[keep], 0, len(self._colors) - 1)
        if len(self.x):
            left, bottom = self.x.min(), self.y.min()
            self._bounds = QRectF(left, bottom, self.x.max() - left, self.y.max() - bottom)
        else:
            self._bounds = QRectF()
        self.informViewBoundsChanged()
        self.update()

    def nearest(self, x: float, y: float, x_scale: float, y_scale: float) -> int | None:
        """Index of the dot closest to (x, y) (distances in pixels via the scales)."""
        if not len(self.x):
            return None
        distance = ((self.x - x) / x_scale) ** 2 + ((self.y - y) / y_scale) ** 2
        return int(np.argmin(distance))

    # -- pyqtgraph item protocol ---------------------------------------------------------

    def dataBounds(
        self, ax: int, frac: float = 1.0, orthoRange: object = None
    ) -> tuple[float, float] | tuple[None, None]:
        """The data's extent along one axis (for auto-range)."""
        data = self.x if ax == 0 else self.y
        return (float(data.min()), float(data.max())) if len(data) else (None, None)

    def pixelPadding(self) -> float:
        """Room for the dots' radius beyond the data bounds."""
        return self._size / 2 + 1

    def boundingRect(self) -> QRectF:
        """The data bounds, grown by the dots' radius in pixels."""
        if self._bounds.isNull() and not len(self.x):
            return QRectF()
        px, py = self.pixelLength(pg.Point(1, 0)) or 0, self.pixelLength(pg.Point(0, 1)) or 0
        pad_x, pad_y = px * self._size, py * self._size
        return self._bounds.adjusted(-pad_x, -pad_y, pad_x, pad_y)

    def paint(self, painter: QPainter, *args: object) -> None:
        """Map the dots to device pixels and blit them from the atlas."""
        if not len(self.x):
            return
        points = pg.functions.transformCoordinates(
            painter.transform(), np.vstack([self.x, self.y])
        )
        points = np.clip(points, -(2**30), 2**30)
        painter.resetTransform()
        cell = self._cell
        self._fragments.resize(len(self.x))
        frags = self._fragments.ndarray()
        frags[:, 0:2] = points.T
        frags[:, 2] = self.color_index * cell
        frags[:, 3] = 0
        frags[:, 4:6] = cell
        frags[:, 6:10] = (1.0, 1.0, 0.0, 1.0)
        painter.drawPixmapFragments(*self._fragments.drawargs(), self._atlas)

    @property
    def _cell(self) -> int:
        return int(np.ceil(self._size)) + 2

    def _render_atlas(self) -> QPixmap:
        cell = self._cell
        image = QImage(cell * len(self._colors), cell, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self._outline) if self._outline is not None else Qt.PenStyle.NoPen
        painter.setPen(pen)
        radius = self._size / 2
        for i, color in enumerate(self._colors):
            painter.setBrush(color)
            painter.drawEllipse(QPointF(i * cell + cell / 2, cell / 2), radius, radius)
        painter.end()
        return QPixmap.fromImage(image)


class ParamAxis(pg.AxisItem):
    """An axis for one hyperparameter: plain, whole numbers, log10 or named choices.

    Log-scale parameters are plotted as log10 of their value; this axis then puts
    ticks at 1, 2 and 5 times powers of ten and labels them with the value itself
    ("0.001", "200"), not with exponents. No SI-prefix rescaling ("x0.001").
    """

    def __init__(self, orientation: str = "bottom") -> None:
        super().__init__(orientation)
        self.mode = "float"
        self.enableAutoSIPrefix(False)

    def set_mode(self, kind: str, log: bool, choices: Sequence[str] = ()) -> None:
        """``kind`` is ``float``, ``int`` or ``categorical``; ``log``: a log10 axis."""
        self.mode = "log" if log else kind
        if kind == "categorical":
            self.setTicks([[(float(i), str(c)) for i, c in enumerate(choices)]])
        else:
            self.setTicks(None)
        self.picture = None
        self.update()

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        """Decades (and 2x, 5x between them when few) on log axes; whole numbers for ints."""
        if self.mode == "log":
            return _log_ticks(minVal, maxVal)
        levels = super().tickValues(minVal, maxVal, size)
        if self.mode == "int":
            levels = [(s, vals) for s, vals in levels if s >= 1]
            if not levels:  # a range of a few units: a tick at every whole number
                first, last = int(np.ceil(minVal)), int(np.floor(maxVal))
                levels = [(1.0, [float(v) for v in range(first, last + 1)])]
        return levels

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        """Values of log axes as numbers (10**v), others as pyqtgraph formats them."""
        if self.mode == "log":
            return [f"{10**v:.3g}" for v in values]
        return super().tickStrings(values, scale, spacing)


def _log_ticks(low: float, high: float) -> list[tuple[float, list[float]]]:
    first, last = int(np.floor(low)), int(np.ceil(high))
    decades = [float(d) for d in range(first, last + 1) if low <= d <= high]
    between: list[float] = []
    if last - first <= 3:  # room for 2x and 5x labels
        between = [d + np.log10(m) for d in range(first, last + 1) for m in (2, 5)]
        between = [v for v in between if low <= v <= high]
    return [(1.0, decades), (0.5, between)]

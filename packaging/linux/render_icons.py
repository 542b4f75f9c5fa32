"""Render the app's SVG icon as the PNG sizes of the hicolor icon theme.

    python packaging/linux/render_icons.py SVG OUT_DIR

writes OUT_DIR/hicolor/<N>x<N>/{apps/lepton-desktop.png,
mimetypes/application-x-lepton-project.png} for every standard size, and the SVG itself
under hicolor/scalable/. Qt draws them (the build's own PySide6), so the build needs no
ImageMagick or rsvg.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

#: The sizes desktops look up (the freedesktop icon theme spec's usual set).
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
NAMES = {"apps": "lepton-desktop", "mimetypes": "application-x-lepton-project"}


def render(svg: Path, out: Path) -> list[Path]:
    """Write every size of both icons; return the files written."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"render_icons: {svg}: not a valid SVG")
    written = []
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        for context, name in NAMES.items():
            target = out / "hicolor" / f"{size}x{size}" / context / f"{name}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            if not image.save(str(target), "PNG"):
                raise SystemExit(f"render_icons: could not write {target}")
            written.append(target)
    for context, name in NAMES.items():
        target = out / "hicolor" / "scalable" / context / f"{name}.svg"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(svg, target)
        written.append(target)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: render_icons.py SVG OUT_DIR")
    files = render(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"render_icons: {len(files)} icons in {sys.argv[2]}")

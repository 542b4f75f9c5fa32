"""The Linux package's own files, built without a frozen app: icons and the desktop entry."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "packaging" / "linux"))
import render_icons  # noqa: E402  (a build script, not a package)


def test_icons_are_rendered_in_every_hicolor_size(tmp_path: Path) -> None:
    written = render_icons.render(REPO / "resources" / "icons" / "lepton.svg", tmp_path)
    for size in (16, 22, 24, 32, 48, 64, 128, 256, 512):
        for path in ("apps/lepton-desktop.png", "mimetypes/application-x-lepton-project.png"):
            image = QImage(str(tmp_path / "hicolor" / f"{size}x{size}" / path))
            assert (image.width(), image.height()) == (size, size)
            # Drawn, not blank: the corner is transparent and the middle is not.
            assert image.pixelColor(0, 0).alpha() == 0
            assert image.pixelColor(size // 2, size // 2).alpha() == 255
    assert (tmp_path / "hicolor/scalable/apps/lepton-desktop.svg").is_file()
    assert len(written) == 9 * 2 + 2


def test_an_invalid_svg_stops_the_build(tmp_path: Path) -> None:
    bad = tmp_path / "bad.svg"
    bad.write_text("<svg", encoding="utf-8")
    with pytest.raises(SystemExit, match="not a valid SVG"):
        render_icons.render(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(
    shutil.which("desktop-file-validate") is None, reason="desktop-file-utils is not installed"
)
def test_the_desktop_entry_is_valid() -> None:
    done = subprocess.run(
        ["desktop-file-validate", str(REPO / "resources" / "lepton-desktop.desktop")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")

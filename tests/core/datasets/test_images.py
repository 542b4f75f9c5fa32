"""Importing image folders: one sub-folder per class, every file checked by Pillow."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from lepton_desktop.core.errors import CancelledError, DataImportError
from lepton_desktop.core.project import Project
from tests.conftest import SAMPLE_DATA


def snapshot(project: Project) -> tuple[list[str], list[str], bool]:
    """Datasets, tables and integrity: what a failed import must leave unchanged."""
    tables = sorted(r[0] for r in project.conn.execute("SELECT name FROM sqlite_master"))
    return [v.ref for v in project.datasets()], tables, project.integrity_ok()


def encoded(fmt: str, size: tuple[int, int] = (6, 4), color: Any = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def image_folder(root: Path) -> Path:
    """cats: 2 PNG (one nested) and a JPEG; dogs: 1 JPEG; plus files to be ignored."""
    (root / "cats" / "more").mkdir(parents=True)
    (root / "dogs").mkdir()
    (root / "empty").mkdir()
    (root / ".hidden").mkdir()
    (root / "cats" / "a.png").write_bytes(encoded("PNG", (6, 4)))
    (root / "cats" / "more" / "b.PNG").write_bytes(encoded("PNG", (3, 5), (1, 2, 3)))
    (root / "cats" / "c.jpeg").write_bytes(encoded("JPEG", (8, 8)))
    (root / "dogs" / "d.jpg").write_bytes(encoded("JPEG", (10, 7)))
    (root / "dogs" / "notes.txt").write_text("not an image")
    (root / "dogs" / ".thumb.png").write_bytes(b"junk")
    (root / ".hidden" / "x.png").write_bytes(b"junk")
    return root


class Recorder:
    def __init__(self, cancel_at: int | None = None) -> None:
        self.calls: list[tuple[int, int | None, str]] = []
        self.cancel_at = cancel_at

    def update(self, done: int, total: int | None, message: str = "") -> None:
        self.calls.append((done, total, message))
        if done == self.cancel_at:
            raise CancelledError()


def test_sample_digits_import_as_labelled_blobs(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        version = project.import_dataset(SAMPLE_DATA / "digits", "digits")
        assert version.kind == "images"
        assert version.n_rows == 300
        assert version.target == "label"
        assert [(c.name, c.dtype) for c in version.columns] == [
            ("path", "text"), ("label", "categorical"), ("width", "numeric"), ("height", "numeric")
        ]
        assert project.label_counts(version, "label") == {str(d): 30 for d in range(10)}
        path, label, width, height, split = project.rows(version, 0, 1)[0]
        assert (label, width, height, split) == ("0", 8, 8, None)
        # Stored as they are: the very bytes of the file, not a re-encoding or a pickle.
        assert project.image(version, 0) == (SAMPLE_DATA / "digits" / path).read_bytes()


def test_png_and_jpeg_nested_files_and_ignored_files(tmp_project: Path, tmp_path: Path) -> None:
    folder = image_folder(tmp_path / "pets")
    recorder = Recorder()
    with Project.open(tmp_project) as project:
        version = project.import_dataset(folder, "pets", reporter=recorder)
        rows = project.rows(version, 0, 10)
        assert [r[:4] for r in rows] == [
            ("cats/a.png", "cats", 6, 4), ("cats/c.jpeg", "cats", 8, 8),
            ("cats/more/b.PNG", "cats", 3, 5), ("dogs/d.jpg", "dogs", 10, 7),
        ]
        assert Image.open(io.BytesIO(project.image(version, 3))).format == "JPEG"
        assert version.operations[0]["classes"] == ["cats", "dogs"]
        assert version.column("label").stats["unique"] == 2
    assert [c[0] for c in recorder.calls] == [1, 2, 3, 4]
    assert recorder.calls[-1][:2] == (4, 4)


def test_importing_again_adds_a_version(tmp_project: Path, tmp_path: Path) -> None:
    folder = image_folder(tmp_path / "pets")
    with Project.open(tmp_project) as project:
        project.import_dataset(folder, "pets")
        second = project.import_dataset(folder, "pets", kind="images")
        assert second.ref == "pets:2"


def _broken(folder: Path, name: str, data: bytes) -> Path:
    bad = folder / "dogs" / name
    bad.write_bytes(data)
    return bad


@pytest.mark.parametrize(
    ("name", "make", "detail"),
    [
        ("truncated.png", lambda: encoded("PNG", (64, 64), (5, 6, 7))[:-60], ""),
        ("truncated.jpg", lambda: encoded("JPEG", (64, 64), (5, 6, 7))[:300], ""),
        ("text.jpg", lambda: b"hello, I am not a picture", ""),
        ("empty.png", lambda: b"", ""),
        ("anim.png", lambda: encoded("GIF"), "GIF data; only PNG and JPEG"),
    ],
)
def test_a_broken_image_is_named_and_nothing_is_left(
    tmp_project: Path, tmp_path: Path, name: str, make: Any, detail: str
) -> None:
    folder = image_folder(tmp_path / "pets")
    bad = _broken(folder, name, make())
    with Project.open(tmp_project) as project:
        project.import_dataset(SAMPLE_DATA / "iris.csv", "iris", target="species")
        before = snapshot(project)
        with pytest.raises(DataImportError) as info:
            project.import_dataset(folder, "pets")
        assert str(info.value).startswith(f"{bad}: not a readable image (")
        assert detail in str(info.value)
        assert "BytesIO" not in str(info.value)  # Pillow's buffer, not the user's file
        assert snapshot(project) == before


def test_a_broken_image_after_a_full_batch_is_rolled_back(
    tmp_project: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "many"
    (folder / "a").mkdir(parents=True)
    png = encoded("PNG", (2, 2))
    for i in range(300):  # more than one insert batch is written before the failure
        (folder / "a" / f"{i:03d}.png").write_bytes(png)
    (folder / "a" / "999.png").write_bytes(png[:20])
    with Project.open(tmp_project) as project:
        before = snapshot(project)
        with pytest.raises(DataImportError, match=r"999\.png: not a readable image"):
            project.import_dataset(folder, "many")
        assert snapshot(project) == before


def test_folder_without_class_subfolders(tmp_project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "flat"
    folder.mkdir()
    (folder / "a.png").write_bytes(encoded("PNG"))
    with Project.open(tmp_project) as project:
        before = snapshot(project)
        with pytest.raises(DataImportError, match="no class sub-folders"):
            project.import_dataset(folder, "flat")
        assert snapshot(project) == before


def test_class_subfolders_without_images(tmp_project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    (folder / "b" / "readme.txt").write_text("no pictures here")
    with Project.open(tmp_project) as project:
        before = snapshot(project)
        with pytest.raises(DataImportError, match=r"sub-folders \(a, b\) hold no .png, .jpg"):
            project.import_dataset(folder, "empty")
        assert snapshot(project) == before


def test_a_file_is_not_an_image_folder(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        before = snapshot(project)
        with pytest.raises(DataImportError, match="one sub-folder per class"):
            project.import_dataset(SAMPLE_DATA / "iris.csv", "x", kind="images")
        assert snapshot(project) == before


def test_cancel_leaves_nothing(tmp_project: Path) -> None:
    with Project.open(tmp_project) as project:
        before = snapshot(project)
        with pytest.raises(CancelledError):
            project.import_dataset(SAMPLE_DATA / "digits", "digits", reporter=Recorder(270))
        assert snapshot(project) == before

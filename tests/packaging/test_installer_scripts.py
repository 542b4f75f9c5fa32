"""The installers' declarations of the project file type agree with each other and the app.

macOS's Info.plist and Windows' Inno Setup script cannot be built on this Linux machine:
these tests parse them and check what a double-click depends on. The Linux files (the
desktop entry and the shared-mime-info XML) are checked too; the .deb installs them for
real in tests/e2e/test_deb.py.
"""

from __future__ import annotations

import configparser
import plistlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lepton_desktop.core.store.db import APPLICATION_ID

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
MIME_TYPE = "application/x-lepton-project"
NS = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}


# -- Linux: shared-mime-info and the desktop entry ------------------------------------------


def test_the_mime_magic_is_the_sqlite_header_and_our_application_id() -> None:
    root = ET.parse(REPO / "resources" / "lepton-desktop-mime.xml").getroot()
    (mime,) = root.findall("m:mime-type", NS)
    assert mime.get("type") == MIME_TYPE
    assert [g.get("pattern") for g in mime.findall("m:glob", NS)] == ["*.lepton"]
    (outer,) = mime.findall("m:magic/m:match", NS)
    assert (outer.get("offset"), outer.get("value")) == ("0", "SQLite format 3")
    (inner,) = outer.findall("m:match", NS)
    # The SQLite header keeps PRAGMA application_id big-endian at byte 68.
    assert (inner.get("type"), inner.get("offset")) == ("big32", "68")
    assert int(inner.get("value", ""), 16) == APPLICATION_ID


def test_the_desktop_entry_opens_one_project_file() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    entry.read(REPO / "resources" / "lepton-desktop.desktop", encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["MimeType"] == f"{MIME_TYPE};"
    assert section["Exec"].split() == ["lepton-desktop", "%f"]
    assert section["Icon"] == "lepton-desktop"


# -- macOS: Info.plist ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def info_plist() -> dict[str, object]:
    with (PACKAGING / "macos" / "Info.plist").open("rb") as f:
        return plistlib.load(f)


def test_info_plist_exports_the_lepton_type(info_plist: dict[str, object]) -> None:
    (exported,) = info_plist["UTExportedTypeDeclarations"]  # type: ignore[misc]
    tags = exported["UTTypeTagSpecification"]
    assert tags["public.filename-extension"] == ["lepton"]
    assert tags["public.mime-type"] == [MIME_TYPE]
    assert "public.data" in exported["UTTypeConformsTo"]


def test_info_plist_opens_the_exported_type_as_its_owner(info_plist: dict[str, object]) -> None:
    (exported,) = info_plist["UTExportedTypeDeclarations"]  # type: ignore[misc]
    (document,) = info_plist["CFBundleDocumentTypes"]  # type: ignore[misc]
    assert document["LSItemContentTypes"] == [exported["UTTypeIdentifier"]]
    assert (document["CFBundleTypeRole"], document["LSHandlerRank"]) == ("Editor", "Owner")


def test_the_spec_uses_the_info_plist_on_macos() -> None:
    spec = (PACKAGING / "lepton_desktop.spec").read_text(encoding="utf-8")
    assert '"macos" / "Info.plist"' in spec and "BUNDLE(" in spec and "info_plist=" in spec


# -- Windows: the Inno Setup script -----------------------------------------------------------


def _iss() -> tuple[dict[str, str], dict[str, list[str]]]:
    """``(#define constants, section -> its lines)`` of the Inno Setup script."""
    defines: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current = None
    for raw in (PACKAGING / "windows" / "lepton-desktop.iss").read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if match := re.fullmatch(r'#define (\w+) "(.*)"', line):
            defines[match[1]] = match[2]
        elif match := re.fullmatch(r"\[(\w+)\]", line):
            current = match[1]
            sections[current] = []
        elif current is not None and not line.startswith("#"):
            sections[current].append(line)
    return defines, sections


def _expand(text: str, defines: dict[str, str]) -> str:
    return re.sub(r"\{#(\w+)\}", lambda m: defines[m[1]], text)


def _entry(line: str, defines: dict[str, str]) -> dict[str, str]:
    """The fields of one ``Key: value; Key: "a ""quoted"" value"`` line (Inno's syntax)."""
    pattern = r'\s*(\w+):\s*("(?:[^"]|"")*"|[^;]*)\s*(?:;|$)'
    fields = {}
    for key, value in re.findall(pattern, line):
        if value.startswith('"'):
            value = value[1:-1].replace('""', '"')
        fields[key] = _expand(value.strip(), defines)
    return fields


def _registry() -> dict[tuple[str, str], dict[str, str]]:
    defines, sections = _iss()
    entries = [_entry(line, defines) for line in sections["Registry"]]
    return {(e["Subkey"], e["ValueName"]): e for e in entries}


def test_the_installer_associates_lepton_files_with_the_app() -> None:
    defines, sections = _iss()
    registry = _registry()
    prog_id = defines["ProgId"]
    assert all(e["Root"] == "HKA" for e in registry.values())  # per user, or all when elevated
    assert registry[(r"Software\Classes\.lepton", "")]["ValueData"] == prog_id
    assert registry[(r"Software\Classes\.lepton", "Content Type")]["ValueData"] == MIME_TYPE
    assert (r"Software\Classes\.lepton\OpenWithProgids", prog_id) in registry
    command = registry[(rf"Software\Classes\{prog_id}\shell\open\command", "")]["ValueData"]
    assert command == r'"{app}\lepton-desktop.exe" "%1"'  # quoted: paths hold spaces
    assert "ChangesAssociations=yes" in sections["Setup"]


def test_uninstalling_removes_the_association() -> None:
    defines = _iss()[0]
    registry = _registry()
    assert "uninsdeletekey" in registry[(rf"Software\Classes\{defines['ProgId']}", "")]["Flags"]
    for key in ((r"Software\Classes\.lepton", ""), (r"Software\Classes\.lepton", "Content Type")):
        assert "uninsdeletevalue" in registry[key]["Flags"]  # never the whole .lepton key


def test_the_installer_ships_the_pyinstaller_folder() -> None:
    defines, sections = _iss()
    spec = (PACKAGING / "lepton_desktop.spec").read_text(encoding="utf-8")
    name = re.search(r'^NAME = "(.+)"$', spec, re.MULTILINE)
    assert name and defines["AppExe"] == f"{name[1]}.exe"
    (files,) = (_entry(line, defines) for line in sections["Files"])
    assert files["Source"] == rf"..\..\dist\{name[1]}\*" and "recursesubdirs" in files["Flags"]
    setup = dict(line.split("=", 1) for line in sections["Setup"])
    assert re.fullmatch(r"\{\{[0-9A-F-]{36}\}", setup["AppId"])

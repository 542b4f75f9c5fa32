"""The Debian package, installed for real on this machine: files, file type, double-click.

``packaging/build.sh`` makes ``dist/lepton-desktop_VERSION_ARCH.deb``; these tests
install it with ``dpkg -i`` (root needed: CI runs as root), check what a desktop relies
on (the executable on PATH, the desktop entry, the MIME type by name and by content, the
default application), then double-click a project the way a file manager does
(``xdg-open`` on a virtual X screen) and look for the app's window titled with the
project's name, and finally ``dpkg -r`` it and check nothing is left. Skipped without a
built package, without root, or when the package is installed already (the last test
would remove someone's installation).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lepton_desktop import __version__
from lepton_desktop.core.project import Project

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "lepton-desktop"
MIME_TYPE = "application/x-lepton-project"
DEBS = sorted((REPO / "dist").glob(f"{PACKAGE}_{__version__}_*.deb"))
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
#: Libraries Qt's xcb platform plugin needs on the user's machine (issue 14).
QT_SYSTEM_PACKAGES = {"libxcb-cursor0", "libxkbcommon-x11-0", "libegl1", "libfontconfig1",
                      "libdbus-1-3", "libxcb-icccm4", "libxcb-keysyms1"}  # fmt: skip
TOOLS = ("dpkg", "xdg-mime", "xdg-open", "desktop-file-validate", "Xvfb", "xdotool")


def _installed() -> bool:
    status = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", PACKAGE], capture_output=True, text=True, check=False
    ).stdout
    return status == "install ok installed"


def _why_skip() -> str | None:
    if not DEBS:
        return f"no dist/{PACKAGE}_{__version__}_*.deb; run packaging/build.sh"
    if os.geteuid() != 0:
        return "installing a .deb needs root"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (packaging/dev.sh lists their packages)"
    if _installed():
        return f"{PACKAGE} is installed already; this test would remove it"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_why_skip() is not None, reason=_why_skip() or ""),
]


def run(*args: str | Path, env: dict[str, str] | None = None) -> str:
    """stdout of a command that must succeed."""
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, f"{args}: rc {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def package_files() -> Iterator[list[Path]]:
    """The package installed; the files (not folders) it put on disk."""
    run("dpkg", "-i", DEBS[-1])
    try:
        listed = [Path(line) for line in run("dpkg", "-L", PACKAGE).splitlines() if line]
        yield [p for p in listed if p.is_file() or p.is_symlink()]
    finally:
        if _installed():
            run("dpkg", "--purge", PACKAGE)


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A fresh user: no per-user MIME defaults, settings or data from this machine."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "XDG_", "QT_"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
    )
    return env


@pytest.fixture
def demo_project(tmp_path: Path) -> Path:
    path = tmp_path / "files" / "demo.lepton"
    path.parent.mkdir()
    Project.create(path).close()
    return path


def test_the_package_installs_the_app_entry_type_and_icons(package_files: list[Path]) -> None:
    files = set(package_files)
    app = Path("/opt/lepton-desktop/lepton-desktop")
    assert app in files and os.access(app, os.X_OK)
    assert Path("/usr/bin/lepton-desktop").resolve() == app
    assert Path("/usr/share/applications/lepton-desktop.desktop") in files
    assert Path("/usr/share/mime/packages/lepton-desktop.xml") in files
    for size in ICON_SIZES:
        for icon in ("apps/lepton-desktop", "mimetypes/application-x-lepton-project"):
            assert Path(f"/usr/share/icons/hicolor/{size}x{size}/{icon}.png") in files
    assert all(p.lstat().st_uid == 0 and p.lstat().st_gid == 0 for p in package_files)
    # postinst ran update-mime-database: the type is in the compiled database.
    assert Path(f"/usr/share/mime/{MIME_TYPE}.xml").is_file()


def test_the_package_depends_on_what_qt_needs(package_files: list[Path]) -> None:
    depends = run("dpkg-query", "-W", "-f=${Depends}", PACKAGE)
    names = {d.strip().split(" ", 1)[0] for d in depends.split(",")}
    assert names >= QT_SYSTEM_PACKAGES, QT_SYSTEM_PACKAGES - names


def test_the_installed_app_runs_from_path(
    package_files: list[Path], user_env: dict[str, str]
) -> None:
    version = run("lepton-desktop", "--version", env=user_env).strip()
    assert version == f"lepton-desktop {__version__}"


def test_the_desktop_entry_is_valid(package_files: list[Path]) -> None:
    entry = "/usr/share/applications/lepton-desktop.desktop"
    assert run("desktop-file-validate", entry).strip() == ""
    assert f"MimeType={MIME_TYPE};" in Path(entry).read_text(encoding="utf-8").splitlines()


def test_a_project_is_recognised_by_name_and_by_content(
    package_files: list[Path], user_env: dict[str, str], demo_project: Path
) -> None:
    renamed = demo_project.with_name("demo-without-extension")
    shutil.copyfile(demo_project, renamed)
    other_sqlite = demo_project.with_name("other-database")
    sqlite3.connect(other_sqlite).execute("CREATE TABLE t (x)").connection.close()
    assert run("xdg-mime", "query", "filetype", demo_project, env=user_env).strip() == MIME_TYPE
    assert run("xdg-mime", "query", "filetype", renamed, env=user_env).strip() == MIME_TYPE
    # The magic looks at the application id: another SQLite file is not a project.
    assert run("xdg-mime", "query", "filetype", other_sqlite, env=user_env).strip() != MIME_TYPE


def test_the_app_is_the_default_for_projects(
    package_files: list[Path], user_env: dict[str, str]
) -> None:
    answer = run("xdg-mime", "query", "default", MIME_TYPE, env=user_env).strip()
    assert answer == "lepton-desktop.desktop"


def test_xdg_open_starts_the_app_with_the_project(
    package_files: list[Path], user_env: dict[str, str], demo_project: Path
) -> None:
    with _virtual_screen() as display:
        env = {**user_env, "DISPLAY": display}
        # xdg-open waits for the app it starts: its own session, ended below.
        opener = subprocess.Popen(
            ["xdg-open", str(demo_project)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            window = _wait_for_window(f"^{demo_project.name} — Lepton Desktop$", env, opener)
            pid = int(run("xdotool", "getwindowpid", window, env=env))
            exe = Path(f"/proc/{pid}/exe").resolve()
            assert exe == Path("/opt/lepton-desktop/lepton-desktop")
        finally:
            os.killpg(opener.pid, signal.SIGTERM)
            opener.communicate(timeout=60)


def test_removing_the_package_leaves_nothing(
    package_files: list[Path], user_env: dict[str, str], demo_project: Path
) -> None:
    renamed = demo_project.with_name("demo-without-extension")
    shutil.copyfile(demo_project, renamed)
    run("dpkg", "-r", PACKAGE)
    assert not _installed()
    assert [p for p in package_files if p.exists() or p.is_symlink()] == []
    assert not Path("/opt/lepton-desktop").exists()
    # postrm refreshed the caches: the type and the default application are gone.
    assert not Path(f"/usr/share/mime/{MIME_TYPE}.xml").exists()
    assert run("xdg-mime", "query", "filetype", renamed, env=user_env).strip() != MIME_TYPE
    cache = Path("/usr/share/applications/mimeinfo.cache")
    assert not cache.exists() or "lepton-desktop.desktop" not in cache.read_text("utf-8")
    # dpkg keeps a removed package's scripts until it is purged; then it forgets it.
    run("dpkg", "--purge", PACKAGE)
    known = subprocess.run(["dpkg-query", "-W", PACKAGE], capture_output=True, check=False)
    assert known.returncode != 0


@contextlib.contextmanager
def _virtual_screen() -> Iterator[str]:
    """An Xvfb server on a free display; its name (``:N``) while the block runs."""
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for_window(title: str, env: dict[str, str], opener: subprocess.Popen[str]) -> str:
    """The id of the first window whose title matches the regular expression ``title``."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["xdotool", "search", "--name", title],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        if found:
            return found[0]
        if opener.poll() is not None:
            output = opener.stdout.read() if opener.stdout else ""
            pytest.fail(f"xdg-open ended ({opener.returncode}) with no window: {output}")
        time.sleep(0.5)
    seen = subprocess.run(
        ["xdotool", "search", "--name", "."], env=env, capture_output=True, text=True, check=False
    ).stdout.split()
    names = [
        subprocess.run(
            ["xdotool", "getwindowname", w], env=env, capture_output=True, text=True, check=False
        ).stdout.strip()
        for w in seen
    ]
    pytest.fail(f"no window titled {title!r} within 120 s; windows: {names}")

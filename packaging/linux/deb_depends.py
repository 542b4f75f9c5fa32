"""The Debian packages a frozen bundle's libraries need from the system (``Depends:``).

    python packaging/linux/deb_depends.py BUNDLE_DIR     # prints "libc6, libegl1, ..."

Derived, not hand-kept: every ELF file in the bundle is read with ``readelf -d`` for its
``NEEDED`` libraries, each name is found on this machine (``ldconfig -p``) and its owning
package asked of dpkg (``dpkg -S``). Two kinds count:

- a library the bundle does not carry (libc, libGL, libEGL, fontconfig, D-Bus, ...): the
  system must provide it;
- a library Qt's own files (``PySide6/Qt/``: the xcb platform plugin and the rest) need,
  even when PyInstaller copied it in (libxcb-cursor0, libxkbcommon-x11-0, ...): the
  package then brings the files that copy expects around it (X keymaps, locales).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ELF_MAGIC = b"\x7fELF"


def elf_files(bundle: Path) -> list[Path]:
    """Every ELF file under ``bundle`` (libraries, Python extensions, executables)."""
    found = []
    for path in bundle.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == ELF_MAGIC:
                    found.append(path)
    return found


def needed(elf: Path) -> list[str]:
    """The ``NEEDED`` sonames of one ELF file."""
    out = subprocess.run(
        ["readelf", "-d", str(elf)], capture_output=True, text=True, check=False
    ).stdout
    return [line.rsplit("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def system_libraries() -> dict[str, str]:
    """soname -> path of the x86-64 libraries this machine's dynamic loader knows."""
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    found: dict[str, str] = {}
    for line in out.splitlines()[1:]:
        name, _, path = line.strip().partition(" => ")
        soname = name.split(" ", 1)[0]
        if "x86-64" in name and soname not in found:
            found[soname] = path.strip()
    return found


def owning_packages(paths: list[str]) -> set[str]:
    """The packages owning ``paths`` (``dpkg -S``), without the ``:arch`` suffix."""
    if not paths:
        return set()
    out = subprocess.run(
        ["dpkg", "-S", *paths], capture_output=True, text=True, check=False
    ).stdout
    packages = set()
    for line in out.splitlines():
        owners = line.split(": ", 1)[0]
        packages.update(owner.strip().split(":", 1)[0] for owner in owners.split(","))
    return packages


def depends(bundle: Path) -> list[str]:
    """The sorted package names the bundle needs (see the module's doc)."""
    files = elf_files(bundle)
    carried = {f.name for f in files}
    wanted: set[str] = set()
    for elf in files:
        from_qt = "PySide6/Qt/" in elf.as_posix()
        wanted.update(name for name in needed(elf) if from_qt or name not in carried)
    system = system_libraries()
    unresolved = sorted(name for name in wanted if name not in system and name not in carried)
    if unresolved:
        # PyInstaller warned about these too: optional parts (a GPU provider's libraries)
        # that no code path here loads.
        print(
            f"deb_depends: not on this machine, left out: {', '.join(unresolved)}", file=sys.stderr
        )
    paths = sorted({system[name] for name in wanted if name in system})
    return sorted(owning_packages([variant for path in paths for variant in _variants(path)]))


def _variants(path: str) -> list[str]:
    # With a merged /usr, the loader may name /lib/x/libfoo.so.1 while dpkg recorded
    # /usr/lib/x/libfoo.so.1 (or the reverse): ask for every spelling.
    spellings = {path, os.path.realpath(path)}
    for spelling in list(spellings):
        if spelling.startswith("/usr/"):
            spellings.add(spelling.removeprefix("/usr"))
        else:
            spellings.add("/usr" + spelling)
    return sorted(spellings)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: deb_depends.py BUNDLE_DIR")
    print(", ".join(depends(Path(sys.argv[1]))))

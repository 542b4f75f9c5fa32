"""How big the frozen app and its packages are, part by part, before and after a change.

A build takes minutes, so this bench does not build: ``packaging/build.sh`` calls it
with ``--record`` at its end, which writes the sizes of the new folder's parts, the
``.deb``, the ``.tar.xz`` and the build's times to ``build/package-report.json``.
Run without ``--record`` it compares two records (or folders) in one table:

    .venv/bin/python -m bench.package_size        # baseline vs build/package-report.json
    .venv/bin/python -m bench.package_size --before build/baseline/dist/lepton-desktop
    .venv/bin/python -m bench.package_size --record dist/lepton-desktop --deb X.deb \
        --tarball X.tar.xz --seconds folder=240,deb=60,tarball=90 [--out FILE]

The anchor ("before") is a build of the spec as it was before the cuts, made the same
way (``python -m PyInstaller packaging/lepton_desktop.spec`` into
``build/baseline/dist``); a folder given instead of a record is measured on the spot.
Goals (issue 14): the folder <= 700 MB, the compressed package <= 200 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from collections import Counter
from pathlib import Path

from bench._common import REPO, machine_line, markdown_table

MB = 1_000_000
GOALS_MB = {"folder": 700, "package": 200}
DEFAULT_AFTER = REPO / "build" / "package-report.json"
DEFAULT_BEFORE = REPO / "build" / "baseline" / "dist" / "lepton-desktop"
#: How deep a part of the bundle is named in the table (torch/lib, PySide6/Qt/plugins).
DEPTH = {"torch": 2, "PySide6": 3}
#: Parts smaller than this (before and after) are summed into one "other" row.
SMALL_MB = 4.0
NOT_BUILT: dict[str, object] = {"bundle": "(no baseline build)", "components": {},
                                "folder_bytes": None, "seconds": {}}  # fmt: skip


def component(relative: Path) -> str:
    """The table row a file of ``_internal/`` belongs to."""
    parts = relative.parts
    if len(parts) == 1:
        return "(top-level libraries and files)"
    head = parts[0].removesuffix(".libs")  # numpy.libs counts with numpy
    depth = DEPTH.get(head, 1)
    return "/".join((head, *parts[1:depth])) if len(parts) > depth else head


def measure(bundle: Path) -> dict[str, int]:
    """Bytes per component of a one-folder build (the executable, which carries the
    PYZ archive of Python modules, counted apart)."""
    sizes: Counter[str] = Counter()
    internal = bundle / "_internal"
    for path in bundle.rglob("*"):
        if path.is_file() and not path.is_symlink():
            size = path.stat().st_size
            if path.parent == bundle:
                sizes["executable + PYZ (Python modules)"] += size
            else:
                sizes[component(path.relative_to(internal))] += size
    return dict(sizes)


def record(args: argparse.Namespace) -> dict[str, object]:
    """The record ``packaging/build.sh`` writes after a build."""
    seconds = dict(item.split("=", 1) for item in args.seconds.split(",")) if args.seconds else {}

    def size_of(path: str) -> int | None:
        return Path(path).stat().st_size if path and Path(path).is_file() else None

    components = measure(Path(args.record))
    return {
        "bundle": str(args.record),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_line(),
        "load": os.getloadavg(),
        "components": components,
        "folder_bytes": sum(components.values()),
        "deb_bytes": size_of(args.deb),
        "tarball_bytes": size_of(args.tarball),
        "seconds": {k: int(v) for k, v in seconds.items()},
    }


def load(path: Path) -> dict[str, object]:
    """A record from its JSON file, or measured from a build folder."""
    if path.is_dir():
        components = measure(path)
        return {"bundle": str(path), "components": components,
                "folder_bytes": sum(components.values()), "seconds": {}}  # fmt: skip
    return json.loads(path.read_text(encoding="utf-8"))


def _mb(value: object) -> str:
    return f"{int(value) / MB:,.0f}" if isinstance(value, int) else "–"  # type: ignore[arg-type]


def components_table(before: dict[str, object], after: dict[str, object]) -> str:
    """component | MB before | MB after, largest first, small parts summed."""
    old, new = before["components"], after["components"]
    assert isinstance(old, dict) and isinstance(new, dict)
    rows, other_old, other_new = [], 0, 0
    for name in sorted(set(old) | set(new), key=lambda n: -max(old.get(n, 0), new.get(n, 0))):
        a, b = old.get(name, 0), new.get(name, 0)
        if max(a, b) < SMALL_MB * MB:
            other_old, other_new = other_old + a, other_new + b
            continue
        rows.append([name, _mb(a) if old else "–", _mb(b)])
    other = f"other (each < {SMALL_MB:.0f} MB)"
    rows.append([other, _mb(other_old) if old else "–", _mb(other_new)])
    rows.append(["**folder**", _mb(before["folder_bytes"]), _mb(after["folder_bytes"])])
    return markdown_table(["component", "MB before", "MB after"], rows)


def totals_table(before: dict[str, object], after: dict[str, object]) -> str:
    """Folder, packages and build time against the goals."""
    folder = int(after["folder_bytes"])  # type: ignore[call-overload]
    packages = [int(after[k]) for k in ("deb_bytes", "tarball_bytes") if after.get(k)]  # type: ignore[call-overload]
    seconds = after.get("seconds") or {}
    assert isinstance(seconds, dict)
    rows = [
        ["folder (MB)", _mb(before["folder_bytes"]), _mb(folder),
         f"≤ {GOALS_MB['folder']}", "yes" if folder <= GOALS_MB["folder"] * MB else "**no**"],
        [".deb (MB)", _mb(before.get("deb_bytes")), _mb(after.get("deb_bytes")),
         f"≤ {GOALS_MB['package']}", _verdict(after.get("deb_bytes"))],
        [".tar.xz (MB)", _mb(before.get("tarball_bytes")), _mb(after.get("tarball_bytes")),
         f"≤ {GOALS_MB['package']}", _verdict(after.get("tarball_bytes"))],
        *([f"build: {step} (s)", "–", str(value), "", ""] for step, value in seconds.items()),
    ]  # fmt: skip
    if not packages:
        rows.append(["packages", "–", "not built (SKIP_PACKAGES=1)", "", ""])
    return markdown_table(["", "before", "after", "goal", "met"], rows)


def _verdict(size: object) -> str:
    if not isinstance(size, int):
        return "–"
    return "yes" if size <= GOALS_MB["package"] * MB else "**no**"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", metavar="BUNDLE", help="measure this build and write a record")
    parser.add_argument("--deb", default="", help="with --record: the .deb built")
    parser.add_argument("--tarball", default="", help="with --record: the .tar.xz built")
    parser.add_argument("--seconds", default="", help="with --record: step=seconds,...")
    parser.add_argument("--out", type=Path, default=DEFAULT_AFTER, help="with --record")
    parser.add_argument("--before", type=Path, default=DEFAULT_BEFORE, help="record or folder")
    parser.add_argument("--after", type=Path, default=DEFAULT_AFTER, help="record or folder")
    args = parser.parse_args(argv)
    if args.record:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record(args), indent=1), encoding="utf-8")
        print(f"package_size: recorded {args.record} in {args.out}")
        args.after = args.out
    if not args.after.exists():
        parser.error(f"{args.after} does not exist: build first (see the module's doc)")
    # Without a baseline build the "before" column stays empty rather than guessed.
    before = load(args.before) if args.before.exists() else NOT_BUILT
    after = load(args.after)
    print(f"Package size: before = {before['bundle']}, after = {after['bundle']}\n")
    print(components_table(before, after))
    print()
    print(totals_table(before, after))
    print(f"\n{machine_line()}; load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

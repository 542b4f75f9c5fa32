#!/usr/bin/env bash
# The two Quick-start commands; each one sets itself up on a fresh machine.
#
#   bash packaging/dev.sh app [PROJECT]   run the app (no argument: the demo project,
#                                         created on first use from resources/sample_data)
#   bash packaging/dev.sh test [ARGS]     ruff, the import rules, mypy, then the whole test suite
#                                         (ARGS go to pytest); .ci/run calls exactly this
#
# Set-up, done only when something is missing or pyproject.toml changed:
#   - Debian packages Qt needs (apt-get as root, else sudo, else a hint);
#   - a virtual environment in .venv (LEPTON_VENV overrides);
#   - torch FIRST (LEPTON_TORCH, default torch==2.13.0, the CPU build this kind of
#     machine has on disk), so the project's open torch range never pulls a
#     multi-GB CUDA build; then the project with its dev extra, editable.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LEPTON_VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${LEPTON_TORCH:-torch==2.13.0}
# Qt offscreen (tests) needs EGL, xkbcommon, fontconfig and a font.
DEBS_QT="libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 fonts-dejavu-core"
# The tuning scale-out test starts a throwaway PostgreSQL server (initdb, pg_ctl); the
# monitoring test a Prometheus server that scrapes a running Lepton server.
DEBS_TEST="postgresql prometheus"
# The packages (packaging/build.sh: dpkg-deb, readelf for Depends:, xz) and their test
# (tests/e2e/test_deb.py: the MIME database and xdg-utils' query and open, as a desktop
# has them, desktop-file-validate, a virtual X screen and xdotool to find the window).
DEBS_PACKAGING="dpkg-dev binutils xz-utils shared-mime-info desktop-file-utils xdg-utils \
libfile-mimeinfo-perl xvfb xdotool"
# A real X11 window also needs the xcb plugin's libraries.
DEBS_WINDOW="libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 \
libxcb-render-util0 libxcb-shape0 libxcb-randr0 libxcb-xinerama0 libxcb-xkb1"

install_debs() {
    command -v dpkg >/dev/null 2>&1 || return 0   # not Debian/Ubuntu: nothing to do
    local missing=""
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
    done
    [ -z "$missing" ] && return 0
    echo "installing Debian packages:$missing" >&2
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    if [ -n "$sudo" ] && ! command -v sudo >/dev/null 2>&1; then
        echo "warning: please install these Debian packages:$missing" >&2
        return 0
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

setup_venv() {
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    local stamp="$VENV/.lepton-setup" want
    want="$(sha256sum pyproject.toml | cut -c1-16) $TORCH_SPEC"
    [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
    "$VENV/bin/python" -m pip install -q --upgrade pip
    if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
        "$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
    fi
    "$VENV/bin/python" -m pip install -q -e ".[dev]"
    echo "$want" >"$stamp"
}

run_tests() {
    install_debs $DEBS_QT $DEBS_TEST $DEBS_PACKAGING
    setup_venv
    export QT_QPA_PLATFORM=offscreen
    echo "== ruff" >&2
    "$VENV/bin/ruff" check .
    echo "== import rules (import-linter)" >&2
    "$VENV/bin/lint-imports" --no-cache
    echo "== types (mypy)" >&2
    "$VENV/bin/mypy"
    echo "== tests" >&2
    "$VENV/bin/python" -m pytest "$@"
}

run_app() {
    install_debs $DEBS_QT $DEBS_WINDOW
    setup_venv
    if [ "$#" -eq 0 ]; then
        set -- --demo
    fi
    exec "$VENV/bin/lepton-desktop" "$@"
}

case "${1:-}" in
    app) shift; run_app "$@" ;;
    test) shift; run_tests "$@" ;;
    *) echo "usage: bash packaging/dev.sh app [PROJECT] | test [PYTEST ARGS]" >&2; exit 2 ;;
esac

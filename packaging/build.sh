#!/usr/bin/env bash
# Build the one-folder app into dist/lepton-desktop/ with PyInstaller.
#
#   packaging/build.sh            # from anywhere; uses .venv/bin/python of the repo
#   PYTHON=/path/to/python packaging/build.sh
#   SKIP_APT=1 packaging/build.sh # do not touch system packages
#
# On Debian/Ubuntu it first installs the X11/xcb libraries that Qt's xcb platform
# plugin links against. PyInstaller copies them into the bundle only if they are
# present at build time; without libxcb-icccm4 and libxcb-keysyms1 the frozen app
# cannot open a window on machines that lack them (and Qt blames libxcb-cursor0).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
DIST="$REPO/dist"
WORK="$REPO/build/pyinstaller"

# What libqxcb.so (Qt's X11 platform plugin) and libQt6XcbQpa need at run time.
QT_DEBS=(
  libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0
  libxcb-shape0 libxcb-randr0 libxcb-xfixes0 libxcb-sync1 libxcb-xkb1 libxcb-shm0
  libxcb-render0 libxcb-util1 libxkbcommon-x11-0 libxkbcommon0 libx11-xcb1
  libfontconfig1 libfreetype6 libdbus-1-3 libegl1 libgl1 libglib2.0-0
)

install_qt_libraries() {
  if [[ "${SKIP_APT:-0}" == 1 ]] || ! command -v dpkg-query >/dev/null; then
    echo "build.sh: not installing system libraries (SKIP_APT=1 or not Debian)"
    return
  fi
  local missing=()
  for deb in "${QT_DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$deb")
  done
  if ((${#missing[@]} == 0)); then
    echo "build.sh: Qt's xcb libraries are installed"
    return
  fi
  echo "build.sh: installing ${missing[*]}"
  local sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

check_qt_plugin() {
  # Fail now rather than on a user's desktop: every library the xcb plugin needs
  # must resolve here, so that PyInstaller can bundle it.
  local plugin
  plugin="$("$PYTHON" -c 'import PySide6, pathlib; print(pathlib.Path(PySide6.__file__).parent / "Qt/plugins/platforms/libqxcb.so")')"
  if [[ -f "$plugin" ]] && ldd "$plugin" | grep -q "not found"; then
    echo "build.sh: $plugin has unresolved libraries:" >&2
    ldd "$plugin" | grep "not found" >&2
    exit 1
  fi
}

main() {
  cd "$REPO"
  install_qt_libraries
  check_qt_plugin
  local start=$SECONDS
  "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" packaging/lepton_desktop.spec
  echo "build.sh: built $DIST/lepton-desktop in $((SECONDS - start)) s," \
    "$(du -sh "$DIST/lepton-desktop" | cut -f1) on disk"
  "$DIST/lepton-desktop/lepton-desktop" --version
}

main "$@"

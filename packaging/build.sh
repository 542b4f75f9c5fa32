#!/usr/bin/env bash
# Build the one-folder app with PyInstaller, then what a person downloads and installs:
#
#   dist/lepton-desktop/                               the frozen app (one folder)
#   dist/lepton-desktop_VERSION_amd64.deb              Debian package (/opt/lepton-desktop)
#   dist/lepton-desktop-VERSION-linux-x86_64.tar.xz    portable archive + per-user integration
#   build/package-report.json                          build times and sizes (bench/package_size.py)
#
#   packaging/build.sh            # from anywhere; uses .venv/bin/python of the repo
#   PYTHON=/path/to/python packaging/build.sh
#   SKIP_APT=1 packaging/build.sh # do not touch system packages
#   SKIP_PACKAGES=1 packaging/build.sh   # the folder only (no .deb, no .tar.xz)
#   XZ_LEVEL=6 packaging/build.sh # the packages' xz level (default 1, multi-threaded):
#                                 # level 6 saves ~5% more and takes 5x the CPU time
#
# On Debian/Ubuntu it first installs the X11/xcb libraries that Qt's xcb platform
# plugin links against, and the tools the packages need (dpkg-dev). PyInstaller copies
# the libraries into the bundle only if they are present at build time; without
# libxcb-icccm4 and libxcb-keysyms1 the frozen app cannot open a window on machines
# that lack them (and Qt blames libxcb-cursor0).
set -euo pipefail
# A failing step inside $(...) (the timed steps below) must stop the build too.
shopt -s inherit_errexit

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
  # The packages: dpkg-deb, readelf (Depends: from the bundle's libraries), xz.
  dpkg-dev binutils xz-utils
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

build_folder() {
  "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" packaging/lepton_desktop.spec
  "$DIST/lepton-desktop/lepton-desktop" --version
}

build_tarball() {
  # A top folder named after the release; the per-user integration script on top (a
  # link into _internal/packaging/, where it finds the icons and the MIME type).
  local out="$1" top="lepton-desktop-$VERSION"
  rm -f "$out"
  tar --create --owner=0 --group=0 --sort=name \
    --transform "s|^lepton-desktop|$top|" -C "$DIST" lepton-desktop \
    --transform "s|^install-linux-integration.sh|$top/install-linux-integration.sh|" \
    -C "$REPO/build" install-linux-integration.sh \
    | xz -T0 "-${XZ_LEVEL:-1}" >"$out"
}

seconds_of() {
  # Run "$@" and print how many seconds it took (stdout of "$@" goes to stderr).
  local start=$SECONDS
  "$@" >&2
  echo $((SECONDS - start))
}

main() {
  cd "$REPO"
  install_qt_libraries
  check_qt_plugin
  local t_folder t_deb=0 t_tar=0 deb="" tarball=""
  t_folder="$(seconds_of build_folder)"
  VERSION="$("$DIST/lepton-desktop/lepton-desktop" --version | awk '{print $2}')"
  echo "build.sh: built $DIST/lepton-desktop in $t_folder s," \
    "$(du -sh "$DIST/lepton-desktop" | cut -f1) on disk"
  if [[ "${SKIP_PACKAGES:-0}" != 1 ]]; then
    deb="$DIST/lepton-desktop_${VERSION}_$(dpkg --print-architecture).deb"
    tarball="$DIST/lepton-desktop-$VERSION-linux-$(uname -m).tar.xz"
    t_deb="$(seconds_of env DEB_COMPRESS="xz -${XZ_LEVEL:-1}" PYTHON="$PYTHON" \
      packaging/linux/make-deb.sh "$DIST/lepton-desktop" "$deb")"
    # Dangling here; inside the archive's top folder it points at the bundle's copy.
    ln -sfn _internal/packaging/install-linux-integration.sh \
      "$REPO/build/install-linux-integration.sh"
    t_tar="$(seconds_of build_tarball "$tarball")"
    echo "build.sh: $deb in $t_deb s, $tarball in $t_tar s"
  fi
  "$PYTHON" -m bench.package_size --record "$DIST/lepton-desktop" \
    --deb "$deb" --tarball "$tarball" --seconds "folder=$t_folder,deb=$t_deb,tarball=$t_tar"
}

main "$@"

#!/usr/bin/env bash
# Package a one-folder build as a Debian package.
#
#   packaging/linux/make-deb.sh BUNDLE_DIR OUT.deb      (called by packaging/build.sh)
#
# Layout: the bundle under /opt/lepton-desktop, /usr/bin/lepton-desktop (a symlink; the
# PyInstaller bootloader finds its _internal/ through the link), the .desktop entry, the
# shared-mime-info type (glob *.lepton and the SQLite header + application_id magic),
# hicolor icons rendered from resources/icons/lepton.svg in every standard size, and
# postinst/postrm refreshing the MIME, desktop and icon caches. Depends: is derived from
# the bundle's libraries (deb_depends.py). Compression: DEB_COMPRESS (default "xz -1").
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
BUNDLE="$(cd "${1:?usage: make-deb.sh BUNDLE_DIR OUT.deb}" && pwd)"
OUT="${2:?usage: make-deb.sh BUNDLE_DIR OUT.deb}"
read -r COMPRESSOR LEVEL <<<"${DEB_COMPRESS:-xz -1}"
NAME=lepton-desktop
VERSION="$("$BUNDLE/$NAME" --version | awk '{print $2}')"
STAGE="$REPO/build/deb/root"

stage_files() {
  rm -rf "$STAGE"
  mkdir -p "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/mime/packages" "$STAGE/usr/share/icons" "$STAGE/usr/share/doc/$NAME" \
    "$STAGE/DEBIAN"
  # Hard links: the bundle is ~600 MB and dpkg-deb only reads it.
  cp -al "$BUNDLE" "$STAGE/opt/$NAME"
  ln -s "/opt/$NAME/$NAME" "$STAGE/usr/bin/$NAME"
  install -m 644 "$REPO/resources/lepton-desktop.desktop" "$STAGE/usr/share/applications/$NAME.desktop"
  install -m 644 "$REPO/resources/lepton-desktop-mime.xml" "$STAGE/usr/share/mime/packages/$NAME.xml"
  QT_QPA_PLATFORM=offscreen "$PYTHON" "$HERE/render_icons.py" "$REPO/resources/icons/lepton.svg" \
    "$STAGE/usr/share/icons" >/dev/null
  printf '%s\n' "Lepton Desktop $VERSION, packaged from its PyInstaller build." \
    "Licence: Apache-2.0. The bundled components keep their own licences." \
    >"$STAGE/usr/share/doc/$NAME/copyright"
  install -m 755 "$HERE/postinst" "$HERE/postrm" "$STAGE/DEBIAN/"
}

write_control() {
  local depends installed_kb
  depends="$("$PYTHON" "$HERE/deb_depends.py" "$BUNDLE")"
  installed_kb="$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)"
  cat >"$STAGE/DEBIAN/control" <<CONTROL
Package: $NAME
Version: $VERSION
Architecture: $(dpkg --print-architecture)
Maintainer: Lepton Desktop contributors <lepton-desktop@lepton.invalid>
Installed-Size: $installed_kb
Depends: $depends
Recommends: xdg-utils, shared-mime-info, desktop-file-utils, fonts-dejavu-core
Section: science
Priority: optional
Description: machine-learning workbench in one project file
 Lepton Desktop carries a model through its whole life on one's own machine:
 datasets, training, tuning, versions, serving over HTTP, monitoring and
 export, in one native window, with everything kept in one SQLite project
 file (*.lepton). Double-clicking a project file opens it in the app.
CONTROL
  (cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' \
    | xargs -0 md5sum >DEBIAN/md5sums)
}

main() {
  stage_files
  write_control
  chmod -R u+rwX,go+rX,go-w "$STAGE"
  mkdir -p "$(dirname "$OUT")"
  dpkg-deb --build --root-owner-group -Z"$COMPRESSOR" -z"${LEVEL#-}" "$STAGE" "$OUT" >/dev/null
  echo "make-deb: $OUT ($(du -h "$OUT" | cut -f1)), $(grep "^Depends:" "$STAGE/DEBIAN/control")"
}

main "$@"

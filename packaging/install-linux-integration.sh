#!/usr/bin/env bash
# Register Lepton Desktop with the Linux desktop, for the current user only:
# an application-menu entry, the *.lepton file type (double-click opens the GUI),
# and the icons. Nothing outside ~/.local/share (or $XDG_DATA_HOME) is touched.
#
#   packaging/install-linux-integration.sh [--exe PATH] [--uninstall]
#
# --exe: the lepton-desktop executable the entry should start. Default: the frozen
#        build next to this script (dist/lepton-desktop/ from a checkout, or the
#        bundle this copy came in), else lepton-desktop on PATH.
# Works from a checkout (packaging/ next to resources/) and from inside the frozen
# bundle (_internal/packaging/ next to _internal/resources/).
set -euo pipefail

# Resolved, so that the portable archive's top-level link to this script finds resources/.
HERE="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
RESOURCES="$HERE/../resources"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
APPS="$DATA/applications"
MIME="$DATA/mime"
ICONS="$DATA/icons/hicolor/scalable"
DESKTOP_ID="lepton-desktop.desktop"
MIME_TYPE="application/x-lepton-project"

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

find_exe() {
  local candidate
  for candidate in "$HERE/../dist/lepton-desktop/lepton-desktop" "$HERE/../../lepton-desktop"; do
    if [[ -x "$candidate" && -f "$candidate" ]]; then
      (cd "$(dirname "$candidate")" && echo "$PWD/$(basename "$candidate")")
      return
    fi
  done
  command -v lepton-desktop || {
    echo "install-linux-integration: no lepton-desktop executable found; pass --exe PATH" >&2
    exit 2
  }
}

refresh_caches() {
  # Each tool is optional: without it the desktop picks the files up at next login.
  if command -v update-mime-database >/dev/null; then update-mime-database "$MIME"; fi
  if command -v update-desktop-database >/dev/null; then update-desktop-database -q "$APPS"; fi
  if command -v gtk-update-icon-cache >/dev/null; then
    gtk-update-icon-cache -q -t -f "$DATA/icons/hicolor" || true
  fi
}

sed_escape() {
  printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'
}

install_files() {
  local exe="$1" quoted try_exec
  # Exec is a command line: a path with spaces goes in double quotes, with `"`, `` ` ``,
  # `$` and `\` escaped inside, and `%` doubled. TryExec is a plain path (`\` escaped).
  quoted="\"$(printf '%s' "$exe" | sed -e 's/[\\"`$]/\\&/g' -e 's/%/%%/g')\""
  quoted="$(sed_escape "$quoted")"
  try_exec="$(sed_escape "$(printf '%s' "$exe" | sed -e 's/\\/\\\\/g')")"
  mkdir -p "$APPS" "$MIME/packages" "$ICONS/apps" "$ICONS/mimetypes"
  sed -e "s|^Exec=lepton-desktop |Exec=$quoted |" -e "s|^TryExec=.*|TryExec=$try_exec|" \
    "$RESOURCES/lepton-desktop.desktop" > "$APPS/$DESKTOP_ID"
  cp "$RESOURCES/lepton-desktop-mime.xml" "$MIME/packages/lepton-desktop-mime.xml"
  cp "$RESOURCES/icons/lepton.svg" "$ICONS/apps/lepton-desktop.svg"
  cp "$RESOURCES/icons/lepton.svg" "$ICONS/mimetypes/application-x-lepton-project.svg"
  refresh_caches
  if command -v xdg-mime >/dev/null; then xdg-mime default "$DESKTOP_ID" "$MIME_TYPE"; fi
  echo "installed: $APPS/$DESKTOP_ID (runs $exe), $MIME_TYPE for *.lepton"
}

uninstall_files() {
  rm -f "$APPS/$DESKTOP_ID" "$MIME/packages/lepton-desktop-mime.xml" \
    "$ICONS/apps/lepton-desktop.svg" "$ICONS/mimetypes/application-x-lepton-project.svg"
  refresh_caches
  echo "removed Lepton Desktop's menu entry, file type and icons from $DATA"
}

main() {
  local exe="" uninstall=0
  while (($#)); do
    case "$1" in
      --exe) exe="${2:?--exe needs a path}"; shift 2 ;;
      --uninstall) uninstall=1; shift ;;
      -h|--help) usage 0 ;;
      *) echo "install-linux-integration: unknown option $1" >&2; usage 2 ;;
    esac
  done
  if ((uninstall)); then
    uninstall_files
    return
  fi
  [[ -n "$exe" ]] || exe="$(find_exe)"
  install_files "$exe"
}

main "$@"

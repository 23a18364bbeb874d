#!/usr/bin/env bash
# Builds the Windows installer from a folder holding fernsicht.exe and the
# DLLs it needs:
#   installer/windows/build-msi.sh BINDIR ICON.ico OUT.msi
# With the WiX Toolset v3 (candle.exe and light.exe on PATH or in $WIX_BIN;
# the release workflow, on Windows) it builds the real MSI with the firewall
# extension and runs WiX's ICE validation. With FERNSICHT_MSI_TOOL=wixl
# (msitools, on Linux) it builds a check MSI without the firewall rule,
# which wixl cannot express; installer/test-packages.sh uses that to check
# the WiX source and reads the tables back. The version is FERNSICHT_VERSION
# less any pre-release suffix (MSI versions are numbers only).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
die() { echo "build-msi: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: $0 BINDIR ICON.ico OUT.msi"
bindir="$1"
icon="$2"
out="$3"
[ -f "$bindir/fernsicht.exe" ] || die "no fernsicht.exe in $bindir"
[ -f "$icon" ] || die "no icon at $icon (installer/icons/render-icons.sh makes it)"
: "${FERNSICHT_VERSION:?set FERNSICHT_VERSION (source installer/lib/release-env.sh)}"
msi_version="${FERNSICHT_VERSION%%[-+]*}"
[[ "$msi_version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "version $FERNSICHT_VERSION is not X.Y.Z"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$here/harvest-dlls.sh" "$bindir" "$work/runtime-libraries.wxs"
mkdir -p "$(dirname "$out")"

case "${FERNSICHT_MSI_TOOL:-wix}" in
  wix)
    if [ -n "${WIX_BIN:-}" ]; then PATH="$WIX_BIN:$PATH"; fi
    command -v candle.exe >/dev/null 2>&1 || die "candle.exe not found: install the WiX Toolset 3.14 and set WIX_BIN"
    # Windows tools want Windows paths.
    winpath() { if command -v cygpath >/dev/null 2>&1; then cygpath -w "$1"; else printf '%s' "$1"; fi; }
    candle.exe -nologo -arch x64 -ext WixFirewallExtension \
      -dVersion="$msi_version" -dBinDir="$(winpath "$bindir")" -dIconFile="$(winpath "$icon")" \
      -out "$(winpath "$work")\\" "$(winpath "$here/fernsicht.wxs")" "$(winpath "$work/runtime-libraries.wxs")"
    light.exe -nologo -ext WixFirewallExtension -spdb \
      -out "$(winpath "$out")" "$(winpath "$work/fernsicht.wixobj")" "$(winpath "$work/runtime-libraries.wixobj")"
    ;;
  wixl)
    command -v wixl >/dev/null 2>&1 || die "wixl is missing (Debian: apt-get install wixl)"
    command -v xsltproc >/dev/null 2>&1 || die "xsltproc is missing (Debian: apt-get install xsltproc)"
    xsltproc "$here/wixl-compat.xsl" "$here/fernsicht.wxs" >"$work/fernsicht.wxs"
    # wixl resolves source files relative to where it runs and takes no
    # absolute ones: give it the inputs under the work folder.
    out_abs="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
    ln -s "$(cd "$bindir" && pwd)" "$work/bin"
    cp "$icon" "$work/fernsicht.ico"
    # wixl warns about attributes it does not know; those are WiX's, not errors.
    (cd "$work" && wixl --arch x64 -D Version="$msi_version" -D BinDir=bin -D IconFile=fernsicht.ico \
      -o "$out_abs" fernsicht.wxs runtime-libraries.wxs 2>&1 | { grep -v -e 'GLib-GObject-WARNING' -e '^$' || true; } >&2)
    [ -f "$out_abs" ] || die "wixl built no MSI"
    ;;
  *) die "FERNSICHT_MSI_TOOL must be wix or wixl" ;;
esac
echo "build-msi: wrote $out"

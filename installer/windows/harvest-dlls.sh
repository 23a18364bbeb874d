#!/usr/bin/env bash
# Writes the WiX fragment with every DLL that fernsicht.exe needs beside it
# (FFmpeg's libraries on Windows) as one component each:
#   installer/windows/harvest-dlls.sh BINDIR OUT.wxs
# Component GUIDs are "*": WiX derives them from the install path, so they
# stay the same from release to release. No DLL gives an empty group.
set -euo pipefail
die() { echo "harvest-dlls: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 BINDIR OUT.wxs"
bindir="$1"
out="$2"
[ -d "$bindir" ] || die "no directory $bindir"

{
  echo '<?xml version="1.0" encoding="utf-8"?>'
  echo '<!-- Made by installer/windows/harvest-dlls.sh; not edited by hand. -->'
  echo '<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">'
  echo '  <Fragment>'
  echo '    <ComponentGroup Id="RuntimeLibraries" Directory="INSTALLFOLDER">'
  find "$bindir" -maxdepth 1 -type f -iname '*.dll' -printf '%f\n' | LC_ALL=C sort |
    while read -r dll; do
      id="lib_$(printf '%s' "$dll" | tr -c 'A-Za-z0-9_.' '_')"
      [ ${#id} -le 72 ] || die "component id too long for $dll"
      echo "      <Component Id=\"$id\" Guid=\"*\" Win64=\"yes\">"
      echo "        <File Id=\"$id\" Name=\"$dll\" Source=\"\$(var.BinDir)/$dll\" KeyPath=\"yes\" />"
      echo "      </Component>"
    done
  echo '    </ComponentGroup>'
  echo '  </Fragment>'
  echo '</Wix>'
} >"$out"
echo "harvest-dlls: $(grep -c '<File ' "$out" || true) DLLs in $out"

#!/usr/bin/env bash
# Builds the portable Fernsicht AppImage from a release binary:
#   installer/appimage/build-appimage.sh BINARY OUTPUT.AppImage
# The AppDir holds the binary, the desktop entry, the icon and every shared
# library `ldd` finds except those in installer/appimage/excludelist; the
# binary and the bundled libraries get a RUNPATH ($ORIGIN) so nothing needs
# LD_LIBRARY_PATH. The squashfs image is built reproducibly (SOURCE_DATE_EPOCH
# for every time stamp, owner root, sorted entries) and appended to an
# AppImage type-2 runtime chosen by FERNSICHT_APPIMAGE_RUNTIME:
#   type2       the static runtime of AppImage/type2-runtime release 20251108
#               (needs no libfuse on the user's system); downloaded from
#               GitHub and checked against its pinned SHA-256. Releases use it.
#   appimagekit the older AppImageKit runtime shipped inside the `appimage`
#               crate (0.4.0) on crates.io, checked against its SHA-256; it
#               needs libfuse2 on the user's system (or
#               APPIMAGE_EXTRACT_AND_RUN=1). For machines without GitHub.
#   auto        (default) type2 if it can be downloaded, else appimagekit,
#               saying so.
# FERNSICHT_APPIMAGE_RUNTIME_FILE=PATH uses a runtime file you already have.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
die() { echo "build-appimage: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $0 BINARY OUTPUT.AppImage"
binary="$1"
out="$2"
[ -x "$binary" ] || die "no executable at $binary (build it first: cargo build --release -p fernsicht)"
for tool in mksquashfs patchelf ldd sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install squashfs-tools patchelf)"
done
: "${SOURCE_DATE_EPOCH:?set SOURCE_DATE_EPOCH (source installer/lib/release-env.sh)}"

type2_url="https://github.com/AppImage/type2-runtime/releases/download/20251108/runtime-x86_64"
type2_sha256="2fca8b443c92510f1483a883f60061ad09b46b978b2631c807cd873a47ec260d"
appimagekit_crate="appimage"
appimagekit_version="0.4.0"
appimagekit_sha256="328e0d745c5c6817048c27bc3e8314871703f8f47ffa81a37cb06cd95a94b323"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

check_sha256() { # FILE SHA256
  echo "$2  $1" | sha256sum --check --status || die "$1 does not have the pinned SHA-256 $2"
}

fetch_type2() { # [RETRIES]
  curl --fail --silent --show-error --location --retry "${1:-2}" --max-time 120 \
    --output "$work/runtime" "$type2_url" 2>"$work/curl.log" || { cat "$work/curl.log" >&2; return 1; }
  check_sha256 "$work/runtime" "$type2_sha256"
}

fetch_appimagekit() {
  # Through cargo, the registry's ordinary client: a throw-away package that
  # depends on the crate, `cargo fetch`, then the runtime out of the .crate.
  local proj="$work/fetch-runtime"
  mkdir -p "$proj/src"
  printf '[package]\nname = "fetch-runtime"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n[workspace]\n' \
    "$appimagekit_crate" "$appimagekit_version" >"$proj/Cargo.toml"
  : >"$proj/src/lib.rs"
  cargo fetch --quiet --manifest-path "$proj/Cargo.toml" || die "cargo fetch of the $appimagekit_crate crate failed"
  local crate
  crate="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name "$appimagekit_crate-$appimagekit_version.crate" | head -n 1)"
  [ -n "$crate" ] || die "cargo fetched no $appimagekit_crate-$appimagekit_version.crate"
  tar -xzf "$crate" -C "$work" "$appimagekit_crate-$appimagekit_version/assets/runtime-x86_64"
  mv "$work/$appimagekit_crate-$appimagekit_version/assets/runtime-x86_64" "$work/runtime"
  check_sha256 "$work/runtime" "$appimagekit_sha256"
}

runtime_kind="${FERNSICHT_APPIMAGE_RUNTIME:-auto}"
if [ -n "${FERNSICHT_APPIMAGE_RUNTIME_FILE:-}" ]; then
  cp "$FERNSICHT_APPIMAGE_RUNTIME_FILE" "$work/runtime"
  runtime_kind="file $FERNSICHT_APPIMAGE_RUNTIME_FILE"
else
  case "$runtime_kind" in
    type2) fetch_type2 || die "cannot download the type-2 runtime from $type2_url" ;;
    appimagekit) fetch_appimagekit ;;
    auto)
      if fetch_type2 0 2>/dev/null; then
        runtime_kind=type2
      else
        echo "build-appimage: WARNING: GitHub is out of reach; using the AppImageKit runtime from crates.io, which needs libfuse2 on the user's system" >&2
        fetch_appimagekit
        runtime_kind=appimagekit
      fi
      ;;
    *) die "FERNSICHT_APPIMAGE_RUNTIME must be type2, appimagekit or auto, not $runtime_kind" ;;
  esac
fi
# The runtimes read different squashfs compressions: the type-2 runtime
# zstd (appimagetool's default), the AppImageKit one only gzip and xz.
case "$runtime_kind" in
  type2) comp=(-comp zstd -Xcompression-level 19) ;;
  *) comp=(-comp xz -Xbcj x86) ;;
esac

appdir="$work/Fernsicht.AppDir"
mkdir -p "$appdir/usr/bin" "$appdir/usr/lib" "$appdir/usr/share/applications" \
  "$appdir/usr/share/icons/hicolor/scalable/apps" "$appdir/usr/share/icons/hicolor/128x128/apps"
install -m 755 "$binary" "$appdir/usr/bin/fernsicht"
install -m 644 "$root/installer/linux/fernsicht.desktop" "$appdir/usr/share/applications/fernsicht.desktop"
install -m 644 "$root/assets/fernsicht.svg" "$appdir/usr/share/icons/hicolor/scalable/apps/fernsicht.svg"
install -m 644 "$root/assets/fernsicht-128.png" "$appdir/usr/share/icons/hicolor/128x128/apps/fernsicht.png"
# The AppImage spec: the desktop entry and the icon at the top, AppRun the entry point.
ln -s usr/share/applications/fernsicht.desktop "$appdir/fernsicht.desktop"
ln -s usr/share/icons/hicolor/scalable/apps/fernsicht.svg "$appdir/fernsicht.svg"
ln -s usr/share/icons/hicolor/128x128/apps/fernsicht.png "$appdir/.DirIcon"
ln -s usr/bin/fernsicht "$appdir/AppRun"

# Bundle what ldd resolves (the whole closure), less the excluded.
mapfile -t excluded < <(grep -vE '^\s*(#|$)' "$here/excludelist")
is_excluded() {
  local name="$1" e
  for e in "${excluded[@]}"; do [ "$e" = "$name" ] && return 0; done
  return 1
}
bundled=()
missing=()
while read -r soname _ path _; do
  [ -n "$soname" ] || continue
  if [ "$path" = "not" ]; then missing+=("$soname"); continue; fi
  is_excluded "$soname" && continue
  [ -f "$path" ] || continue
  install -m 644 "$(readlink -f "$path")" "$appdir/usr/lib/$soname"
  bundled+=("$soname")
done < <(ldd "$binary" | awk '/=>/ {print $1, $2, $3}' | sort)
[ ${#missing[@]} -eq 0 ] || die "ldd cannot resolve ${missing[*]} for $binary"
# shellcheck disable=SC2016 # $ORIGIN is for the dynamic loader, not the shell
patchelf --set-rpath '$ORIGIN/../lib' "$appdir/usr/bin/fernsicht"
for lib in "${bundled[@]}"; do
  # shellcheck disable=SC2016
  patchelf --set-rpath '$ORIGIN' "$appdir/usr/lib/$lib"
done
echo "build-appimage: bundled ${#bundled[@]} libraries, runtime: $runtime_kind"

# Every time stamp from SOURCE_DATE_EPOCH and every file owned by root;
# mksquashfs (4.4 and later) writes the same image for the same tree however
# many threads compress it.
export SOURCE_DATE_EPOCH
find "$appdir" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
# (mksquashfs reads SOURCE_DATE_EPOCH itself for the image's and the files' times.)
mksquashfs "$appdir" "$work/image.squashfs" -root-owned -noappend -no-xattrs -quiet "${comp[@]}" >/dev/null
mkdir -p "$(dirname "$out")"
cat "$work/runtime" "$work/image.squashfs" >"$out.tmp"
chmod 755 "$out.tmp"
mv "$out.tmp" "$out"
echo "build-appimage: wrote $out ($(du -h "$out" | cut -f1))"

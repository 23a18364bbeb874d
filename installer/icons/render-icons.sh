#!/usr/bin/env bash
# Renders the app icon for Windows and macOS from assets/fernsicht.svg:
#   installer/icons/render-icons.sh OUTDIR
# writes OUTDIR/fernsicht.ico (16-256 px, for the MSI and its Start-menu
# entry) and OUTDIR/fernsicht.icns (16-1024 px, for the macOS bundle).
# Built files, not committed. Needs rsvg-convert, ImageMagick and png2icns
# (Debian: librsvg2-bin imagemagick icnsutils).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
svg="$here/../../assets/fernsicht.svg"
die() { echo "render-icons: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
for tool in rsvg-convert convert png2icns; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install librsvg2-bin imagemagick icnsutils)"
done
out="$1"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for size in 16 24 32 48 64 128 256 512 1024; do
  rsvg-convert --width "$size" --height "$size" --keep-aspect-ratio --format png \
    --output "$work/$size.png" "$svg"
done
# -strip: no time stamps or other metadata, so the same SVG gives the same bytes.
convert "$work"/{16,24,32,48,64,128,256}.png -strip "$out/fernsicht.ico"
# png2icns picks the icon type from each PNG's size.
png2icns "$out/fernsicht.icns" "$work"/{16,32,48,128,256,512,1024}.png >/dev/null
echo "render-icons: wrote $out/fernsicht.ico and $out/fernsicht.icns"

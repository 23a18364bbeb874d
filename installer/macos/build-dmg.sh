#!/usr/bin/env bash
# Builds Fernsicht.app and the disk image people double-click, on macOS:
#   installer/macos/build-dmg.sh BINARY ICON.icns OUT.dmg
# 1. the bundle: Contents/MacOS/fernsicht, Info.plist (version filled in),
#    Resources/fernsicht.icns, and the FFmpeg libraries the binary links,
#    copied into Contents/Frameworks by dylibbundler (brew install dylibbundler);
# 2. code signing: with a Developer ID certificate when the release workflow
#    has one (hardened runtime, entitlements.plist, secure time stamp),
#    otherwise ad hoc, saying so;
# 3. the .dmg with the app and a link to /Applications, signed likewise;
# 4. notarization and stapling when the Apple ID secrets are there too.
# Environment (all optional; without them the result is ad-hoc signed):
#   MACOS_CERTIFICATE (base64 .p12), MACOS_CERTIFICATE_PASSWORD,
#   MACOS_SIGNING_IDENTITY (e.g. "Developer ID Application: NAME (TEAMID)"),
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD (an app-specific password).
# FERNSICHT_VERSION: the version for Info.plist.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
die() { echo "build-dmg: $*" >&2; exit 1; }
say() { echo "build-dmg: $*"; }
[ $# -eq 3 ] || die "usage: $0 BINARY ICON.icns OUT.dmg"
binary="$1"
icns="$2"
out="$3"
[ "$(uname -s)" = Darwin ] || die "this runs on macOS (codesign, hdiutil)"
[ -x "$binary" ] || die "no executable at $binary"
[ -f "$icns" ] || die "no icon at $icns (installer/icons/render-icons.sh makes it)"
: "${FERNSICHT_VERSION:?set FERNSICHT_VERSION (source installer/lib/release-env.sh)}"
command -v dylibbundler >/dev/null 2>&1 || die "dylibbundler is missing (brew install dylibbundler)"

work="$(mktemp -d)"
keychain=""
cleanup() {
  [ -z "$keychain" ] || security delete-keychain "$keychain" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

app="$work/dmg/Fernsicht.app"
mkdir -p "$app/Contents/MacOS" "$app/Contents/Resources" "$app/Contents/Frameworks"
install -m 755 "$binary" "$app/Contents/MacOS/fernsicht"
install -m 644 "$icns" "$app/Contents/Resources/fernsicht.icns"
sed "s/@VERSION@/$FERNSICHT_VERSION/g" "$here/Info.plist" >"$app/Contents/Info.plist"
plutil -lint "$app/Contents/Info.plist" >/dev/null || die "Info.plist is not valid"
printf 'APPL????' >"$app/Contents/PkgInfo"

# Libraries from Homebrew (FFmpeg and what it links) into the bundle, with
# the binary's load commands pointed at @executable_path/../Frameworks.
dylibbundler --overwrite-dir --bundle-deps --create-dir \
  --fix-file "$app/Contents/MacOS/fernsicht" \
  --dest-dir "$app/Contents/Frameworks" \
  --install-path @executable_path/../Frameworks/ >/dev/null
if otool -L "$app/Contents/MacOS/fernsicht" "$app"/Contents/Frameworks/*.dylib 2>/dev/null |
  grep -E '^\s+/(opt/homebrew|usr/local)/'; then
  die "the bundle still loads libraries from Homebrew (listed above)"
fi
say "bundled $(find "$app/Contents/Frameworks" -name '*.dylib' | wc -l | tr -d ' ') libraries"

identity="-"
if [ -n "${MACOS_CERTIFICATE:-}" ]; then
  : "${MACOS_CERTIFICATE_PASSWORD:?MACOS_CERTIFICATE is set but MACOS_CERTIFICATE_PASSWORD is not}"
  : "${MACOS_SIGNING_IDENTITY:?MACOS_CERTIFICATE is set but MACOS_SIGNING_IDENTITY is not}"
  keychain="$work/signing.keychain-db"
  keychain_password="$(openssl rand -hex 16)"
  printf '%s' "$MACOS_CERTIFICATE" | base64 --decode >"$work/cert.p12"
  security create-keychain -p "$keychain_password" "$keychain"
  security set-keychain-settings -lut 3600 "$keychain"
  security unlock-keychain -p "$keychain_password" "$keychain"
  security import "$work/cert.p12" -k "$keychain" -P "$MACOS_CERTIFICATE_PASSWORD" -T /usr/bin/codesign >/dev/null
  security set-key-partition-list -S apple-tool:,apple: -s -k "$keychain_password" "$keychain" >/dev/null
  # codesign finds the identity only in a keychain on the search list.
  # (No mapfile: this also runs under macOS's bash 3.2.)
  keychains=()
  while IFS= read -r k; do keychains+=("$k"); done < <(security list-keychains -d user | tr -d '" ')
  security list-keychains -d user -s "$keychain" "${keychains[@]}"
  identity="$MACOS_SIGNING_IDENTITY"
  sign_flags=(--force --timestamp --options runtime --keychain "$keychain" --sign "$identity")
  say "signing with $identity"
else
  msg="macOS code signing skipped: no MACOS_CERTIFICATE secret. The app is signed ad hoc; Gatekeeper asks people to confirm it on first start (Control-click, Open)."
  echo "::notice title=macOS code signing skipped::$msg"
  say "$msg"
  sign_flags=(--force --sign -)
fi

# Inside out: the libraries, then the app with its entitlements.
find "$app/Contents/Frameworks" -name '*.dylib' -print0 | xargs -0 -n 1 codesign "${sign_flags[@]}"
codesign "${sign_flags[@]}" --entitlements "$here/entitlements.plist" "$app"
codesign --verify --deep --strict "$app" || die "the app's signature does not verify"

ln -s /Applications "$work/dmg/Applications"
mkdir -p "$(dirname "$out")"
rm -f "$out"
hdiutil create -quiet -volname Fernsicht -srcfolder "$work/dmg" -fs HFS+ -format UDZO -ov "$out"
codesign "${sign_flags[@]}" "$out"

if [ "$identity" != "-" ] && [ -n "${APPLE_ID:-}" ] && [ -n "${APPLE_TEAM_ID:-}" ] && [ -n "${APPLE_APP_PASSWORD:-}" ]; then
  say "notarizing (this waits for Apple)"
  xcrun notarytool submit "$out" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
    --password "$APPLE_APP_PASSWORD" --wait --timeout 30m || die "notarization failed"
  xcrun stapler staple "$out" || die "stapling the notarization ticket failed"
  spctl --assess --type open --context context:primary-signature --verbose "$out" || die "Gatekeeper rejects $out"
elif [ "$identity" != "-" ]; then
  echo "::notice title=macOS notarization skipped::no APPLE_ID/APPLE_TEAM_ID/APPLE_APP_PASSWORD secrets; the signed app is not notarized"
  say "notarization skipped: APPLE_ID, APPLE_TEAM_ID or APPLE_APP_PASSWORD is not set"
fi
say "wrote $out"

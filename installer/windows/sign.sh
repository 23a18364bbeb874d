#!/usr/bin/env bash
# Authenticode-signs Windows files (fernsicht.exe before packaging, then the
# MSI) when the release workflow has a certificate, and says clearly when it
# has none:
#   installer/windows/sign.sh FILE...
#   WINDOWS_CERTIFICATE           the code-signing certificate as a base64 PFX
#   WINDOWS_CERTIFICATE_PASSWORD  its password
# Runs in Git Bash on a Windows runner (signtool.exe from the Windows SDK).
# A certificate whose key lives in a hardware token or a cloud signing
# service (required for certificates issued since June 2023) needs that
# service's signing step in place of this one.
set -euo pipefail
die() { echo "sign: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: $0 FILE..."

if [ -z "${WINDOWS_CERTIFICATE:-}" ]; then
  msg="Windows code signing skipped: no WINDOWS_CERTIFICATE secret. $* stay unsigned (SmartScreen will warn); the minisign signatures still cover them."
  echo "::notice title=Windows code signing skipped::$msg"
  echo "sign: $msg"
  exit 0
fi
: "${WINDOWS_CERTIFICATE_PASSWORD:?WINDOWS_CERTIFICATE is set but WINDOWS_CERTIFICATE_PASSWORD is not}"

signtool="$(find "/c/Program Files (x86)/Windows Kits/10/bin" -path '*/x64/signtool.exe' 2>/dev/null | sort -V | tail -n 1)"
[ -n "$signtool" ] || die "signtool.exe not found (Windows SDK)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%s' "$WINDOWS_CERTIFICATE" | base64 -d >"$work/cert.pfx" || die "WINDOWS_CERTIFICATE is not base64"

for f in "$@"; do
  [ -f "$f" ] || die "no file $f"
  # MSYS_NO_PATHCONV: Git Bash would otherwise turn signtool's /options into paths.
  MSYS_NO_PATHCONV=1 "$signtool" sign /fd SHA256 /f "$(cygpath -w "$work/cert.pfx")" /p "$WINDOWS_CERTIFICATE_PASSWORD" \
    /tr http://timestamp.digicert.com /td SHA256 /d Fernsicht "$(cygpath -w "$f")" >/dev/null ||
    die "signtool could not sign $f"
  MSYS_NO_PATHCONV=1 "$signtool" verify /pa "$(cygpath -w "$f")" >/dev/null || die "the signature on $f does not verify"
  echo "sign: signed $f"
done

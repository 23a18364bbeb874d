#!/usr/bin/env bash
# Checks a folder of downloaded release files: SHA256SUMS is signed with the
# Fernsicht release key, every file listed there has its checksum, and every
# file's own .minisig verifies:
#   installer/signing/verify-release.sh DIR [PUBLIC_KEY]
# PUBLIC_KEY defaults to installer/signing/fernsicht-release.pub.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
die() { echo "verify-release: $*" >&2; exit 1; }

if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "usage: $0 DIR [PUBLIC_KEY]"; fi
pub="$(cd "$(dirname "${2:-$here/fernsicht-release.pub}")" && pwd)/$(basename "${2:-$here/fernsicht-release.pub}")"
[ -f "$pub" ] || die "no public key at $pub"
command -v minisign >/dev/null 2>&1 || die "minisign is missing (apt-get install minisign)"
cd "$1"
if [ ! -f SHA256SUMS ] || [ ! -f SHA256SUMS.minisig ]; then die "$1 has no SHA256SUMS and SHA256SUMS.minisig"; fi
minisign -Vq -p "$pub" -m SHA256SUMS || die "SHA256SUMS is not signed by the key in $pub"
sha256sum --check --strict --quiet SHA256SUMS || die "a file does not match SHA256SUMS"
count=0
while read -r _ f; do
  [ -f "$f.minisig" ] || die "$f has no signature $f.minisig"
  minisign -Vq -p "$pub" -m "$f" || die "$f.minisig does not verify"
  count=$((count + 1))
done <SHA256SUMS
echo "verify-release: $count files match SHA256SUMS and their signatures"

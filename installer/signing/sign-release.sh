#!/usr/bin/env bash
# Writes SHA256SUMS for every release file in DIR and a detached minisign
# signature (FILE.minisig) for each file and for SHA256SUMS:
#   installer/signing/sign-release.sh DIR
# The secret key comes from the environment, never from a file in the repo:
#   MINISIGN_SECRET_KEY   the secret key file's text (two lines)
#   MINISIGN_PASSWORD     its password
# The signatures verify with installer/signing/fernsicht-release.pub
# (installer/signing/verify-release.sh DIR). Each signature's trusted comment
# names the file and the version, so a signature cannot be passed off for
# another file or release.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
die() { echo "sign-release: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 DIR"
dir="$1"
[ -d "$dir" ] || die "no directory $dir"
command -v minisign >/dev/null 2>&1 || die "minisign is missing (Debian/Ubuntu: apt-get install minisign; macOS: brew install minisign)"
[ -n "${MINISIGN_SECRET_KEY:-}" ] || die "MINISIGN_SECRET_KEY is not set: no release signing key here"
: "${MINISIGN_PASSWORD:?MINISIGN_PASSWORD is not set}"
version="${FERNSICHT_VERSION:-unknown}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
umask 077
printf '%s\n' "$MINISIGN_SECRET_KEY" >"$work/release.key"

cd "$dir"
rm -f SHA256SUMS ./*.minisig
mapfile -t files < <(find . -maxdepth 1 -type f ! -name '.*' -printf '%f\n' | LC_ALL=C sort)
[ ${#files[@]} -gt 0 ] || die "nothing to sign in $dir"
sha256sum -- "${files[@]}" >SHA256SUMS
for f in "${files[@]}" SHA256SUMS; do
  printf '%s\n' "$MINISIGN_PASSWORD" |
    minisign -S -s "$work/release.key" -m "$f" -x "$f.minisig" \
      -t "fernsicht $version: $f" >/dev/null 2>&1 ||
    die "signing $f failed (wrong MINISIGN_PASSWORD?)"
done
# Prove the signatures against the public key in the repo, so a release
# signed with another key fails here, not on users' machines.
"$here/verify-release.sh" .
echo "sign-release: signed ${#files[@]} files and SHA256SUMS in $dir"

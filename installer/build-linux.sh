#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds Fernsicht's Linux packages into dist/ (one command, idempotent):
#   installer/build-linux.sh
#   dist/fernsicht_VERSION-1_amd64.deb        the app (desktop entry, icons)
#   dist/fernsicht-relay_VERSION-1_amd64.deb  the relay server (systemd unit)
#   dist/Fernsicht-VERSION-x86_64.AppImage    the app for any distribution
# Release build with the reproducible environment of installer/lib/release-env.sh
# (SOURCE_DATE_EPOCH = the commit's time, --locked, remapped paths, stripped).
# Installs the Debian packages and the cargo-deb it needs when missing.
# CARGO_TARGET_DIR is respected; FERNSICHT_APPIMAGE_RUNTIME picks the AppImage
# runtime (see installer/appimage/build-appimage.sh).
set -euo pipefail
log_tag="build-linux"
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
export PATH="$HOME/.cargo/bin:$PATH"

need_debian_packages
need_cargo_deb
# shellcheck source=lib/release-env.sh
source "$installer_dir/lib/release-env.sh"
cd "$repo_root"

say "release build of fernsicht and fernsicht-relay $FERNSICHT_VERSION (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
cargo build --release --locked -p fernsicht -p fernsicht-net --bin fernsicht --bin fernsicht-relay

dist="$repo_root/dist"
rm -rf "$dist"
mkdir -p "$dist"
# dist/ keeps itself out of git.
printf '*\n' >"$dist/.gitignore"

package_linux "$dist" release

say "built in $dist:"
(cd "$dist" && for f in *; do printf '  %-44s %8s  %s\n' "$f" "$(du -h "$f" | cut -f1)" "$(sha256sum "$f" | cut -c1-16)"; done)

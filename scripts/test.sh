#!/usr/bin/env bash
# Runs every test of Fernsicht: unit, integration and end-to-end tests (each
# starts the Xvfb servers, relays and proxies it needs), the installer
# tests, then the fuzzers for a bounded time. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"

# cargo-fuzz and cargo-deb compile beside the workspace (see the script).
tools_log="$(mktemp)"
trap 'rm -f "$tools_log"' EXIT
scripts/install-tools.sh >"$tools_log" 2>&1 &
tools=$!

# Binaries first: end-to-end tests start the relay and app as processes.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast
if ! wait "$tools"; then
  cat "$tools_log"
  echo "installing the test tools failed" >&2
  exit 1
fi
# Installers (installer/README.md): the .debs and the AppImage packed from the
# debug binaries just built (no release build), their checks, the AppImage's
# start screen on Xvfb, the release workflow linted, and both .debs installed
# into a clean Debian root that debootstrap makes. FERNSICHT_INSTALL_TEST=0
# leaves out that clean root (its quick part still runs).
if [ "${FERNSICHT_INSTALL_TEST:-1}" = 0 ]; then
  installer/test-packages.sh --from-debug --quick
else
  installer/test-packages.sh --from-debug
fi
scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
echo "all tests passed"

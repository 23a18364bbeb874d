#!/usr/bin/env bash
# Runs every test of Fernsicht: unit, integration and end-to-end tests (each
# starts the Xvfb servers, relays and proxies it needs), then the fuzzers for
# a bounded time. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"

# Binaries first: end-to-end tests start the relay and app as processes.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast
scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
echo "all tests passed"

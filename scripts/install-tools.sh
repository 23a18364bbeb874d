#!/usr/bin/env bash
# Installs the cargo subcommands the test run needs when they are missing:
# cargo-fuzz (scripts/fuzz.sh) and the pinned cargo-deb (the installer
# tests). scripts/test.sh runs this beside the workspace build: on two cores
# that build leaves one idle through its long single-crate and link steps.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "tools: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
# shellcheck disable=SC1091 # checked with the installer scripts
source installer/lib/common.sh
need_cargo_deb
echo "tools: ready"

#!/usr/bin/env bash
# Builds Fernsicht (release) and starts it. With no arguments it shares this
# machine under a session number through an embedded relay, so it works with
# nothing else configured; arguments go to the fernsicht binary, e.g.
#   scripts/run.sh view 12345 --relay HOST
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -p fernsicht -p fernsicht-net --bins
exec target/release/fernsicht "$@"

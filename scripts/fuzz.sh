#!/usr/bin/env bash
# Runs every cargo-fuzz target of net/fuzz, together for about SECONDS
# (default 60) plus the build, on the stable toolchain without a sanitizer.
# The stateful handshake targets do RSA work for most inputs, so they get
# twice the share of the fast decoders. Each target starts from its seeds in
# net/fuzz/seeds/ plus what earlier runs found in net/fuzz/corpus/ (not
# committed). Exits non-zero and names the targets that crashed; their
# inputs are under net/fuzz/artifacts/TARGET/. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../net"
export PATH="$HOME/.cargo/bin:$PATH"

total="${1:-60}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
weight() { case "$1" in handshake_states|handshake_mitm) echo 2 ;; *) echo 1 ;; esac; }
shares=0
for t in "${targets[@]}"; do shares=$(( shares + $(weight "$t") )); done

# One build for every target; `cargo fuzz run` below then finds it fresh.
# Same flags in both (release, debug assertions, no sanitizer).
build=(--fuzz-dir fuzz -s none)
echo "fuzz: building ${#targets[@]} targets"
cargo fuzz build "${build[@]}"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  per=$(( total * $(weight "$t") / shares ))
  (( per >= 1 )) || per=1
  seeds=()
  [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
  # -timeout: an input that takes longer than 10 s counts as a hang (a crash).
  if cargo fuzz run "${build[@]}" "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
      -max_total_time="$per" -timeout=10 -print_final_stats=1 >"$logs/$t" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t")
    echo "fuzz: $t: ${runs:-?} inputs in ${per}s, no crash"
  else
    echo "fuzz: $t CRASHED:"
    # The panic message, libFuzzer's verdict and where the input went.
    grep -E -A3 "panicked at|ERROR: libFuzzer|Test unit written|Failing input" "$logs/$t" || tail -n 40 "$logs/$t"
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs under net/fuzz/artifacts/)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash"

# Sourced (not run) by the installer scripts and the release workflow: the
# environment that makes a release build reproducible. The same commit built
# with the same toolchain and Cargo.lock gives the same bytes wherever the
# checkout, the Cargo home and the target directory happen to be.
#
# Sets: SOURCE_DATE_EPOCH (the commit's time, unless already set), CARGO_TARGET_DIR
# (default: <repo>/target), RUSTFLAGS and CFLAGS/CXXFLAGS with path prefix maps,
# and the release profile without debug info and with symbols stripped (so no
# build path survives in a shipped binary). Also: FERNSICHT_VERSION, from app/Cargo.toml's
# workspace version.
# shellcheck shell=bash

fernsicht_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git -C "$fernsicht_root" log -1 --format=%ct 2>/dev/null)" || {
    echo "release-env: not a git checkout: set SOURCE_DATE_EPOCH yourself" >&2
    return 1
  }
fi
export SOURCE_DATE_EPOCH
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$fernsicht_root/target}"
export TZ=UTC LC_ALL=C.UTF-8

# rustc wants native paths; on Windows (Git Bash) convert them.
native_path() {
  if command -v cygpath >/dev/null 2>&1; then cygpath -w "$1"; else printf '%s' "$1"; fi
}
fernsicht_cargo_home="${CARGO_HOME:-$HOME/.cargo}"
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }--remap-path-prefix=$(native_path "$fernsicht_root")=/build/fernsicht"
RUSTFLAGS="$RUSTFLAGS --remap-path-prefix=$(native_path "$fernsicht_cargo_home")=/cargo"
export RUSTFLAGS
# C and C++ sources built by cc (openh264): the same maps, where the compiler
# is GCC or Clang (MSVC's cl.exe has no such flag; its objects keep no paths
# once the binary is linked without a PDB).
case "$(uname -s)" in
  MINGW* | MSYS* | CYGWIN*) ;;
  *)
    fernsicht_prefix_map="-ffile-prefix-map=$fernsicht_root=/build/fernsicht"
    fernsicht_prefix_map="$fernsicht_prefix_map -ffile-prefix-map=$fernsicht_cargo_home=/cargo"
    fernsicht_prefix_map="$fernsicht_prefix_map -ffile-prefix-map=$CARGO_TARGET_DIR=/target"
    export CFLAGS="${CFLAGS:+$CFLAGS }$fernsicht_prefix_map"
    export CXXFLAGS="${CXXFLAGS:+$CXXFLAGS }$fernsicht_prefix_map"
    ;;
esac
export CARGO_PROFILE_RELEASE_DEBUG=false
export CARGO_PROFILE_RELEASE_STRIP=symbols

FERNSICHT_VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$fernsicht_root/Cargo.toml" | head -n 1)"
[ -n "$FERNSICHT_VERSION" ] || { echo "release-env: no version in Cargo.toml" >&2; return 1; }
export FERNSICHT_VERSION

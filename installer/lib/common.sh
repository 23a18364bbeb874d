# Sourced by the installer scripts: messages, the tools they need, and the
# packaging both build-linux.sh and test-packages.sh use.
# shellcheck shell=bash

installer_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo_root="$(cd "$installer_dir/.." && pwd)"

die() { echo "${log_tag:-installer}: $*" >&2; exit 1; }
say() { echo "${log_tag:-installer}: $*"; }

# Installs the Debian packages of scripts/debian-packages.txt that are not
# there yet (the installer scripts' own are listed there too).
need_debian_packages() {
  [ "$(id -u)" -eq 0 ] || { say "not root: not installing Debian packages"; return 0; }
  "$repo_root/scripts/setup-debian.sh"
}

# cargo-deb, pinned: its output is part of what makes the packages reproducible.
cargo_deb_version="3.8.0"
need_cargo_deb() {
  if [ "$(cargo deb --version 2>/dev/null | awk '{print $NF}')" != "$cargo_deb_version" ]; then
    say "installing cargo-deb $cargo_deb_version"
    cargo install cargo-deb --version "$cargo_deb_version" --locked --quiet
  fi
}

# package_linux OUTDIR PROFILE [debs]: both .debs and the AppImage (with
# "debs": the .debs alone) into OUTDIR from
# the binaries cargo built with PROFILE in $CARGO_TARGET_DIR (set by
# lib/release-env.sh, which also sets FERNSICHT_VERSION and
# SOURCE_DATE_EPOCH):
#   release  the release build (stripped by the release environment already);
#   dev      the debug build that `cargo build --workspace --bins` leaves
#            (scripts/test.sh), stripped here, so the tests need no release
#            build.
# Either way copies of the two binaries, time-stamped SOURCE_DATE_EPOCH (the
# packages carry file times), go where a release build would be in a
# temporary target folder (under $TMPDIR; the build's own files stay as they
# are) and through the same cargo-deb and AppImage steps.
package_linux() {
  local out="$1" profile="$2" only="${3:-}" tmp f rc=0 bindir
  case "$profile" in
    release) bindir="$CARGO_TARGET_DIR/release" ;;
    dev) bindir="$CARGO_TARGET_DIR/debug" ;;
    *) die "package_linux: profile must be release or dev, not $profile" ;;
  esac
  for f in fernsicht fernsicht-relay; do
    [ -x "$bindir/$f" ] || die "no $bindir/$f: build it first (cargo build --profile $profile -p fernsicht -p fernsicht-net)"
  done
  tmp="$(mktemp -d)"
  mkdir -p "$tmp/release"
  for f in fernsicht fernsicht-relay; do
    if [ "$profile" = dev ]; then strip -o "$tmp/release/$f" "$bindir/$f"; else cp "$bindir/$f" "$tmp/release/$f"; fi
    touch -d "@$SOURCE_DATE_EPOCH" "$tmp/release/$f"
  done
  mkdir -p "$out"
  (cd "$repo_root" &&
    CARGO_TARGET_DIR="$tmp" cargo deb -p fernsicht --no-build --no-strip --output "$out/" >/dev/null &&
    CARGO_TARGET_DIR="$tmp" cargo deb -p fernsicht-net --no-build --no-strip --output "$out/" >/dev/null &&
    { [ "$only" = debs ] ||
      "$installer_dir/appimage/build-appimage.sh" "$tmp/release/fernsicht" "$out/Fernsicht-$FERNSICHT_VERSION-x86_64.AppImage"; }) || rc=$?
  rm -rf "$tmp"
  return $rc
}

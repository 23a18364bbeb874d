# Sourced by the installer scripts: messages, and installing the Debian
# packages they need (installer/debian-packages.txt) when some are missing.
# shellcheck shell=bash

installer_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo_root="$(cd "$installer_dir/.." && pwd)"

die() { echo "${log_tag:-installer}: $*" >&2; exit 1; }
say() { echo "${log_tag:-installer}: $*"; }

# Installs the packages of the project's list and of installer/debian-packages.txt
# that are not there yet; asks apt only when something is missing.
need_debian_packages() {
  "$repo_root/scripts/setup-debian.sh"
  local wanted missing=() pkg
  mapfile -t wanted < <(grep -vE '^\s*(#|$)' "$installer_dir/debian-packages.txt")
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages (run as root, or: apt-get install ${missing[*]})"
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# cargo-deb, pinned: its output is part of what makes the packages reproducible.
cargo_deb_version="3.8.0"
need_cargo_deb() {
  if [ "$(cargo deb --version 2>/dev/null | awk '{print $NF}')" != "$cargo_deb_version" ]; then
    say "installing cargo-deb $cargo_deb_version"
    cargo install cargo-deb --version "$cargo_deb_version" --locked --quiet
  fi
}

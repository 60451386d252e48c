#!/usr/bin/env bash
# Idempotent set-up: checks for what preempt needs beyond the Rust
# toolchain and installs what is missing. Says loudly what it could not do.
#
# The aarch64 lane (scripts/aarch64-lane.sh) needs the Rust target
# aarch64-unknown-linux-gnu and the Debian packages qemu-user-static,
# gcc-aarch64-linux-gnu and libc6-dev-arm64-cross. When they cannot be
# installed, this prints one line `SKIPPED aarch64 lane: <reason>`, records
# the reason for the lane (which then skips with the same line) and lets
# everything else go on.
set -euo pipefail
cd "$(dirname "$0")/.."

ok() { printf 'setup: %s\n' "$*"; }
loud() { printf '\n*** setup: %s ***\n\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  loud "cargo is not installed: install the Rust toolchain (https://rustup.rs) first"
  exit 1
fi
if ! rustup component list --installed 2>/dev/null | grep -q '^clippy'; then
  rustup component add clippy rustfmt >/dev/null 2>&1 || loud "could not install clippy/rustfmt: 'make lint' will fail"
fi
ok "rust $(rustc --version | cut -d' ' -f2) ready"

# ---- Chromium, for the HTML report's test ----------------------------------
#
# tests/tests/bench_report.rs renders `preempt bench --report`'s page in
# headless Chromium, from Debian's package. When it cannot be installed,
# this says so loudly and goes on: the test then skips, loudly (and fails
# when PREEMPT_REQUIRE_CHROMIUM=1).

install_chromium() {
  local log=${CARGO_TARGET_DIR:-target}/chromium-setup.log sudo=()
  mkdir -p "$(dirname "$log")"
  if ! command -v apt-get >/dev/null 2>&1; then
    loud "Chromium is not installed and there is no apt-get: the HTML report's rendering test will be skipped"
    return
  fi
  if [[ $(id -u) != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then sudo=(sudo -n); else
      loud "Chromium is not installed, and installing it needs root: the HTML report's rendering test will be skipped"
      return
    fi
  fi
  ok "installing chromium (apt-get; log: $log)"
  local get=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)
  if ! timeout 900 "${get[@]}" >"$log" 2>&1; then
    if ! { timeout 600 "${sudo[@]}" apt-get update -q >>"$log" 2>&1 && timeout 900 "${get[@]}" >>"$log" 2>&1; }; then
      loud "apt-get install chromium failed ($(tail -n 1 "$log")): the HTML report's rendering test will be skipped (log: $log)"
      return
    fi
  fi
  command -v chromium >/dev/null 2>&1 || loud "chromium installed but not on the PATH (log: $log)"
}

if command -v chromium >/dev/null 2>&1; then
  ok "chromium ready: $(chromium --version 2>/dev/null | head -n 1)"
else
  install_chromium
fi

# ---- the aarch64 lane -------------------------------------------------------

LANE_TARGET=aarch64-unknown-linux-gnu
TARGET_DIR=${CARGO_TARGET_DIR:-target}
SKIP_FILE=$TARGET_DIR/aarch64-lane.skipped # read by scripts/aarch64-lane.sh
LOG=$TARGET_DIR/aarch64-setup.log
mkdir -p "$TARGET_DIR"

# The one loud line; the lane repeats it.
skip_lane() {
  printf '%s\n' "$*" >"$SKIP_FILE"
  printf 'SKIPPED aarch64 lane: %s\n' "$*"
  exit 0
}

# What each package provides that the lane uses.
missing_packages() {
  command -v qemu-aarch64-static >/dev/null 2>&1 || echo qemu-user-static
  command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || echo gcc-aarch64-linux-gnu
  [[ -e /usr/aarch64-linux-gnu/lib/crt1.o && -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]] ||
    echo libc6-dev-arm64-cross
}

# The last error line of a log, for the SKIPPED line.
last_error() {
  grep -E '^(E:|error|sudo:|timeout:)' "$1" | tail -n 1 || tail -n 1 "$1"
}

# Runs a download/install step, output to $LOG, bounded so that an
# unreachable mirror fails the step instead of hanging the build.
bounded() {
  local status=0
  timeout 600 "$@" >>"$LOG" 2>&1 || status=$?
  if ((status == 124)); then
    echo "timeout: '$*' did not finish in 600 s" >>"$LOG"
  fi
  return "$status"
}
: >"$LOG"

# Rust target.
if ! rustup target list --installed 2>/dev/null | grep -qx "$LANE_TARGET"; then
  ok "adding the Rust target $LANE_TARGET"
  if ! bounded rustup target add "$LANE_TARGET"; then
    skip_lane "'rustup target add $LANE_TARGET' failed: $(last_error "$LOG") (log: $LOG)"
  fi
fi

# Debian packages: apt-get as root, else through sudo (never prompting).
mapfile -t missing < <(missing_packages)
if ((${#missing[@]} > 0)); then
  if ! command -v apt-get >/dev/null 2>&1; then
    skip_lane "no apt-get to install ${missing[*]}; install them (or their equivalents) by hand"
  fi
  if [[ $(id -u) == 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo -n)
  else
    skip_lane "not root and no sudo: cannot install ${missing[*]}"
  fi
  apt_install() {
    bounded "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  }
  ok "installing ${missing[*]} (apt-get; log: $LOG)"
  if ! apt_install; then
    # Refresh the package lists only when the install failed for lack of them.
    if grep -qE 'Unable to locate package|has no installation candidate|Failed to fetch|404 +Not Found' "$LOG" &&
      bounded "${as_root[@]}" apt-get update -q && apt_install; then
      :
    else
      skip_lane "'apt-get install ${missing[*]}' failed: $(last_error "$LOG") (log: $LOG)"
    fi
  fi
  mapfile -t still < <(missing_packages)
  if ((${#still[@]} > 0)); then
    skip_lane "installed ${missing[*]} but ${still[*]} still not usable (log: $LOG)"
  fi
fi

rm -f "$SKIP_FILE"
ok "aarch64 lane ready: $LANE_TARGET, $(qemu-aarch64-static --version | head -n 1), aarch64-linux-gnu-gcc $(aarch64-linux-gnu-gcc -dumpfullversion)"

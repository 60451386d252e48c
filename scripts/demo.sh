#!/usr/bin/env bash
# `make demo`: the showcase, run from a release build.
#   1. the register-hoisted load, -O0 and -O1 side by side (preempt demo);
#   2. a call-free loop at one P stopped by asynchronous preemption, with
#      its time-to-preempt figures (--stats);
#   3. the hoisted load under asynchronous preemption: the spinner is
#      preempted every quantum and still hangs; the watchdog ends it and
#      names the cause.
set -u
BIN=${BIN:-./target/release/preempt}

show() {
  printf '\n$ %s\n' "$*"
  "$@"
}

show "$BIN" demo examples/hoist.pir || exit 1

show "$BIN" run --stats examples/spin-preempted.pir || exit 1

show "$BIN" run --timeout 2 examples/bugs/01-classic-hang/waiting-main.pir
status=$?
if [ "$status" -ne 3 ]; then
  printf 'demo: expected the watchdog to end the hoisted-load hang (exit 3), got %d\n' "$status" >&2
  exit 1
fi
printf '\n(exit 3: the watchdog ended the hang, as intended. With load.atomic the same program ends:\n'
printf ' preempt run examples/bugs/01-classic-hang/atomic.pir)\n'

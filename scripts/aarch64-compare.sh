#!/usr/bin/env bash
# Runs PIR programs on the host's preempt and on the aarch64 build under
# qemu-user, at -O0 and -O1, and checks that stdout and exit status are the
# same. Usage: scripts/aarch64-compare.sh [FILE.pir...] (default: the
# programs directly under examples/; those under examples/bugs/ demonstrate
# timing and races, so their output is not meant to match run for run, and
# tests/tests/bugs.rs checks what each must show on both architectures). Each run gets `--timeout` (COMPARE_TIMEOUT
# seconds, default 10), so a program that hangs ends with exit status 3 on
# both. stderr is shown when it differs but not compared: it may name
# machine addresses.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
TARGET_DIR=${CARGO_TARGET_DIR:-target}
SKIP_FILE=$TARGET_DIR/aarch64-lane.skipped # written by scripts/setup.sh
CARGO=${CARGO:-cargo}
QEMU=(qemu-aarch64-static -L /usr/aarch64-linux-gnu)
# qemu-user keeps its translation of code rewritten through another
# mapping (--preempt patch); this tells the runtime to map the code again
# after a rewrite, which makes the emulator retranslate it.
export PREEMPT_QEMU_USER=1
TIMEOUT=${COMPARE_TIMEOUT:-10}

if [[ -f $SKIP_FILE ]]; then
  printf 'SKIPPED aarch64 lane: %s\n' "$(cat "$SKIP_FILE")"
  exit 0
fi

files=("$@")
if ((${#files[@]} == 0)); then
  mapfile -t files < <(find examples -maxdepth 1 -name '*.pir' | sort)
fi

"$CARGO" build -p preempt --bin preempt
"$CARGO" build -p preempt --bin preempt --target "$TARGET"
host=$TARGET_DIR/debug/preempt
arm=$TARGET_DIR/$TARGET/debug/preempt
host_arch=$(uname -m)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Runs one binary; leaves stdout, stderr and the exit status in $tmp/$1.*.
run() {
  local tag=$1 status=0
  shift
  "$@" >"$tmp/$tag.out" 2>"$tmp/$tag.err" </dev/null || status=$?
  echo "$status" >"$tmp/$tag.status"
}

same=0 differ=0
for f in "${files[@]}"; do
  for level in 0 1; do
    args=(run "$f" "-O$level" --timeout "$TIMEOUT")
    run host "$host" "${args[@]}"
    run arm "${QEMU[@]}" "$arm" "${args[@]}"
    if cmp -s "$tmp/host.out" "$tmp/arm.out" && cmp -s "$tmp/host.status" "$tmp/arm.status"; then
      same=$((same + 1))
      printf 'same     %-40s -O%d  exit %s\n' "$f" "$level" "$(cat "$tmp/host.status")"
    else
      differ=$((differ + 1))
      printf 'DIFFERS  %-40s -O%d  exit %s on %s, %s on aarch64\n' \
        "$f" "$level" "$(cat "$tmp/host.status")" "$host_arch" "$(cat "$tmp/arm.status")"
      diff -u --label "$host_arch stdout" --label "aarch64 stdout" "$tmp/host.out" "$tmp/arm.out" | head -n 40 || true
    fi
    if ! cmp -s "$tmp/host.err" "$tmp/arm.err"; then
      diff -u --label "$host_arch stderr" --label "aarch64 stderr" "$tmp/host.err" "$tmp/arm.err" | head -n 40 || true
    fi
  done
done
printf '\naarch64 compare: %d runs the same on %s and aarch64 (qemu-user), %d differ\n' "$same" "$host_arch" "$differ"
((differ == 0))

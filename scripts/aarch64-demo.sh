#!/usr/bin/env bash
# `preempt` as an aarch64 binary: builds it for aarch64-unknown-linux-gnu
# (release) and runs it under qemu-user. Timings under qemu are emulation
# artefacts, never aarch64 performance.
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
BIN=$TARGET_DIR/$TARGET/release/preempt

if [[ -f $SKIP_FILE ]]; then
  printf 'SKIPPED aarch64 lane: %s\n' "$(cat "$SKIP_FILE")"
  exit 0
fi

"$CARGO" build --release -p preempt --bin preempt --target "$TARGET"

# Echo each command as a user would type it, then run it.
show() {
  printf '\n$ %s\n' "$*"
  "$@"
}
if command -v file >/dev/null 2>&1; then
  show file "$BIN"
else
  show aarch64-linux-gnu-readelf --file-header "$BIN"
fi
show "${QEMU[@]}" "$BIN" --version
show "${QEMU[@]}" "$BIN" check examples/hoist.pir
show "${QEMU[@]}" "$BIN" run examples/sum.pir
show "${QEMU[@]}" "$BIN" disasm --arch aarch64 -O1 examples/hoist.pir

#!/usr/bin/env bash
# The short soak of `make test` (see `preempt soak --help`): every program
# with a header once per configuration, then the programs of the shapes
# that hung (the collector against call-free spinners, spinners and a
# sleeper, a yield as the other P goes idle) three times more, and the
# last of them on the interpreter under coop and async. A few minutes on
# two CPUs; `make soak` is the long one.
#
# With PREEMPT_SOAK_EXEC set (the aarch64 lane: an aarch64 build under
# qemu-user), only the shapes, once, at -O1 and a 20 us quantum: emulation
# is tens of times slower.
set -euo pipefail
cd "$(dirname "$0")/.."

PREEMPT=${PREEMPT:-./target/release/preempt}
SHAPES=(
  tests/programs/concurrent/gc-vs-spinners.pir
  tests/programs/concurrent/gc-chan-spinners.pir
  tests/programs/concurrent/spinners-and-sleeper.pir
  tests/programs/concurrent/yield-until-spinning.pir
)

if [[ -n ${PREEMPT_SOAK_EXEC:-} ]]; then
  exec "$PREEMPT" soak --exec "$PREEMPT_SOAK_EXEC" --runs 1 --opt 1 --quanta 20us --timeout 60 "${SHAPES[@]}"
fi

"$PREEMPT" soak --runs 1
"$PREEMPT" soak --runs 3 "${SHAPES[@]}"
"$PREEMPT" soak --runs 20 --engine interp --modes coop,async --procs 2 tests/programs/concurrent/yield-until-spinning.pir

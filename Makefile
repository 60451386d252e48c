# preempt: the two commands a fresh machine needs are `make demo` and
# `make test`. Each target is a short recipe; set-up is idempotent.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all setup build demo test bench lint fmt clean

all: build

# Everything preempt needs beyond the Rust toolchain (installed if missing).
setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace

# The showcase: the register-hoisted load at -O0 and -O1, side by side.
demo: build
	./target/release/preempt demo examples/hoist.pir

# Every test: unit, golden, property, integration; then formatting and lints.
test: setup
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace
	$(MAKE) lint

# Benchmarks print figures; nothing here asserts a timing.
bench: build
	./target/release/preempt bench

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

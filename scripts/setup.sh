#!/usr/bin/env bash
# Idempotent set-up: checks for what preempt needs beyond the Rust
# toolchain and installs what is missing. Says loudly what it could not do.
set -u

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

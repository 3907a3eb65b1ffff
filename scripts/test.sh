#!/usr/bin/env bash
# The test command (README.md): installs what the tests need that cargo cannot, then runs every
# test, then the shape checks (issue 10): clippy with warnings as errors, and the docs with broken
# links as errors. Every step runs even when one before it failed; the exit status is non-zero if
# any failed. The checks are quiet when clean, so the tests' own summary stays the last output.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-deps.sh
status=0
cargo test --locked --all-targets "$@" || status=$?
cargo clippy --locked --quiet --all-targets -- -D warnings || status=$?
RUSTDOCFLAGS="-D warnings" cargo doc --locked --quiet --no-deps || status=$?
exit "$status"

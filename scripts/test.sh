#!/usr/bin/env bash
# The test command (README.md): installs what the tests need that cargo cannot, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-deps.sh
exec cargo test --locked --all-targets "$@"

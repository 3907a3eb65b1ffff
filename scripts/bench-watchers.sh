#!/usr/bin/env bash
# Watchers benchmark: 10,000 long-poll watchers on `cdnwatch serve` (its own process, on the lab):
# the server's memory per waiter and the time until every watcher has a new version.
# The first delivery waits for the decision loop's next tick (up to one interval, 2 s here); the
# spread from the first to the last watcher is the fan-out time.
# Environment: WATCHERS=10000
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin cdnwatch --example bench_watchers
BIN=target/release/cdnwatch
. scripts/bench-lab.sh
ulimit -n "$(ulimit -Hn)"
start_lab 2000
TOKEN="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
CDNWATCH_ADMIN_TOKEN="$TOKEN" start_serve
target/release/examples/bench_watchers --url "$URL" --pid "$SERVE_PID" --token "$TOKEN" --watchers "${WATCHERS:-10000}"

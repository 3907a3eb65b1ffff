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
TMP="$(mktemp -d)"; PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
"$BIN" lab --listen 127.0.0.1:0 --write-config "$TMP/cdnwatch.toml" >"$TMP/lab.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$TMP/cdnwatch.toml" ] && break; sleep 0.1; done
sed -i 's/^interval_ms = .*/interval_ms = 2000/' "$TMP/cdnwatch.toml"
TOKEN="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
CDNWATCH_ADMIN_TOKEN="$TOKEN" RUST_LOG=warn "$BIN" serve --config "$TMP/cdnwatch.toml" --data "$TMP/data" --listen 127.0.0.1:0 >"$TMP/serve.out" 2>"$TMP/serve.log" &
SERVE_PID=$!; PIDS+=($SERVE_PID)
URL=""
for _ in $(seq 1 100); do
  URL="$(sed -n 's/^cdnwatch listening on //p' "$TMP/serve.out")"
  [ -n "$URL" ] && curl -sf -o /dev/null "$URL/api/v1/hostlist" && break
  sleep 0.1
done
target/release/examples/bench_watchers --url "$URL" --pid "$SERVE_PID" --token "$TOKEN" --watchers "${WATCHERS:-10000}"

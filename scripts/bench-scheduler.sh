#!/usr/bin/env bash
# Scheduler benchmark: 5,000 series at a 10 s interval against the lab (in its own process, so only
# cdnwatch's CPU and memory are counted); prints p99 start lag, CPU and peak RSS.
# Environment: SERIES=5000 INTERVAL_MS=10000 SECONDS_RUN=60
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin cdnwatch --example bench_scheduler
TMP="$(mktemp -d)"; LAB_PID=""
cleanup() { [ -z "$LAB_PID" ] || kill "$LAB_PID" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
target/release/cdnwatch lab --listen 127.0.0.1:0 --write-config "$TMP/lab.toml" >"$TMP/lab.log" 2>&1 &
LAB_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/lab.toml" ] && break; sleep 0.1; done
[ -s "$TMP/lab.toml" ] || { cat "$TMP/lab.log" >&2; exit 1; }
target/release/examples/bench_scheduler --config "$TMP/lab.toml" --series "${SERIES:-5000}" \
  --interval-ms "${INTERVAL_MS:-10000}" --seconds "${SECONDS_RUN:-60}"

#!/usr/bin/env bash
# Agent benchmark: one agent with 5,000 series (scheduler → prober → spool → upload) against the lab
# (its own process) and a service (its own process); prints full HTTPS probes per minute per CPU
# core and the agent's peak RSS, once per MAX_EDGES value (edges fetched per probe: 1 makes a probe
# one HTTPS fetch, as blackbox_exporter's; the lab's hosts resolve to 2).
# Environment: SERIES=5000 INTERVAL_MS=10000 SECONDS_RUN=60 MAX_EDGES="1 2"
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin cdnwatch --example bench_agent
TMP="$(mktemp -d)"; LAB_PID=""
cleanup() { [ -z "$LAB_PID" ] || kill "$LAB_PID" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
target/release/cdnwatch lab --listen 127.0.0.1:0 --write-config "$TMP/lab.toml" >"$TMP/lab.log" 2>&1 &
LAB_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/lab.toml" ] && break; sleep 0.1; done
[ -s "$TMP/lab.toml" ] || { cat "$TMP/lab.log" >&2; exit 1; }
for edges in ${MAX_EDGES:-1 2}; do
  target/release/examples/bench_agent --config "$TMP/lab.toml" --bin target/release/cdnwatch \
    --series "${SERIES:-5000}" --interval-ms "${INTERVAL_MS:-10000}" --seconds "${SECONDS_RUN:-60}" \
    --max-edges "$edges"
done

#!/usr/bin/env bash
# Fleet benchmark: `cdnwatch serve` probing the lab's 3 regions itself (~1,000 series) beside 10
# agent regions. Three parts, one line each: ingest (10 uploader processes speaking the agents'
# API, 2,000,000 results), replay (an hour of spooled backlog per agent drained by 10 real
# `cdnwatch agent` processes), propagation (20 config reloads until every agent runs the new
# assignment). The lab runs in its own process, so only cdnwatch's CPU and memory are counted.
# Flags go through to examples/bench_fleet (e.g. --results 20000 --backlog-minutes 2 --reloads 3);
# PROFILE=debug builds and runs the debug binaries instead (small runs only).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE="${PROFILE:-release}"
if [ "$PROFILE" = release ]; then BUILD=(--release); else BUILD=(); fi
cargo build "${BUILD[@]}" --quiet --bin cdnwatch --example bench_fleet
OUT="${CARGO_TARGET_DIR:-target}/$PROFILE"
TMP="$(mktemp -d)"; LAB_PID=""; BENCH_PID=""
# The benchmark kills its own children (serve, agents, uploaders) when it gets SIGTERM.
cleanup() {
  [ -z "$BENCH_PID" ] || { kill "$BENCH_PID" 2>/dev/null || true; wait "$BENCH_PID" 2>/dev/null || true; }
  [ -z "$LAB_PID" ] || kill "$LAB_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)"
"$OUT/cdnwatch" lab --listen 127.0.0.1:0 --write-config "$TMP/lab.toml" >"$TMP/lab.log" 2>&1 &
LAB_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/lab.toml" ] && break; sleep 0.1; done
[ -s "$TMP/lab.toml" ] || { cat "$TMP/lab.log" >&2; exit 1; }
"$OUT/examples/bench_fleet" --bin "$OUT/cdnwatch" --lab-config "$TMP/lab.toml" "$@" &
BENCH_PID=$!
STATUS=0; wait "$BENCH_PID" || STATUS=$?; BENCH_PID=""
exit "$STATUS"

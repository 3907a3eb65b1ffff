#!/usr/bin/env bash
# Soak benchmark (issue 14): `cdnwatch serve` probing the lab, its public listener held at
# saturation by host-list clients asking with their ETag (304), beside SLOW sockets trickling
# request heads (closed by the header timeout and reopened) and WATCHERS parked on the long poll.
# examples/bench_soak prints, per window: 304 answers/s and their p99, the scheduler's p99 start lag
# (from the internal listener's /metrics), the server's RSS, and the sockets it holds.
# Environment: SECONDS_TOTAL=600 EVERY=60 SLOW=5000 WATCHERS=10000 CLIENTS=32
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin cdnwatch --example bench_soak
BIN=target/release/cdnwatch
TMP="$(mktemp -d)"; PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
"$BIN" lab --listen 127.0.0.1:0 --write-config "$TMP/cdnwatch.toml" >"$TMP/lab.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$TMP/cdnwatch.toml" ] && break; sleep 0.1; done
[ -s "$TMP/cdnwatch.toml" ] || { cat "$TMP/lab.log" >&2; exit 1; }
# Room for every socket of the run on the public listener (the defaults fit 15,360 beside the
# reserve; this run holds SLOW + WATCHERS + CLIENTS), within this shell's descriptor limit.
sed -i -e "s/^max_connections = .*/max_connections = $(( $(ulimit -n) - 1500 ))/" \
  -e "s/^max_watchers = .*/max_watchers = $(( ${WATCHERS:-10000} + 500 ))/" "$TMP/cdnwatch.toml"
grep -q '^max_watchers' "$TMP/cdnwatch.toml" || { echo "the lab's config has no [http] section" >&2; exit 1; }
RUST_LOG=warn "$BIN" serve --config "$TMP/cdnwatch.toml" --data "$TMP/data" --listen 127.0.0.1:0 \
  --public-listen 127.0.0.1:0 >"$TMP/serve.out" 2>"$TMP/serve.log" &
SERVE_PID=$!; PIDS+=($SERVE_PID)
INTERNAL=""; PUBLIC=""
for _ in $(seq 1 100); do
  INTERNAL="$(sed -n 's/^cdnwatch listening on //p' "$TMP/serve.out")"
  PUBLIC="$(sed -n 's/^cdnwatch public listener on //p' "$TMP/serve.out")"
  [ -n "$PUBLIC" ] && curl -sf -o /dev/null "$PUBLIC/api/v1/hostlist" && break
  sleep 0.1
done
[ -n "$PUBLIC" ] || { cat "$TMP/serve.log" >&2; exit 1; }
echo "BENCHSOAK config: probe interval $(sed -n 's/^interval_ms = //p' "$TMP/cdnwatch.toml" | head -1) ms, $(grep -c '^\[\[hosts\]\]' "$TMP/cdnwatch.toml") hosts; nproc $(nproc)"
target/release/examples/bench_soak --public "$PUBLIC" --internal "$INTERNAL" --pid "$SERVE_PID" \
  --slow "${SLOW:-5000}" --watchers "${WATCHERS:-10000}" --clients "${CLIENTS:-32}" \
  --seconds "${SECONDS_TOTAL:-600}" --every "${EVERY:-60}"
echo "BENCHSOAK serve log warnings: $(grep -c -i 'warn\|error' "$TMP/serve.log" || true)"

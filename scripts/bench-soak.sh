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
. scripts/bench-lab.sh
ulimit -n "$(ulimit -Hn)"
start_lab 5000
# Room for every socket of the run on the public listener (the defaults fit 15,360 beside the
# reserve; this run holds SLOW + WATCHERS + CLIENTS), within this shell's descriptor limit.
sed -i -e "s/^max_connections = .*/max_connections = $(( $(ulimit -n) - 1500 ))/" \
  -e "s/^max_watchers = .*/max_watchers = $(( ${WATCHERS:-10000} + 500 ))/" "$TMP/cdnwatch.toml"
grep -q '^max_watchers' "$TMP/cdnwatch.toml" || { echo "the lab's config has no [http] section" >&2; exit 1; }
start_serve --public-listen 127.0.0.1:0
INTERNAL="$URL"; PUBLIC="$PUBLIC_URL"
echo "BENCHSOAK config: probe interval $(sed -n 's/^interval_ms = //p' "$TMP/cdnwatch.toml" | head -1) ms, $(grep -c '^\[\[hosts\]\]' "$TMP/cdnwatch.toml") hosts; nproc $(nproc)"
target/release/examples/bench_soak --public "$PUBLIC" --internal "$INTERNAL" --pid "$SERVE_PID" \
  --slow "${SLOW:-5000}" --watchers "${WATCHERS:-10000}" --clients "${CLIENTS:-32}" \
  --seconds "${SECONDS_TOTAL:-600}" --every "${EVERY:-60}"
echo "BENCHSOAK serve log warnings: $(grep -c -i 'warn\|error' "$TMP/serve.log" || true)"

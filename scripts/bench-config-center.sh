#!/usr/bin/env bash
# Config-center benchmark: GET /api/v1/hostlist (200) and with If-None-Match (304) under wrk,
# alternating with nginx serving the same kind of ~1 KB JSON with an ETag, in one run
# (shared/bench/peer-nginx-config.sh compare). cdnwatch runs `serve` on the lab (probing at a
# 60 s interval, so the document does not change during the run); its CPU per request includes
# everything the process does.
# Environment: SHARED=../shared, and peer-nginx-config.sh's own (DURATION, CONNS, REPEATS …).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${SHARED:-$(cd .. && pwd)/shared}"
PEER="$SHARED/bench/peer-nginx-config.sh"
[ -x "$PEER" ] || { echo "peer script not found at $PEER (set SHARED=)" >&2; exit 1; }
cargo build --release --quiet --bin cdnwatch
BIN=target/release/cdnwatch
. scripts/bench-lab.sh
start_lab 60000
start_serve
echo "cdnwatch document: $(curl -s "$URL/api/v1/hostlist" | wc -c) bytes, ETag $(curl -sI "$URL/api/v1/hostlist" | sed -n 's/^etag: //Ip' | tr -d '\r')"
TARGET_B_URL="$URL/api/v1/hostlist" TARGET_B_PID="$SERVE_PID" LABEL_A=nginx LABEL_B=cdnwatch "$PEER" compare

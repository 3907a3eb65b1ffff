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
TMP="$(mktemp -d)"; PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

"$BIN" lab --listen 127.0.0.1:0 --write-config "$TMP/cdnwatch.toml" >"$TMP/lab.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$TMP/cdnwatch.toml" ] && break; sleep 0.1; done
[ -s "$TMP/cdnwatch.toml" ] || { cat "$TMP/lab.log" >&2; exit 1; }
sed -i 's/^interval_ms = .*/interval_ms = 60000/' "$TMP/cdnwatch.toml"
RUST_LOG=warn "$BIN" serve --config "$TMP/cdnwatch.toml" --data "$TMP/data" --listen 127.0.0.1:0 >"$TMP/serve.out" 2>"$TMP/serve.log" &
SERVE_PID=$!; PIDS+=($SERVE_PID)
URL=""
for _ in $(seq 1 100); do
  URL="$(sed -n 's/^cdnwatch listening on //p' "$TMP/serve.out")"
  [ -n "$URL" ] && curl -sf -o /dev/null "$URL/api/v1/hostlist" && break
  sleep 0.1
done
[ -n "$URL" ] || { cat "$TMP/serve.log" >&2; exit 1; }
echo "cdnwatch document: $(curl -s "$URL/api/v1/hostlist" | wc -c) bytes, ETag $(curl -sI "$URL/api/v1/hostlist" | sed -n 's/^etag: //Ip' | tr -d '\r')"
TARGET_B_URL="$URL/api/v1/hostlist" TARGET_B_PID="$SERVE_PID" LABEL_A=nginx LABEL_B=cdnwatch "$PEER" compare

# Sourced by the benchmarks that run `cdnwatch serve` on the lab (bench-config-center.sh,
# bench-watchers.sh, bench-soak.sh): a temporary directory and every process started here stopped
# on exit, the lab started with its config in $TMP/cdnwatch.toml, and serve started on it.
# Expects BIN (the cdnwatch binary); sets TMP, and start_serve sets SERVE_PID and URL (the
# listener's base URL, and PUBLIC_URL when started with --public-listen).
TMP="$(mktemp -d)"; PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

# start_lab INTERVAL_MS: the lab in its own process, probing at INTERVAL_MS once served.
start_lab() {
  "$BIN" lab --listen 127.0.0.1:0 --write-config "$TMP/cdnwatch.toml" >"$TMP/lab.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do [ -s "$TMP/cdnwatch.toml" ] && break; sleep 0.1; done
  [ -s "$TMP/cdnwatch.toml" ] || { cat "$TMP/lab.log" >&2; exit 1; }
  sed -i "s/^interval_ms = .*/interval_ms = $1/" "$TMP/cdnwatch.toml"
}

# start_serve [SERVE ARGS…]: serve on the lab's config, waiting until its host list answers.
start_serve() {
  RUST_LOG=warn "$BIN" serve --config "$TMP/cdnwatch.toml" --data "$TMP/data" --listen 127.0.0.1:0 \
    "$@" >"$TMP/serve.out" 2>"$TMP/serve.log" &
  SERVE_PID=$!; PIDS+=($SERVE_PID)
  URL=""; PUBLIC_URL=""
  for _ in $(seq 1 100); do
    URL="$(sed -n 's/^cdnwatch listening on //p' "$TMP/serve.out")"
    PUBLIC_URL="$(sed -n 's/^cdnwatch public listener on //p' "$TMP/serve.out")"
    [ -n "$URL" ] && curl -sf -o /dev/null "${PUBLIC_URL:-$URL}/api/v1/hostlist" && return
    sleep 0.1
  done
  cat "$TMP/serve.log" >&2; exit 1
}

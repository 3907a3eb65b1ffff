#!/usr/bin/env bash
# Prober benchmark: full HTTPS probes per second and CPU seconds per 1000 probes (DNS + TCP + TLS + GET),
#   1. against the lab (a separate `cdnwatch lab` process, so only the prober's CPU is counted);
#   2. against the very nginx + unbound targets that blackbox_exporter is measured on
#      (shared/bench/peer-blackbox.sh targets -- ...);
#   3. blackbox_exporter itself on those targets (shared/bench/peer-blackbox.sh, http_2xx_tls only);
# and prints both CPU figures and their ratio in one run. Figures drift ±30 % between runs on 2 cores:
# compare the ratio, which is measured in the same run.
# Environment: SECONDS_PER_RUN=10 CONCURRENCY=16 SHARED=../shared
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${SECONDS_PER_RUN:-10}"
CONC="${CONCURRENCY:-16}"
SHARED="${SHARED:-$(cd .. && pwd)/shared}"
PEER="$SHARED/bench/peer-blackbox.sh"
[ -x "$PEER" ] || { echo "peer script not found at $PEER (set SHARED=)" >&2; exit 1; }

cargo build --release --quiet --bin cdnwatch --example bench_probe
BIN=target/release/cdnwatch
BENCH=target/release/examples/bench_probe
TMP="$(mktemp -d)"
LAB_PID=""
cleanup() { [ -z "$LAB_PID" ] || kill "$LAB_PID" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

echo "== 1. cdnwatch against the lab (separate process)"
"$BIN" lab --listen 127.0.0.1:0 --write-config "$TMP/cdnwatch.toml" >"$TMP/lab.log" 2>&1 &
LAB_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/cdnwatch.toml" ] && break; sleep 0.1; done
[ -s "$TMP/cdnwatch.toml" ] || { cat "$TMP/lab.log" >&2; echo "the lab did not write its config" >&2; exit 1; }
LAB_LINE="$("$BENCH" --config "$TMP/cdnwatch.toml" --seconds "$SECS" --concurrency "$CONC" --label lab | tee /dev/stderr | grep '^BENCHPROBE')"
kill "$LAB_PID"; wait "$LAB_PID" 2>/dev/null || true; LAB_PID=""

echo "== 2. cdnwatch against the blackbox_exporter targets (nginx HTTPS + unbound)"
OURS_LINE="$("$PEER" targets -- "$PWD/$BENCH" --from-env --seconds "$SECS" --concurrency "$CONC" --label peer-targets 2>"$TMP/targets.log" | tee /dev/stderr | grep '^BENCHPROBE')" \
  || { cat "$TMP/targets.log" >&2; exit 1; }

echo "== 3. blackbox_exporter on the same targets"
BB_OUT="$(MODULES=http_2xx_tls REPEATS=1 DURATION="$SECS" CONNS="$CONC" "$PEER" run 2>"$TMP/bb.log" | tee /dev/stderr)" \
  || { cat "$TMP/bb.log" >&2; exit 1; }
BB_CPU="$(printf '%s\n' "$BB_OUT" | grep -oE 'bb_cpu=[0-9.]+' | head -1 | cut -d= -f2)"
BB_PPS="$(printf '%s\n' "$BB_OUT" | grep -oE 'probes/s=[0-9.]+' | head -1 | cut -d= -f2)"

kv() { printf '%s\n' "$2" | grep -oE "(^| )$1=[^ ]+" | cut -d= -f2; }
OUR_CPU="$(kv cpu_s_per_1000 "$OURS_LINE")"
echo
echo "# prober benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, concurrency $CONC, ${SECS}s per run"
printf '%-44s %12s %22s\n' "prober / targets" "probes/s" "CPU s per 1000 probes"
printf '%-44s %12s %22s\n' "cdnwatch / lab (2 edges per DNS answer)" "$(kv probes_per_s "$LAB_LINE")" "$(kv cpu_s_per_1000 "$LAB_LINE")"
printf '%-44s %12s %22s\n' "cdnwatch / nginx+unbound (DNS+TCP+TLS+GET)" "$(kv probes_per_s "$OURS_LINE")" "$OUR_CPU"
printf '%-44s %12s %22s\n' "blackbox_exporter / nginx (TCP+TLS+GET)" "$BB_PPS" "$BB_CPU"
awk -v o="$OUR_CPU" -v b="$BB_CPU" 'BEGIN { if (b > 0) printf "cdnwatch CPU per probe = %.2f x blackbox_exporter (target <= 0.33)\n", o / b }'

#!/bin/bash
# Instructions per request of `serve --workers W` (callgrind: user-space instructions, independent of
# scheduling and of how busy the machine is), summed over every process (primary + workers) and
# thread, in a steady-state window INSIDE one long keep-alive ab run: no connection opens or closes
# in the window (those deoptimise and re-optimise code: a burst of compiler work at every edge).
# Requests in the window = request log lines whose "time" falls in it. Takes ~3 minutes a variant.
#   bench/workers-callgrind.sh LABEL WORKERS BUNDLE PKI_DIR [CONCURRENCY]
# BUNDLE's upstream must be running (any HTTP server answering 200); PKI_DIR holds server.pem,
# server-key.pem and listed-1-combined.pem (bench/.work/pki-ec after a bench run).
# env: WARM_S warm-up seconds (90), MEAS_S window seconds (60), EXTRA more serve flags, URL_PATH the
# request path (/api/x; /api/bench for a bench/.work/contenders/*/bundle.json).
set -euo pipefail
label=$1; W=$2; B=$3; P=$4; C=${5:-8}; WARM_S=${WARM_S:-90}; MEAS_S=${MEAS_S:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/workers-callgrind.XXXXXX)
port=$((28600 + RANDOM % 300)); admin=$((port + 400))
log=$work/serve.out
# shellcheck disable=SC2086
valgrind --tool=callgrind --trace-children=yes --instr-atstart=no --callgrind-out-file="$work/cg.%p" \
  node "$root/dist/mtlsgate.mjs" serve --bundle "$B" --tls-cert "$P/server.pem" --tls-key "$P/server-key.pem" \
  --listen 127.0.0.1:$port --admin 127.0.0.1:$admin --workers "$W" ${EXTRA:-} > "$log" 2> "$work/serve.err" &
spid=$!
for _ in $(seq 1 1200); do curl -sf -m 5 http://127.0.0.1:$admin/health >/dev/null 2>&1 && break; sleep 0.5; done
pids="$spid $(pgrep -P $spid | tr '\n' ' ')"
ab -k -c "$C" -t $((WARM_S + MEAS_S + 60)) -n 100000000 -E "$P/listed-1-combined.pem" "https://127.0.0.1:$port${URL_PATH:-/api/x}" > "$work/ab.txt" 2>&1 &
abpid=$!
sleep "$WARM_S"
for p in $pids; do callgrind_control -i on "$p" >/dev/null; done
sleep 5
for p in $pids; do callgrind_control -d "$p" >/dev/null; done
t1=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep "$MEAS_S"
t2=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
for p in $pids; do callgrind_control -d "$p" >/dev/null; done
kill -INT $abpid; wait $abpid || true
sleep 2
n=$(grep '"msg":"request"' "$log" | awk -v a="$t1" -v b="$t2" -F'"time":"' '{t=substr($2,1,24); if (t>=a && t<b) n++} END{print n+0}')
per=""; tot=0
for p in $pids; do
  t=$(awk '/^totals:/{s+=$2} END{printf "%.0f", s}' "$work/cg.$p.2" 2>/dev/null || echo 0)
  per="$per $p:$((t / n))"; tot=$((tot + t))
done
echo "$label W=$W c=$C window=${MEAS_S}s requests=$n Ir/req=$((tot / n)) per-process (Ir per window request):$per  (profiles: $work/cg.<pid>.2)"
kill -TERM $spid; wait $spid 2>/dev/null || true

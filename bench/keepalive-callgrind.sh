#!/bin/bash
# Keep-alive cost per request, bare Node proxy against mtlsgate, counted in instructions
# (callgrind: user-space instructions of every thread, independent of how fast or busy the
# machine is; `perf` has no hardware counters on these VMs and wall-clock/CPU-time ratios
# drift ±30% within a minute). For each key algorithm and contender: the server starts under
# callgrind with instrumentation off, one long `ab -k` run warms it up (JIT, pools) and then a
# window is measured INSIDE the same run (no connection opens or closes in it: those deoptimise
# and re-optimise code, see bench/workers-callgrind.sh). Requests in the window are counted at
# the upstream (NGINX access log, $msec), so every contender is counted the same way, with its
# request log on or off.
#
#   bench/keepalive-callgrind.sh [ALGS] [CONTENDERS] [ROUNDS]
#     ALGS        "ec rsa" (default)
#     CONTENDERS  "bare gate nolog" (default): bench/peers/bare-node-proxy.ts; dist/mtlsgate.mjs serve
#                 (one JSON line per request, to a file beside the bundle, as the bench runs it);
#                 the same with --log-level warn. gate:DIR / nolog:DIR: the build in DIR instead of
#                 DIST, so two builds are measured interleaved in one run (tagged gate@DIRNAME)
#     ROUNDS      1 (default): repeat the whole ALGS x CONTENDERS sequence, interleaved
#   env: PKI (dir holding pki-ec/ and pki-rsa/, default bench/.work; `npm run bench` makes them),
#        DIST (default ./dist: compare builds), WARM_N warm-up requests before the window (8000),
#        MEAS_S window seconds (40), IDLE_S idle window after the load (15), C ab concurrency (8),
#        OUT (results dir, default a temp dir),
#        NODE_FLAGS extra node flags for every contender, e.g. --perf-basic-prof: V8 then writes
#        /tmp/perf-PID.map, which names the JIT code callgrind shows as ???:0x... (bench/callgrind-jit-names.mjs).
# Prints one line per run: Ir/request, and by category (JIT compiler, GC, the rest) from
# callgrind_annotate, so a run that spent its window re-optimising shows as such; then the
# server's idle Ir/s (an IDLE_S window after the load) and rest-idle: "rest" less that idle
# rate over the window, per request, which does not grow when a loaded machine slows the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ALGS=${1:-ec rsa}; CONTENDERS=${2:-bare gate nolog}; ROUNDS=${3:-1}
PKI=${PKI:-$root/bench/.work}; DIST=${DIST:-$root/dist}; NODE_FLAGS=${NODE_FLAGS:-}; WARM_N=${WARM_N:-8000}; MEAS_S=${MEAS_S:-40}; IDLE_S=${IDLE_S:-15}; C=${C:-8}
OUT=${OUT:-$(mktemp -d /tmp/keepalive-callgrind.XXXXXX)}
mkdir -p "$OUT"
for alg in $ALGS; do [ -f "$PKI/pki-$alg/listed-1-combined.pem" ] || { echo "no $PKI/pki-$alg (run npm run bench once)" >&2; exit 2; }; done

# The upstream: NGINX answering 200 with a small body, logging each request's time (ms).
up=$((29000 + RANDOM % 500))
mkdir -p "$OUT/nginx"
cat > "$OUT/nginx/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; pid $OUT/nginx/nginx.pid; error_log $OUT/nginx/error.log warn;
events { worker_connections 4096; }
http {
  log_format t '\$msec'; access_log $OUT/nginx/access.log t buffer=64k flush=1s;
  client_body_temp_path $OUT/nginx/body; proxy_temp_path $OUT/nginx/proxy; fastcgi_temp_path $OUT/nginx/fcgi;
  uwsgi_temp_path $OUT/nginx/uwsgi; scgi_temp_path $OUT/nginx/scgi;
  keepalive_requests 100000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:$up; location / { default_type application/json; return 200 '{"ok":true,"from":"bench-upstream"}\n'; } }
}
EOF
taskset -c 1 nginx -e "$OUT/nginx/startup.log" -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null || true' EXIT

# One bundle per algorithm: the bench's static API (pins listed-1 and listed-2) to this upstream.
for alg in $ALGS; do
  d="$OUT/bundle-$alg"; mkdir -p "$d/config"
  cat > "$d/config/api.yaml" <<EOF
kind: api
id: bench
proxy:
  listen_path: /api/
  target_url: http://127.0.0.1:$up
  strip_listen_path: false
use_keyless: true
use_mutual_tls_auth: true
client_certificates:
  - listed-1.pem
  - listed-2.pem
EOF
  cp "$PKI/pki-$alg/listed-1.pem" "$PKI/pki-$alg/listed-2.pem" "$d/config/"
  node "$DIST/mtlsgate.mjs" compile "$d/config" -o "$d/bundle.json" -q
done

at_ms() { date +%s.%3N; }
# Self cost of the profiles given, by category: V8's optimising compiler, GC, everything else (all threads).
categories() {
  for g in "$@"; do [ -f "$g" ] && callgrind_annotate --threshold=100 --inclusive=no --auto=no "$g" 2>/dev/null; done |
    awk '
      /PROGRAM TOTALS/ { next }
      /^ *[0-9,]+ .*[(]/ { v=$1; gsub(",", "", v); line=$0
        if (line ~ /compiler::|turbofan|Turbofan|maglev|Maglev|OptimizingCompile|Pipeline/) jit+=v
        else if (line ~ /heap::|Heap::|Scavenge|MarkCompact|GCTracer|Sweeper|Evacuat|ConcurrentMarking|MinorMC/) gc+=v
        else rest+=v }
      END { printf "%.0f %.0f %.0f", jit, gc, rest }'
}
count_between() { awk -v a="$1" -v b="$2" '$1>=a && $1<b {n++} END{print n+0}' "$OUT/nginx/access.log"; }

run_one() { # alg contender round; contender gate:DIR / nolog:DIR runs DIR's build (DIR/mtlsgate.mjs)
  local alg=$1 who=${2%%:*} dist=$DIST rnd=$3 port=$((27000 + RANDOM % 1500)) P="$PKI/pki-$1" tag="${2%%:*}-$1-r$3"
  if [ "$2" != "$who" ]; then dist=${2#*:}; tag="$who@$(basename "$dist")-$1-r$3"; fi
  local cmd
  case $who in
    bare) cmd=(node $NODE_FLAGS --import tsx "$root/bench/peers/bare-node-proxy.ts" "$port" "http://127.0.0.1:$up" "$P/server.pem" "$P/server-key.pem") ;;
    gate | nolog)
      cmd=(node $NODE_FLAGS "$dist/mtlsgate.mjs" serve --bundle "$OUT/bundle-$alg/bundle.json" --tls-cert "$P/server.pem" --tls-key "$P/server-key.pem"
        --listen "127.0.0.1:$port" --admin off)
      [ "$who" = nolog ] && cmd+=(--log-level warn) ;;
    *) echo "unknown contender $who" >&2; exit 2 ;;
  esac
  rm -f "$OUT/cg.$tag".*
  (cd "$root" && exec taskset -c 0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/cg.$tag.%p" "${cmd[@]}") \
    > "$OUT/bundle-$alg/$tag.log" 2> "$OUT/$tag.vg.err" &
  local vpid=$!
  for _ in $(seq 1 600); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.5; done
  # Warm-up and window in one keep-alive run; ab stops at -n or when killed.
  taskset -c 1 ab -k -c "$C" -t 100000 -n 100000000 -E "$P/listed-1-combined.pem" "https://127.0.0.1:$port/api/x" > "$OUT/$tag.ab" 2>&1 &
  local abpid=$!
  local start; start=$(at_ms)
  # Warm-up: WARM_N requests through (counted at the upstream: the access log flushes every second).
  while [ "$(count_between "$start" 9999999999)" -lt "$WARM_N" ]; do sleep 2; done
  callgrind_control -i on "$vpid" > /dev/null 2>&1
  sleep 3
  callgrind_control -z "$vpid" > /dev/null 2>&1 # zero: the window starts now
  local t1; t1=$(at_ms)
  sleep "$MEAS_S"
  local t2; t2=$(at_ms)
  callgrind_control -d "$vpid" > /dev/null 2>&1
  kill -INT $abpid; wait $abpid 2> /dev/null || true
  sleep 2
  # The same server idle for IDLE_S seconds (no connections): its timers, GC and housekeeping per
  # second. Under valgrind the request rate is whatever CPU the machine leaves it (35-200 req/s
  # seen on a loaded VM), so per-second work weighs 1-6x more per request in a slow window than
  # in a fast one; rest-idle takes the idle rate times the window's length off "rest".
  callgrind_control -z "$vpid" > /dev/null 2>&1
  local i1; i1=$(at_ms)
  sleep "$IDLE_S"
  local i2; i2=$(at_ms)
  callgrind_control -d "$vpid" > /dev/null 2>&1
  local n; n=$(count_between "$t1" "$t2")
  local f; f=$(ls -t "$OUT/cg.$tag".*.1 2>/dev/null | head -1)
  local tot; tot=$(awk '/^totals:/{s+=$2} END{printf "%.0f", s}' "$OUT/cg.$tag".*.1 2>/dev/null)
  local w; w=$(categories "$OUT/cg.$tag".*.1)
  local idle; idle=$(categories "$OUT/cg.$tag".*.2)
  local cats; cats=$(echo "$w $idle" | awk -v n="$n" -v ws="$(echo "$t2 - $t1" | bc)" -v is="$(echo "$i2 - $i1" | bc)" '
    { n = n > 0 ? n : 1; idle = $6 / is
      printf "jit=%.1fk gc=%.1fk rest=%.1fk idle=%.0fk/s rest-idle=%.1fk", $1/n/1000, $2/n/1000, $3/n/1000, idle/1000, ($3 - idle*ws)/n/1000 }')
  echo "$tag requests=$n Ir/req=$((tot / (n > 0 ? n : 1))) $cats  (profile: $f)" | tee -a "$OUT/results.txt"
  kill -TERM "$vpid" 2> /dev/null || true
  wait "$vpid" 2> /dev/null || true
}

for r in $(seq 1 "$ROUNDS"); do
  for alg in $ALGS; do
    for who in $CONTENDERS; do run_one "$alg" "$who" "$r"; done
  done
done
echo "results: $OUT/results.txt"

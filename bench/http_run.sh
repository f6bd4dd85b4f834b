#!/usr/bin/env bash
# HTTP/1.1 "hello" keep-alive: the corio protocol-level server (bench/http_corio.c) against nginx
# with one worker (`return 200 "hello"`), both loaded by wrk. Servers on CPU 0, wrk on CPU 1.
# Before measuring: bench/http_check.py against corio (keep-alive, pipelining, Connection: close,
# errors...), and curl must get "hello" from both. The runs alternate corio, nginx, corio, ...
# REPEAT times; the table gives the median and the range, with ratios (> 1: corio is better).
#
#   bash bench/http_run.sh [seconds-per-run]    default 10 s, 3 repeats: about 70 s
#   REPEAT=5 CONNS=200 bash bench/http_run.sh   more repeats / connections (default 100)
#
# Raw RESULT lines go to build-bench/bench/http_results.txt. BUILD_DIR=dir overrides build-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD_DIR:-build-bench}
PY=/usr/bin/python3
SECS=${1:-10}
REPEAT=${REPEAT:-3}
CONNS=${CONNS:-100}
NGINX=${NGINX:-/usr/sbin/nginx}
for tool in "$NGINX" wrk curl taskset; do
  command -v "$tool" >/dev/null || { echo "http_run.sh: $tool not found (make bench-deps)" >&2; exit 1; }
done

# ---- build (as run.sh: release, -Dbench=true) ----
. bench/lib.sh
bench_build http_run.sh bench/http_corio

tmp=$(mktemp -d /tmp/corio-http.XXXXXX)
chmod 755 "$tmp" # nginx's worker runs as nobody
out=$B/bench/http_results.txt
: >"$out"
corio_pid='' nginx_pid=''
cleanup() {
  # Stop what this script started, by PID (nginx's master stops its worker).
  for p in $corio_pid $nginx_pid; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $corio_pid $nginx_pid; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port pid
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
# CPU seconds (user + system) of a process and its children threads/processes: /proc stat ticks.
cpu_ticks() { # pid...
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo $t
}
verify_hello() { # name port
  local body
  body=$(curl -s --max-time 5 "http://127.0.0.1:$2/") || true
  if [ "$body" != hello ]; then
    echo "http_run.sh: $1 answered '$body', not 'hello'" >&2
    exit 1
  fi
}

# ---- correctness of the corio server, before any measurement ----
echo "# protocol checks: $PY bench/http_check.py $B/bench/http_corio" >&2
if ! $PY bench/http_check.py "$B"/bench/http_corio >"$tmp/check.log" 2>&1; then
  sed 's/^/    /' "$tmp/check.log" >&2
  echo "http_run.sh: the corio HTTP server failed its checks; not measuring it" >&2
  exit 1
fi
tail -1 "$tmp/check.log" | sed 's/^/    /' >&2

# ---- servers ----
taskset -c 0 "$B"/bench/http_corio 0 >"$tmp/corio.out" &
corio_pid=$!
for _ in $(seq 100); do grep -q '^PORT ' "$tmp/corio.out" && break; sleep 0.05; done
corio_port=$(awk '/^PORT /{print $2}' "$tmp/corio.out")
[ -n "$corio_port" ] || { echo "http_run.sh: http_corio did not start" >&2; exit 1; }

nginx_port=$(free_port)
mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<EOF
# nginx-light, one worker, the closest nginx gets to a minimal "hello" server.
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  server_tokens off;
  # nginx closes a keep-alive connection after 1000 requests by default (1.19.10+); wrk would
  # reconnect. Lift it so both servers keep every connection for the whole run.
  keepalive_requests 10000000;
  client_body_temp_path $tmp/nginx/body;
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      default_type text/plain;
      return 200 "hello";
    }
  }
}
EOF
taskset -c 0 "$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" \
  -g 'daemon off;' 2>"$tmp/nginx/stderr" &
nginx_pid=$!
if ! wait_port "$nginx_port" "$nginx_pid"; then
  cat "$tmp/nginx/stderr" "$tmp/nginx/logs/error.log" >&2 2>/dev/null || true
  echo "http_run.sh: nginx did not start" >&2
  exit 1
fi
nginx_worker=$(pgrep -P "$nginx_pid" | head -1)

verify_hello corio "$corio_port"
verify_hello nginx "$nginx_port"
echo "# corio on 127.0.0.1:$corio_port (pid $corio_pid), nginx on 127.0.0.1:$nginx_port" \
  "(master $nginx_pid, worker $nginx_worker); both answer 'hello'" >&2

# ---- measurements, alternating ----
fails=()
measure() { # impl port pid...
  local impl=$1 port=$2 c0 c1 log rps errs non2xx reqs
  shift 2
  c0=$(cpu_ticks "$@")
  log=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$port/" 2>&1) || true
  c1=$(cpu_ticks "$@")
  rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$log")
  reqs=$(awk '/requests in/{print $1}' <<<"$log")
  errs=$(awk '/Socket errors:/{gsub(",",""); print $4 + $6 + $8 + $10}' <<<"$log")
  non2xx=$(awk '/Non-2xx/{print $NF}' <<<"$log")
  echo "# $impl: ${rps:-?} req/s, ${reqs:-?} requests, socket errors ${errs:-0}, non-2xx ${non2xx:-0}" >&2
  if [ -z "$rps" ] || [ "${errs:-0}" != 0 ] || [ "${non2xx:-0}" != 0 ]; then
    fails+=("$impl: wrk run failed or saw errors")
    sed 's/^/    /' <<<"$log" >&2
    return
  fi
  echo "RESULT name=http_hello impl=$impl value=$rps unit=ops/s" >>"$out"
  awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$reqs" -v i="$impl" \
    'BEGIN { printf "RESULT name=http_cpu_per_request impl=%s value=%.3f unit=us\n", i, t / hz / n * 1e6 }' >>"$out"
}
start=$SECONDS
for ((r = 1; r <= REPEAT; r++)); do
  measure corio "$corio_port" "$corio_pid"
  measure nginx "$nginx_port" "$nginx_worker"
done
verify_hello corio "$corio_port"
verify_hello nginx "$nginx_port"
kill -TERM "$corio_pid"
wait "$corio_pid" || fails+=("http_corio exited $? (corio_loop_close failed?)")
grep '^#' "$tmp/corio.out" | sed 's/^/    /' >&2 || true
grep '^RESULT' "$tmp/corio.out" >>"$out" || true
corio_pid=
echo "# measurements took $((SECONDS - start)) s" >&2

echo
echo "HTTP/1.1 hello, keep-alive: \`taskset -c 1 wrk -t1 -c$CONNS -d${SECS}s\`, servers on CPU 0;" \
  "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs (shared with other work:" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)); median of $REPEAT alternating runs [min-max]"
echo
$PY - "$out" <<'PYEOF'
import re, statistics, sys
res = {}
for line in open(sys.argv[1]):
    m = re.match(r"RESULT name=(\S+) impl=(\S+) value=(\S+) unit=(\S+)", line)
    if m:
        res.setdefault(m[1], {}).setdefault(m[2], []).append(float(m[3]))

def cell(name, impl, f):
    v = res.get(name, {}).get(impl)
    if not v:
        return "n/a"
    return f"{f(statistics.median(v))} [{f(min(v))}-{f(max(v))}]"

def ratio(name, higher_better):
    """Median [min-max] of the ratios of runs made side by side (corio run i, nginx run i): on a
    shared machine the load drifts between repeats more than between two adjacent runs."""
    c, n = res.get(name, {}).get("corio"), res.get(name, {}).get("nginx")
    if not c or not n:
        return None, "n/a"
    rs = [a / b if higher_better else b / a for a, b in zip(c, n)]
    return statistics.median(rs), f"{statistics.median(rs):.2f}x [{min(rs):.2f}-{max(rs):.2f}]"

k = lambda v: f"{v / 1e3:.1f}k"
us = lambda v: f"{v:.2f} us"
(r1, s1), (r2, s2) = ratio("http_hello", True), ratio("http_cpu_per_request", False)
print("| scenario | corio | nginx (1 worker) | corio/nginx (paired runs) |")
print("|---|---|---|---|")
print(f"| requests/s | {cell('http_hello', 'corio', k)} | {cell('http_hello', 'nginx', k)} | {s1} |")
print(f"| server CPU per request (user+sys) | {cell('http_cpu_per_request', 'corio', us)} | "
      f"{cell('http_cpu_per_request', 'nginx', us)} | {s2} |")
e = res.get("http_enters_per_request", {}).get("corio")
if e:
    print(f"| corio io_uring_enter per request (whole run) | {e[0]:.3f} | | |")
print()
print("Target (median of the paired ratios):")
print(f"- [{'n/a ' if r1 is None else ('PASS' if r1 >= 1.0 else 'MISS')}] corio >= 1.0x nginx requests/s: "
      + s1)
PYEOF

if [ ${#fails[@]} -gt 0 ]; then
  echo
  echo "FAILED:"
  printf -- '- %s\n' "${fails[@]}"
  exit 1
fi

#!/usr/bin/env bash
# Echo servers side by side: raw epoll, libuv, corio (protocol and stream level), asyncio and
# uvloop protocol servers. Each server is pinned to CPU 0, the verifying load client to CPU 1.
# Prints a Markdown table of requests/s with ratios (> 1: corio is better), the 1-connection
# median round trip, corio's io_uring_enter calls per echo and server user CPU per echo.
#   bash bench/echo_run.sh [seconds-per-scenario]      (loopback only)
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-bench
[ -f $B/build.ninja ] || meson setup $B -Dbench=true --buildtype=release >/dev/null
ninja -C $B >/dev/null
secs=${1:-3}
PY=/usr/bin/python3
out=$(mktemp)
trap 'rm -f "$out"; kill $spid 2>/dev/null || true' EXIT
port=18400
spid=
ulimit -n 65536 2>/dev/null || true

start_server() { # impl port
  case $1 in
  epoll) taskset -c 0 $B/bench/echo_epoll "$2" & ;;
  libuv) taskset -c 0 $B/bench/echo_uv "$2" & ;;
  corio) taskset -c 0 $B/bench/echo_corio "$2" protocol >>"$out" & ;;
  corio_stream) taskset -c 0 $B/bench/echo_corio "$2" stream >>"$out.stream" & ;;
  asyncio | uvloop) taskset -c 0 $PY bench/echo_py.py "$1" "$2" & ;;
  esac
  spid=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$2") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "server $1 did not start" >&2
  return 1
}
utime() { awk '{print $14}' "/proc/$1/stat"; }

for impl in epoll libuv corio corio_stream uvloop asyncio; do
  for sc in "1 64" "100 64" "1000 64" "100 4096"; do
    set -- $sc
    port=$((port + 1))
    start_server $impl $port
    u0=$(utime $spid)
    line=$(taskset -c 1 $B/bench/echo_load $port "$1" "$2" "$secs" $impl "c${1}_${2}B" | tee -a "$out" | grep ' echoes')
    u1=$(utime $spid)
    echoes=$(echo "$line" | awk '{print $4}')
    awk -v u=$((u1 - u0)) -v e="$echoes" -v hz="$(getconf CLK_TCK)" -v i=$impl -v s="c${1}_${2}B" \
      'BEGIN { if (e > 0) printf "RESULT name=%s_cpu impl=%s value=%.4f unit=us\n", s, i, u / hz / e * 1e6 }' >>"$out"
    kill -TERM $spid
    wait $spid 2>/dev/null || true
    if [ $impl = corio_stream ] && [ -f "$out.stream" ]; then sed 's/impl=corio /impl=corio_stream /' "$out.stream" >>"$out"; rm -f "$out.stream"; fi
    echo "# $impl c${1}_${2}B: $line" >&2
  done
done

$PY - "$out" <<'PYEOF'
import re, sys
res, units = {}, {}
enters = []
for line in open(sys.argv[1]):
    m = re.match(r"RESULT name=(\S+) impl=(\S+) value=(\S+) unit=(\S+)", line)
    if not m: continue
    if m[1] == "enters_per_echo":
        enters.append((m[2], float(m[3]))); continue
    res.setdefault(m[1], {})[m[2]] = float(m[3]); units[m[1]] = m[4]
impls = ["corio", "corio_stream", "epoll", "libuv", "uvloop", "asyncio"]
print("| scenario | " + " | ".join(impls) + " | corio/epoll | corio/uvloop | stream/protocol |")
print("|---|" + "---|" * (len(impls) + 3))
for sc in ["c1_64B", "c100_64B", "c1000_64B", "c100_4096B"]:
    r = res.get(sc, {})
    cells = [f"{r[i]/1e3:.1f}k" if i in r else "n/a" for i in impls]
    def rat(a, b): return f"{r[a]/r[b]:.2f}x" if a in r and b in r and r[b] else "n/a"
    print(f"| {sc} req/s | " + " | ".join(cells) + f" | {rat('corio','epoll')} | {rat('corio','uvloop')} | {rat('corio_stream','corio')} |")
r = res.get("c1_64B_rtt", {})
print("| c1_64B median RTT | " + " | ".join(f"{r[i]:.1f} us" if i in r else "n/a" for i in impls) + " | | | |")
for sc in ["c100_64B", "c1000_64B"]:
    r = res.get(sc + "_cpu", {})
    print(f"| {sc} server user CPU/echo | " + " | ".join(f"{r[i]:.2f} us" if i in r else "n/a" for i in impls) + " | | | |")
scen = ["c1_64B", "c100_64B", "c1000_64B", "c100_4096B"]
per = {}
for impl, v in enters:
    per.setdefault(impl, []).append(v)
for impl, vs in per.items():
    print(f"| {impl} io_uring_enter per echo | " + " | ".join(f"{s}: {v:.2f}" for s, v in zip(scen, vs)) + " |")
PYEOF

#!/usr/bin/env bash
# DNS lookups/s: corio_getaddrinfo (c-ares on the loop, bench/dns_corio.c) against libuv's
# uv_getaddrinfo (glibc getaddrinfo in libuv's thread pool, bench/dns_uv.c), both asking a local
# dnsmasq the same unique names (no cache can answer), with the same number in flight.
#
#   bash bench/dns_run.sh                    20k lookups, 100 in flight, 3 repeats: about 40 s
#   LOOKUPS=50000 INFLIGHT=200 REPEAT=5 bash bench/dns_run.sh
#
# Isolation (needs root): the script re-runs itself under
# `unshare --mount --net`. The new network namespace has only a loopback interface, so no query
# can reach the machine's resolver whatever a resolver library reads; the new mount namespace
# bind-mounts a private resolv.conf ("nameserver 127.0.0.1") over /etc/resolv.conf for glibc,
# which only speaks to port 53, where dnsmasq listens. corio is pointed at the same dnsmasq with
# corio_resolver_configure. Both are checked before measuring:
#   - a first dnsmasq with --log-queries: 300 lookups by each client, and its log must show each
#     client's names arriving from 127.0.0.1;
#   - the measured dnsmasq runs without --log-queries (logging every query made dnsmasq the
#     bottleneck: corio 12.9k/s with it, 20.6k/s without), and after each run its counter
#     "queries answered locally" (SIGUSR1) must have grown by exactly the number of lookups;
#   - every answer must be the address dnsmasq gives (127.0.0.9), every lookup must succeed.
# dnsmasq runs on CPU 1, the clients on CPU 0 (libuv's pool threads too). The runs alternate
# corio, libuv (4 threads, its default), libuv with one thread per lookup in flight.
# Raw RESULT lines: build-bench/bench/dns_results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD_DIR:-build-bench}
PY=/usr/bin/python3
LOOKUPS=${LOOKUPS:-20000}
INFLIGHT=${INFLIGHT:-100}
REPEAT=${REPEAT:-3}
DNSMASQ=${DNSMASQ:-/usr/sbin/dnsmasq}
ANSWER=127.0.0.9

if [ -z "${CORIO_DNS_BENCH_NS:-}" ]; then
  for tool in "$DNSMASQ" unshare ip taskset mount; do
    command -v "$tool" >/dev/null || { echo "dns_run.sh: $tool not found" >&2; exit 1; }
  done
  # ---- build (as run.sh: release, -Dbench=true), outside the namespaces ----
  . bench/lib.sh
  bench_build dns_run.sh bench/dns_corio bench/dns_uv
  # Root: a user namespace (unshare --user --map-root-user) gives the namespaces and port 53,
  # but dnsmasq then fails to start (it cannot drop its groups: setgroups is denied there).
  if [ "$(id -u)" != 0 ]; then
    echo "dns_run.sh: needs root (private network and mount namespaces, dnsmasq on port 53)" >&2
    exit 1
  fi
  export CORIO_DNS_BENCH_NS=1
  exec unshare --mount --net --propagation private bash "$0" "$@"
fi

# ---- inside the private mount + network namespaces ----
ip link set lo up
if ip -o link show | grep -v ': lo:' | grep -q .; then
  echo "dns_run.sh: the network namespace has more than loopback; refusing to run" >&2
  exit 1
fi
tmp=$(mktemp -d /tmp/corio-dns.XXXXXX)
dns_pid=
cleanup() {
  if [ -n "$dns_pid" ]; then
    kill -TERM "$dns_pid" 2>/dev/null || true
    wait "$dns_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
echo "nameserver 127.0.0.1" >"$tmp/resolv.conf"
mount --bind "$tmp/resolv.conf" /etc/resolv.conf
[ "$(cat /etc/resolv.conf)" = "nameserver 127.0.0.1" ] || { echo "dns_run.sh: resolv.conf bind failed" >&2; exit 1; }

start_dnsmasq() { # log-file extra-args...
  local log=$1
  shift
  # --address=/bench.test/ answers every name under bench.test (each lookup's name is unique).
  taskset -c 1 "$DNSMASQ" --keep-in-foreground --no-resolv --no-hosts --no-poll \
    --conf-file=/dev/null --pid-file= --listen-address=127.0.0.1 --bind-interfaces --port=53 \
    --address=/bench.test/$ANSWER --log-facility="$log" "$@" &
  dns_pid=$!
  for _ in $(seq 100); do
    grep -q 'started, version' "$log" 2>/dev/null && return 0
    kill -0 "$dns_pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$log" >&2 2>/dev/null || true
  echo "dns_run.sh: dnsmasq did not start" >&2
  exit 1
}
stop_dnsmasq() {
  kill -TERM "$dns_pid"
  wait "$dns_pid" || true
  dns_pid=
}
# dnsmasq's count of locally answered queries, from the statistics SIGUSR1 makes it log.
answered() { # log
  local n before
  before=$(grep -c 'queries answered locally' "$1" || true)
  kill -USR1 "$dns_pid"
  for _ in $(seq 100); do
    n=$(grep -c 'queries answered locally' "$1" || true)
    [ "$n" -gt "$before" ] && break
    sleep 0.02
  done
  grep 'queries answered locally' "$1" | tail -1 | sed 's/.*queries answered locally \([0-9]*\).*/\1/'
}

CORIO=("$B"/bench/dns_corio 127.0.0.1:53)
UV=("$B"/bench/dns_uv)

# ---- 1. the queries reach dnsmasq, from both clients ----
start_dnsmasq "$tmp/verify.log" --log-queries
taskset -c 0 "${CORIO[@]}" 300 "$INFLIGHT" vcorio- $ANSWER >/dev/null
taskset -c 0 "${UV[@]}" 300 "$INFLIGHT" vlibuv- $ANSWER >/dev/null
stop_dnsmasq
for p in vcorio vlibuv; do
  n=$(grep -E "query\[A\] $p-[0-9]+\.bench\.test from 127\.0\.0\.1\$" "$tmp/verify.log" |
    sed 's/.*query\[A\] \([^ ]*\).*/\1/' | sort -u | wc -l)
  echo "# dnsmasq log: $n distinct A queries from the $p- run (want 300)" >&2
  if [ "$n" != 300 ]; then
    grep query "$tmp/verify.log" | head -5 >&2
    echo "dns_run.sh: the $p- lookups did not all reach dnsmasq" >&2
    exit 1
  fi
done

# ---- 2. measurements ----
out=$B/bench/dns_results.txt
: >"$out"
fails=()
start_dnsmasq "$tmp/dnsmasq.log"
measure() { # impl-label prefix command...
  local impl=$1 prefix=$2 a0 a1 log rc
  shift 2
  a0=$(answered "$tmp/dnsmasq.log")
  log=$(taskset -c 0 "$@" "$LOOKUPS" "$INFLIGHT" "$prefix" $ANSWER 2>&1) && rc=0 || rc=$?
  a1=$(answered "$tmp/dnsmasq.log")
  echo "    $(grep '^#' <<<"$log" | head -1); dnsmasq answered $((a1 - a0))" >&2
  if [ $rc -ne 0 ] || [ $((a1 - a0)) -ne "$LOOKUPS" ]; then
    sed 's/^/    /' <<<"$log" >&2
    fails+=("$impl run $prefix: exit $rc, dnsmasq answered $((a1 - a0)) of $LOOKUPS")
    return
  fi
  grep '^RESULT' <<<"$log" | sed "s/impl=[a-z]*/impl=$impl/" >>"$out"
}
start=$SECONDS
for ((r = 1; r <= REPEAT; r++)); do
  echo "# run $r of $REPEAT" >&2
  measure corio "r${r}corio-" "${CORIO[@]}"
  measure libuv "r${r}libuv-" "${UV[@]}"
  UV_THREADPOOL_SIZE=$INFLIGHT measure libuv_pool "r${r}pool-" "${UV[@]}"
done
stop_dnsmasq
echo "# measurements took $((SECONDS - start)) s" >&2

echo
echo "DNS lookups/s, $LOOKUPS unique names (A records), $INFLIGHT in flight, dnsmasq on CPU 1," \
  "clients on CPU 0; $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs (shared" \
  "with other work: load average $(cut -d' ' -f1-3 /proc/loadavg)); median of $REPEAT" \
  "alternating runs [min-max]"
echo
$PY - "$out" "$INFLIGHT" <<'PYEOF'
import re, statistics, sys
res = {}  # (name, impl) -> values in run order
for line in open(sys.argv[1]):
    m = re.match(r"RESULT name=(\S+) impl=(\S+) value=(\S+) unit=(\S+)", line)
    if m:
        res.setdefault((m[1], m[2]), []).append(float(m[3]))

def cell(name, impl, scale, fmt):
    v = res.get((name, impl))
    if not v:
        return "n/a"
    med = statistics.median(v)
    return f"{fmt.format(med / scale)} [{fmt.format(min(v) / scale)}-{fmt.format(max(v) / scale)}]"

def ratio(name, a, b, invert=False):
    """Median [min-max] of the ratios of runs made side by side (run i of each): on a shared
    machine the load drifts between repeats more than between adjacent runs. With invert, b/a
    (how many times less CPU a needs)."""
    if (name, a) not in res or (name, b) not in res:
        return None, "n/a"
    rs = [(y / x if invert else x / y) for x, y in zip(res[(name, a)], res[(name, b)])]
    return statistics.median(rs), f"{statistics.median(rs):.2f}x [{min(rs):.2f}-{max(rs):.2f}]"

n = sys.argv[2]
print(f"| 127.0.0.1:53 dnsmasq | corio_getaddrinfo (c-ares) | uv_getaddrinfo, 4 threads (default) | "
      f"uv_getaddrinfo, {n} threads | corio/libuv | corio/libuv {n} threads |")
print("|---|---|---|---|---|---|")
L = "dns_lookups"
print(f"| lookups/s | {cell(L, 'corio', 1e3, '{:.1f}k')} | {cell(L, 'libuv', 1e3, '{:.1f}k')} | "
      f"{cell(L, 'libuv_pool', 1e3, '{:.1f}k')} | {ratio(L, 'corio', 'libuv')[1]} | "
      f"{ratio(L, 'corio', 'libuv_pool')[1]} |")
C = "dns_cpu"
print(f"| client CPU per lookup (user+sys) | {cell(C, 'corio', 1, '{:.2f} us')} | "
      f"{cell(C, 'libuv', 1, '{:.2f} us')} | {cell(C, 'libuv_pool', 1, '{:.2f} us')} | "
      f"{ratio(C, 'corio', 'libuv', True)[1]} less | {ratio(C, 'corio', 'libuv_pool', True)[1]} less |")
print()
r, text = ratio(L, "corio", "libuv")
print("Target (median of the paired ratios):")
print(f"- [{'n/a ' if r is None else ('PASS' if r >= 2 else 'MISS')}] corio >= 2x libuv lookups/s: {text}")
PYEOF

if [ ${#fails[@]} -gt 0 ]; then
  echo
  echo "FAILED:"
  printf -- '- %s\n' "${fails[@]}"
  exit 1
fi

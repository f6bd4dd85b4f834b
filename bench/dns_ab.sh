#!/usr/bin/env bash
# Two builds of bench/dns_corio side by side: CPU per lookup and lookups/s, alternating runs
# (A, B, A, B, ...) against one dnsmasq, and with STRACE=1 the system calls of one run of each
# (strace -f -c). For before/after comparisons of transports/dns.c, e.g.:
#
#   git archive <base> | tar -x -C /tmp/base && (cd /tmp/base &&
#     meson setup build-bench -Dbench=true --buildtype=release && ninja -C build-bench bench/dns_corio)
#   bash bench/dns_ab.sh /tmp/base/build-bench/bench/dns_corio build-bench/bench/dns_corio
#
# RUNS (4), LOOKUPS (20000), INFLIGHT (100). dnsmasq listens on a free port of 127.0.0.1 on CPU
# 1, the clients run on CPU 0. dns_corio asks only the server it is given
# (corio_resolver_configure), so nothing leaves loopback and no root is needed (dns_run.sh, which
# also runs glibc's resolver, needs its namespaces; this does not).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: dns_ab.sh <dns_corio A> <dns_corio B>" >&2; exit 2; }
A=$1 B=$2
RUNS=${RUNS:-4}
LOOKUPS=${LOOKUPS:-20000}
INFLIGHT=${INFLIGHT:-100}
DNSMASQ=${DNSMASQ:-/usr/sbin/dnsmasq}
ANSWER=127.0.0.9
for bin in "$A" "$B"; do
  [ -x "$bin" ] || { echo "dns_ab.sh: $bin is not executable" >&2; exit 1; }
done
port=$(python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
tmp=$(mktemp -d /tmp/corio-dns-ab.XXXXXX)
dns_pid=
cleanup() {
  if [ -n "$dns_pid" ]; then
    kill -TERM "$dns_pid" 2>/dev/null || true
    wait "$dns_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
taskset -c 1 "$DNSMASQ" --keep-in-foreground --no-resolv --no-hosts --no-poll --conf-file=/dev/null \
  --pid-file= --listen-address=127.0.0.1 --bind-interfaces --port="$port" \
  --address=/bench.test/$ANSWER --log-facility="$tmp/dnsmasq.log" &
dns_pid=$!
for _ in $(seq 100); do
  grep -q 'started, version' "$tmp/dnsmasq.log" 2>/dev/null && break
  kill -0 "$dns_pid" 2>/dev/null || { cat "$tmp/dnsmasq.log" >&2; exit 1; }
  sleep 0.05
done

run() { # label binary prefix
  local out
  out=$(taskset -c 0 "$2" "127.0.0.1:$port" "$LOOKUPS" "$INFLIGHT" "$3" $ANSWER) || {
    echo "dns_ab.sh: $2 failed" >&2
    exit 1
  }
  grep '^RESULT' <<<"$out" | sed "s/impl=[a-z]*/impl=$1/" >>"$tmp/results"
}
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$RUNS alternating runs of $LOOKUPS lookups, $INFLIGHT in flight; A = $A, B = $B"
for ((r = 1; r <= RUNS; r++)); do
  run A "$A" "r${r}a-"
  run B "$B" "r${r}b-"
done
python3 - "$tmp/results" <<'PYEOF'
import re, statistics, sys
res = {}
for line in open(sys.argv[1]):
    m = re.match(r"RESULT name=(\S+) impl=(\S+) value=(\S+)", line)
    if m:
        res.setdefault((m[1], m[2]), []).append(float(m[3]))
def rng(v, f):
    return f"{f.format(statistics.median(v))} [{f.format(min(v))}-{f.format(max(v))}]"
def pairs(name, inv):
    rs = [(a / b if inv else b / a) for a, b in zip(res[(name, "A")], res[(name, "B")])]
    return f"{statistics.median(rs):.2f}x [{min(rs):.2f}-{max(rs):.2f}]"
print("| median [min-max] | A | B | B vs A (paired runs) |")
print("|---|---|---|---|")
print(f"| CPU per lookup (us) | {rng(res[('dns_cpu', 'A')], '{:.2f}')} | "
      f"{rng(res[('dns_cpu', 'B')], '{:.2f}')} | {pairs('dns_cpu', True)} less |")
print(f"| lookups/s | {rng(res[('dns_lookups', 'A')], '{:.0f}')} | "
      f"{rng(res[('dns_lookups', 'B')], '{:.0f}')} | {pairs('dns_lookups', False)} |")
PYEOF
if [ -n "${STRACE:-}" ]; then
  for label in A B; do
    bin=$A
    [ $label = B ] && bin=$B
    strace -f -c -o "$tmp/strace.$label" "$bin" "127.0.0.1:$port" "$LOOKUPS" "$INFLIGHT" \
      "s$label-" $ANSWER >/dev/null
    echo
    echo "strace -f -c, $label ($bin), $LOOKUPS lookups:"
    # rows: % time, seconds, usecs/call, calls, [errors,] syscall; the last row is the total
    awk -v n="$LOOKUPS" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "syscall" &&
        ($4 / n >= 0.005 || $NF == "total") {
        printf "  %-16s %8d  %6.3f per lookup\n", $NF, $4, $4 / n }' \
      "$tmp/strace.$label"
  done
fi

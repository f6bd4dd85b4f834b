# resolve: lookups against a real dnsmasq on 127.0.0.1 (a free high port, local records only,
# never forwarding), /etc/hosts, a silent UDP server for the timeout. Every run passes --server:
# the machine's resolver is never asked. dnsmasq and the silent server are stopped by PID.
CUSTOM_RUN=1
T=$(mktemp -d)
dns_pid= silent_pid=
stop_servers() {
  [ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null
  [ -n "$silent_pid" ] && kill "$silent_pid" 2>/dev/null && wait "$silent_pid" 2>/dev/null
  dns_pid= silent_pid=
}
# also on an early exit (run_example.sh's own trap removed $OUT: keep doing that)
trap 'stop_servers; rm -rf "$OUT" "$T"' EXIT

free_udp_port() {
  python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# The port is probed free and then given to dnsmasq: another test may take it meanwhile, in
# which case dnsmasq exits; try again. Ready means it said 'started' (its sockets are bound by
# then): waited for, not assumed after a fixed time, which a loaded machine may outlast.
for _ in 1 2 3 4 5 6 7 8 9 10; do
  dns_port=$(free_udp_port)
  /usr/sbin/dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --conf-file=/dev/null \
    --listen-address=127.0.0.1 --bind-interfaces --port="$dns_port" --pid-file= \
    --log-queries --log-facility=- \
    --address=/corio.test/127.0.0.1 --address=/v6.corio.test/::1 --address=/nx.test/ \
    --address=/multi.corio.test/127.0.0.2 --address=/multi.corio.test/127.0.0.3 \
    --host-record=both.corio.test,127.0.0.5,::5 >"$T/dnsmasq.log" 2>&1 &
  dns_pid=$!
  for _ in $(seq 200); do # up to 10 s
    grep -q 'started' "$T/dnsmasq.log" && break
    kill -0 "$dns_pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$dns_pid" 2>/dev/null && grep -q 'started' "$T/dnsmasq.log" && break
  kill "$dns_pid" 2>/dev/null # still silent after 10 s: stop it, try another port
  wait "$dns_pid" 2>/dev/null
  dns_pid=
done
if [ -z "$dns_pid" ]; then
  echo "FAIL: could not start dnsmasq (is dnsmasq-base installed?):"
  cat "$T/dnsmasq.log"
  fail=1
  return 0 2>/dev/null || exit 1
fi
S="127.0.0.1:$dns_port"

# run NAME EXPECTED_RC ARGS...: output in $T/NAME (and in $OUT, for the failure report)
run() {
  local name=$1 want=$2 rc t0
  shift 2
  t0=$(date +%s.%N)
  timeout 30 "$bin" "$@" >"$T/$name" 2>&1
  rc=$?
  ELAPSED=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
  { echo "== $name: exit $rc, ${ELAPSED}s: resolve $*"; cat "$T/$name"; } >>"$OUT"
  [ "$rc" -eq "$want" ] || { echo "FAIL: $name: exit code $rc, expected $want"; fail=1; }
}
line() { grep -qxF -- "$2" "$T/$1" || { echo "FAIL: $1: missing line: $2"; fail=1; }; }
regex() { grep -qE -- "$2" "$T/$1" || { echo "FAIL: $1: no line matches: $2"; fail=1; }; }
lines() { [ "$(wc -l <"$T/$1")" -eq "$2" ] || { echo "FAIL: $1: $(wc -l <"$T/$1") lines, expected $2"; fail=1; }; }

# several names at once: found (v4, v6, both, two records), NXDOMAIN, /etc/hosts, numeric
run mixed 1 --server "$S" www.corio.test v6.corio.test multi.corio.test both.corio.test \
  nope.nx.test localhost 192.0.2.7
line mixed 'www.corio.test: 127.0.0.1'
regex mixed '^v6\.corio\.test: (::1, 127\.0\.0\.1|127\.0\.0\.1, ::1)$'
regex mixed '^multi\.corio\.test: (127\.0\.0\.2, 127\.0\.0\.3|127\.0\.0\.3, 127\.0\.0\.2)$'
regex mixed '^both\.corio\.test: (127\.0\.0\.5, ::5|::5, 127\.0\.0\.5)$'
line mixed 'nope.nx.test: error: DNS: no such host (NXDOMAIN) (CORIO_E_DNS_NOTFOUND: Domain name not found)'
regex mixed '^localhost: (.+, )?127\.0\.0\.1(, .+)?$'
line mixed '192.0.2.7: 192.0.2.7'
regex mixed '^7 names in 0\.[0-9]{3} s: 6 resolved, 1 failed$'
lines mixed 8
# printed in argument order, whatever order the answers came in
[ "$(cut -d: -f1 "$T/mixed" | head -7 | tr '\n' ' ')" = \
  "www.corio.test v6.corio.test multi.corio.test both.corio.test nope.nx.test localhost 192.0.2.7 " ] ||
  { echo "FAIL: mixed: not in argument order"; fail=1; }

# one family only
run v4 0 --server "$S" -4 both.corio.test localhost
line v4 'both.corio.test: 127.0.0.5'
line v4 'localhost: 127.0.0.1'
regex v4 '^2 names in 0\.[0-9]{3} s: 2 resolved, 0 failed$'
run v6 0 --server "$S" -6 both.corio.test v6.corio.test
line v6 'both.corio.test: ::5'
line v6 'v6.corio.test: ::1'

# 100 names concurrently
names=()
for i in $(seq 100); do names+=("host$i.corio.test"); done
run many 0 --server "$S" "${names[@]}"
[ "$(grep -c '^host[0-9]*\.corio\.test: 127\.0\.0\.1$' "$T/many")" -eq 100 ] ||
  { echo "FAIL: many: not 100 answers"; fail=1; }
regex many '^100 names in [0-9.]+ s: 100 resolved, 0 failed$'

# the queries really went to our dnsmasq (and only the DNS names: /etc/hosts and numeric never)
sleep 0.1
grep -q "query\[A\] www.corio.test from 127.0.0.1" "$T/dnsmasq.log" ||
  { echo "FAIL: dnsmasq never saw the query for www.corio.test"; fail=1; }
[ "$(grep -c 'query\[A\] host[0-9]*\.corio\.test from 127\.0\.0\.1' "$T/dnsmasq.log")" -ge 100 ] ||
  { echo "FAIL: dnsmasq saw fewer than 100 of the concurrent queries"; fail=1; }
grep -qE 'query\[[A-Z]+\] (localhost|192\.0\.2\.7) ' "$T/dnsmasq.log" &&
  { echo "FAIL: /etc/hosts or numeric names were sent to the DNS server"; fail=1; }

# a server that never answers: --timeout gives up on that name only; localhost (from
# /etc/hosts) is answered at once, and printed in its place
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True); time.sleep(120)' >"$T/silent.port" &
silent_pid=$!
for _ in $(seq 100); do [ -s "$T/silent.port" ] && break; sleep 0.05; done
run timeout 1 --server "127.0.0.1:$(cat "$T/silent.port")" --timeout 0.5 slow.corio.test localhost
line timeout 'slow.corio.test: error: no answer within 0.5 s (timed out)'
line timeout 'localhost: 127.0.0.1'
regex timeout '^2 names in 0\.[5-9][0-9]{2} s: 1 resolved, 1 failed$'
awk -v e="$ELAPSED" 'BEGIN { exit !(e >= 0.45 && e < 3) }' ||
  { echo "FAIL: timeout: took ${ELAPSED}s, expected about 0.5 s"; fail=1; }

# bad command lines
run noname 2 --server "$S"
line noname 'resolve: no name to look up'
run badserver 2 --server localhost:53 www.corio.test
line badserver "resolve: bad --server 'localhost:53' (Invalid argument): want ADDR[:PORT], e.g. 127.0.0.1:53"
run emptyserver 2 --server '' www.corio.test
line emptyserver 'resolve: --server needs an address, e.g. 127.0.0.1:53'
run badtimeout 2 --server "$S" --timeout 0 www.corio.test
line badtimeout 'resolve: --timeout needs a number of seconds > 0'
run badopt 2 --server "$S" --frobnicate www.corio.test
line badopt 'usage: resolve [--server ADDR[:PORT]] [--timeout S] [-4|-6] NAME...'

stop_servers
RC=0

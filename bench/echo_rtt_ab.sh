#!/usr/bin/env bash
# One connection, 64 B ping-pong: median round trip of raw epoll and corio's protocol-level echo,
# interleaved, 3 rounds of 3 s (server on CPU 0, verifying client on CPU 1; loopback only).
#   bash bench/echo_rtt_ab.sh
set -uo pipefail
cd "$(dirname "$0")/.."
B=build-bench
. bench/lib.sh
bench_build echo_rtt_ab.sh bench/echo_corio bench/echo_epoll bench/echo_load
for round in 1 2 3; do
for impl in epoll corio; do
  port=$((25000 + RANDOM % 2000))
  case $impl in
  epoll) taskset -c 0 $B/bench/echo_epoll $port > /dev/null & ;;
  corio) taskset -c 0 $B/bench/echo_corio $port protocol > /dev/null & ;;
  esac
  spid=$!
  for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  r=$(taskset -c 1 $B/bench/echo_load $port 1 64 3 $impl c1 | grep -E "rtt" | grep -o "value=[0-9.]*")
  kill -TERM $spid; wait $spid 2>/dev/null
  echo "$impl $r"
done
done

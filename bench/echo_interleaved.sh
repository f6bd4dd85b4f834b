#!/usr/bin/env bash
# Echo servers interleaved (raw epoll, corio protocol, corio stream, uvloop), 100 and 1000
# connections x 64 B, 3 s each, ROUNDS rounds (default 3): each round runs every server once, so
# a burst of load from the machine's other users hits all of them alike (bench/echo_run.sh runs
# each server's scenarios back to back, which on a shared VM moves the ratios a lot).
# Prints one line per run: "<impl> <connections> <echoes in 3 s>" (every byte verified).
#   bash bench/echo_interleaved.sh            (loopback only; server on CPU 0, client on CPU 1)
set -uo pipefail
cd "$(dirname "$0")/.."
B=build-bench
. bench/lib.sh
bench_build echo_interleaved.sh bench/echo_corio bench/echo_epoll bench/echo_load
run() { # impl conns
  port=$((23000 + RANDOM % 2000))
  case $1 in
  epoll) taskset -c 0 $B/bench/echo_epoll $port > /dev/null & ;;
  corio) taskset -c 0 $B/bench/echo_corio $port protocol > "${TMPDIR:-/tmp}/corio_echo_srv.out" & ;;
  stream) taskset -c 0 $B/bench/echo_corio $port stream > "${TMPDIR:-/tmp}/corio_echo_srv.out" 2>/dev/null & ;;
  uvloop) taskset -c 0 /usr/bin/python3 bench/echo_py.py uvloop $port > /dev/null & ;;
  esac
  spid=$!
  for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  r=$(taskset -c 1 $B/bench/echo_load $port $2 64 3 $1 x | grep echoes | awk '{print $4}')
  kill -TERM $spid; wait $spid 2>/dev/null
  echo "$1 $2 $r"
}
for _ in $(seq "${ROUNDS:-3}"); do
  for c in 100 1000; do
    for impl in epoll corio stream uvloop; do run $impl $c; done
  done
done

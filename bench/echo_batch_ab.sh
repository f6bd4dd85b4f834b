#!/usr/bin/env bash
# corio's protocol-level echo with the loop's batched waits off (CORIO_BATCH_US=-1) and on (20 us),
# interleaved, 100 and 1000 connections x 64 B, 3 s each, 3 rounds: echoes and io_uring_enter
# calls per echo.   bash bench/echo_batch_ab.sh      (loopback only)
set -uo pipefail
cd "$(dirname "$0")/.."
B=build-bench
. bench/lib.sh
bench_build echo_batch_ab.sh bench/echo_corio bench/echo_epoll bench/echo_load
run() { # label env conns
  port=$((21000 + RANDOM % 2000))
  env $2 taskset -c 0 $B/bench/echo_corio $port protocol > "${TMPDIR:-/tmp}/corio_echo_srv.out" &
  spid=$!
  for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  r=$(taskset -c 1 $B/bench/echo_load $port $3 64 3 corio x | grep echoes | awk '{print $4}')
  kill -TERM $spid; wait $spid 2>/dev/null
  e=$(grep -o "([0-9.]* per echo)" "${TMPDIR:-/tmp}/corio_echo_srv.out")
  echo "$1 c$3: $r echoes $e"
}
for round in 1 2 3; do
  for c in 100 1000; do
    run off CORIO_BATCH_US=-1 $c
    run on CORIO_BATCH_US=20 $c
  done
done

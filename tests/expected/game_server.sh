# game_server: started in the background (inline checks, then a process pool of 2 workers),
# driven by real TCP clients (tests/game_client.py: 3 named players, a nameless one, a rejoin,
# 8 concurrent ones), then stopped by SIGTERM with two players still connected.
# The client checks every line the players receive; here we check its verdict and the server log.
CUSTOM_RUN=1
drv="$dir/../game_client.py"
LOG=$(mktemp)
# alive and not a zombie (an exited child stays one until waited for)
running() { [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ] && [ -e "/proc/$1" ]; }
for mode in inline pool; do
  args=()
  [ "$mode" = pool ] && args=(--pool 2)
  t0=$(date +%s.%N)
  "$bin" "${args[@]}" >"$LOG" 2>&1 &
  pid=$!
  for _ in $(seq 200); do grep -q '^prime race on ' "$LOG" && break; sleep 0.05; done
  port=$(sed -n 's/^prime race on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$LOG")
  if [ -z "$port" ]; then
    echo "FAIL: $mode: the server did not start"
    fail=1
    cat "$LOG"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    break
  fi
  timeout 90 python3 "$drv" --port "$port" --server-pid "$pid" --mode "$mode" >"$OUT" 2>&1
  drc=$?
  # A server that ignores SIGTERM (or never got it) is killed after 10 s, and fails. (No
  # background watchdog to kill afterwards: killing a bash child before it execs runs
  # run_example.sh's EXIT trap in it, which deletes $OUT.)
  for _ in $(seq 200); do running "$pid" || break; sleep 0.05; done
  if running "$pid"; then
    echo "FAIL: $mode: the server was still running 10 s after SIGTERM"
    kill -KILL "$pid"
  fi
  wait "$pid"
  RC=$?
  pid=
  ELAPSED=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
  echo "$mode: client exit code $drc, server exit code $RC, ${ELAPSED}s"
  cat "$LOG" >>"$OUT"
  [ "$drc" -eq 0 ] || { echo "FAIL: $mode: the client's checks failed"; fail=1; }
  expect_rc 0
  # the client's verdict: every line each player received was the expected one
  expect_regex '^game_client: [0-9]+ checks, 0 failed$'
  expect_count '^FAIL' 0
  expect_regex '^crowd: 6 primes claimed by [1-8] players, 69 points$'
  # the server's log
  if [ "$mode" = pool ]; then
    expect_regex '^prime race on 127\.0\.0\.1:[0-9]+, claims checked in a process pool of 2 workers$'
    expect_regex '^slow claim: alice got the ping first \(ping relayed after [0-9.]+ s, claim reply after [0-9.]+ s\)$'
    expect_count '^checked [0-9]+ for [a-z0-9]+ in [0-9.]+ s \(in a worker\): ' "$(grep -c '^checked ' "$OUT")"
  else
    expect_regex '^prime race on 127\.0\.0\.1:[0-9]+, claims checked inline on the loop thread$'
    expect_count '^checked [0-9]+ for [a-z0-9]+ in [0-9.]+ s \(on the loop thread\): ' "$(grep -c '^checked ' "$OUT")"
  fi
  expect_line 'alice joined (1 online)'
  expect_line 'bob joined (2 online)'
  expect_line 'alice claimed 1000000007: +10, alice has 10'
  expect_regex '^checked 999999999999999989 for alice in [0-9.]+ s .*: prime$'
  expect_regex '^checked 1000000008 for bob in [0-9.]+ s .*: not prime$'
  expect_line 'carol left with 3 points (2 online)'
  expect_count '^carol joined ' 2
  expect_count '^p[0-7] joined ' 8
  # (a client closing with unread broadcasts resets the connection: either way is a clean exit)
  expect_count '^p[0-7] (left with [0-9]+ points|disconnected: Connection reset by peer) \([0-9]+ online\)$' 8
  expect_regex '^bob left with (1|18) points \(2 online\)$'
  expect_line 'received SIGTERM'
  expect_line 'stopping: 2 connections open'
  expect_regex '^(alice|carol) left with [0-9]+ points \(1 online\)$'
  expect_regex '^(alice|carol) left with [0-9]+ points \(0 online\)$'
  # the board: everyone who played, best first (who won the race decides alice's and bob's)
  expect_regex '^final scores: [a-z0-9]+ [0-9]+(, [a-z0-9]+ [0-9]+){10}$'
  expect_regex '^final scores: (.*, )?(alice 45(, .*)?, bob 1|alice 28(, .*)?, bob 18)(, |$)'
  expect_regex '^final scores: (.*, )?carol 3(, |$)'
  # every check the server logged is counted (a claim already taken is refused unchecked)
  expect_regex "^stopped: 12 players served, $(grep -c '^checked ' "$OUT") claims checked$"
  [ "$(tail -1 "$OUT")" = "$(grep '^stopped: ' "$OUT")" ] || { echo "FAIL: $mode: log goes on after 'stopped'"; fail=1; }
  [ "$fail" -eq 0 ] || break
done
rm -f "$LOG"

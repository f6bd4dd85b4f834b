# graceful_stop: started in the background, stopped by a signal, it must exit 0 after every
# task ran its cleanup. Run once with SIGTERM and once with SIGINT.
CUSTOM_RUN=1
for sig in TERM INT; do
  t0=$(date +%s.%N)
  "$bin" >"$OUT" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q '^serving' "$OUT" && break; sleep 0.05; done
  grep -q '^serving' "$OUT" || { echo "FAIL: SIG$sig run: never printed 'serving'"; fail=1; }
  sleep 0.3
  kill -"$sig" "$pid"
  # watchdog: a program that ignores the signal is killed after 10 s (and fails the checks)
  (sleep 10 && kill -KILL "$pid") >/dev/null 2>&1 &
  watchdog=$!
  wait "$pid"
  RC=$?
  kill "$watchdog" 2>/dev/null
  wait "$watchdog" 2>/dev/null
  ELAPSED=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
  echo "SIG$sig run: exit code $RC, ${ELAPSED}s"
  expect_rc 0
  expect_line "received SIG$sig: setting the stop event"
  expect_count '^received SIG' 1
  expect_regex '^tick 1$' # it was serving for ~0.3 s: at least one 0.1 s tick
  expect_line 'stopping: waiting for the ticker and 3 workers to finish'
  expect_regex '^ticker: stopped after [1-9][0-9]* ticks$'
  expect_count '^worker [0-2]: handled [1-9][0-9]* requests, cleaned up$' 3
  [ "$(tail -1 "$OUT")" = 'stopped cleanly (3/3 workers cleaned up)' ] ||
    { echo "FAIL: SIG$sig run: last line is not 'stopped cleanly (3/3 workers cleaned up)'"; fail=1; }
  # nothing ticks or handles work after the signal; all cleanup comes after it
  sigline=$(grep -n '^received SIG' "$OUT" | head -1 | cut -d: -f1)
  last_tick=$(grep -n '^tick ' "$OUT" | tail -1 | cut -d: -f1)
  first_clean=$(grep -n 'cleaned up$' "$OUT" | head -1 | cut -d: -f1)
  [ -n "$sigline" ] && [ "${last_tick:-0}" -lt "$sigline" ] && [ "${first_clean:-0}" -gt "$sigline" ] ||
    { echo "FAIL: SIG$sig run: ticks after the signal, or cleanup before it"; fail=1; }
  expect_elapsed_between 0.3 3.0
  [ "$fail" -eq 0 ] || break
done

CUSTOM_RUN=1
for sig in TERM INT; do
  t0=$(date +%s.%N)
  "$bin" >"$OUT" 2>&1 &
  pid=$!
  for _ in $(seq 50); do grep -q '^serving' "$OUT" && break; sleep 0.05; done
  sleep 0.3
  kill -"$sig" "$pid"
  wait "$pid"
  RC=$?
  ELAPSED=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
  expect_rc 0
  expect_line "got SIG$sig, stopping"
  expect_count '^worker [0-2]: stopping after [0-9]+ ticks, cleaning up$' 3
  expect_line 'stopped cleanly (3/3 workers cleaned up)'
  expect_elapsed_between 0.3 3.0
done

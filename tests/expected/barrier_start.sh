# barrier_start: ready in the order of the preparation times, and every "go" after the last
# "ready"; exactly one thread is the barrier's serial thread.
expect_rc 0
ready=$(sed -nE 's/^worker ([0-4]) ready at [0-9.]+ s$/\1/p' "$OUT" | tr '\n' ' ')
[ "$ready" = "2 0 3 1 4 " ] || { echo "FAIL: ready order '$ready', expected '2 0 3 1 4 '"; fail=1; }
expect_count '^worker [0-4] go$' 5
[ "$(sed -nE 's/^worker ([0-4]) go$/\1/p' "$OUT" | sort -u | wc -l)" -eq 5 ] ||
  { echo "FAIL: not 5 distinct workers went"; fail=1; }
last_ready=$(grep -n ' ready at ' "$OUT" | tail -1 | cut -d: -f1)
first_go=$(grep -n ' go$' "$OUT" | head -1 | cut -d: -f1)
[ -n "$first_go" ] && [ -n "$last_ready" ] && [ "$first_go" -gt "$last_ready" ] ||
  { echo "FAIL: a worker went before all were ready"; fail=1; }
expect_count '^all 5 ready \(said by worker [0-4]\)$' 1
# the "went" times are taken after the barrier: none before the slowest was ready (0.12 s)
expect_regex '^all 5 went between [0-9.]+ and [0-9.]+ s, after the slowest was ready \(0\.12 s\)$'
awk '/^all 5 went between/ { ok = ($5 + 0 >= 0.12) } END { exit !ok }' "$OUT" ||
  { echo "FAIL: a worker went before the slowest one was ready"; fail=1; }
expect_elapsed_between 0.12 3.0

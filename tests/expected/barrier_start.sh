# barrier_start: ready in the order of the preparation times, and every "go" after the last
# "ready"; exactly one thread is the barrier's serial thread.
expect_rc 0
# The preparations are sleeps on real threads (0.00, 0.03, 0.06, 0.09, 0.12 s apart: '2 0 3 1 4'):
# a thread that the machine runs late (a loaded 2-core machine, a sanitizer; the thread of worker
# 2 is created third) may be ready after one with a longer preparation. So: nobody is ready
# before its preparation time, and a worker that comes before one with a shorter preparation
# is only allowed if that one was late past the first one's time (printed to 0.01 s).
expect_count '^worker [0-4] ready at [0-9.]+ s$' 5
awk 'BEGIN { n = 0; p[0] = 0.03; p[1] = 0.09; p[2] = 0.00; p[3] = 0.06; p[4] = 0.12 }
     /^worker [0-4] ready at [0-9.]+ s$/ { w[n] = $2; t[n] = $5 + 0; n++ }
     END {
       for (i = 0; i < n; i++) {
         if (t[i] < p[w[i]] - 0.005) { print "worker " w[i] " ready early: " t[i] " s"; bad = 1 }
         for (j = i + 1; j < n; j++)
           if (p[w[j]] < p[w[i]] && t[j] < p[w[i]] - 0.005) {
             print "worker " w[j] " (ready at " t[j] " s) came after worker " w[i]; bad = 1
           }
       }
       exit bad
     }' "$OUT" || { echo "FAIL: ready order does not follow the preparation times"; fail=1; }
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

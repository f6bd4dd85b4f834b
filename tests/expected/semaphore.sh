# semaphore: never more than 3 fetches between "start" and "done"; all 10 run.
expect_rc 0
expect_count '^fetch [0-9] start \([1-3] running\)$' 10
expect_count '^fetch [0-9] done$' 10
[ "$(grep -oE '^fetch [0-9] done' "$OUT" | sort -u | wc -l)" -eq 10 ] ||
  { echo "FAIL: not ten distinct fetches done"; fail=1; }
# replay the start/done lines: the count in flight stays within 1..3 and reaches 3
awk '/^fetch [0-9] start/ { n++; if (n > 3) bad = 1; if (n > max) max = n }
     /^fetch [0-9] done/ { n--; if (n < 0) bad = 1 }
     END { exit !(!bad && max == 3 && n == 0) }' "$OUT" ||
  { echo "FAIL: more than 3 fetches ran at once, or never 3"; fail=1; }
expect_line 'max concurrency observed: 3 (limit 3), 0 running now'
# 10 tasks, 3 at a time, 0.05 s each: 4 rounds, at least 0.2 s
expect_elapsed_between 0.2 2.0

# producer_consumer: every item is consumed exactly once; join waits for all task_done calls.
expect_rc 0
expect_line 'producers done: 600 items put by 12 producers'
expect_line 'queue joined: every item got its task_done (0 left in the queue)'
expect_count '^consumer [0-9] handled [0-9]+ items$' 10
# the per-consumer counts add up, and the work was shared (at least 5 consumers got items)
awk '/^consumer [0-9] handled/ { n += $4; if ($4 > 0) k++ } END { exit !(n == 600 && k >= 5) }' \
  "$OUT" || { echo "FAIL: per-consumer counts do not add up to 600 or work not shared"; fail=1; }
# sum over producer p < 12 and i < 50 of (1000 p + i + 1)
expect_line 'consumed 600 items, sum 3315300; produced sum 3315300; expected 3315300: ok'
# the bounded queue never held more than maxsize items
expect_regex '^largest queue size seen: ([1-9]|1[0-9]|20) \(maxsize 20\)$'
expect_line 'consumers cancelled: 10'
[ "$(grep -n '^queue joined' "$OUT" | cut -d: -f1)" -gt "$(grep -n '^producers done' "$OUT" | cut -d: -f1)" ] ||
  { echo "FAIL: join reported before the producers finished"; fail=1; }
expect_elapsed_between 0.01 10

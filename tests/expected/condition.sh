expect_rc 0
expect_count '^producer: batch [123], [0-9]+ items in stock, notify_all$' 3
expect_count '^consumer [0-5] took an item' 6
expect_regex '^taken 6 items, 0 left, [0-9]+ wakeups$'
# no consumer takes anything before the first batch
first_batch=$(grep -n '^producer: batch 1' "$OUT" | cut -d: -f1)
first_take=$(grep -n '^consumer' "$OUT" | head -1 | cut -d: -f1)
[ "$first_take" -gt "$first_batch" ] || { echo "FAIL: took before production"; fail=1; }

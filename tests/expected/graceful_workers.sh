# graceful_workers: after the stop event no item starts, every started item is finished, and
# all 4 workers are joined well within the timeout.
expect_rc 0
expect_count '^main: stop event set$' 1
expect_count '^worker [0-3]: stopped after [1-9][0-9]* items$' 4
[ "$(sed -nE 's/^worker ([0-3]): stopped.*/\1/p' "$OUT" | sort -u | wc -l)" -eq 4 ] ||
  { echo "FAIL: not 4 distinct workers stopped"; fail=1; }
# no item starts after the stop line; each worker's items end with "done" before it stops
awk '/^main: stop event set$/ { stopped = 1 }
     / item [0-9]+ start$/ { if (stopped) bad = 1; open[$2] = $4 }
     / item [0-9]+ done/ { if (open[$2] != $4) bad = 1; delete open[$2] }
     / stopped after / { if ($2 in open) bad = 1; if (!stopped) bad = 1 }
     END { exit bad }' "$OUT" ||
  { echo "FAIL: an item started after the stop, or a worker stopped mid-item or early"; fail=1; }
expect_regex '^main: 4 of 4 workers stopped within the 2\.0 s timeout, 0\.[0-9]+ s after the stop$'
# an item is 30 ms: the stop takes effect in well under a second
awk '/^main: 4 of 4/ { ok = ($(NF-4) + 0) < 1.0 } END { exit !ok }' "$OUT" ||
  { echo "FAIL: stopping took a second or more"; fail=1; }
expect_elapsed_between 0.2 3.0

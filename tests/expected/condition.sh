# condition: six items (3 from A, 3 from B) reach six distinct consumers; nobody takes an item
# that was not produced; every notify_all woke exactly the consumers waiting at that moment.
expect_rc 0
expect_count '^producer A: stock 1, notify_all woke [0-9] waiters?$' 3
expect_count '^producer B: stock 1, notify_all woke [0-9] waiters?$' 3
expect_count '^consumer [0-5] took an item after [0-9]+ wakeups?, stock 0$' 6
[ "$(grep -oE '^consumer [0-5]' "$OUT" | sort -u | wc -l)" -eq 6 ] ||
  { echo "FAIL: not six distinct consumers"; fail=1; }
# all six consumers wait before the first item exists
[ "$(grep -m1 '^producer' "$OUT")" = 'producer A: stock 1, notify_all woke 6 waiters' ] ||
  { echo "FAIL: first notify_all did not find all six consumers waiting"; fail=1; }
# replaying the lines, the stock printed is right, never negative (no take before a put) and
# ends at 0; the consumers' wakeups add up to the waiters each notify_all found
awk '/^producer/ { s++; if ($4 + 0 != s) bad = 1; woken += $7 }
     /^consumer/ { s--; if (s < 0 || $NF + 0 != s) bad = 1; got += $7 }
     END { exit !(!bad && s == 0 && woken == got && got > 0) }' "$OUT" ||
  { echo "FAIL: stock replay or wakeup count wrong"; fail=1; }
expect_line 'taken 6 items, 0 left in stock, 0 consumers still waiting'
expect_elapsed_between 0.15 2.0

expect_rc 0
expect_line 'producers done: 600 items'
expect_line 'queue joined: every item processed'
expect_count '^consumer [0-9] handled [0-9]+ items$' 10
expect_regex '^consumed 600 items, sum ([0-9]+) \(produced sum \1\): ok$'
expect_line 'consumers cancelled: 10'
# work was shared: at least 5 consumers did some
[ "$(grep -cE '^consumer [0-9] handled [1-9][0-9]* items$' "$OUT")" -ge 5 ] || { echo "FAIL: work not shared"; fail=1; }

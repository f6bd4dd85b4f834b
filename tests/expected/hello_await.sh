expect_rc 0
expect_line 'compute 1 + 2 ...'
expect_line '1 + 2 = 3'
[ "$(head -1 "$OUT")" = 'compute 1 + 2 ...' ] || { echo "FAIL: order"; fail=1; }

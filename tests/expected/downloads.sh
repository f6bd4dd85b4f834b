expect_rc 0
expect_count '^  start ' 3
expect_count '^  done  ' 3
expect_line 'result index.html = 1000 bytes'
expect_line 'result data.json = 900 bytes'
expect_regex '^total: (0\.9[0-9]|1\.[0-9][0-9]) s for 3 x 1 s of downloads$'
# all three start before any finishes
[ "$(grep -nE '^  (start|done)' "$OUT" | head -3 | grep -c start)" -eq 3 ] || { echo "FAIL: not concurrent"; fail=1; }
expect_elapsed_between 0.9 2.5

# downloads: three 1 s downloads overlap, so the whole run takes about 1 s, not 3.
expect_rc 0
expect_count '^\[0\.[0-9]{2} s\] start (index\.html|logo\.png|data\.json)$' 3
# sleep(1.0) never ends early, and all three end together (well before 2 s)
expect_count '^\[1\.[0-9]{2} s\] done  (index\.html|logo\.png|data\.json) +[0-9]+ bytes$' 3
expect_regex '^\[1\.[0-9]{2} s\] done  logo\.png +20480 bytes$'
expect_line 'gather results, in argument order: index.html=5120 logo.png=20480 data.json=870'
expect_regex '^Total: 26470 bytes in 1\.[0-9]{2} s \(one after the other, it would take 3 s\)$'
# all three start before any finishes
[ "$(grep -E '\] (start|done) ' "$OUT" | head -3 | grep -c ' start ')" -eq 3 ] ||
  { echo "FAIL: the downloads did not overlap"; fail=1; }
expect_elapsed_between 0.9 2.0

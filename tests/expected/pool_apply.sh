# pool_apply: every Pool call's results, exactly; imap in input order.
expect_rc 0
expect_line 'apply: 100'
expect_line 'apply_async: callback got 49'
expect_line 'map: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]'
imap=$(sed -nE 's/^imap: //p' "$OUT" | tr '\n' ' ')
[ "$imap" = "0 1 4 9 16 25 " ] || { echo "FAIL: imap gave '$imap'"; fail=1; }
expect_line 'starmap: [1024, 81, 1000, 1]'
expect_line 'bad tuple: EINVAL: power: expected 16 bytes of arguments, got 3'
# the lines come in the order of the calls
order=$(grep -oE '^(apply|apply_async|map|imap|starmap|bad tuple):' "$OUT" | uniq | tr '\n' ' ')
[ "$order" = "apply: apply_async: map: imap: starmap: bad tuple: " ] ||
  { echo "FAIL: order of the calls '$order'"; fail=1; }
expect_elapsed_between 0 5.0

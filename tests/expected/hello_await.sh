# hello_await: the child runs inside the parent's await, and its value comes back.
expect_rc 0
expect_line 'compute 1 + 2 ...'
expect_regex '^1 \+ 2 = 3 \(after (0\.[1-9]|1\.[0-9])[0-9] s\)$'  # sleep(0.1) never returns early
expect_line 'print_sum returned 3'
expect_count '.' 3
order=$(cut -c1-7 "$OUT" | tr '\n' '|')
[ "$order" = 'compute|1 + 2 =|print_s|' ] || { echo "FAIL: order of lines: $order"; fail=1; }
expect_elapsed_between 0.1 2.0

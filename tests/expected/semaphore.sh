expect_rc 0
expect_count '^fetch [0-9] running \([1-3] at once\)$' 10
expect_line 'max concurrency observed: 3 (limit 3)'
expect_elapsed_between 0.15 2.0

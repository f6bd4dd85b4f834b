# shared_counters: the locked and the atomic counters are exact across 4 processes, the array
# totals are exact, and the semaphore never let more than 2 jobs in. The unlocked counter may
# lose updates or not: only its line is checked.
expect_rc 0
expect_line 'counter (locked): 400000 of 400000'
expect_line 'atomic counter: 8000000 of 8000000'
expect_regex '^unlocked counter: [0-9]+ of 8000000 \([0-9]+ updates lost to races\)$'
# totals[j] = 1.5 * (j + j + 4)
expect_line 'totals: [6.0, 9.0, 12.0, 15.0]'
expect_regex '^semaphore\(2\): at most [12] jobs inside at once, 0 inside now, value back to 2$'
expect_elapsed_between 0 5.0

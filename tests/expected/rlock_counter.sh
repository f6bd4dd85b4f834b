# rlock_counter: a plain lock refuses its owner (EBUSY / EDEADLK), a recursive one lets it in,
# and the counter guarded by the recursive lock is exact.
expect_rc 0
expect_line 'plain lock: trylock by its owner -> EBUSY (a blocking acquire would hang)'
expect_line 'error-checking lock: lock by its owner -> EDEADLK (the deadlock, reported)'
expect_line 'recursive lock: lock by its owner -> 0 (acquired)'
expect_line 'recursive lock: trylock by another thread -> EBUSY'
expect_line 'recursive lock: one unlock too many -> EPERM'
expect_line 'counter: 200000 (expected 4 threads x 25000 rounds x 2 = 200000), lock held 2 deep at most'
expect_elapsed_between 0 3.0

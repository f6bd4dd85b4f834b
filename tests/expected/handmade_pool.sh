# handmade_pool: the hand-made pool and corio's pool give the same 20 results through their
# callbacks; "terminate" runs exactly the 2 jobs already running and drops the 8 queued.
expect_rc 0
expect_line 'hand-made pool, close + join: 20 callbacks, sum of squares 2470'
expect_line 'hand-made pool, terminate: 2 ran, 8 dropped'
expect_line 'corio pool, shutdown(wait): 20 callbacks, sum of squares 2470'
expect_line 'corio pool, shutdown(cancel_futures): 2 ran, 8 cancelled'
expect_line 'expected sum of squares 2470; both pools gave n*n for every n: yes'
expect_elapsed_between 0 3.0

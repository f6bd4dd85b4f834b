# threadpool_as_completed: submitted as 0..4 with sleeps .25 .05 .20 .10 .15, taken as they
# finish: 1 3 4 2 0, from a plain thread and from a task.
expect_rc 0
got=$(sed -nE 's/^thread: job ([0-4]) done: ([0-9]+)$/\1=\2/p' "$OUT" | tr '\n' ' ')
[ "$got" = "1=1 3=9 4=16 2=4 0=0 " ] || { echo "FAIL: thread order/results '$got'"; fail=1; }
got=$(sed -nE 's/^task: job with result ([0-9]+) done$/\1/p' "$OUT" | tr '\n' ' ')
[ "$got" = "1 9 16 4 0 " ] || { echo "FAIL: task order '$got', expected '1 9 16 4 0 '"; fail=1; }
# each part takes about the longest sleep (0.25 s); the order above already shows that the
# jobs ran at once (run one by one, they would finish as 0 1 2 3 4)
expect_elapsed_between 0.5 3.0

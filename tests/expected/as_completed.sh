expect_rc 0
expect_count '^submitted job' 5
got=$(grep '^finished job' "$OUT" | awk '{print $3}' | tr '\n' ' ')
[ "$got" = "2 4 1 5 3 " ] || { echo "FAIL: completion order '$got', expected '2 4 1 5 3 '"; fail=1; }
expect_elapsed_between 0.45 2.0

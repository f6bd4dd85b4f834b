# as_completed: launched as 1..5 with shuffled sleeps, taken in the order they finish.
expect_rc 0
launched=$(grep '^launch job' "$OUT" | awk '{print $3}' | tr '\n' ' ')
[ "$launched" = "1 2 3 4 5 " ] || { echo "FAIL: launch order '$launched'"; fail=1; }
got=$(grep '^job ' "$OUT" | awk '{print $2}' | tr '\n' ' ')
[ "$got" = "2 4 1 5 3 " ] || { echo "FAIL: completion order '$got', expected '2 4 1 5 3 '"; fail=1; }
# each job finishes no earlier than its sleep, and the finish times never go backwards
awk '/^launch job/ { s[$3] = $5 + 0 }
     /^job .* finished at/ { t = $5 + 0; if (t < s[$2] || t < prev) bad = 1; prev = t; n++ }
     END { exit !(n == 5 && !bad) }' "$OUT" || { echo "FAIL: finish times"; fail=1; }
expect_elapsed_between 0.5 2.0

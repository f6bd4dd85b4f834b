# loop_in_worker: each job ran a loop in a worker process (not ours) whose gathered sleeps
# overlapped, and returned the right results.
expect_rc 0
parent=$(sed -nE 's/^parent: pid ([0-9]+)$/\1/p' "$OUT")
for k in 0 1 2 3; do
  b=$((k * 100))
  expect_regex "^job $k: pid [0-9]+, results \[$b, $((b + 1)), $((b + 2)), $((b + 3)), $((b + 4))\], 5 sleeps of 0\.30 s in all took 0\.[0-9]+ s\$"
done
pids=$(sed -nE 's/^job [0-3]: pid ([0-9]+),.*/\1/p' "$OUT" | sort -u)
n=$(echo "$pids" | grep -c .)
[ "$n" -ge 1 ] && [ "$n" -le 2 ] || { echo "FAIL: $n worker pids, expected 1 or 2 (max_workers 2)"; fail=1; }
echo "$pids" | grep -qx "${parent:-x}" && { echo "FAIL: a job ran in the parent"; fail=1; }
# overlapping sleeps: each gather took at least the longest sleep (0.08 s), less than the sum
awk '/^job [0-3]: pid/ { t = $(NF-1) + 0; n++; if (t < 0.08 || t >= 0.30) bad = 1 }
     END { exit !(n == 4 && !bad) }' "$OUT" ||
  { echo "FAIL: a gather took less than 0.08 s or as long as the 0.30 s sum"; fail=1; }
expect_elapsed_between 0.16 5.0

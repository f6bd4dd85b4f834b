# threads_sleep_print: 20 workers sleep 0.10..0.18 s at once on 20 distinct threads.
expect_rc 0
expect_count '^worker [0-9]+ on thread sleeper_[0-9]+ slept 0\.[01][02468] s$' 20
[ "$(grep -oE '^worker [0-9]+ ' "$OUT" | sort -u | wc -l)" -eq 20 ] ||
  { echo "FAIL: not 20 distinct workers"; fail=1; }
# every job slept while the others slept too, so each ran on a thread of its own
[ "$(grep -oE 'on thread sleeper_[0-9]+ ' "$OUT" | sort -u | wc -l)" -eq 20 ] ||
  { echo "FAIL: not 20 distinct threads"; fail=1; }
# sum of 0.10 + (n % 5) * 0.02 for n in 0..19 is 2.80 s; run concurrently it takes ~0.18 s
expect_regex '^20 workers: sleeps add up to 2\.80 s, elapsed 0\.[0-9]+ s$'
awk '/^20 workers:/ { e = $10 + 0; ok = (e >= 0.18 && e < 0.7) } END { exit !ok }' "$OUT" ||
  { echo "FAIL: elapsed not between the longest sleep and a quarter of the sum"; fail=1; }
expect_elapsed_between 0.18 3.0

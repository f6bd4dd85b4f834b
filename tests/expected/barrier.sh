expect_rc 0
expect_count '^worker [0-4] ready$' 5
expect_count '^worker [0-4] go \(arrival [0-4]\)$' 5
expect_line 'all 5 workers passed the barrier'
last_ready=$(grep -n 'ready$' "$OUT" | tail -1 | cut -d: -f1)
first_go=$(grep -n ' go ' "$OUT" | head -1 | cut -d: -f1)
[ "$first_go" -gt "$last_ready" ] || { echo "FAIL: a worker went before all were ready"; fail=1; }
[ "$(grep -oE 'arrival [0-4]' "$OUT" | sort -u | wc -l)" -eq 5 ] || { echo "FAIL: arrival indices not distinct"; fail=1; }

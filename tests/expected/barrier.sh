# barrier: every "ready" comes before any "go", and arrival indices follow the ready order.
expect_rc 0
ready=$(grep -E '^worker [0-4] ready$' "$OUT" | awk '{print $2}' | tr '\n' ' ')
[ "$ready" = "0 3 1 4 2 " ] || { echo "FAIL: ready order '$ready', expected '0 3 1 4 2 '"; fail=1; }
expect_count '^worker [0-4] go \(arrival [0-4]\)$' 5
last_ready=$(grep -n ' ready$' "$OUT" | tail -1 | cut -d: -f1)
first_go=$(grep -n ' go ' "$OUT" | head -1 | cut -d: -f1)
[ -n "$first_go" ] && [ "$first_go" -gt "${last_ready:-999}" ] ||
  { echo "FAIL: a worker went before all were ready"; fail=1; }
# arrival index k belongs to the k-th worker to get ready
awk '/ ready$/ { pos[$2] = n++ }
     / go \(arrival/ { a = $5; sub(/\)/, "", a); if (pos[$2] != a + 0) bad = 1; k++ }
     END { exit !(k == 5 && !bad) }' "$OUT" ||
  { echo "FAIL: arrival indices do not follow the ready order"; fail=1; }
expect_line 'all 5 workers passed the barrier'
expect_elapsed_between 0.04 2.0

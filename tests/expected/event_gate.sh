expect_rc 0
expect_count '^runner [0-9] waiting$' 10
expect_count '^runner [0-9] released$' 10
expect_line 'opening the gate (0 released so far)'
expect_line 'all 10 runners released'
# nobody is released before the gate opens
gate=$(grep -n 'opening the gate' "$OUT" | cut -d: -f1)
first=$(grep -n 'released$' "$OUT" | head -1 | cut -d: -f1)
[ "$first" -gt "$gate" ] || { echo "FAIL: released before the gate opened"; fail=1; }

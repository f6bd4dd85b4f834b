# event_gate: nobody passes before the gate opens; one set() releases all ten.
expect_rc 0
expect_count '^runner [0-9] waiting$' 10
expect_count '^runner [0-9] released at (0\.[1-9]|1\.[0-9])[0-9] s$' 10
[ "$(grep -oE '^runner [0-9] released' "$OUT" | sort -u | wc -l)" -eq 10 ] ||
  { echo "FAIL: not ten distinct runners released"; fail=1; }
expect_line 'opening the gate: 10 waiting, 0 released so far'
expect_line 'all 10 runners released, 0 still waiting'
# every "waiting" line comes before the gate opens, every "released" line after it
gate=$(grep -n '^opening the gate' "$OUT" | cut -d: -f1)
last_wait=$(grep -n '^runner [0-9] waiting$' "$OUT" | tail -1 | cut -d: -f1)
first_rel=$(grep -n ' released at ' "$OUT" | head -1 | cut -d: -f1)
[ -n "$gate" ] && [ "${last_wait:-0}" -lt "$gate" ] && [ "${first_rel:-0}" -gt "$gate" ] ||
  { echo "FAIL: released before the gate opened"; fail=1; }
expect_elapsed_between 0.1 2.0

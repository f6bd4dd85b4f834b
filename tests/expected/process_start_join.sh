# process_start_join: five jobs, each in a fresh worker process: distinct pids, none ours, all
# forked by the same fork server; exit codes 0, one "sys.exit(3)", one terminated while running.
expect_rc 0
parent=$(sed -nE 's/^parent: pid ([0-9]+)$/\1/p' "$OUT")
[ -n "$parent" ] || { echo "FAIL: no parent pid line"; fail=1; }
expect_count '^worker [0-4]: pid [0-9]+, parent [0-9]+$' 5
pids=$(sed -nE 's/^worker [0-4]: pid ([0-9]+), parent [0-9]+$/\1/p' "$OUT")
[ "$(echo "$pids" | sort -u | wc -l)" -eq 5 ] || { echo "FAIL: worker pids not distinct"; fail=1; }
echo "$pids" | grep -qx "${parent:-x}" && { echo "FAIL: a worker ran in the parent"; fail=1; }
servers=$(sed -nE 's/^worker [0-4]: pid [0-9]+, parent ([0-9]+)$/\1/p' "$OUT" | sort -u)
[ "$(echo "$servers" | wc -l)" -eq 1 ] && [ "$servers" != "$parent" ] ||
  { echo "FAIL: workers not all children of one fork server distinct from the parent"; fail=1; }
expect_line 'terminate worker 4: requested'
expect_line 'worker 0: exit code 0, result 0'
expect_line 'worker 1: exit code 0, result 10'
expect_line 'worker 2: exit code 0, result 20'
expect_regex '^worker 3: failed, CORIO_E_WORKER_DIED: worker [0-9]+ exited with status 3'
expect_regex '^worker 4: terminated \(cancelled after [0-4]\.[0-9]+ s\)$'
expect_elapsed_between 0 5.0
# the death report names the pid worker 3 printed
pid3=$(sed -nE 's/^worker 3: pid ([0-9]+),.*/\1/p' "$OUT")
expect_regex "^worker 3: failed, .*: worker ${pid3:-none} exited with status 3"

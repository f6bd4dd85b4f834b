# pool_maxtasks_init: with max_tasks_per_child 3 the pid changes every 3 jobs, each new worker
# runs the initializer first, and no worker runs more than 3 jobs.
expect_rc 0
expect_count '^job [0-8]: pid [0-9]+, initializer ran in this process: yes$' 9
# sequential: jobs 0-2, 3-5, 6-8 share a pid each, and the three pids differ
p=$(sed -nE 's/^job [0-8]: pid ([0-9]+),.*/\1/p' "$OUT" | tr '\n' ' ')
set -- $p
[ $# -eq 9 ] && [ "$1" = "$2" ] && [ "$2" = "$3" ] && [ "$4" = "$5" ] && [ "$5" = "$6" ] &&
  [ "$7" = "$8" ] && [ "$8" = "$9" ] && [ "$1" != "$4" ] && [ "$4" != "$7" ] && [ "$1" != "$7" ] ||
  { echo "FAIL: pids do not change every 3 jobs: $p"; fail=1; }
expect_line 'sequential: 9 jobs, the pid changed 2 times, the initializer ran 3 times'
# each of those pids printed its initializer line before its first job
for pid in $(echo "$p" | tr ' ' '\n' | sort -u); do
  il=$(grep -n "^initializer: pid $pid\$" "$OUT" | head -1 | cut -d: -f1)
  jl=$(grep -n "^job [0-8]: pid $pid," "$OUT" | head -1 | cut -d: -f1)
  [ -n "$il" ] && [ "$il" -lt "$jl" ] || { echo "FAIL: no initializer line for pid $pid before its job"; fail=1; }
done
expect_regex '^all at once: 30 jobs ran in ([1-9][0-9]) processes, at most [123] jobs each; every job.s process ran the initializer: yes$'
awk '/^all at once: 30 jobs ran in/ { n = $8 + 0; ok = (n >= 10 && n <= 30) } END { exit !ok }' "$OUT" ||
  { echo "FAIL: fewer than 10 processes for 30 jobs at 3 each"; fail=1; }
expect_line 'all at once: the initializer ran at least once per process that ran a job'
expect_elapsed_between 0 5.0

# worker_errors: job errors carry their code and text out of threads and processes; crashed
# workers are named with their signal; the pool keeps working.
expect_rc 0
expect_line "thread pool, parse '42': ok, 42"
expect_line "thread pool, parse '4x2': EINVAL: bad record '4x2': not a number"
expect_line "process pool, parse 'x': EINVAL: bad record 'x': not a number"
expect_regex '^process pool, abort: CORIO_E_WORKER_DIED: worker [0-9]+ killed by signal 6 \(SIGABRT'
expect_regex '^process pool, bad write: CORIO_E_WORKER_DIED: worker [0-9]+ killed by signal 11 \(SIGSEGV'
expect_line 'process pool, after the crashes: ok, 17'
expect_line 'process pool, after the crashes: ok, 2024'
expect_line 'process pool, after the crashes: ok, 5'
expect_line 'the process pool still works: 3 of 3 jobs succeeded'
# the workers' log lines reached the parent's stderr
expect_count "^\[INFO/pid [0-9]+ worker [01]\] parsing '" 6
expect_regex '^\[INFO/pid [0-9]+ worker [01]\] about to abort\(\)$'
expect_regex '^\[INFO/pid [0-9]+ worker [01]\] about to write to a read-protected page$'
# the pid in each death report is the pid that logged the crash
for what in 'abort()' 'write to a read-protected page'; do
  pid=$(grep -F "] about to $what" "$OUT" | sed -nE 's/^\[INFO\/pid ([0-9]+) .*/\1/p')
  case $what in abort*) line='abort';; *) line='bad write';; esac
  expect_regex "^process pool, $line: CORIO_E_WORKER_DIED: worker ${pid:-none} killed"
done
ls core core.* 2>/dev/null && { echo "FAIL: a core file was left behind"; fail=1; }
expect_elapsed_between 0 5.0

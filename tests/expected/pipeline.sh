# pipeline: real subprocesses connected by the loop's pump tasks. Each case's stdout is compared
# whole with what a shell gives; stderr (the commands' own errors, ours) is checked line by line.
CUSTOM_RUN=1
T=$(mktemp -d)
D="$T/dir"
mkdir "$D"
for f in alpha.txt beta.md gamma.c delta 'with space' zulu.h; do : >"$D/$f"; done
ls_bytes=$(ls -1 "$D" | wc -c) # 45: the names and their newlines

# run_case NAME EXPECTED_RC ARGS...: stdout to $T/NAME.out, stderr to $T/NAME.err, both in $OUT
run_case() {
  local name=$1 want=$2 rc
  shift 2
  timeout 30 "$bin" "$@" >"$T/$name.out" 2>"$T/$name.err"
  rc=$?
  { echo "== $name: exit $rc"; cat "$T/$name.out"; sed 's/^/stderr: /' "$T/$name.err"; } >>"$OUT"
  [ "$rc" -eq "$want" ] || { echo "FAIL: $name: exit code $rc, expected $want"; fail=1; }
}
# same_output NAME: stdout of the case equals stdin of this function
same_output() {
  diff -u - "$T/$1.out" >"$T/diff" || { echo "FAIL: $1: unexpected output:"; cat "$T/diff"; fail=1; }
}
has_error() { grep -qxF -- "$2" "$T/$1.err" || { echo "FAIL: $1: no stderr line: $2"; fail=1; }; }
no_errors() { [ ! -s "$T/$1.err" ] || { echo "FAIL: $1: unexpected stderr output"; fail=1; }; }

# ls | sort -r: the names in reverse order, then one line per command
run_case sort 0 ls -1 "$D" '|' sort -r
same_output sort <<EOF
zulu.h
with space
gamma.c
delta
beta.md
alpha.txt
[1] ls -1 $D: exit 0, wrote $ls_bytes bytes
[2] sort -r: exit 0, wrote $ls_bytes bytes
EOF
no_errors sort

# three commands; head exits early (sort may or may not have finished writing: both fine)
run_case head 0 ls -1 "$D" '|' sort '|' head -n 2
same_output head <<EOF
alpha.txt
beta.md
[1] ls -1 $D: exit 0, wrote $ls_bytes bytes
[2] sort: exit 0, wrote $ls_bytes bytes
[3] head -n 2: exit 0, wrote 18 bytes
EOF

# 5 MB through three commands: flow control in both pumps, every byte counted
run_case bulk 0 head -c 5000000 /dev/zero '|' tr '\0' x '|' wc -c
same_output bulk <<EOF
5000000
[1] head -c 5000000 /dev/zero: exit 0, wrote 5000000 bytes
[2] tr \\0 x: exit 0, wrote 5000000 bytes
[3] wc -c: exit 0, wrote 8 bytes
EOF
no_errors bulk

# an endless producer stopped when its reader exits, as in a shell: stdio is a real pipe, so the
# producer dies of SIGPIPE
run_case yes 0 yes '|' head -n 3
[ "$(head -3 "$T/yes.out")" = "$(printf 'y\ny\ny')" ] || { echo "FAIL: yes: not three y lines"; fail=1; }
grep -qE '^\[1\] yes: killed by SIGPIPE, wrote [0-9]+ bytes$' "$T/yes.out" ||
  { echo "FAIL: yes: the producer did not stop with SIGPIPE/EPIPE"; fail=1; }
grep -qxF '[2] head -n 3: exit 0, wrote 6 bytes' "$T/yes.out" || { echo "FAIL: yes: head's line"; fail=1; }
[ "$(wc -l <"$T/yes.out")" -eq 5 ] || { echo "FAIL: yes: extra output"; fail=1; }

# exit codes: a failing first command (its error on stderr), the last command's code is ours
run_case codes 5 ls -1 "$D/nope" '|' sh -c 'cat; exit 5'
same_output codes <<EOF
[1] ls -1 $D/nope: exit 2, wrote 0 bytes
[2] sh -c cat; exit 5: exit 5, wrote 0 bytes
EOF
has_error codes "ls: cannot access '$D/nope': No such file or directory"

# a command that cannot be started: 127, its neighbours still run (wc sees no input)
run_case missing 0 ls -1 "$D" '|' no-such-command-corio '|' wc -l
grep -qxF '0' "$T/missing.out" || { echo "FAIL: missing: wc did not print 0"; fail=1; }
grep -qE "^\[1\] ls -1 $D: (exit 0|killed by SIGPIPE), wrote [0-9]+ bytes$" "$T/missing.out" ||
  { echo "FAIL: missing: ls's line"; fail=1; }
grep -qxF '[2] no-such-command-corio: not started (No such file or directory), status 127' \
  "$T/missing.out" || { echo "FAIL: missing: the not-started line"; fail=1; }
grep -qxF '[3] wc -l: exit 0, wrote 2 bytes' "$T/missing.out" || { echo "FAIL: missing: wc's line"; fail=1; }
has_error missing 'pipeline: cannot run no-such-command-corio: No such file or directory'
run_case missing_last 127 ls -1 "$D" '|' no-such-command-corio

# killed by a signal: 128 + signal, as a shell says
run_case signal 143 sh -c 'kill -TERM $$'
same_output signal <<'EOF'
[1] sh -c kill -TERM $$: killed by SIGTERM, wrote 0 bytes
EOF

# bad command lines: usage, exit 2, nothing run
usage='usage: pipeline COMMAND [ARG...] ['\''|'\'' COMMAND [ARG...]]...  (at most 8)'
run_case noargs 2
has_error noargs "$usage"
run_case trailing 2 ls '|'
has_error trailing "$usage"
run_case empty_stage 2 ls '|' '|' sort
has_error empty_stage "$usage"
run_case leading 2 '|' ls
has_error leading "$usage"
run_case too_many 2 true '|' true '|' true '|' true '|' true '|' true '|' true '|' true '|' true
has_error too_many "$usage"
run_case eight 0 echo hi '|' cat '|' cat '|' cat '|' cat '|' cat '|' cat '|' cat
[ "$(head -1 "$T/eight.out")" = hi ] || { echo "FAIL: eight: 'hi' did not come through 8 commands"; fail=1; }
[ "$(grep -c ': exit 0, wrote 3 bytes$' "$T/eight.out")" -eq 8 ] || { echo "FAIL: eight: status lines"; fail=1; }
rm -rf "$T"

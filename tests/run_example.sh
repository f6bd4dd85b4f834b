#!/usr/bin/env bash
# Run one example program and check its output.
#   run_example.sh <binary> <name> <expected-dir>
# <expected-dir>/<name>.sh is sourced with $OUT (captured stdout+stderr), $RC (exit code) and
# $ELAPSED (seconds); it uses expect_line / expect_regex / expect_rc / expect_elapsed_between and
# may run the binary itself (e.g. to send it a signal). Any failed check fails the test.
set -u
bin=$1 name=$2 dir=$3
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
fail=0
expect_line() { grep -qxF -- "$1" "$OUT" || { echo "FAIL: missing line: $1"; fail=1; }; }
expect_regex() { grep -qE -- "$1" "$OUT" || { echo "FAIL: no line matches: $1"; fail=1; }; }
expect_count() { local n; n=$(grep -cE -- "$1" "$OUT"); [ "$n" -eq "$2" ] || { echo "FAIL: $n lines match '$1', expected $2"; fail=1; }; }
expect_rc() { [ "$RC" -eq "$1" ] || { echo "FAIL: exit code $RC, expected $1"; fail=1; }; }
expect_elapsed_between() {
  awk -v e="$ELAPSED" -v lo="$1" -v hi="$2" 'BEGIN { exit !(e >= lo && e <= hi) }' ||
    { echo "FAIL: took ${ELAPSED}s, expected between $1 and $2"; fail=1; }
}
run_default() {
  local t0 t1
  t0=$(date +%s.%N)
  timeout 60 "$bin" >"$OUT" 2>&1
  RC=$?
  t1=$(date +%s.%N)
  ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}
RC=0 ELAPSED=0
if ! grep -q '^CUSTOM_RUN=1' "$dir/$name.sh"; then run_default; fi
# shellcheck disable=SC1090
. "$dir/$name.sh"
if [ "$fail" -ne 0 ]; then
  echo "---- output of $name ----"
  cat "$OUT"
  exit 1
fi
echo "ok: $name (${ELAPSED}s)"

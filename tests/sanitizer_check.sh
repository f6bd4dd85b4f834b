#!/usr/bin/env bash
# meson test wrapper for sanitizer builds: Criterion runs each test in a forked child and does
# not turn a LeakSanitizer report into a failure, so fail on any sanitizer report in the output.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$@" >"$out" 2>&1
rc=$?
cat "$out"
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)' "$out"; then
  echo "sanitizer_check: sanitizer report in the output" >&2
  exit 1
fi
exit $rc

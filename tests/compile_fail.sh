#!/usr/bin/env bash
# The task rules that must be compile errors: a task without CORIO_FINALLY, a plain `return`.
# A correct task must compile (so this test can fail both ways).
#   compile_fail.sh <cc> <include-dir>
set -u
cc=$1 inc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
try() { # name, expect (ok|fail), body
  printf '#include <corio.h>\nstatic corio_step s(corio_task *t)\n{\n%s\n}\nvoid *keep = (void *)s;\n' "$3" >"$tmp/$1.c"
  if $cc -D_GNU_SOURCE -std=gnu11 -Wall -Werror -I"$inc" -c "$tmp/$1.c" -o "$tmp/$1.o" 2>"$tmp/$1.err"; then got=ok; else got=fail; fi
  if [ "$got" != "$2" ]; then echo "FAIL: $1 expected to $2 compiling, got $got"; cat "$tmp/$1.err"; fail=1; else echo "ok: $1 ($got)"; fi
}
try valid_task ok '  CORIO_BEGIN(t);
  CORIO_AWAIT(t, corio_sleep(t->loop, 0));
CORIO_FINALLY(t);
CORIO_END(t);'
try no_finally fail '  CORIO_BEGIN(t);
  CORIO_AWAIT(t, corio_sleep(t->loop, 0));
CORIO_END(t);'
try plain_return fail '  CORIO_BEGIN(t);
  return 0;
CORIO_FINALLY(t);
CORIO_END(t);'
try bare_return fail '  CORIO_BEGIN(t);
  return;
CORIO_FINALLY(t);
CORIO_END(t);'
try two_awaits_one_line fail '  CORIO_BEGIN(t);
  CORIO_AWAIT(t, corio_sleep(t->loop, 0)); CORIO_AWAIT(t, corio_sleep(t->loop, 0));
CORIO_FINALLY(t);
CORIO_END(t);'
exit $fail

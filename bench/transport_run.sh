#!/usr/bin/env bash
# The transport benchmarks of issue 5 in one run: HTTP/1.1 hello against nginx (http_run.sh),
# then DNS lookups against libuv (dns_run.sh). Each prints its table and target; the exit status
# is 1 if either failed (a failed check or run, not a missed target).
#   bash bench/transport_run.sh      about 2 minutes (HTTP ~70 s, DNS ~40 s)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
rc=0
bash bench/http_run.sh "$@" || rc=1
bash bench/dns_run.sh || rc=1
exit $rc

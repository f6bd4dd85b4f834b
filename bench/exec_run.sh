#!/usr/bin/env bash
# Executor benchmarks side by side in one run (issue 4): corio's thread and process pools against
# libuv's uv_queue_work, Python's ThreadPoolExecutor / ProcessPoolExecutor and uvloop's (and
# asyncio's) run_in_executor. Builds build-bench/ like bench/run.sh, runs every program REPEAT
# times (default 3) and prints a Markdown table with the median of the runs, their range, and the
# ratios (> 1 always means corio is better), then the targets.
#
#   bash bench/exec_run.sh             (about 2 minutes on the 2-core VM)
#   REPEAT=5 bash bench/exec_run.sh
#
# Raw RESULT lines: build-bench/bench/exec_results.txt. BUILD_DIR=dir overrides the build dir.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD_DIR:-build-bench}
PY=/usr/bin/python3
REPEAT=${REPEAT:-3}

. bench/lib.sh
bench_build exec_run.sh bench/exec_corio bench/exec_uv
$PY -c 'import uvloop' 2>/dev/null || { echo "exec_run.sh: $PY has no uvloop" >&2; exit 1; }

out=$B/bench/exec_results.txt
: >"$out"
fails=()
load0=$(cut -d' ' -f1-3 /proc/loadavg)
start=$SECONDS

# run <cmd...>: once; keep the RESULT lines, show the comment lines.
run() {
  local log rc
  echo "# $*" >&2
  log=$("$@" 2>&1) && rc=0 || rc=$?
  grep '^RESULT' <<<"$log" >>"$out" || true
  grep -v '^RESULT' <<<"$log" | sed 's/^/    /' >&2 || true
  [ $rc -eq 0 ] || fails+=("$* (exit $rc)")
}

# Rounds: every program once per round, so that a burst of load from the machine's other users
# hits all of them alike rather than the repeats of one.
for ((r = 1; r <= REPEAT; r++)); do
  echo "## round $r/$REPEAT" >&2
  run "$B"/bench/exec_corio tp_rtt 2000
  run "$B"/bench/exec_uv tp_rtt 2000
  run "$B"/bench/exec_corio tp_rtt_thread 2000
  for impl in threads uvloop asyncio; do run $PY bench/exec_py.py $impl tp_rtt 1000; done
  run "$B"/bench/exec_corio tp_tput 1000000
  run "$B"/bench/exec_uv tp_tput 1000000
  run "$B"/bench/exec_corio tp_tput_thread 1000000
  for impl in threads uvloop asyncio; do run $PY bench/exec_py.py $impl tp_tput 20000; done
  run "$B"/bench/exec_corio pp_rtt64 2000
  run $PY bench/exec_py.py process pp_rtt64 1000
  run "$B"/bench/exec_corio pp_1m 200
  run $PY bench/exec_py.py process pp_1m 100
  run "$B"/bench/exec_corio pp_start 20
  run $PY bench/exec_py.py process pp_start 5
  for sc in pp_map1 pp_map64; do
    run "$B"/bench/exec_corio "$sc" 10000
    run $PY bench/exec_py.py process "$sc" 10000
  done
done
echo "# benchmarks took $((SECONDS - start)) s" >&2

echo
echo "Executor benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs, median of" \
  "$REPEAT runs [min-max]; load average before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

$PY - "$out" <<'PYEOF'
import re, statistics, sys

runs, units = {}, {}
for line in open(sys.argv[1]):
    m = re.match(r"RESULT name=(\S+) impl=(\S+) value=(\S+) unit=(\S+)", line)
    if m:
        runs.setdefault((m[1], m[2]), []).append(float(m[3]))
        units[m[1]] = m[4]

def med(name, impl):
    v = runs.get((name, impl))
    return statistics.median(v) if v else None

def fmt(v, u):
    if v is None:
        return "n/a"
    if u == "ops/s":
        return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.0f} k/s"
    return f"{v:.3g} {u}" if v < 100 else f"{v:.0f} {u}"

def cell(name, impl):
    v, u = runs.get((name, impl)), units.get(name)
    if not v:
        return "n/a"
    return f"{fmt(statistics.median(v), u)} [{fmt(min(v), u).split()[0]}-{fmt(max(v), u)}]" \
        if len(v) > 1 else fmt(v[0], u)

def ratio(name, a, b):  # > 1: a better than b
    x, y, u = med(name, a), med(name, b), units.get(name)
    if not x or not y:
        return None
    return x / y if u == "ops/s" else y / x

def rs(r):
    return "n/a" if r is None else f"{r:.2f}x"

def paired(name, a, b):  # the median of the per-round ratios, and their range
    x, y, u = runs.get((name, a)), runs.get((name, b)), units.get(name)
    if not x or not y or len(x) != len(y):
        return None, ""
    rr = sorted(p / q if u == "ops/s" else q / p for p, q in zip(x, y))
    return statistics.median(rr), f" [{rr[0]:.2f}-{rr[-1]:.2f}]"

rows = [
    ("tp_rtt", "thread pool: idle round trip, empty job (median)", ["corio", "libuv", "uvloop", "asyncio"]),
    ("tp_rtt_thread", "thread pool: idle round trip from a thread (median)", ["corio", "py_threads"]),
    ("tp_tput", "thread pool: 1,000 jobs in flight, from a loop", ["corio", "libuv", "uvloop", "asyncio"]),
    ("tp_tput_thread", "thread pool: 1,000 jobs in flight, from a thread", ["corio", "py_threads"]),
    ("pp_rtt64", "process pool: 64-byte job round trip (median)", ["corio", "py_process"]),
    ("pp_1m", "process pool: 1 MiB argument + 1 MiB result (median)", ["corio", "py_process"]),
    ("pp_start", "process pool: new pool + first job (median)", ["corio", "py_process"]),
    ("pp_map1", "process pool: map of 10,000 small jobs, chunksize 1", ["corio", "py_process"]),
    ("pp_map64", "process pool: map of 10,000 small jobs, chunksize 64", ["corio", "py_process"]),
]
# tp_rtt from Python's plain ThreadPoolExecutor is measured from a thread: put it in that row.
for k in list(runs):
    if k == ("tp_rtt", "py_threads"):
        runs[("tp_rtt_thread", "py_threads")] = runs.pop(k)
    if k == ("tp_tput", "py_threads"):
        runs[("tp_tput_thread", "py_threads")] = runs.pop(k)
units["tp_rtt_thread"] = units.get("tp_rtt_thread", "us")
units["tp_tput_thread"] = units.get("tp_tput_thread", "ops/s")

print("| scenario | corio | peers | corio vs each peer |")
print("|---|---|---|---|")
for name, label, impls in rows:
    peers = "; ".join(f"{i}: {cell(name, i)}" for i in impls[1:])
    rats = ", ".join(f"{rs(ratio(name, 'corio', i))} {i}" for i in impls[1:])
    print(f"| {label} | {cell(name, 'corio')} | {peers} | {rats} |")
print()
print("Ratios: > 1 means corio is better (rates divided, times inverted). Python runs use smaller N.")
print()

def target(label, ok, value):
    state = "n/a " if ok is None else ("PASS" if ok else "MISS")
    print(f"- [{state}] {label}: {value}")

print("Targets (issue 4). The thread-pool rows against libuv are judged on the median of the")
print("per-round ratios (corio and libuv run back to back in each round, so a burst of load from")
print("the machine's other users hits both), with the ratio of the medians next to it:")
r, rng = paired("tp_rtt", "corio", "libuv")
target("thread pool idle round trip <= 1/3 of libuv's (ratio >= 3)", None if r is None else r >= 3,
       f"{rs(r)}{rng} per round; {rs(ratio('tp_rtt', 'corio', 'libuv'))} of the medians")
r, rng = paired("tp_tput", "corio", "libuv")
target("thread pool 1,000 in flight >= 2x libuv", None if r is None else r >= 2,
       f"{rs(r)}{rng} per round; {rs(ratio('tp_tput', 'corio', 'libuv'))} of the medians")
r = ratio("pp_rtt64", "corio", "py_process")
target("process pool 64-byte round trip <= 1/3 of Python's (ratio >= 3)", None if r is None else r >= 3, rs(r))
r = ratio("pp_1m", "corio", "py_process")
target("process pool 1 MiB + 1 MiB >= 3x Python", None if r is None else r >= 3, rs(r))
v = med("pp_start", "corio")
target("worker process start (new pool + first job) <= 3 ms", None if v is None else v <= 3.0,
       fmt(v, "ms"))
a, b = med("pp_map64", "corio"), med("pp_map1", "corio")
print(f"- [info] process pool map, chunksize 64 over chunksize 1: "
      f"{'n/a' if not a or not b else f'{a / b:.1f}x'}")
PYEOF

if [ ${#fails[@]} -gt 0 ]; then
  echo
  echo "FAILED runs (their results are missing or partial):"
  printf -- '- %s\n' "${fails[@]}"
  exit 1
fi

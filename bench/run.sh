#!/usr/bin/env bash
# Loop benchmarks side by side in one run: corio, libuv, asyncio and uvloop. Builds build-bench/
# (release, -Dbench=true; reused when it exists), runs every program for every scenario, then
# prints a Markdown table with ratios (> 1 means corio is better) and the targets.
#
#   bash bench/run.sh          full run (~2 minutes on the 2-core VM)
#   bash bench/run.sh quick    smaller counts, no 10M timers (~30 s)
#   REPEAT=5 bash bench/run.sh best of 5 for the short scenarios (default 3)
#
# Raw RESULT lines are kept in build-bench/bench/loop_results.txt. BUILD_DIR=dir overrides the
# build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD_DIR:-build-bench} # build directory (created when missing)
PY=/usr/bin/python3 # the system Python: it has uvloop (python3-uvloop)
MODE=${1:-full}
REPEAT=${REPEAT:-3}
case $MODE in full | quick) ;; *)
  echo "usage: bash bench/run.sh [quick]" >&2
  exit 2
  ;;
esac

# ---- build ----
. bench/lib.sh
bench_build run.sh bench/corio_loop_bench bench/uv_loop_bench
$PY -c 'import uvloop' 2>/dev/null || { echo "run.sh: $PY has no uvloop (apt-get install python3-uvloop)" >&2; exit 1; }

out=$B/bench/loop_results.txt
: >"$out"
fails=()
n() { if [ "$MODE" = quick ]; then echo "$2"; else echo "$1"; fi; }

# run <repeat> <cmd...>: run the command <repeat> times, keep every RESULT line (the table takes
# the best of the repeats, the usual answer to a noisy machine), show the comment lines.
run() {
  local k=$1 i rc log
  shift
  echo "# $*" >&2
  for ((i = 0; i < k; i++)); do
    log=$("$@" 2>&1) && rc=0 || rc=$?
    grep '^RESULT' <<<"$log" >>"$out" || true
    grep -v '^RESULT' <<<"$log" | sed 's/^/    /' >&2 || true
    if [ $rc -ne 0 ]; then
      fails+=("$* (exit $rc)")
      break
    fi
  done
}
ONE=(taskset -c 0)   # single-threaded scenarios: pinned to one CPU
TWO=(taskset -c "0,1") # cross-thread ones: the loop and the other thread each get a CPU
start=$SECONDS

# ---- single-threaded scenarios ----
N=$(n 10000000 2000000)
run "$REPEAT" "${ONE[@]}" "$B"/bench/corio_loop_bench call_soon "$N"
run "$REPEAT" "${ONE[@]}" "$B"/bench/uv_loop_bench call_soon "$N"
for impl in asyncio uvloop; do run "$REPEAT" "${ONE[@]}" $PY bench/py_loop_bench.py $impl call_soon $((N / 10)); done

N=$(n 200000000 20000000)
run "$REPEAT" "${ONE[@]}" "$B"/bench/corio_loop_bench task_resume_done "$N"
for impl in asyncio uvloop; do run "$REPEAT" "${ONE[@]}" $PY bench/py_loop_bench.py $impl task_resume_done $((N / 10)); done

N=$(n 1000000 200000)
run "$REPEAT" "${ONE[@]}" "$B"/bench/corio_loop_bench sleep0_pingpong "$N"
for impl in asyncio uvloop; do run "$REPEAT" "${ONE[@]}" $PY bench/py_loop_bench.py $impl sleep0_pingpong $((N / 10)); done

# Timers: 1M for everyone (best of REPEAT for the C programs, once for Python: 3-8 s each);
# 10M once, for corio and libuv only (asyncio would take ~80 s).
for impl in corio uv; do run "$REPEAT" "${ONE[@]}" "$B"/bench/${impl}_loop_bench timers 1000000; done
for impl in asyncio uvloop; do run 1 "${ONE[@]}" $PY bench/py_loop_bench.py $impl timers 1000000; done
# The same check while the loop runs (deadlines still ahead when armed; corio only).
run 1 "${ONE[@]}" "$B"/bench/corio_loop_bench timers_interleaved 1000000
if [ "$MODE" = full ]; then
  for impl in corio uv; do run 1 "${ONE[@]}" "$B"/bench/${impl}_loop_bench timers 10000000; done
  echo "# asyncio, uvloop: 10M timers skipped (too slow for Python; 1M is measured)" >&2
fi

# ---- cross-thread scenarios ----
N=$(n 1000000 200000)
run "$REPEAT" "${TWO[@]}" "$B"/bench/corio_loop_bench threadsafe "$N"
run "$REPEAT" "${TWO[@]}" "$B"/bench/uv_loop_bench threadsafe "$N"
run "$REPEAT" "${TWO[@]}" "$B"/bench/uv_loop_bench threadsafe_uv_async "$N"
for impl in asyncio uvloop; do run "$REPEAT" "${TWO[@]}" $PY bench/py_loop_bench.py $impl threadsafe $((N / 5)); done
N=$(n 10000 2000)
run "$REPEAT" "${TWO[@]}" "$B"/bench/corio_loop_bench threadsafe_rtt "$N"
run "$REPEAT" "${TWO[@]}" "$B"/bench/uv_loop_bench threadsafe_rtt "$N"
for impl in asyncio uvloop; do run "$REPEAT" "${TWO[@]}" $PY bench/py_loop_bench.py $impl threadsafe_rtt "$N"; done

echo "# benchmarks took $((SECONDS - start)) s" >&2
echo
echo "Loop benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs, mode $MODE," \
  "best of $REPEAT for short scenarios and C 1M timers; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

$PY - "$out" "$MODE" <<'PYEOF'
import re, sys

path, mode = sys.argv[1], sys.argv[2]
res, units = {}, {}
for line in open(path):
    m = re.match(r"RESULT name=(\S+) impl=(\S+) value=(\S+) unit=(\S+)", line)
    if not m:
        continue
    name, impl, v, u = m[1], m[2], float(m[3]), m[4]
    units[name] = u
    old = res.setdefault(name, {}).get(impl)
    # best of the repeats: highest rate, lowest time or latency; counts (early fires): the worst
    if old is None or (v > old if u in ("ops/s", "count") else v < old):
        res[name][impl] = v

def get(name, impl):
    return res.get(name, {}).get(impl)

def fmt(v, u):
    if v is None:
        return "n/a"
    if u == "ops/s":
        return f"{v / 1e6:.2f} M/s"
    if u == "s":
        return f"{v:.2f} s"
    if u == "us":
        return f"{v:.1f} us"
    return f"{v:g}"

def ratio_val(name, other):
    c, o, u = get(name, "corio"), get(name, other), units.get(name)
    if not c or not o:
        return None
    return c / o if u == "ops/s" else o / c  # > 1: corio better

def ratio(name, other):
    r = ratio_val(name, other)
    return "n/a" if r is None else f"{r:.1f}x"

impls = ["corio", "libuv", "asyncio", "uvloop"]
rows = [
    ("call_soon", "call_soon chain (callbacks/s)"),
    ("task_resume_done", "task resume, await a done future (resumes/s)"),
    ("sleep0_pingpong", "sleep(0) ping-pong, 2 tasks (resumes/s)"),
    ("timers_1M", "1M timers armed + fired (s)"),
    ("timers_10M", "10M timers armed + fired (s)"),
    ("threadsafe", "call_soon_threadsafe from a thread (calls/s)"),
    ("threadsafe_rtt_median", "threadsafe round trip, median (us)"),
]
print("| scenario | " + " | ".join(impls) + " | corio/libuv | corio/uvloop |")
print("|---|" + "---|" * (len(impls) + 2))
for name, label in rows:
    u = units.get(name)
    cells = []
    for i in impls:
        v = get(name, i)
        if v is None and name == "timers_10M" and i in ("asyncio", "uvloop"):
            cells.append("skipped")
        else:
            cells.append(fmt(v, u))
    print(f"| {label} | " + " | ".join(cells) + f" | {ratio(name, 'libuv')} | {ratio(name, 'uvloop')} |")
    if name == "timers_10M":
        early = []
        for i in impls:
            vals = [get(f"timers_{k}_early", i) for k in ("1M", "10M")]
            vals = [f"{v:g}" for v in vals if v is not None]
            early.append(", ".join(vals) if vals else "n/a")
        print("| timers fired early (1M, 10M) | " + " | ".join(early) + " | | |")
        ti = get("timers_interleaved_early", "corio")
        print(f"| timers fired early, 1M armed while the loop runs | {fmt(ti, 'count')} "
              "| | | | | |")
raw, cbs = get("threadsafe_uv_async", "libuv"), get("threadsafe_uv_async_callbacks", "libuv")
if raw is not None:
    print(f"| raw uv_async_send, no payload (sends/s; callbacks) | | {fmt(raw, 'ops/s')}; "
          f"{cbs:g} callbacks | | | | |")
print()
print("libuv: call_soon = a uv_idle_t; timers in whole ms (rounded up); threadsafe = mutex queue +")
print("uv_async_send (uv_async_send alone coalesces: see the raw row). Python runs use smaller N.")
print()

# ---- targets ----
def target(label, ok, value):
    state = "n/a " if ok is None else ("PASS" if ok else "MISS")
    print(f"- [{state}] {label}: {value}")
    return ok

print("Targets:")
results = []
cs = get("call_soon", "corio")
results.append(target("call_soon >= 20M/s", None if cs is None else cs >= 20e6, fmt(cs, "ops/s")))
r = ratio_val("call_soon", "uvloop")
results.append(target("call_soon >= 40x uvloop", None if r is None else r >= 40,
                      "n/a" if r is None else f"{r:.1f}x"))
tr = get("task_resume_done", "corio")
results.append(target("task resume >= 100M/s", None if tr is None else tr >= 100e6, fmt(tr, "ops/s")))
t10 = get("timers_10M", "corio")
if mode == "quick":
    print("- [n/a ] 10M timers: not run in quick mode")
else:
    results.append(target("10M timers <= 3 s", None if t10 is None else t10 <= 3.0, fmt(t10, "s")))
    r = ratio_val("timers_10M", "libuv")
    results.append(target("10M timers >= 4x libuv", None if r is None else r >= 4,
                          "n/a" if r is None else f"{r:.1f}x"))
early = [get(f"timers_{k}_early", "corio") for k in ("1M", "10M", "interleaved")]
early = [e for e in early if e is not None]
results.append(target("0 early timer fires (corio)", sum(early) == 0 if early else None,
                      " + ".join(f"{e:g}" for e in early) or "n/a"))
PYEOF

if [ ${#fails[@]} -gt 0 ]; then
  echo
  echo "FAILED runs (their results are missing or partial):"
  printf -- '- %s\n' "${fails[@]}"
  exit 1
fi

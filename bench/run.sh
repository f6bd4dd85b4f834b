#!/usr/bin/env bash
# Loop benchmarks, side by side in one run: corio, libuv, asyncio, uvloop. Prints a Markdown
# table of ratios (> 1 means corio is better). Usage: bash bench/run.sh [quick]
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-bench
[ -f $B/build.ninja ] || meson setup $B -Dbench=true --buildtype=release >/dev/null
ninja -C $B >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
q=${1:-}
big() { if [ "$q" = quick ]; then echo "$2"; else echo "$1"; fi; }
PY=/usr/bin/python3
run() { echo "# $*" >&2; "$@" | tee -a "$out" | grep -v '^RESULT' >&2 || true; }

# single-threaded scenarios pinned to one CPU; cross-thread ones get both
for s in call_soon resume_done sleep0_pingpong; do
  n=$( [ $s = sleep0_pingpong ] && big 2000000 200000 || big 20000000 2000000 )
  [ $s = resume_done ] && n=$(big 200000000 20000000)
  run taskset -c 0 $B/bench/corio_loop_bench $s "$n"
  [ $s = call_soon ] && run taskset -c 0 $B/bench/uv_loop_bench $s "$n"
  for impl in asyncio uvloop; do run taskset -c 0 $PY bench/py_loop_bench.py $impl $s "$((n / 10))"; done
done
for N in 1000000 10000000; do
  [ "$q" = quick ] && [ $N = 10000000 ] && continue
  run taskset -c 0 $B/bench/corio_loop_bench timers $N
  run taskset -c 0 $B/bench/uv_loop_bench timers $N
done
for impl in asyncio uvloop; do run taskset -c 0 $PY bench/py_loop_bench.py $impl timers 1000000; done
run $B/bench/corio_loop_bench threadsafe "$(big 5000000 1000000)"
run $B/bench/uv_loop_bench threadsafe "$(big 5000000 1000000)"
for impl in asyncio uvloop; do run $PY bench/py_loop_bench.py $impl threadsafe 500000; done
for t in corio_loop_bench uv_loop_bench; do run $B/bench/$t threadsafe_rtt 20000; done
for impl in asyncio uvloop; do run $PY bench/py_loop_bench.py $impl threadsafe_rtt 20000; done

$PY - "$out" <<'PYEOF'
import re, sys
res = {}
units = {}
for line in open(sys.argv[1]):
    m = re.match(r"RESULT name=(\S+) impl=(\S+) value=(\S+) unit=(\S+)", line)
    if m:
        res.setdefault(m[1], {})[m[2]] = float(m[3]); units[m[1]] = m[4]
def fmt(v, u):
    if v is None: return "n/a"
    if u == "ops/s": return f"{v/1e6:.2f} M/s"
    if u == "s": return f"{v:.2f} s"
    if u == "us": return f"{v:.1f} us"
    return f"{v:g}"
def ratio(c, o, u):
    if c is None or o is None or c == 0 or o == 0: return "n/a"
    r = c / o if u == "ops/s" else o / c
    return f"{r:.1f}x"
impls = ["corio", "libuv", "asyncio", "uvloop"]
print("| scenario | " + " | ".join(impls) + " | corio/libuv | corio/uvloop |")
print("|---|" + "---|" * (len(impls) + 2))
for name in ["call_soon", "resume_done", "sleep0_pingpong", "timers_1M", "timers_10M",
             "timers_1M_early", "timers_10M_early", "threadsafe", "threadsafe_rtt_median"]:
    if name not in res: continue
    r, u = res[name], units[name]
    if name.endswith("_early"):
        print(f"| {name} (early fires) | " + " | ".join(fmt(r.get(i), u) for i in impls) + " | | |")
        continue
    print(f"| {name} | " + " | ".join(fmt(r.get(i), u) for i in impls) +
          f" | {ratio(r.get('corio'), r.get('libuv'), u)} | {ratio(r.get('corio'), r.get('uvloop'), u)} |")
PYEOF

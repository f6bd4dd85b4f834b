"""asyncio / uvloop side of the loop benchmarks (bench/run.sh runs every scenario; see
bench/README.md). Run with the system Python, which has uvloop:

    /usr/bin/python3 bench/py_loop_bench.py <asyncio|uvloop> <scenario> [N]

Prints: RESULT name=<scenario> impl=<asyncio|uvloop> value=<number> unit=<unit>

Python runs use smaller N than the C programs (rates are rates). 10M timers take minutes in
Python, so run.sh runs 1M only and says so.
"""
import asyncio
import statistics
import sys
import threading
import time

if len(sys.argv) < 3 or sys.argv[1] not in ("asyncio", "uvloop"):
    sys.exit(__doc__)
impl, what = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
if impl == "uvloop":
    import uvloop

    loop = uvloop.new_event_loop()
else:
    loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)


def result(name, value, unit):
    print(f"RESULT name={name} impl={impl} value={value:.6g} unit={unit}", flush=True)


def check(cond, msg):
    if not cond:
        sys.exit(f"py_loop_bench {impl} {what}: {msg}")


t0 = time.perf_counter()
if what == "call_soon":
    # A callback that re-schedules itself N times.
    n = 0

    def chain():
        global n
        n += 1
        if n < N:
            loop.call_soon(chain)
        else:
            loop.stop()

    loop.call_soon(chain)
    loop.run_forever()
    result("call_soon", N / (time.perf_counter() - t0), "ops/s")
    check(n == N, f"{n} calls")
elif what in ("task_resume_done", "resume_done"):
    # A coroutine awaiting an already-done future N times: Python's await of a done future
    # returns at once without a trip through the loop, like CORIO_AWAIT's fast path.
    async def resumer():
        f = loop.create_future()
        f.set_result(1)
        for _ in range(N):
            await f

    t0 = time.perf_counter()
    loop.run_until_complete(resumer())
    result("task_resume_done", N / (time.perf_counter() - t0), "ops/s")
elif what == "sleep0_pingpong":
    # Two tasks each awaiting sleep(0) N times; they alternate. Counted: 2N resumes.
    async def pinger():
        for _ in range(N):
            await asyncio.sleep(0)

    async def both():
        await asyncio.gather(pinger(), pinger())

    loop.run_until_complete(both())
    result("sleep0_pingpong", 2 * N / (time.perf_counter() - t0), "ops/s")
elif what == "timers":
    # N call_later timers with delays spread over 1 ms; total time to arm and fire them all.
    # loop.time() is time.monotonic() in both loops; the deadline noted here is read just before
    # call_later reads the clock, so it is never later than the loop's own deadline.
    fired = early = 0
    last_now = -1.0

    def cb(when):
        # A clock reading already past the deadline proves the fire late (monotonic clock), so
        # the clock is read again only when the last reading does not, as in the C programs.
        global fired, early, last_now
        if last_now < when:
            last_now = time.monotonic()
            if last_now < when:
                early += 1
        fired += 1
        if fired == N:
            loop.stop()

    for i in range(N):
        d = (i % 1000) * 1e-6
        loop.call_later(d, cb, time.monotonic() + d)
    loop.run_forever()
    label = f"{N // 1_000_000}M" if N % 1_000_000 == 0 else str(N)
    result(f"timers_{label}", time.perf_counter() - t0, "s")
    result(f"timers_{label}_early", early, "count")
    check(fired == N, f"{fired} of {N} timers fired")
elif what == "threadsafe":
    # Another thread calls call_soon_threadsafe N times; throughput until the last one ran.
    n = 0

    def count():
        global n
        n += 1
        if n == N:
            loop.stop()

    def poster():
        for _ in range(N):
            loop.call_soon_threadsafe(count)

    th = threading.Thread(target=poster)
    th.start()
    loop.run_forever()
    th.join()
    result("threadsafe", N / (time.perf_counter() - t0), "ops/s")
elif what == "threadsafe_rtt":
    # A thread posts a call and waits on a semaphore that the call releases; median of N.
    pong = threading.Semaphore(0)
    lat = []

    def rtt():
        for _ in range(N):
            s = time.perf_counter()
            loop.call_soon_threadsafe(pong.release)
            pong.acquire()
            lat.append((time.perf_counter() - s) * 1e6)
        loop.call_soon_threadsafe(loop.stop)

    th = threading.Thread(target=rtt)
    th.start()
    loop.run_forever()
    th.join()
    result("threadsafe_rtt_median", statistics.median(lat), "us")
    q = statistics.quantiles(lat, n=10)
    print(f"# threadsafe_rtt N={N} p10={q[0]:.1f}us p90={q[-1]:.1f}us")
else:
    sys.exit(f"py_loop_bench: unknown scenario {what}")
loop.close()

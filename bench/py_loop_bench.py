"""asyncio / uvloop side of the loop benchmarks: python3 py_loop_bench.py <asyncio|uvloop> <scenario> N
Prints: RESULT name=<scenario> impl=<asyncio|uvloop> value=<number> unit=<unit>"""
import asyncio
import statistics
import sys
import threading
import time

impl, what, N = sys.argv[1], sys.argv[2], int(sys.argv[3])
if impl == "uvloop":
    import uvloop
    loop = uvloop.new_event_loop()
else:
    loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)


def result(name, value, unit):
    print(f"RESULT name={name} impl={impl} value={value:.6g} unit={unit}")


t0 = time.perf_counter()
if what == "call_soon":
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
elif what == "resume_done":
    async def resumer():
        f = loop.create_future()
        f.set_result(1)
        for _ in range(N):
            await f
    t0 = time.perf_counter()
    loop.run_until_complete(resumer())
    result("resume_done", N / (time.perf_counter() - t0), "ops/s")
elif what == "sleep0_pingpong":
    async def pinger():
        for _ in range(N):
            await asyncio.sleep(0)

    async def both():
        await asyncio.gather(pinger(), pinger())
    loop.run_until_complete(both())
    result("sleep0_pingpong", 2 * N / (time.perf_counter() - t0), "ops/s")
elif what == "timers":
    fired = early = 0

    def cb(when):
        global fired, early
        if time.monotonic() < when:
            early += 1
        fired += 1
        if fired == N:
            loop.stop()

    for i in range(N):
        d = (i % 1000) * 1e-6
        loop.call_later(d, cb, time.monotonic() + d)
    loop.run_forever()
    result("timers_1M", time.perf_counter() - t0, "s")
    result("timers_1M_early", early, "count")
elif what == "threadsafe":
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

"""Python side of the executor benchmarks (bench/exec_run.sh; see bench/README.md).

Usage: python3 exec_py.py <impl> <scenario> [N]
  impl threads  : concurrent.futures.ThreadPoolExecutor from a plain thread
       uvloop   : uvloop's loop.run_in_executor (default executor: a ThreadPoolExecutor)
       asyncio  : asyncio's loop.run_in_executor (same)
       process  : concurrent.futures.ProcessPoolExecutor (fork start method, Linux's default)
  scenarios (the same as exec_corio.c):
    tp_rtt   round trip of an empty job on an idle pool, median of N
    tp_tput  1,000 empty jobs in flight, each completion submits one more until N done
    pp_rtt64 process pool: a job echoing 64 bytes, median of N       (impl process)
    pp_1m    process pool: 1 MiB argument, 1 MiB result, median of N  (impl process)
    pp_start a new ProcessPoolExecutor and its first job, median of N (impl process)
    pp_map1  ProcessPoolExecutor.map over N small jobs, chunksize=1; jobs/s   (impl process)
    pp_map64 the same with chunksize=64 (one pickled chunk per 64 jobs)     (impl process)
Prints RESULT name=<scenario> impl=<python impl> value=<number> unit=<us|ops/s|ms>.
"""
import asyncio
import concurrent.futures as cf
import os
import sys
import threading
import time

IN_FLIGHT = 1000
IMPL_NAME = {"threads": "py_threads", "uvloop": "uvloop", "asyncio": "asyncio", "process": "py_process"}


def empty():
    pass


def echo(b):
    return b


def result(impl, name, value, unit):
    print(f"RESULT name={name} impl={IMPL_NAME[impl]} value={value:.6g} unit={unit}", flush=True)


def report_lat(impl, name, lat, scale, unit):
    lat.sort()
    n = len(lat)
    print(f"# {name} {impl} N={n} p10={lat[n // 10] * scale:.2f} p50={lat[n // 2] * scale:.2f} "
          f"p90={lat[n * 9 // 10] * scale:.2f} {unit}")
    result(impl, name, lat[n // 2] * scale, unit)


def threads(name, n):
    with cf.ThreadPoolExecutor() as ex:
        if name == "tp_rtt":
            lat = []
            for k in range(-100, n):
                t0 = time.perf_counter()
                ex.submit(empty).result()
                if k >= 0:
                    lat.append(time.perf_counter() - t0)
            report_lat("threads", name, lat, 1e6, "us")
            return
        for count in (2000, n):
            lock = threading.Lock()
            st = {"started": min(IN_FLIGHT, count), "done": 0}
            finished = threading.Event()

            def done(f):
                f.result()
                with lock:
                    st["done"] += 1
                    if st["done"] == count:
                        finished.set()
                        return
                    more = st["started"] < count
                    if more:
                        st["started"] += 1
                if more:
                    ex.submit(empty).add_done_callback(done)

            t0 = time.perf_counter()
            for _ in range(min(IN_FLIGHT, count)):
                ex.submit(empty).add_done_callback(done)
            finished.wait()
            t = time.perf_counter() - t0
        print(f"# {name} threads N={n} in_flight={IN_FLIGHT} {t:.3f} s")
        result("threads", name, n / t, "ops/s")


async def aio(impl, name, n):
    loop = asyncio.get_running_loop()
    if name == "tp_rtt":
        lat = []
        for k in range(-100, n):
            t0 = time.perf_counter()
            await loop.run_in_executor(None, empty)
            if k >= 0:
                lat.append(time.perf_counter() - t0)
        report_lat(impl, name, lat, 1e6, "us")
        return
    for count in (2000, n):
        st = {"left": count}

        async def worker():
            while st["left"] > 0:
                st["left"] -= 1
                await loop.run_in_executor(None, empty)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(IN_FLIGHT, count))))
        t = time.perf_counter() - t0
    print(f"# {name} {impl} N={n} in_flight={IN_FLIGHT} {t:.3f} s")
    result(impl, name, n / t, "ops/s")


def plus_one(v):
    return v + 1


def process_map(name, n):
    chunk = 64 if name == "pp_map64" else 1
    with cf.ProcessPoolExecutor() as ex:
        for count in (min(n, 1000), n):  # the first, untimed, starts and warms the workers
            t0 = time.perf_counter()
            out = list(ex.map(plus_one, range(count), chunksize=chunk))
            t = time.perf_counter() - t0
            assert out == [v + 1 for v in range(count)]
    print(f"# {name} process N={n} chunksize={chunk} {t:.3f} s")
    result("process", name, n / t, "ops/s")


def process(name, n):
    if name.startswith("pp_map"):
        process_map(name, n)
        return
    size = 1 << 20 if name == "pp_1m" else 64
    data = bytes((j * 7) & 0xFF for j in range(size))
    if name == "pp_start":
        lat = []
        for k in range(-2, n):
            t0 = time.perf_counter()
            ex = cf.ProcessPoolExecutor()
            r = ex.submit(echo, data).result()
            if k >= 0:
                lat.append(time.perf_counter() - t0)
            assert r == data
            ex.shutdown()
        report_lat("process", name, lat, 1e3, "ms")
        return
    with cf.ProcessPoolExecutor() as ex:
        lat = []
        for k in range(-20, n):
            t0 = time.perf_counter()
            r = ex.submit(echo, data).result()
            if k >= 0:
                lat.append(time.perf_counter() - t0)
            assert r == data
    if name == "pp_1m":
        report_lat("process", name, lat, 1e3, "ms")
    else:
        report_lat("process", name, lat, 1e6, "us")


def main():
    impl, name = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if n <= 0:
        n = {"tp_tput": 50000, "pp_start": 20, "pp_map1": 10000, "pp_map64": 10000}.get(name, 2000)
    if impl == "threads":
        threads(name, n)
    elif impl in ("uvloop", "asyncio"):
        if impl == "uvloop":
            import uvloop
            uvloop.install()
        asyncio.run(aio(impl, name, n))
    elif impl == "process":
        process(name, n)
    else:
        sys.exit(f"unknown impl {impl}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Protocol checks of an HTTP/1.1 "hello" server, run before it is measured.

    python3 bench/http_check.py <server-binary>     start it on port 0 (it prints "PORT n"),
                                                    check, stop it with SIGTERM, want exit 0
    python3 bench/http_check.py --port <n>          check a server already running (nginx)

Checks keep-alive, pipelining (requests in one segment, answers in order), a request cut into
single bytes, Connection: close, HTTP/1.0, HEAD, request bodies, and the error answers
(malformed request, oversized head, Transfer-Encoding, HTTP/2.0). Every failure is printed; the
exit status is the number of failed checks (capped). Loopback only.
"""
import http.client
import signal
import socket
import subprocess
import sys
import time

HOST = "127.0.0.1"
port = 0
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", flush=True)
    return cond


def conn():
    s = socket.create_connection((HOST, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Reader:
    """Reads HTTP responses off a socket, keeping what it read past the current one."""

    def __init__(self, s):
        self.s, self.buf = s, b""

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed by the server")
        self.buf += d

    def response(self, head=False):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        hdr, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = hdr.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ", 2)[:2]
        h = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            h[k.strip().lower()] = v.strip()
        n = 0 if head else int(h.get("content-length", "0"))
        while len(self.buf) < n:
            self.fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return version, int(status), h, body

    def closed(self, timeout=3.0):
        """True if the server closes the connection (nothing more arrives) within timeout."""
        self.s.settimeout(timeout)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
                self.buf += d
        except (socket.timeout, ConnectionResetError):
            return False


def ok(r, head=False, keep=True):
    version, status, h, body = r.response(head)
    good = version == "HTTP/1.1" and status == 200 and h.get("content-length") == "5"
    good = good and body == (b"" if head else b"hello")
    if keep is not None:
        good = good and h.get("connection", "keep-alive").lower() == ("keep-alive" if keep else "close")
    return good


def t_keep_alive_http_client():
    c = http.client.HTTPConnection(HOST, port, timeout=5)
    socks = set()
    for i in range(5):
        c.request("GET", f"/x{i}")
        r = c.getresponse()
        body = r.read()
        check(r.status == 200 and body == b"hello", f"http.client GET #{i}: {r.status} {body!r}")
        socks.add(id(c.sock))
        check(not r.will_close, "http.client: keep-alive expected")
    check(len(socks) == 1, "http.client: one connection for five requests")
    c.close()


def t_pipelined():
    s = conn()
    r = Reader(s)
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    head = b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
    s.sendall(req + head + req + req * 50)
    check(ok(r), "pipelined GET #1")
    check(ok(r, head=True), "pipelined HEAD #2 (no body, in order)")
    for i in range(51):
        if not check(ok(r), f"pipelined GET #{i + 3}"):
            break
    check(r.buf == b"", f"nothing extra after the pipelined answers: {r.buf[:60]!r}")
    s.close()


def t_byte_by_byte():
    s = conn()
    r = Reader(s)
    # Leading empty lines are tolerated; bare LF line ends too.
    msg = b"\r\nGET /split HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 300 + b"\r\n\r\n"
    msg += b"GET /lf HTTP/1.1\nHost: x\n\n"
    for b in msg:
        s.send(bytes([b]))
        time.sleep(0.0005)
    check(ok(r), "a request sent one byte at a time")
    check(ok(r), "bare-LF request after it")
    s.close()


def t_connection_close():
    s = conn()
    r = Reader(s)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, close\r\n\r\n"
              b"GET /ignored HTTP/1.1\r\nHost: x\r\n\r\n")
    check(ok(r, keep=False), "Connection: close answered with Connection: close")
    check(r.closed(), "the server closes after Connection: close")
    check(r.buf == b"", f"nothing answered after Connection: close: {r.buf[:60]!r}")
    s.close()


def t_http10():
    s = conn()
    r = Reader(s)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    check(ok(r, keep=False), "HTTP/1.0 answered, Connection: close")
    check(r.closed(), "HTTP/1.0 without keep-alive: closed")
    s.close()
    s = conn()
    r = Reader(s)
    s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    check(ok(r, keep=True), "HTTP/1.0 keep-alive kept")
    s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    check(ok(r, keep=True), "HTTP/1.0 keep-alive, second request")
    s.close()


def t_body():
    s = conn()
    r = Reader(s)
    s.sendall(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello")
    time.sleep(0.05)
    s.sendall(b" world" + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(ok(r), "POST with a body in two pieces")
    check(ok(r), "GET pipelined after the body (the body was not parsed as a request)")
    s.close()


def t_errors():
    cases = [
        (b"GET /\r\n\r\n", 400, "no HTTP version"),
        (b"GET  / HTTP/1.1\r\n\r\n", 400, "empty target"),
        (b"G(T / HTTP/1.1\r\n\r\n", 400, "bad method"),
        (b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, "space in a field name"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "obsolete line folding"),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
         "conflicting Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "negative Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413,
         "huge Content-Length"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501, "chunked body"),
        (b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/2.0"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431, "head over 8 KiB"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 9000, 431, "unfinished head over 8 KiB"),
    ]
    for raw, want, what in cases:
        s = conn()
        r = Reader(s)
        try:
            s.sendall(raw)
            _, status, h, _ = r.response()
            check(status == want, f"{what}: status {status}, want {want}")
            check(h.get("connection", "").lower() == "close", f"{what}: Connection: close")
            check(r.closed(), f"{what}: the server closes")
        except (EOFError, OSError) as e:
            check(False, f"{what}: {e}")
        s.close()


def t_abrupt_clients():
    # Clients that vanish mid-request or mid-body must not disturb the server.
    for raw in (b"GET / HTTP/1.1\r\nHo", b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nab"):
        s = conn()
        s.sendall(raw)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST
    s = conn()
    r = Reader(s)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(ok(r), "the server still answers after clients reset mid-request")
    s.close()


def t_many_connections():
    socks = [conn() for _ in range(200)]
    for s in socks:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    good = sum(ok(Reader(s)) for s in socks)
    check(good == len(socks), f"200 concurrent connections: {good} answered")
    for s in socks:
        s.close()


def t_garbage():
    # Seeded random mutations of valid requests, cut at random points: every connection must end
    # in answers, an error status or a wait for more input, and the server must stay up.
    import random
    rnd = random.Random(5)
    base = (b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    for _ in range(300):
        m = bytearray(base * rnd.randint(1, 3))
        for _ in range(rnd.randint(0, 6)):
            m[rnd.randrange(len(m))] = rnd.choice(b"\r\n :\x00\x7f0123456789aZ\t")
        s = conn()
        try:
            cut = rnd.randrange(1, len(m) + 1)
            s.sendall(bytes(m[:cut]))
            s.sendall(bytes(m[cut:]))
            s.settimeout(0.05)
            try:
                while s.recv(65536):
                    pass
            except socket.timeout:
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
        s.close()
    s = conn()
    r = Reader(s)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(ok(r), "the server still answers after 300 mutated requests")
    s.close()


TESTS = [t_keep_alive_http_client, t_pipelined, t_byte_by_byte, t_connection_close, t_http10,
         t_body, t_errors, t_abrupt_clients, t_many_connections, t_garbage]


def main():
    global port
    proc = None
    if len(sys.argv) == 3 and sys.argv[1] == "--port":
        port = int(sys.argv[2])
    elif len(sys.argv) == 2:
        proc = subprocess.Popen([sys.argv[1], "0"], stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            print(f"FAIL: server did not report its port: {line!r}")
            proc.kill()
            return 1
        port = int(line.split()[1])
    else:
        print(__doc__)
        return 2
    for t in TESTS:
        try:
            t()
        except Exception as e:  # a hang (timeout) or a reset is a failure, not a crash of the check
            check(False, f"{t.__name__}: {type(e).__name__}: {e}")
    if proc:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            check(False, "server did not exit within 10 s of SIGTERM")
        sys.stdout.write(out)
        check(proc.returncode == 0, f"server exit status {proc.returncode} (loop_close must succeed)")
    print(f"http_check: {len(TESTS)} groups, {len(failures)} failed checks")
    return min(len(failures), 100)


if __name__ == "__main__":
    sys.exit(main())

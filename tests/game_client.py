#!/usr/bin/env python3
"""Drive examples/game_server with real TCP clients on 127.0.0.1 and check every line they get.

    game_client.py --port P --server-pid PID --mode inline|pool

Prints a transcript ("alice> sent", "alice< received") and one "FAIL: ..." line per failed
check, then "game_client: N checks, M failed"; exits 1 if any check failed. At the end it sends
SIGTERM to the server while two players are still connected and checks they are told and
disconnected. Used by tests/expected/game_server.sh.
"""
import argparse
import os
import random
import signal
import socket
import sys
import time

TIMEOUT = 15.0  # per line: a server that stops answering fails the check instead of hanging
checks = 0
failures = 0


def check(ok, what):
    global checks, failures
    checks += 1
    if not ok:
        failures += 1
        print(f"FAIL: {what}", flush=True)


def is_prime(n):  # Miller-Rabin, deterministic for n < 3.3e24: an independent check
    if n < 2:
        return False
    bases = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    for p in bases:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def prime_below(n):
    n -= 1
    while not is_prime(n):
        n -= 1
    return n


class Client:
    def __init__(self, port, label):
        self.label = label
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""

    def send(self, line, log=True):
        if log:
            print(f"{self.label}> {line}", flush=True)
        self.sock.sendall(line.encode() + b"\n")

    def recv(self):
        """The next line, None at EOF."""
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                check(False, f"{self.label}: no line within {TIMEOUT} s")
                return None
            except ConnectionResetError:
                data = b""
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        text = line.decode()
        print(f"{self.label}< {text}", flush=True)
        return text

    def expect(self, want):
        got = self.recv()
        check(got == want, f"{self.label}: expected {want!r}, got {got!r}")
        return got

    def expect_eof(self):
        got = self.recv()
        check(got is None, f"{self.label}: expected EOF, got {got!r}")

    def close(self):
        self.sock.close()


WELCOME = "welcome to prime race: claim primes, each scores its number of digits. your name?"
CMDS = "commands: claim N, say TEXT, scores, quit"


def reply_and_notes(c):
    """The next line that is not a broadcast ("* ..."), and the broadcasts read before it."""
    notes = []
    while True:
        line = c.recv()
        if line is None or not line.startswith("* "):
            return line, notes
        notes.append(line)


def until(c, want):
    """Skip broadcasts and chat up to the line @want."""
    while True:
        line = c.recv()
        if line == want:
            return
        if line is None or not (line.startswith("* ") or line.startswith("<")):
            check(False, f"{c.label}: expected {want!r}, got {line!r}")
            return


def join(port, name, online):
    c = Client(port, name)
    c.expect(WELCOME)
    c.send(name)
    c.expect(f"hello {name}! online: {online}. {CMDS}")
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--mode", choices=("inline", "pool"), required=True)
    a = ap.parse_args()
    port = a.port
    big = prime_below(10**18)  # the slowest check the server accepts (~1 s)
    mid = prime_below(10**17)

    # --- joining: names are validated and unique among online players
    alice = join(port, "alice", "alice")
    bob = Client(port, "bob")
    bob.expect(WELCOME)
    bob.send("b b")
    bob.expect("error: a name is 1-16 letters, digits, - or _; another name?")
    bob.send("alice")
    bob.expect("error: alice is taken, another name?")
    bob.send("bob")
    bob.expect(f"hello bob! online: bob, alice. {CMDS}")
    alice.expect("* bob joined")
    carol = join(port, "carol", "carol, bob, alice")
    alice.expect("* carol joined")
    bob.expect("* carol joined")

    # --- claims: scored, broadcast to the others, refused when taken or not prime
    alice.send("claim 1000000007")
    alice.expect("1000000007 is prime: +10 points, alice has 10")
    bob.expect("* alice claimed 1000000007: +10 points, alice has 10")
    carol.expect("* alice claimed 1000000007: +10 points, alice has 10")
    bob.send("claim 1000000007")
    bob.expect("1000000007 was claimed by alice")
    bob.send("claim 1000000008")
    bob.expect("1000000008 is not prime: 2 x 500000004")
    bob.send(f"claim {mid * 3}")  # the factor found is the smallest one
    bob.expect(f"{mid * 3} is not prime: 3 x {mid}")
    for bad in ("1", "abc", "-7", str(10**18 + 1), "12x", ""):
        bob.send(f"claim {bad}")
        bob.expect("error: claim a whole number from 2 to 1000000000000000000")
    bob.send("claim 2")
    bob.expect("2 is prime: +1 points, bob has 1")
    alice.expect("* bob claimed 2: +1 points, bob has 1")
    carol.expect("* bob claimed 2: +1 points, bob has 1")
    carol.send("claim 101")
    carol.expect("101 is prime: +3 points, carol has 3")
    alice.expect("* carol claimed 101: +3 points, carol has 3")
    bob.expect("* carol claimed 101: +3 points, carol has 3")

    # --- chat and other commands
    carol.send("say hello all")
    alice.expect("<carol> hello all")
    bob.expect("<carol> hello all")
    bob.send("frobnicate now")
    bob.expect("error: unknown command 'frobnicate' (claim N, say TEXT, scores, quit)")
    bob.send("help")
    bob.expect(CMDS)
    alice.send("scores")
    alice.expect("scores: alice 10, carol 3, bob 1")

    # --- a slow check: does chat go on meanwhile?
    t0 = time.monotonic()
    alice.send(f"claim {big}")
    time.sleep(0.1)
    bob.send("say ping")
    first = alice.recv()
    t1 = time.monotonic() - t0
    second = alice.recv()
    t2 = time.monotonic() - t0
    t_ping, t_reply = (t1, t2) if first == "<bob> ping" else (t2, t1)
    claim_reply = f"{big} is prime: +18 points, alice has 28"
    check(sorted([str(first), str(second)]) == sorted(["<bob> ping", claim_reply]),
          f"alice: expected the ping and the claim reply, got {first!r}, {second!r}")
    print(f"slow claim: alice got {'the ping first' if first == '<bob> ping' else 'her reply first'}"
          f" (ping relayed after {t_ping:.2f} s, claim reply after {t_reply:.2f} s)", flush=True)
    if a.mode == "pool":
        # the check runs in a worker: the loop relays bob's chat while it runs
        check(first == "<bob> ping", "pool mode: the chat was held up by the check")
    note = f"* alice claimed {big}: +18 points, alice has 28"
    bob.expect(note)
    got = sorted([str(carol.recv()), str(carol.recv())])
    check(got == sorted(["<bob> ping", note]), f"carol: got {got}")

    # --- two players claim the same prime at once: exactly one gets it (in pool mode both are
    # checked in parallel and the first check to finish wins; broadcasts may come first)
    alice.send(f"claim {mid}")
    bob.send(f"claim {mid}")
    (ra, na), (rb, nb) = reply_and_notes(alice), reply_and_notes(bob)
    won_a = ra == f"{mid} is prime: +17 points, alice has 45"
    won_b = rb == f"{mid} is prime: +17 points, bob has 18"
    check(won_a != won_b, f"race: exactly one winner, got {ra!r} / {rb!r}")
    winner, loser = ("alice", bob) if won_a else ("bob", alice)
    lost, lost_notes = (rb, nb) if won_a else (ra, na)
    check(lost == f"{mid} was claimed by {winner}", f"race: the loser got {lost!r}")
    note = f"* {winner} claimed {mid}: +17 points, {winner} has {45 if won_a else 18}"
    if not lost_notes:
        lost_notes = [loser.recv()]
    check(lost_notes == [note], f"race: the loser was told {lost_notes}")
    check((na if won_a else nb) == [], "race: the winner was told about itself")
    carol.expect(note)
    scores_a, scores_b = (45, 1) if won_a else (28, 18)

    # --- an abrupt disconnect (no quit), a connection that never names itself, a rejoin
    carol.close()
    alice.expect("* carol left with 3 points")
    bob.expect("* carol left with 3 points")
    anon = Client(port, "anon")
    anon.expect(WELCOME)
    anon.close()  # no name given: nobody is told
    carol = join(port, "carol", "carol, bob, alice")
    alice.expect("* carol joined")
    bob.expect("* carol joined")
    carol.send("scores")  # the board remembers carol's points
    order = sorted([("alice", scores_a), ("bob", scores_b), ("carol", 3)],
                   key=lambda e: (-e[1], e[0]))
    carol.expect("scores: " + ", ".join(f"{n} {s}" for n, s in order))

    # --- eight more players claim the same numbers concurrently, in different orders
    nums = [prime_below(10**k) for k in range(9, 15)] + [10**12, 999999999999]
    rng = random.Random(5)
    crowd = []
    for i in range(8):
        c = Client(port, f"p{i}")
        c.expect(WELCOME)
        c.send(f"p{i}")
        hello = c.recv()
        check(hello is not None and hello.startswith(f"hello p{i}! online: p{i}, "),
              f"p{i}: bad greeting {hello!r}")
        crowd.append(c)
    for c in crowd:
        mine = nums[:]
        rng.shuffle(mine)
        for n in mine:
            c.send(f"claim {n}", log=False)
        c.send("scores", log=False)
    winners = {}
    scores_line = {}
    for c in crowd:  # each player: one reply per claim, then the board, with broadcasts mixed in
        replies = 0
        while True:
            line = c.recv()
            if line is None:
                check(False, f"{c.label}: EOF before its replies")
                break
            if line.startswith("* ") or line.startswith("<"):
                continue
            if line.startswith("scores: "):
                scores_line[c.label] = line
                break
            replies += 1
            n = int(line.split()[0])
            if " is prime: " in line:
                check(n not in winners, f"{n} won twice")
                winners[n] = c.label
            elif " is not prime: " in line:
                check(not is_prime(n), f"{n} reported not prime")
                f = int(line.split()[-3])
                check(n % f == 0 and all(n % k for k in range(2, min(f, 10**6))),
                      f"{n}: {f} is not its smallest factor")
            else:
                check(" was claimed by " in line, f"{c.label}: unexpected reply {line!r}")
        check(replies == len(nums), f"{c.label}: {replies} claim replies, expected {len(nums)}")
    want_primes = {n for n in nums if is_prime(n)}
    check(set(winners) == want_primes,
          f"every prime claimed exactly once: {sorted(winners)} vs {sorted(want_primes)}")
    crowd_points = sum(len(str(n)) for n in want_primes)
    got_points = 0
    for c in crowd:
        c.send("scores", log=False)
        while True:
            line = c.recv()
            if line is None or line.startswith("scores: "):
                break
        if line:
            got_points = sum(int(e.split()[1]) for e in line[8:].split(", ")
                             if e.split()[0].startswith("p"))
    print(f"crowd: {len(want_primes)} primes claimed by {len(set(winners.values()))} players, "
          f"{got_points} points", flush=True)
    check(got_points == crowd_points, f"crowd scored {got_points}, expected {crowd_points}")
    for c in crowd:
        c.close()
    gone = set()
    while len(gone) < len(crowd):  # the others are told as each one goes
        line = alice.recv()
        if line is None:
            check(False, "alice: EOF while the crowd left")
            break
        if line.startswith("* p") and " left with " in line:
            gone.add(line.split()[1])

    # --- quit: a goodbye, then EOF; the others are told
    bob.send("quit")
    until(bob, f"bye bob: {scores_b} points")
    bob.expect_eof()
    # alice and carol also saw the crowd come and go; skip to bob's departure
    for c in (alice, carol):
        until(c, f"* bob left with {scores_b} points")

    # --- the server stops (SIGTERM) with two players connected: both are told, then EOF
    os.kill(a.server_pid, signal.SIGTERM)
    for c in (alice, carol):
        until(c, "* the server is stopping")
        c.expect_eof()
    print(f"game_client: {checks} checks, {failures} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

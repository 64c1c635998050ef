#!/usr/bin/env python3
"""Add endpoints one at a time through the admin API and time each until it is served.

An external client in another language than the server's (Python, standard library only):
for i in 0..N it sends POST /admin/projects/{owner}/{project}/endpoints with
{"method":"GET","path":"/e{i}","response":{"json":{"message":"hello"}}} (expects 201), then
GET /{owner}/{project}/e{i} until 200, and records the time from before the POST to that
200. It reports p50/p90/p99/max over all adds, the last 1,000 and the last 100, and the p99
of each 1,000.

Connection modes (--mode):
  keepalive  one http.client connection for everything, as `requests.Session` would;
  fresh      a new TCP connection for every request (the POST and each GET), as
             `urllib.request.urlopen` or a bare `requests.post` would;
  both       keepalive on one project, then fresh on a second one (same server).

Server: either --base URL of a running server (127.0.0.1 only), or --bin PATH to start one
on a fresh SQLite file in a temporary directory, on a free port, stopped at the end:

  cargo build --release --bin switchyard
  python3 bench/add_latency.py --bin target/release/switchyard --count 10000 --mode both

With --server-cpu/--client-cpu the server and this client are pinned (taskset/sched_setaffinity)
as in bench/run.sh. Every request has a timeout, each add gives up after --add-timeout, the
whole run after --deadline; it only talks to 127.0.0.1. Results also go to --out as
key=value lines (milliseconds) for bench/run.sh. Exit status: 0 when the run completed
(whether or not the 5 ms target was met), 1 on any failure.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HOST = "127.0.0.1"
REQUEST_TIMEOUT = 10.0


def log(message):
    print(f"[add_latency {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Failure(Exception):
    pass


class Client:
    """Requests to one server; one kept-alive connection, or a new one per request."""

    def __init__(self, port, keepalive):
        self.port = port
        self.keepalive = keepalive
        self.conn = None
        self.token = None

    def _connection(self):
        if self.keepalive and self.conn is not None:
            return self.conn
        conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        conn.connect()
        # http.client writes headers and body in separate sends; without TCP_NODELAY the
        # body would wait for the delayed ACK of the headers (40 ms on Linux).
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.keepalive:
            self.conn = conn
        return conn

    def request(self, method, path, body=None):
        headers = {}
        if body is not None:
            body = json.dumps(body, separators=(",", ":")).encode()
            headers["content-type"] = "application/json"
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        if not self.keepalive:
            headers["connection"] = "close"
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                # A kept-alive connection the server closed (idle timeout): open another once.
                conn.close()
                self.conn = None
                if attempt == 2 or not self.keepalive:
                    raise
        if not self.keepalive or response.will_close:
            conn.close()
            self.conn = None
        return response.status, data

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def expect(status, data, wanted, what):
    if status not in wanted:
        raise Failure(f"{what}: {status} {data[:300]!r}")
    return json.loads(data) if data else None


def setup(port, user, password, project):
    client = Client(port, keepalive=True)
    status, data = client.request("POST", "/auth/register", {"username": user, "password": password})
    expect(status, data, (201, 200, 409), "register")
    status, data = client.request("POST", "/auth/login", {"username": user, "password": password})
    token = expect(status, data, (200,), "login")["access_token"]
    client.token = token
    status, data = client.request("POST", "/admin/projects", {"name": project})
    expect(status, data, (201,), f"create project {project}")
    client.close()
    return token


def pct(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def stats(values):
    s = sorted(values)
    return {"p50": pct(s, 50), "p90": pct(s, 90), "p99": pct(s, 99), "max": s[-1], "n": len(s)}


def run_adds(port, token, owner, project, count, keepalive, add_timeout, deadline, label):
    client = Client(port, keepalive)
    client.token = token
    post_path = f"/admin/projects/{owner}/{project}/endpoints"
    total, posts = [], []
    not_first = 0
    started = time.monotonic()
    for i in range(count):
        if time.monotonic() > deadline:
            raise Failure(f"{label}: deadline passed after {i} adds")
        spec = {"method": "GET", "path": f"/e{i}", "response": {"json": {"message": "hello"}}}
        get_path = f"/{owner}/{project}/e{i}"
        t0 = time.perf_counter()
        status, data = client.request("POST", post_path, spec)
        t_post = time.perf_counter()
        if status != 201:
            raise Failure(f"{label}: POST /e{i}: {status} {data[:300]!r}")
        polls = 0
        while True:
            status, _ = client.request("GET", get_path)
            polls += 1
            if status == 200:
                break
            if time.perf_counter() - t0 > add_timeout:
                raise Failure(f"{label}: {get_path} still answers {status} {add_timeout}s after the POST")
        t1 = time.perf_counter()
        if polls > 1:
            not_first += 1
        total.append((t1 - t0) * 1000)
        posts.append((t_post - t0) * 1000)
        if (i + 1) % 1000 == 0:
            chunk = stats(total[-1000:])
            log(f"{label}: {i + 1:>6} added; last 1000: p50 {chunk['p50']:.3f} p99 {chunk['p99']:.3f} max {chunk['max']:.3f} ms")
    client.close()
    log(f"{label}: {count} adds in {time.monotonic() - started:.1f} s; {not_first} needed more than one GET")
    return total, posts, not_first


def report(label, total, posts, not_first, out):
    n = len(total)
    lines = []
    rows = [("all", total, posts)]
    if n >= 1000:
        rows.append(("last1000", total[-1000:], posts[-1000:]))
    if n >= 100:
        rows.append(("last100", total[-100:], posts[-100:]))
    print(f"\n{label}: {n} adds, POST then GET until 200 (ms)")
    print(f"{'':>24} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    for name, t, p in rows:
        for what, values in (("until served", t), ("POST alone", p)):
            s = stats(values)
            print(f"{name + ' ' + what:>24} {s['p50']:8.3f} {s['p90']:8.3f} {s['p99']:8.3f} {s['max']:8.3f}")
            key = f"{label}_{name}_{'total' if what == 'until served' else 'post'}"
            for k in ("p50", "p90", "p99", "max"):
                lines.append(f"{key}_{k}_ms={s[k]:.3f}")
    chunks = [stats(total[c : c + 1000])["p99"] for c in range(0, n - n % 1000, 1000)]
    if chunks:
        print("p99 per 1000: " + " ".join(f"{c:.2f}" for c in chunks))
        lines.append(f"{label}_chunk_p99_ms=" + " ".join(f"{c:.3f}" for c in chunks))
    print(f"not served on the first GET after the POST: {not_first}")
    lines.append(f"{label}_not_first_get={not_first}")
    if out:
        with open(out, "a") as f:
            f.write("\n".join(lines) + "\n")


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_health(port, proc, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise Failure(f"server exited with {proc.returncode} before /health answered")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.02)
    raise Failure(f"/health did not answer within {seconds} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="URL of a running server, e.g. http://127.0.0.1:8080")
    ap.add_argument("--bin", help="switchyard binary to start on a fresh store (instead of --base)")
    ap.add_argument("--db", help="with --bin: database URL (default: a file in a temporary directory)")
    ap.add_argument("--server-args", default="", help="with --bin: extra serve arguments, e.g. '--workers 1'")
    ap.add_argument("--server-cpu", type=int, help="with --bin: pin the server to this core")
    ap.add_argument("--client-cpu", type=int, help="pin this client to this core")
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--mode", choices=("keepalive", "fresh", "both"), default="both")
    ap.add_argument("--add-timeout", type=float, default=5.0, help="seconds one add may take")
    ap.add_argument("--deadline", type=float, default=900.0, help="seconds the whole run may take")
    ap.add_argument("--user", default=None, help="user to register (default: a random name)")
    ap.add_argument("--out", help="append key=value results to this file")
    ap.add_argument("--samples", help="write every sample (mode index total_ms post_ms) to this file")
    args = ap.parse_args()
    if bool(args.base) == bool(args.bin):
        ap.error("give exactly one of --base and --bin")
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {args.client_cpu})
    deadline = time.monotonic() + args.deadline

    proc, tmp = None, None
    try:
        if args.bin:
            tmp = tempfile.mkdtemp(prefix="switchyard-add-")
            port = free_port()
            db = args.db or f"sqlite://{tmp}/switchyard.db"
            cmd = [args.bin, "serve", "--db", db, "--port", str(port), *args.server_args.split()]
            if args.server_cpu is not None:
                cmd = ["taskset", "-c", str(args.server_cpu), *cmd]
            log(f"starting {' '.join(cmd)}")
            env = dict(os.environ, NO_COLOR="1")
            server_log = open(os.path.join(tmp, "server.log"), "w")
            proc = subprocess.Popen(cmd, stdout=server_log, stderr=subprocess.STDOUT, env=env)
            wait_health(port, proc)
        else:
            url = urllib.parse.urlsplit(args.base)
            if url.hostname != HOST or url.scheme != "http":
                ap.error("--base must be http://127.0.0.1:PORT")
            port = url.port or 80

        user = args.user or f"py{random.randrange(10**9)}"
        password = f"bench-{random.randrange(10**12)}"
        modes = ["keepalive", "fresh"] if args.mode == "both" else [args.mode]
        samples = open(args.samples, "w") if args.samples else None
        for mode in modes:
            project = f"add-{mode}"
            token = setup(port, user, password, project)
            total, posts, not_first = run_adds(
                port, token, user, project, args.count, mode == "keepalive", args.add_timeout, deadline, mode
            )
            report(mode, total, posts, not_first, args.out)
            if samples:
                for i, (t, p) in enumerate(zip(total, posts)):
                    samples.write(f"{mode} {i} {t:.4f} {p:.4f}\n")
        if samples:
            samples.close()
        return 0
    except (Failure, OSError, http.client.HTTPException) as e:
        log(f"FAILED: {e}")
        return 1
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if tmp and not os.environ.get("ADD_LATENCY_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp:
            log(f"kept {tmp}")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Server CPU time per endpoint add, per 1,000 adds, as the project grows.

Starts BIN (`serve --workers 1`, pinned to core 0, a fresh SQLite file in a temporary
directory, a free port on 127.0.0.1), registers a user, creates a project, then adds COUNT
endpoints one at a time over one keep-alive connection from core 1 (POST
/admin/projects/u/p/endpoints, expects 201). After every 1,000 adds it prints the server's
user+system CPU per add (from /proc/PID/stat, so every thread of the server counts, and
10 ms clock ticks over 1,000 adds give 10 µs resolution) and the wall time per add. CPU time
is far less disturbed than wall time by other load on a shared machine, so this is the
figure to compare when a change is meant to make adds cheaper at size.

    cargo build --release --bin switchyard
    python3 bench/add_cpu.py target/release/switchyard 10000

Standard library only; stops the server on exit; every request has a 10 s timeout.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, count = sys.argv[1], int(sys.argv[2])
    workdir = tempfile.mkdtemp(prefix="switchyard-addcpu-")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = subprocess.Popen(
        ["taskset", "-c", "0", binary, "serve", "--db", f"sqlite://{workdir}/s.db",
         "--port", str(port), "--workers", "1", "--access-log", "off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        os.sched_setaffinity(0, {1})
        conn = None
        for _ in range(100):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.connect()
                break
            except OSError:
                time.sleep(0.05)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def request(method, path, body=None, token=None):
            headers = {"content-type": "application/json"}
            if token:
                headers["authorization"] = "Bearer " + token
            conn.request(method, path, body=json.dumps(body), headers=headers)
            response = conn.getresponse()
            return response.status, response.read()

        request("POST", "/auth/register", {"username": "u", "password": "add-cpu-password"})
        status, data = request("POST", "/auth/login",
                               {"username": "u", "password": "add-cpu-password"})
        if status != 200:
            sys.exit(f"login failed: {status} {data!r}")
        token = json.loads(data)["access_token"]
        request("POST", "/admin/projects", {"name": "p"}, token)
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu_seconds():
            with open(f"/proc/{server.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks

        cpu_before, wall_before = cpu_seconds(), time.monotonic()
        for i in range(count):
            status, data = request(
                "POST", "/admin/projects/u/p/endpoints",
                {"method": "GET", "path": f"/e{i}", "response": {"json": {"message": "hello"}}},
                token)
            if status != 201:
                sys.exit(f"add {i} failed: {status} {data!r}")
            if (i + 1) % 1000 == 0:
                cpu_now, wall_now = cpu_seconds(), time.monotonic()
                print(f"{i + 1:>7} endpoints: server CPU {(cpu_now - cpu_before) * 1000:.0f} µs/add, "
                      f"wall {(wall_now - wall_before) * 1000:.0f} µs/add", flush=True)
                cpu_before, wall_before = cpu_now, wall_now
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

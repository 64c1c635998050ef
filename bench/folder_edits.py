#!/usr/bin/env python3
"""How long a saved edit of a project folder takes to be served, under load.

    python3 bench/folder_edits.py [BINARY]      (default: target/release/switchyard)

Makes a folder with `switchyard new shop` in a temporary directory, serves the directory
with `switchyard serve --projects DIR --workers 1 --access-log off` on 127.0.0.1, and, while
LOAD_THREADS threads ask `GET /shop/hello` without pause on keep-alive connections, rewrites
the manifest EDITS times with a new greeting, measuring from the write to the first answer
that carries it (a separate connection polling every 2 ms). Reports the latencies (median,
90th percentile, max) and the load's requests and failures: a failure is any answer but
200 or a broken connection. Everything runs on 127.0.0.1 and stops by itself.
Knobs: EDITS (30), LOAD_THREADS (2), PAUSE (0.3 s between edits, ±50 % at random so that
the edits land at every phase of the server's 250 ms poll).
"""

import http.client
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

EDITS = int(os.environ.get("EDITS", "30"))
LOAD_THREADS = int(os.environ.get("LOAD_THREADS", "2"))
PAUSE = float(os.environ.get("PAUSE", "0.3"))


def main() -> None:
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/switchyard")
    work = tempfile.mkdtemp(prefix="switchyard-folder-edits-")
    server = None
    try:
        subprocess.run([binary, "new", "shop"], cwd=work, check=True, capture_output=True)
        manifest = os.path.join(work, "shop", "switchyard.yaml")
        original = open(manifest).read()
        server = subprocess.Popen(
            [binary, "serve", "--projects", ".", "-p", "0", "--workers", "1",
             "--access-log", "off", "--log-level", "warn"],
            cwd=work, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        port = None
        for line in server.stdout:
            if "http://" in line:
                port = int(line.split("http://")[1].split("/")[0].split(":")[1])
                break
        if port is None:
            sys.exit("the server did not start")

        stop = threading.Event()
        counts = {"ok": 0, "failed": 0}
        lock = threading.Lock()

        def load() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            ok = failed = 0
            while not stop.is_set():
                try:
                    conn.request("GET", "/shop/hello")
                    response = conn.getresponse()
                    response.read()
                    if response.status == 200:
                        ok += 1
                    else:
                        failed += 1
                except (OSError, http.client.HTTPException):
                    failed += 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            with lock:
                counts["ok"] += ok
                counts["failed"] += failed

        threads = [threading.Thread(target=load) for _ in range(LOAD_THREADS)]
        for thread in threads:
            thread.start()
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        latencies = []
        for i in range(EDITS):
            wanted = f"Edit number {i}"
            with open(manifest + ".tmp", "w") as f:
                f.write(original.replace("Hello from Switchyard", wanted))
            start = time.monotonic()
            os.replace(manifest + ".tmp", manifest)
            while True:
                probe.request("GET", "/shop/hello")
                body = probe.getresponse().read().decode()
                if wanted in body:
                    break
                if time.monotonic() - start > 10:
                    sys.exit(f"edit {i} was not served within 10 s")
                time.sleep(0.002)
            latencies.append((time.monotonic() - start) * 1000)
            # A random pause: edits land at every phase of the server's poll.
            time.sleep(PAUSE * random.uniform(0.5, 1.5))
        stop.set()
        for thread in threads:
            thread.join()
        latencies.sort()
        p90 = latencies[int(len(latencies) * 0.9) - 1]
        print(f"edits: {EDITS}, served after: median {statistics.median(latencies):.0f} ms, "
              f"p90 {p90:.0f} ms, max {latencies[-1]:.0f} ms")
        print(f"load: {counts['ok']} requests answered 200 during the edits, "
              f"{counts['failed']} failed")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

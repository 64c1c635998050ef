#!/usr/bin/env python3
"""Helpers of bench/dataset.sh (Python 3 standard library only).

  generate  a CSV of N rows and 5 columns (region: 8 values, units and year: integers,
            price and rating: numbers), deterministic from --seed, and a JSON summary of
            what the server must answer for it (rows, bytes, the rows the page filter
            matches, the groups in order of first appearance with their counts and means)
  timed     sequential POSTs of one body on one keep-alive connection: latency percentiles
  probe     sequential POSTs of the page query (a random page each) until a stop file
            appears; one line per request: start end latency_ms status x-total-count
  window    percentiles of the probe's requests that started inside a time window
  swaps     per upload of a replacement loop: the time from its start to its 200 and to
            the end of the probe's first answer from the version it uploaded (time to
            queryable), and that first answer's latency

Every figure it prints is a key=value line. Percentiles are nearest-rank.
"""
import argparse
import http.client
import json
import math
import os
import random
import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

REGIONS = ["north", "south", "east", "west", "central", "coastal", "highland", "island"]
WEIGHTS = [30, 20, 15, 10, 10, 6, 5, 4]
NUMERIC = ["units", "year", "price", "rating"]
HEADER = "region," + ",".join(NUMERIC) + "\n"
# The page filter: category + two bounds (price is stored as integer cents below).
FILTER_REGION = "north"
FILTER_UNITS_MIN = 100
FILTER_PRICE_MAX = 800.0


def page_body(page, per_page=100):
    return json.dumps({"region": FILTER_REGION, "lower": {"units": FILTER_UNITS_MIN},
                       "upper": {"price": FILTER_PRICE_MAX}, "page": page, "per_page": per_page})


def q(values, p):
    values = sorted(values)
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def percentiles(prefix, values):
    out = [f"{prefix}count={len(values)}"]
    if values:
        for name, p in (("min", 0), ("p50", 50), ("p90", 90), ("p99", 99), ("max", 100)):
            out.append(f"{prefix}{name}={(min(values) if p == 0 else q(values, p)):.3f}")
    return out


def generate(a):
    rng = random.Random(a.seed)
    groups = {}  # region -> [count, sums…] (exact: integers, cents, thousandths)
    order = []
    matched = 0
    size = 0
    cum = [sum(WEIGHTS[: i + 1]) for i in range(len(WEIGHTS))]
    with open(a.out, "w", newline="") as f:
        f.write(HEADER)
        size += len(HEADER)
        done = 0
        while done < a.rows:
            n = min(50_000, a.rows - done)
            regions = rng.choices(REGIONS, cum_weights=cum, k=n)
            lines = []
            for region in regions:
                units = rng.randrange(1000)
                year = 1990 + rng.randrange(36)
                cents = rng.randrange(100_000)       # 0.00 … 999.99
                milli = rng.randrange(5001)          # 0.000 … 5.000
                g = groups.get(region)
                if g is None:
                    g = groups[region] = [0, 0, 0, 0, 0]
                    order.append(region)
                g[0] += 1
                g[1] += units
                g[2] += year
                g[3] += cents
                g[4] += milli
                if region == FILTER_REGION and units >= FILTER_UNITS_MIN and cents <= FILTER_PRICE_MAX * 100:
                    matched += 1
                lines.append(f"{region},{units},{year},{cents // 100}.{cents % 100:02d},{milli // 1000}.{milli % 1000:03d}\n")
            chunk = "".join(lines)
            f.write(chunk)
            size += len(chunk)
            done += n
    summary = {
        "rows": a.rows, "bytes": size, "page_filter_total": matched,
        "page_filter_pages": max(1, math.ceil(matched / 100)),
        "groups": [{"label": r, "count": groups[r][0],
                    "mean_units": groups[r][1] / groups[r][0],
                    "mean_year": groups[r][2] / groups[r][0],
                    "mean_price": groups[r][3] / 100 / groups[r][0],
                    "mean_rating": groups[r][4] / 1000 / groups[r][0]} for r in order],
    }
    with open(a.summary, "w") as f:
        json.dump(summary, f)
    print(f"rows={a.rows}")
    print(f"bytes={size}")
    print(f"page_filter_total={matched}")
    print(f"page_filter_pages={summary['page_filter_pages']}")


def connect(port, timeout=120):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.connect()
    return conn


def post(conn, path, body):
    conn.request("POST", path, body=body, headers={"content-type": "application/json"})
    r = conn.getresponse()
    return r.status, r.getheader("x-total-count"), r.read()


def check_means(answer, summary):
    """The answer of stats/mean over all rows: the generator's groups, in order, with
    their means within 1e-9 (relative)."""
    groups = json.loads(answer)
    want = summary["groups"]
    if [g.get("label") for g in groups] != [g["label"] for g in want]:
        sys.exit(f"stats/mean: groups {[g.get('label') for g in groups]}, expected {[g['label'] for g in want]}")
    for got, exp in zip(groups, want):
        for col in NUMERIC:
            k = f"mean_{col}"
            if not math.isclose(got[k], exp[k], rel_tol=1e-9):
                sys.exit(f"stats/mean {exp['label']}.{k}: {got[k]}, expected {exp[k]}")


def timed(a):
    conn = connect(a.port)
    summary = json.load(open(a.summary)) if a.summary else None
    lat = []
    size = 0
    for i in range(a.warmup + a.count):
        t0 = time.perf_counter()
        status, _, body = post(conn, a.path, a.body)
        elapsed = (time.perf_counter() - t0) * 1000
        if status != 200:
            sys.exit(f"POST {a.path} {a.body}: {status} {body[:300]!r}")
        if i == 0:
            groups = json.loads(body)
            if summary is not None and len(groups) != len(summary["groups"]):
                sys.exit(f"POST {a.path}: {len(groups)} groups, expected {len(summary['groups'])}")
            if summary is not None and a.check_means:
                check_means(body, summary)
        if i >= a.warmup:
            lat.append(elapsed)
            size = len(body)
    print("\n".join(percentiles("", lat)))
    print(f"median={statistics_median(lat):.3f}")
    print(f"bytes={size}")


def statistics_median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def probe(a):
    """Until the stop file exists (or --max-seconds): POST the page query, a random page of
    the old version's pages each time, sleeping --pause-ms between requests."""
    rng = random.Random(7)
    conn = connect(a.port)
    start = time.time()
    with open(a.out, "w", buffering=1) as f:
        while not os.path.exists(a.stop_file) and time.time() - start < a.max_seconds:
            body = page_body(rng.randint(1, a.pages))
            t0 = time.time()
            p0 = time.perf_counter()
            status, total, answer = post(conn, a.path, body)
            elapsed = (time.perf_counter() - p0) * 1000
            f.write(f"{t0:.6f} {time.time():.6f} {elapsed:.3f} {status} {total}\n")
            if status != 200:
                sys.exit(f"probe: POST {a.path}: {status} {answer[:300]!r}")
            if a.pause_ms:
                time.sleep(a.pause_ms / 1000)


def window(a):
    lat = []
    for line in open(a.log):
        t0, t1, ms, status, total = line.split()
        if a.start <= float(t0) < a.end and (not a.total or total == a.total):
            lat.append(float(ms))
    print("\n".join(percentiles("", lat)))


def swaps(a):
    """uploads.log: "version start end http_code" per upload, in order; the probe log:
    "start end latency_ms status x-total-count" per request."""
    totals = dict(t.split("=", 1) for t in a.total)
    probe = [line.split() for line in open(a.log)]
    probe = [(float(t0), float(t1), float(ms), total) for t0, t1, ms, _, total in probe]
    uploads = [line.split() for line in open(a.uploads)]
    ttq, ack, first = [], [], []
    for version, start, end, _ in uploads:
        start, end = float(start), float(end)
        # A request sent before the upload began may still be answered from the version
        # it started on (the one the previous upload put in): only later requests count.
        seen = [p for p in probe if p[0] >= start and p[3] == totals[version]]
        if not seen:
            print(f"missing={version}@{start:.6f}")
            sys.exit(1)
        answer = min(seen, key=lambda p: p[1])
        ttq.append(answer[1] - start)
        ack.append(end - start)
        first.append(answer[2])
    print(f"uploads={len(uploads)}")
    print(f"ttq_first={ttq[0]:.2f}")
    print(f"ttq_all={' '.join(f'{v:.2f}' for v in ttq)}")
    print(f"ttq_median={statistics_median(ttq):.2f}")
    print(f"ttq_max={max(ttq):.2f}")
    print(f"ack_first={ack[0]:.2f}")
    print(f"ack_median={statistics_median(ack):.2f}")
    print(f"ack_max={max(ack):.2f}")
    print(f"firstq_median={statistics_median(first):.1f}")
    print(f"firstq_max={max(first):.1f}")
    print(f"firstq_all={' '.join(f'{v:.1f}' for v in first)}")


p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
sub = p.add_subparsers(dest="cmd", required=True)
s = sub.add_parser("generate")
s.add_argument("--rows", type=int, default=1_000_000)
s.add_argument("--seed", type=int, default=1)
s.add_argument("--out", required=True)
s.add_argument("--summary", required=True)
s = sub.add_parser("timed")
s.add_argument("--port", type=int, required=True)
s.add_argument("--path", required=True)
s.add_argument("--body", default="{}")
s.add_argument("--count", type=int, default=30)
s.add_argument("--warmup", type=int, default=2)
s.add_argument("--summary", help="the generator's summary: check the group count")
s.add_argument("--check-means", action="store_true", help="and the means (stats/mean)")
s = sub.add_parser("probe")
s.add_argument("--port", type=int, required=True)
s.add_argument("--path", required=True)
s.add_argument("--pages", type=int, required=True)
s.add_argument("--stop-file", required=True)
s.add_argument("--out", required=True)
s.add_argument("--pause-ms", type=float, default=0)
s.add_argument("--max-seconds", type=float, default=300)
s = sub.add_parser("window")
s.add_argument("--log", required=True)
s.add_argument("--start", type=float, required=True)
s.add_argument("--end", type=float, required=True)
s.add_argument("--total", help="only answers with this x-total-count")
s = sub.add_parser("swaps")
s.add_argument("--log", required=True)
s.add_argument("--uploads", required=True)
s.add_argument("--total", action="append", required=True, help="VERSION=X_TOTAL_COUNT")
a = p.parse_args()
{"generate": generate, "timed": timed, "probe": probe, "window": window, "swaps": swaps}[a.cmd](a)

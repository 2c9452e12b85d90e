#!/usr/bin/env python3
"""Search latency of the console's JSON API, for bench/console (which starts the console).

Draws N queries (default 500) from the query material gen_index wrote next to the index
(bench-queries.json), in a fixed mix of kinds, and sends them one after another over one
keep-alive HTTP/1.1 connection to /api/search with the bearer token. Each latency is the
time from sending the request to having read the whole response. Prints one JSON object:
per kind and overall, the count, p50, p90, p99 and max in milliseconds, and the median
number of hits (total) the queries of that kind matched.

A benchmark that prints figures, not a test: it asserts nothing except that every answer
was 200.

    console_bench.py ADDR TOKEN QUERIES_JSON [--n 500] [--seed 7] [--warmup 20]
"""

import argparse
import http.client
import json
import random
import statistics
import sys
import time
import urllib.parse


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def make_queries(m, n, rng):
    """N (kind, params) pairs in a fixed mix."""
    common, mid, rare = m["common"], m["mid"], m["rare"]
    phrases, sites = m["phrases"], m["sites"]
    first, last = m["first_day"], m["last_day"]

    def month_range():
        # A month inside the year of fetches.
        y, mo = int(first[:4]), int(first[5:7])
        k = rng.randrange(12)
        y2, m2 = y + (mo - 1 + k) // 12, (mo - 1 + k) % 12 + 1
        return f"{y2:04d}-{m2:02d}-01", f"{y2:04d}-{m2:02d}-28"

    def phrase():
        p = rng.choice(phrases).split()
        k = rng.randint(2, min(4, len(p)))
        i = rng.randrange(len(p) - k + 1)
        return '"' + " ".join(p[i : i + k]) + '"'

    kinds = [
        # (kind, weight, params)
        ("common word", 20, lambda: {"q": rng.choice(common)}),
        ("two common words", 10, lambda: {"q": f"{rng.choice(common)} {rng.choice(common)}"}),
        ("mid-frequency word", 10, lambda: {"q": rng.choice(mid)}),
        ("rare term", 15, lambda: {"q": rng.choice(rare)}),
        ("phrase", 15, lambda: {"q": phrase()}),
        ("site filter", 8, lambda: {"q": rng.choice(common), "site": rng.choice(sites)}),
        ("date range", 8, lambda: dict(zip(("from", "to"), month_range()), q=rng.choice(common))),
        ("sort=date", 8, lambda: {"q": rng.choice(common), "sort": "date"}),
        ("onion + date sort, page 3", 6,
         lambda: {"q": rng.choice(mid), "source": "onion", "sort": "date", "offset": "40"}),
    ]
    total_w = sum(w for _, w, _ in kinds)
    out = []
    for kind, w, make in kinds:
        for _ in range(round(n * w / total_w)):
            out.append((kind, make()))
    while len(out) < n:
        kind, _, make = kinds[0]
        out.append((kind, make()))
    out = out[:n]
    rng.shuffle(out)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("token")
    ap.add_argument("queries_json")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=20)
    a = ap.parse_args()

    with open(a.queries_json) as f:
        material = json.load(f)
    rng = random.Random(a.seed)
    queries = make_queries(material, a.n, rng)
    warm = make_queries(material, a.warmup, random.Random(a.seed + 1)) if a.warmup else []

    host, port = a.addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Authorization": f"Bearer {a.token}"}

    def run(params):
        path = "/api/search?" + urllib.parse.urlencode(params)
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        dt = time.perf_counter() - t0
        if r.status != 200:
            sys.exit(f"GET {path}: {r.status} {body[:300]!r}")
        return dt, json.loads(body)["total"]

    for _, params in warm:
        run(params)
    by_kind = {}
    started = time.perf_counter()
    for kind, params in queries:
        dt, total = run(params)
        by_kind.setdefault(kind, []).append((dt * 1000.0, total))
    wall = time.perf_counter() - started

    def summary(rows):
        ms = [r[0] for r in rows]
        return {
            "n": len(ms),
            "p50_ms": round(percentile(ms, 50), 2),
            "p90_ms": round(percentile(ms, 90), 2),
            "p99_ms": round(percentile(ms, 99), 2),
            "max_ms": round(max(ms), 2),
            "median_hits": int(statistics.median(r[1] for r in rows)),
        }

    every = [r for rows in by_kind.values() for r in rows]
    print(json.dumps({
        "queries": len(every),
        "wall_secs": round(wall, 2),
        "all": summary(every),
        "kinds": {k: summary(v) for k, v in by_kind.items()},
    }))


if __name__ == "__main__":
    main()

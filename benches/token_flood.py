#!/usr/bin/env python3
"""Latency of a valid token request while /oauth/token is flooded with wrong secrets.

Issue 15 item 4: a flood of wrong client secrets must not starve legitimate token requests.
Starts the release example on a free loopback port, measures a valid client's token
request idle, then while FLOOD threads send wrong secrets as fast as they can, and prints
the medians. Python standard library only.

    cargo build --release --example saas
    python3 benches/token_flood.py                 # 120 threads, 10 s per scenario
    python3 benches/token_flood.py --threads 60 --seconds 5

Two floods: from one address (127.0.0.1; the lock-outs answer it with cheap 429s after
its first failures), and spread over one address per thread (127.0.5.x, one unknown client
id per thread: every address pays argon2 until its own per-address limit, the worst case
for the secret-check bound). The valid client sends from 127.0.0.2. Each valid request
opens its own connection. Sends traffic to 127.x only, for a bounded time, and stops the
server it started.
"""

import argparse
import base64
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_token(port, client_id, secret, source="127.0.0.2"):
    """One token request on a fresh connection: (status, seconds)."""
    auth = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request(
            "POST",
            "/oauth/token",
            body="grant_type=client_credentials",
            headers={
                "Authorization": f"Basic {auth}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        res = conn.getresponse()
        res.read()
        return res.status, time.perf_counter() - started
    except OSError:
        return 0, time.perf_counter() - started
    finally:
        conn.close()


def start(binary, port, workdir):
    creds_path = os.path.join(workdir, "creds.json")
    log = open(os.path.join(workdir, "saas.log"), "w")
    env = dict(os.environ, RUST_LOG="error")
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [binary, "--addr", f"127.0.0.1:{port}", "--credentials-out", creds_path],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with open(creds_path) as f:
                creds = json.load(f)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, creds
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    proc.kill()
    sys.exit("the example did not start; see " + log.name)


def sample(port, client_id, secret, n):
    statuses, times = [], []
    for _ in range(n):
        status, took = post_token(port, client_id, secret)
        statuses.append(status)
        times.append(took)
        time.sleep(0.05)
    return statuses, times


def flood(port, threads, seconds, spread, client_id):
    stop = time.time() + seconds
    counts = {}
    lock = threading.Lock()

    def run(i):
        source = f"127.0.5.{i % 250 + 1}" if spread else "127.0.0.1"
        cid = f"ghost-{i}" if spread else client_id
        while time.time() < stop:
            status, _ = post_token(port, cid, f"ocs_wrong{i}", source)
            with lock:
                counts[status] = counts.get(status, 0) + 1

    pool = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    return pool, counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "examples", "saas"))
    ap.add_argument("--threads", type=int, default=120)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--samples", type=int, default=15)
    args = ap.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} is missing: cargo build --release --example saas")

    results = {}
    for scenario in ("one address", "one address per thread"):
        # A fresh server per scenario: no lock-out or cache carried over.
        port = free_port()
        with tempfile.TemporaryDirectory() as workdir:
            proc, creds = start(args.binary, port, workdir)
            try:
                client = creds["oauth_client"]
                cid, secret = client["client_id"], client["client_secret"]
                first_status, first = post_token(port, cid, secret)
                idle_status, idle = sample(port, cid, secret, args.samples)
                pool, counts = flood(port, args.threads, args.seconds, scenario != "one address", cid)
                time.sleep(min(2.0, args.seconds / 4))  # let the flood build up
                during_status, during = sample(port, cid, secret, args.samples)
                # A valid client not seen before (no verified secret to reuse) during the flood.
                other = creds["admin_oauth_client"]
                fresh_status, fresh = post_token(port, other["client_id"], other["client_secret"])
                for t in pool:
                    t.join()
            finally:
                proc.terminate()
                proc.wait(timeout=15)
        results[scenario] = {
            "first_valid_request_idle_s": round(first, 4),
            "idle_median_s": round(statistics.median(idle), 4),
            "idle_statuses": sorted(set(idle_status + [first_status])),
            "flood_median_s": round(statistics.median(during), 4),
            "flood_max_s": round(max(during), 4),
            "flood_statuses": sorted(set(during_status)),
            "fresh_client_during_flood": {"status": fresh_status, "seconds": round(fresh, 4)},
            "flood_answers": dict(sorted(counts.items())),
        }
    print(json.dumps({"threads": args.threads, "seconds": args.seconds, "results": results}, indent=2))


if __name__ == "__main__":
    main()

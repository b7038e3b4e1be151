"""`lexdr serve` under load, on loopback only, bounded in requests and seconds per level.

For each system (default: BM25, the base encoder, the run's best trained model and its adaptive hybrid) and
each number of concurrent clients (1, 8, 32): queries/s, p50/p95/p99 latency, errors, and the server's peak
RSS, with the run's test queries cycled; beside it, the library's own batched ``search`` of the same system
over the same queries in one call, in this process. Then abuse: clients that disconnect mid-request, malformed
bodies, 1 MB queries, 1,000 requests with k=1000 (refused: over max_k) and 1,000 with k at the cap; after each,
the service must still answer and its RSS is recorded. Optionally screenshots of the page (headless Chromium).

    PYTHONPATH=src python benchmarks/serve_load.py RUN_DIR [--lang LABEL] [--requests 400] [--seconds 20] \
        [--json out.json] [--screenshot benchmarks/results/serve_page.png]

Prints Markdown tables; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from _common import cpu_name  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")


def start_server(run: Path, args: list[str]) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "lexdr", "serve", str(run), "--port", "0", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        m = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        if m:
            url = m.group(1)
            for _ in range(600):
                try:
                    if httpx.get(url + "api/health", timeout=5).status_code == 200:
                        return proc, url
                except httpx.HTTPError:
                    time.sleep(0.1)
    proc.kill()
    raise SystemExit("lexdr serve did not start")


class Rss(threading.Thread):
    """The server's resident memory, sampled every 20 ms; ``peak`` since the last :meth:`reset`."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = False

    def now(self) -> int:
        return self.proc.memory_info().rss

    def reset(self) -> None:
        self.peak = self.now()

    def run(self) -> None:
        while not self.stop:
            try:
                self.peak = max(self.peak, self.now())
            except psutil.Error:
                return
            time.sleep(0.02)


async def _load(url: str, body, clients: int, n: int, seconds: float) -> dict:
    """``clients`` concurrent clients, each sending its next request when the last one is answered, until
    ``n`` requests are answered or ``seconds`` pass. ``body(i)`` is the i-th request's JSON."""
    lat, errors, statuses = [], 0, {}
    sent = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def worker():
            nonlocal sent, errors
            while sent < n and time.perf_counter() < deadline:
                i = sent
                sent += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post("api/search", json=body(i))
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                except httpx.HTTPError:
                    errors += 1
                    continue
                lat.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    ms = np.array(lat) * 1000 if lat else np.zeros(1)
    return {"clients": clients, "requests": len(lat) + errors, "seconds": round(wall, 2),
            "qps": round(len(lat) / wall, 1), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "errors": errors + sum(c for s, c in statuses.items() if s != 200), "statuses": statuses}


def load(url, body, clients, n, seconds) -> dict:
    return asyncio.run(_load(url, body, clients, n, seconds))


def in_process_qps(run: Path, label: str, system: str, queries: list, k: int, repeat: int) -> float:
    """The library's own batched search of ``system``: one ``search(queries, k)`` call over all queries."""
    from lexdr.fusion import FusionConfig
    from lexdr.retrieval import HybridRetriever, load_retriever
    from lexdr.serve.systems import STAGE_OF, TRAIN_OF

    def leaf(name: str):
        if name == "bm25":
            return load_retriever(run / label / "bm25" / "index")
        train = TRAIN_OF.get(name)
        extra = {"model": str(run / train / "model")} if train else {}
        return load_retriever(run / label / STAGE_OF[name] / "index", show_progress=False, **extra)

    fusion = json.loads((run / label / "evaluate" / "fusion.json").read_text()) if (
        run / label / "evaluate" / "fusion.json").is_file() else {}
    if system in fusion:
        rec = fusion[system]
        cfg = json.loads((run / "manifest.json").read_text())["config"]["fusion"]
        cfg.update(method=rec["method"], weights=rec["weights"], **({"adaptive": rec["adaptive"]} if "adaptive" in rec else {}))
        depth = json.loads((run / "manifest.json").read_text())["config"]["bm25"]["depth"]
        retriever = HybridRetriever([leaf(p) for p in rec["systems"]], FusionConfig(**cfg), depth=depth)
    else:
        retriever = leaf(system)
    batch = (queries * (repeat // len(queries) + 1))[:repeat]
    from lexdr.records import Query

    batch = [Query(f"q{i}", q.text) for i, q in enumerate(batch)]
    retriever.search(batch[:8], k=k)  # warm-up
    best = float("inf")
    for _ in range(3):  # best of three: a shared machine's noise only ever slows a call down
        t0 = time.perf_counter()
        retriever.search(batch, k=k)
        best = min(best, time.perf_counter() - t0)
    return len(batch) / best


def raw(url: str, payload: bytes, read: bool) -> None:
    host, port = url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(payload)
        if read:
            s.recv(65536)


def abuse(url: str, rss: Rss, lang: str, system: str, queries: list[str]) -> list[dict]:
    out = []

    def record(name: str, statuses: dict, t0: float) -> None:
        alive = httpx.post(url + "api/search", json={"query": queries[0], "lang": lang, "system": system, "k": 10},
                           timeout=30).status_code == 200
        out.append({"case": name, "statuses": statuses, "still_answers": alive, "seconds": round(time.perf_counter() - t0, 1),
                    "rss_mb_after": round(rss.now() / 2**20, 1), "peak_rss_mb": round(rss.peak / 2**20, 1)})

    rss.reset()
    t0 = time.perf_counter()
    body = json.dumps({"query": queries[0], "lang": lang, "system": system, "k": 10}).encode()
    head = f"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    for _ in range(100):
        raw(url, head + body[: len(body) // 2], read=False)  # half a body, then gone
        raw(url, head + body, read=False)  # a whole request, gone before the answer
    record("200 clients disconnecting mid-request (100 mid-body, 100 before the answer)", {}, t0)

    rss.reset()
    t0 = time.perf_counter()
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=url, timeout=30) as c:
        for i in range(200):
            r = c.post("api/search", content=b'{"query": "x", "lang": ' + bytes([i % 256]) * 3,
                       headers={"content-type": "application/json"})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    record("200 malformed bodies", statuses, t0)

    rss.reset()
    t0 = time.perf_counter()
    statuses = {}
    with httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(20):
            r = c.post("api/search", json={"query": "a" * 1_048_576, "lang": lang, "system": system, "k": 10})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    record("20 requests with a 1 MB query", statuses, t0)

    for k in (1000, 100):
        rss.reset()
        t0 = time.perf_counter()
        res = load(url, lambda i: {"query": queries[i % len(queries)], "lang": lang, "system": system, "k": k},
                   32, 1000, 120)
        record(f"1,000 requests with k={k} (32 clients)", res["statuses"], t0)
    return out


def screenshots(url: str, lang: str, out: Path) -> list[Path]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(arg)
    options.binary_location = os.environ.get("LEXDR_CHROMIUM", "/usr/bin/chromium")
    driver = webdriver.Chrome(options=options, service=Service(os.environ.get("LEXDR_CHROMEDRIVER", "/usr/bin/chromedriver")))
    written = []
    try:
        driver.get(url + "tests?" + httpx.QueryParams({"lang": lang, "only": "loses"}).__str__())
        rows = driver.find_elements(By.CSS_SELECTOR, "tr.test-row a.open")
        tests_png = out.with_name(out.stem + "_tests.png")
        driver.save_screenshot(str(tests_png))
        written.append(tests_png)
        if rows:
            rows[0].click()
        else:
            driver.get(url)
        driver.save_screenshot(str(out))
        written.append(out)
        driver.get(url + "mining?" + str(httpx.QueryParams({"lang": lang})))
        mining_png = out.with_name(out.stem + "_mining.png")
        driver.save_screenshot(str(mining_png))
        written.append(mining_png)
    finally:
        driver.quit()
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--lang", help="language label (default: the run's first)")
    ap.add_argument("--systems", nargs="*", help="default: bm25, dense-base, the best trained model, its adaptive hybrid")
    ap.add_argument("--clients", nargs="*", type=int, default=[1, 8, 32])
    ap.add_argument("--requests", type=int, default=400, help="most requests per (system, clients) level")
    ap.add_argument("--seconds", type=float, default=20.0, help="most seconds per (system, clients) level")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--screenshot", type=Path)
    ap.add_argument("--no-abuse", action="store_true")
    ap.add_argument("--torch-threads", type=int, help="torch threads, for the server and the in-process search alike")
    args = ap.parse_args()

    sys.path.insert(0, SRC)
    from lexdr.formats import read_queries
    from lexdr.serve.views import RunViews

    views = RunViews(args.run)
    label = args.lang or views.labels[0]
    trained = views.best_trained(label)
    systems = args.systems or views.columns(label, trained)
    queries = read_queries(args.run / label / "data" / "queries.test.tsv")
    texts = [q.text for q in queries]
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_before = os.getloadavg()
    threads = ["--torch-threads", str(args.torch_threads)] if args.torch_threads else []
    proc, url = start_server(args.run, threads)
    rss = Rss(proc.pid)
    rss.start()
    results, baseline = [], {}
    try:
        rss_start = rss.now()
        for system in systems:
            body = lambda i, s=system: {"query": texts[i % len(texts)], "lang": label, "system": s, "k": args.k}
            load(url, body, 8, min(64, args.requests), 10)  # warm-up
            for clients in args.clients:
                rss.reset()
                cpu0 = sum(rss.proc.cpu_times()[:2])
                res = load(url, body, clients, args.requests, args.seconds)
                cpu = sum(rss.proc.cpu_times()[:2]) - cpu0
                res.update(system=system, peak_rss_mb=round(rss.peak / 2**20, 1),
                           server_cpu_ms_per_request=round(1000 * cpu / max(1, res["requests"]), 2))
                results.append(res)
                print(json.dumps(res), flush=True)
        rss_after_load = rss.now()
        abuse_rows = [] if args.no_abuse else abuse(url, rss, label, systems[-1], texts)
        shots = screenshots(url, label, args.screenshot) if args.screenshot else []
    finally:
        proc.send_signal(2)
        proc.wait(30)
        rss.stop = True
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    for system in systems:  # after the server is gone: the cores are the library's alone
        baseline[system] = round(in_process_qps(args.run, label, system, queries, args.k, args.requests), 1)
    record = {"date": started, "machine": f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
              "run": str(args.run), "lang": label, "torch_threads": args.torch_threads, "queries": len(texts), "k": args.k, "results": results,
              "in_process_qps": baseline, "rss_mb": {"after_startup": round(rss_start / 2**20, 1),
                                                     "after_load_levels": round(rss_after_load / 2**20, 1)},
              "abuse": abuse_rows, "screenshots": [str(s) for s in shots]}
    if args.json:
        args.json.write_text(json.dumps(record, indent=1))
    print(f"\n{record['date']} · {record['machine']} · load average before {record['load_before']}, "
          f"after {record['load_after']} · run `{args.run}` ({label}, {len(texts)} test queries cycled), k={args.k}, "
          f"torch threads {args.torch_threads or 'default'}\n")
    print("| system | clients | requests | queries/s | p50 ms | p95 ms | p99 ms | errors | server peak RSS MB | "
          "server CPU ms / request | in-process batched search q/s | served / in-process |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        base = baseline[r["system"]]
        print(f"| {r['system']} | {r['clients']} | {r['requests']} | {r['qps']} | {r['p50_ms']} | {r['p95_ms']} | "
              f"{r['p99_ms']} | {r['errors']} | {r['peak_rss_mb']} | {r['server_cpu_ms_per_request']} | {base} | "
              f"{r['qps'] / base:.0%} |")
    print(f"\nServer RSS: {record['rss_mb']['after_startup']} MB after start-up, "
          f"{record['rss_mb']['after_load_levels']} MB after every load level.\n")
    if abuse_rows:
        print("| abuse | answers (status: count) | still answers | seconds | RSS after MB | peak RSS MB |")
        print("|---|---|---|---:|---:|---:|")
        for a in abuse_rows:
            st = ", ".join(f"{s}: {c}" for s, c in sorted(a["statuses"].items())) or "(none read)"
            print(f"| {a['case']} | {st} | {'yes' if a['still_answers'] else 'NO'} | {a['seconds']} | "
                  f"{a['rss_mb_after']} | {a['peak_rss_mb']} |")


if __name__ == "__main__":
    main()

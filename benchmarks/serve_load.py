"""`lexdr serve` under load, on loopback only, bounded in requests and seconds per level.

For each system (default: BM25, the base encoder, the run's best trained model and its adaptive hybrid) and
each number of concurrent clients (1, 8, 32): queries/s, p50/p95/p99 latency, errors, the server's CPU per
query and its peak RSS, with the run's test queries cycled; also batch requests (``--batch`` queries each, 8
clients) and the HTTP floor (GET /api/health: the stack with no search). Right after each system's levels, the
library's own batched ``search`` of the same system over the same queries in one call, in this process, on the
server's CPUs while the server idles (wall and CPU per query). On 2 or more CPUs the server gets the first half
and the load generator (a raw keep-alive HTTP/1.1 client: httpx cost ~4 ms of CPU a request and set the rate on
one core) the rest, so neither takes the other's cores. Then abuse: clients that disconnect mid-request, malformed
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


def start_server(run: Path, args: list[str], cpus: set[int] | None = None) -> tuple[subprocess.Popen, str]:
    """``lexdr serve RUN --port 0`` in a child process (on ``cpus`` only, where given); (process, URL)."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    proc = subprocess.Popen([sys.executable, "-m", "lexdr", "serve", str(run), "--port", "0", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=pin)
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

    def split(self) -> dict:
        """RSS in MB split as the kernel counts it: anonymous (the process's own heap) and file-backed (mapped
        model weights and index files: page cache the kernel can drop and re-read)."""
        with open(f"/proc/{self.proc.pid}/status") as fh:
            kb = {l.split(":")[0]: int(l.split()[1]) for l in fh if l.startswith(("RssAnon", "RssFile"))}
        return {"anon_mb": round(kb.get("RssAnon", 0) / 1024, 1), "file_mb": round(kb.get("RssFile", 0) / 1024, 1)}

    def reset(self) -> None:
        self.peak = self.now()

    def run(self) -> None:
        while not self.stop:
            try:
                self.peak = max(self.peak, self.now())
            except psutil.Error:
                return
            time.sleep(0.02)


class _Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol to time a server: requests are
    written as prepared bytes and answers read by Content-Length. (httpx costs the load generator ~4 ms of CPU
    a request: on one core it, not the server, set the rate.)"""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes | None) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} /{path} HTTP/1.1\r\nHost: {self.host}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        try:
            headers = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.writer = None
            raise
        status = int(headers[9:12])
        m = re.search(rb"(?i)content-length: *(\d+)", headers)
        if m is None:
            raise RuntimeError(f"no Content-Length in {headers[:200]!r}")
        await self.reader.readexactly(int(m.group(1)))
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _load(url: str, body, clients: int, n: int, seconds: float, path: str = "api/search",
                per_request: int = 1) -> dict:
    """``clients`` concurrent clients, each sending its next request when the last one is answered, until
    ``n`` requests are answered or ``seconds`` pass. ``body(i)`` is the i-th request's JSON (None: a GET of
    ``path``); ``per_request`` queries ride in each request (queries/s counts queries, not requests)."""
    lat, errors, statuses = [], 0, {}
    sent = 0
    host, port = url.split("//")[1].rstrip("/").split(":")
    bodies = [body(i) for i in range(n)]  # prepared before the clock starts
    bodies = [None if b is None else json.dumps(b).encode() for b in bodies]
    conns = [_Connection(host, int(port)) for _ in range(clients)]

    async def worker(conn: _Connection):
        nonlocal sent, errors
        while sent < n and time.perf_counter() < deadline:
            i = sent
            sent += 1
            t0 = time.perf_counter()
            try:
                status = await conn.request("GET" if bodies[i] is None else "POST", path, bodies[i])
                statuses[status] = statuses.get(status, 0) + 1
            except (OSError, asyncio.IncompleteReadError, RuntimeError):
                errors += 1
                continue
            lat.append(time.perf_counter() - t0)

    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for c in conns:
            c.close()
    wall = time.perf_counter() - t0
    ms = np.array(lat) * 1000 if lat else np.zeros(1)
    return {"clients": clients, "requests": len(lat) + errors, "seconds": round(wall, 2),
            "qps": round(per_request * sum(c for s, c in statuses.items() if s == 200) / wall, 1),
            "per_request": per_request, "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "errors": errors + sum(c for s, c in statuses.items() if s != 200), "statuses": statuses}


def load(url, body, clients, n, seconds, path="api/search", per_request=1) -> dict:
    return asyncio.run(_load(url, body, clients, n, seconds, path, per_request))


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
    best, best_cpu = float("inf"), float("inf")
    for _ in range(3):  # best of three: a shared machine's noise only ever slows a call down
        t0, c0 = time.perf_counter(), time.process_time()
        retriever.search(batch, k=k)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return len(batch) / best, 1000 * best_cpu / len(batch)


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


def split_cpus(server: list[int] | None) -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, load-generator CPUs): the given server CPUs and the rest, or this process's CPUs halved."""
    mine = sorted(os.sched_getaffinity(0))
    if server:
        rest = set(mine) - set(server)
        return set(server), rest or None
    if len(mine) < 2:
        return None, None
    half = len(mine) // 2
    return set(mine[:half]), set(mine[half:])


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
    ap.add_argument("--server-cpus", type=int, nargs="*",
                    help="pin the server, and later the in-process search, to these CPUs (default: the first half of "
                         "this process's CPUs when it has 2 or more; none given: no pinning)")
    ap.add_argument("--batch", type=int, default=32,
                    help="also send /api/search/batch requests of this many queries at 8 clients (0: don't)")
    args = ap.parse_args()
    server_cpus, client_cpus = split_cpus(args.server_cpus)

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
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)

    def library_qps(system: str) -> float:
        """The library's batched search of ``system``, here, on the server's CPUs while the server idles."""
        if server_cpus:
            os.sched_setaffinity(0, server_cpus)
        try:
            qps, cpu_ms = in_process_qps(args.run, label, system, queries, args.k, args.requests)
            library_cpu_ms[system] = round(cpu_ms, 3)
            return round(qps, 1)
        finally:
            if client_cpus:
                os.sched_setaffinity(0, client_cpus)

    proc, url = start_server(args.run, threads, server_cpus)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)  # the load generator keeps off the server's cores
    rss = Rss(proc.pid)
    rss.start()
    results, baseline, library_cpu_ms = [], {}, {}
    try:
        rss_start, split_start = rss.now(), rss.split()
        for clients in (32,):  # the HTTP floor: a request that searches nothing, through the same stack
            load(url, lambda i: None, 8, 64, 10, path="api/health")
            cpu0 = sum(rss.proc.cpu_times()[:2])
            res = load(url, lambda i: None, clients, args.requests * 3, args.seconds, path="api/health")
            cpu = sum(rss.proc.cpu_times()[:2]) - cpu0
            res.update(system="(GET /api/health: no search)", peak_rss_mb=round(rss.peak / 2**20, 1),
                       server_cpu_ms_per_request=round(1000 * cpu / max(1, res["requests"]), 2))
            results.append(res)
            print(json.dumps(res), flush=True)
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
            if args.batch > 1:  # the same queries, ``--batch`` to a request, 8 clients
                bbody = lambda i, s=system: {"queries": [texts[(i * args.batch + j) % len(texts)] for j in range(args.batch)],
                                             "lang": label, "system": s, "k": args.k}
                rss.reset()
                cpu0 = sum(rss.proc.cpu_times()[:2])
                res = load(url, bbody, 8, max(8, args.requests // args.batch * 4), args.seconds, path="api/search/batch",
                           per_request=args.batch)
                cpu = sum(rss.proc.cpu_times()[:2]) - cpu0
                res.update(system=system, peak_rss_mb=round(rss.peak / 2**20, 1),
                           server_cpu_ms_per_request=round(1000 * cpu / max(1, res["requests"]), 2))
                results.append(res)
                print(json.dumps(res), flush=True)
            baseline[system] = library_qps(system)  # right after its levels: the same state of the machine
        rss_after_load, split_after_load = rss.now(), rss.split()
        abuse_rows = [] if args.no_abuse else abuse(url, rss, label, systems[-1], texts)
        shots = screenshots(url, label, args.screenshot) if args.screenshot else []
    finally:
        proc.send_signal(2)
        proc.wait(30)
        rss.stop = True
    record = {"date": started, "machine": f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "server_cpus": sorted(server_cpus or []), "client_cpus": sorted(client_cpus or []),
              "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
              "run": str(args.run), "lang": label, "torch_threads": args.torch_threads, "queries": len(texts), "k": args.k, "results": results,
              "in_process_qps": baseline, "in_process_cpu_ms_per_query": library_cpu_ms, "rss_mb": {"after_startup": round(rss_start / 2**20, 1),
                                                     "after_load_levels": round(rss_after_load / 2**20, 1),
                                                     "after_startup_split": split_start,
                                                     "after_load_levels_split": split_after_load},
              "abuse": abuse_rows, "screenshots": [str(s) for s in shots]}
    if args.json:
        args.json.write_text(json.dumps(record, indent=1))
    print(f"\n{record['date']} · {record['machine']} · load average before {record['load_before']}, "
          f"after {record['load_after']} · run `{args.run}` ({label}, {len(texts)} test queries cycled), k={args.k}, "
          f"torch threads {args.torch_threads or 'default'}, server on CPUs {record['server_cpus'] or 'any'}, "
          f"load generator on CPUs {record['client_cpus'] or 'any'}; the in-process search ran on the server's CPUs "
          f"right after each system's levels, the server idle\n")
    print("| system | clients | queries a request | requests | queries/s | p50 ms | p95 ms | p99 ms | errors | "
          "server peak RSS MB | server CPU ms / query | in-process batched search q/s | in-process CPU ms / query | "
          "served / in-process (q/s) | served / in-process (CPU a query) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        base, lib_cpu = baseline.get(r["system"]), library_cpu_ms.get(r["system"])
        cpu_q = r["server_cpu_ms_per_request"] / r["per_request"]
        ratio = f"{r['qps'] / base:.0%}" if base else "–"
        eff = f"{lib_cpu / cpu_q:.0%}" if lib_cpu and cpu_q else "–"
        print(f"| {r['system']} | {r['clients']} | {r['per_request']} | {r['requests']} | {r['qps']} | {r['p50_ms']} | "
              f"{r['p95_ms']} | {r['p99_ms']} | {r['errors']} | {r['peak_rss_mb']} | {cpu_q:.2f} | "
              f"{base or '–'} | {lib_cpu or '–'} | {ratio} | {eff} |")
    m = record["rss_mb"]
    print(f"\nServer RSS: {m['after_startup']} MB after start-up (anonymous {m['after_startup_split']['anon_mb']}, "
          f"file-backed {m['after_startup_split']['file_mb']}), {m['after_load_levels']} MB after every load level "
          f"(anonymous {m['after_load_levels_split']['anon_mb']}, file-backed {m['after_load_levels_split']['file_mb']}).\n")
    if abuse_rows:
        print("| abuse | answers (status: count) | still answers | seconds | RSS after MB | peak RSS MB |")
        print("|---|---|---|---:|---:|---:|")
        for a in abuse_rows:
            st = ", ".join(f"{s}: {c}" for s, c in sorted(a["statuses"].items())) or "(none read)"
            print(f"| {a['case']} | {st} | {'yes' if a['still_answers'] else 'NO'} | {a['seconds']} | "
                  f"{a['rss_mb_after']} | {a['peak_rss_mb']} |")


if __name__ == "__main__":
    main()

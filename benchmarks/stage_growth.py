"""One stage of a finished rehearsal run (:mod:`rehearsal`) run again alone, in a fresh process per size: its
peak RSS, its peak above start, and (``--trace``) the Python allocations alive at the largest traced heap seen
(tracemalloc, sampled every 0.5 s), by line.

It answers issue 21's "does this stage's peak grow faster than the index it searches?" for one stage at a time,
without running the pipeline again: the stage's inputs (corpus, queries, mined pairs, the index folders it
searches) are read from the rehearsal's ``WORK/n<N>/run`` (left untouched), its outputs written to
``OUT/n<N>/<stage>``. The peak is sampled as the stage engine samples it (:class:`lexdr.pipeline.engine.PeakMemory`:
VmRSS every 0.2 s). A size needs the stages before the measured one finished by the rehearsal (generate: mining
and dense-base).

Usage (the stage by its kind: ``bm25`` or ``generate``)::

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/stage_growth.py --work REHEARSAL_WORK \\
        --out /tmp/growth --stage bm25 --sizes 10000 100000 1000000 [--trace]

Results: ``benchmarks/results/stage_memory.md`` (issue 21's bm25 and generate stages before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path


def _child(config: str, stage: str, out: str, trace: bool) -> None:
    import tracemalloc

    from lexdr.executors import LocalExecutor
    from lexdr.pipeline import load_config, method_graph
    from lexdr.pipeline.engine import PeakMemory, _rss_bytes
    from lexdr.pipeline.graph import resolve_inputs

    spec = next(s for s in method_graph(load_config(config), quiet=True) if s.name.split("/")[-1] == stage)
    folder = Path(out)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    best: dict = {"bytes": 0, "snap": None}
    stop = threading.Event()

    def watch() -> None:  # keep the snapshot of the largest traced heap seen
        while not stop.wait(0.5):
            now = tracemalloc.get_traced_memory()[0]
            if now > best["bytes"] * 1.02:
                best.update(bytes=now, snap=tracemalloc.take_snapshot())

    if trace:
        tracemalloc.start(1)
        threading.Thread(target=watch, daemon=True).start()
    start, t0 = _rss_bytes(), time.perf_counter()
    with PeakMemory() as mem:
        spec.fn(resolve_inputs(spec, {}), spec.config, folder, LocalExecutor())
    row = {"stage": stage, "start_mb": round(start / 2**20, 1), "peak_rss_mb": round(mem.peak / 2**20, 1),
           "seconds": round(time.perf_counter() - t0, 1)}
    if trace:
        stop.set()
        row["traced_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        if best["snap"] is not None:
            row["top"] = [f"{s.size / 2**20:8.1f} MiB {s.count:>9,} blocks  {s.traceback[0]}"
                          for s in best["snap"].statistics("lineno")[:12]]
    print(json.dumps(row))


def main() -> None:
    if sys.argv[1:2] == ["_child"]:
        return _child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="rehearsal.py's --work folder (read only)")
    ap.add_argument("--out", type=Path, required=True, help="where the stage writes (per size and stage)")
    ap.add_argument("--stage", required=True, help="the stage's kind: bm25 or generate")
    ap.add_argument("--sizes", type=int, nargs="+", required=True)
    ap.add_argument("--trace", action="store_true", help="also tracemalloc: the top allocations at the traced peak")
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    rows = {}
    for n in args.sizes:
        out = args.out / f"n{n}" / args.stage
        proc = subprocess.run([sys.executable, __file__, "_child", str(args.work / f"n{n}" / "run.toml"),
                               args.stage, str(out), "1" if args.trace else "0"], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(root / "src"), "HF_HUB_OFFLINE": "1"})
        if proc.returncode != 0:
            raise SystemExit(f"N={n} {args.stage} failed:\n{proc.stderr[-3000:]}")
        rows[n] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = rows[n]
        print(f"N={n:,} {args.stage}: peak {r['peak_rss_mb']} MiB, above start "
              f"{r['peak_rss_mb'] - r['start_mb']:.1f} MiB, {r['seconds']} s"
              + (f", traced Python peak {r['traced_peak_mb']} MiB" if "traced_peak_mb" in r else ""), flush=True)
        for line in r.get("top", []):
            print("   ", line)
    sizes = sorted(rows)
    for a, b in zip(sizes, sizes[1:]):
        print(f"{a:,} -> {b:,}: Δpeak {rows[b]['peak_rss_mb'] - rows[a]['peak_rss_mb']:+.1f} MiB")


if __name__ == "__main__":
    main()

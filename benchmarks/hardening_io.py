"""What the issue-12 safety checks cost, measured against what they replace.

1. Reading text: lexdr.formats.files.open_text (TextLines: bytes per line, UTF-8 checked per line with the line
   number, NUL / truncated-gzip detection) against the plain ``io.TextIOWrapper`` it replaced, on a JSONL corpus,
   plain and gzipped.
2. Stage outputs: hashing a stage's outputs once when it finishes (SHA-256), against checking them on a skip
   (one stat per file: size + mtime), against re-hashing them on every skip (the alternative design).

Usage: nice -n 10 python benchmarks/hardening_io.py [--mb 200] [--out benchmarks/results/hardening_io.md]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_name  # noqa: E402

from lexdr.formats.files import open_text  # noqa: E402
from lexdr.pipeline.engine import damaged_outputs, snapshot_outputs  # noqa: E402


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _count_old(path: Path) -> int:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    with io.TextIOWrapper(raw, encoding="utf-8") as fh:
        return sum(1 for _ in fh)


def _count_new(path: Path) -> int:
    with open_text(path) as fh:
        return sum(1 for _ in fh)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200, help="size of the test corpus and of the stage's outputs")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows_read, rows_stage = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = tmp / "corpus.jsonl"
        line = json.dumps({"_id": "d000000", "title": "Tōkyō", "text": "東京は日本の首都です。 the capital " * 6},
                          ensure_ascii=False) + "\n"
        n = args.mb * 2**20 // len(line.encode())
        with open(corpus, "w", encoding="utf-8") as fh:
            for _ in range(n):
                fh.write(line)
        gz = tmp / "corpus.jsonl.gz"
        with open(corpus, "rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            dst.write(src.read())
        for path in (corpus, gz):
            assert _count_old(path) == _count_new(path) == n
            old, new = _best(lambda: _count_old(path)), _best(lambda: _count_new(path))
            rows_read.append((path.name, n, old, new))

        stage = tmp / "stage"
        (stage / "index").mkdir(parents=True)
        block = bytes(range(256)) * 4096
        with open(stage / "index" / "index.faiss", "wb") as fh:
            for _ in range(args.mb * 2**20 // len(block)):
                fh.write(block)
        for part in ("unlabeled", "test"):
            (stage / f"run.{part}.trec").write_bytes(b"q1 Q0 d1 1 1.000000 x\n" * 20000)
        t = time.perf_counter()
        record = snapshot_outputs(stage)
        hash_once = time.perf_counter() - t
        verify = _best(lambda: damaged_outputs(stage, record), repeat=5)
        rehash = _best(lambda: snapshot_outputs(stage))
        size_mb = sum(r["size"] for r in record.values()) / 2**20
        rows_stage.append((len(record), size_mb, hash_once, verify, rehash))

    lines = [f"# issue-12 safety checks: cost ({time.strftime('%Y-%m-%d')}, {cpu_name()}, Python "
             f"{platform.python_version()}, shared machine, `nice -n 10`)", "",
             f"Command: `nice -n 10 .venv/bin/python benchmarks/hardening_io.py --mb {args.mb}`", "",
             "## Reading a corpus line by line (best of 3)", "",
             "| file | lines | io.TextIOWrapper (before) s | open_text / TextLines (now) s | ratio now/before |",
             "|---|---:|---:|---:|---:|"]
    for name, n, old, new in rows_read:
        lines.append(f"| {name} | {n:,} | {old:.3f} | {new:.3f} | {new / old:.2f} |")
    lines += ["", "## A stage's outputs (done.json)", "",
              "| files | MB | hash once when the stage finishes s | check on a skip (stat) s | re-hash on every skip s |",
              "|---:|---:|---:|---:|---:|"]
    for files, mb, once, verify, rehash in rows_stage:
        lines.append(f"| {files} | {mb:.0f} | {once:.3f} | {verify:.6f} | {rehash:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

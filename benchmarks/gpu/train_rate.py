"""Training rate (queries/s) through lexdr's trainer vs a plain PyTorch loop on the same model and shapes.

    PYTHONPATH=src python benchmarks/gpu/train_rate.py --model ~/.cache/lexdr/models/intfloat--multilingual-e5-small \\
        --text /work/shared/data/xquad-r /work/shared/data/jsquad
    PYTHONPATH=src python benchmarks/gpu/train_rate.py --device cpu --n 64 --batch-size 16 --model ... --text ...

Shape (issue 10): per query 1 query of 64 tokens + 2 passages of 192 tokens (its positive and a hard
negative; all 2B passages of the batch are in-batch negatives), batch 256, AdamW, bf16 autocast. The texts are
real multilingual text joined to at least 64 / 192 tokens so every sequence is full length.

Rows:
- ``ceiling``: a plain loop — pre-tokenized tensors already on the device, the bare Hugging Face model + mean
  pooling + normalize, in-batch InfoNCE, backward, AdamW step — nothing else;
- ``lexdr train()``: ``lexdr.training.train`` with the contrastive loss on the same data (tokenization,
  batch assembly and host copies inside the step); once with every batch in one chunk (``mini_batch_size`` =
  2B) and once with the gradient cache (``--cache-chunk`` sequences per chunk: a second forward pass);
- profile: tokenizing one batch alone.
Both sides train the same parameters (word embeddings frozen, lexdr's default; ``--train-embeddings`` for all).
Rates are from the steady steps (the first ``--warmup`` steps are left out). Offline; about a minute on an H100.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import cpu_name  # noqa: E402
from _text import pack_to_tokens, read_texts  # noqa: E402

Q_LEN, P_LEN = 64, 192


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ceiling_steps(model_dir: str, queries: list[str], passages: list[str], B: int, steps: int, device, bf16: bool,
                  train_embeddings: bool, prompt_q: str, prompt_p: str) -> list[float]:
    """Seconds per step of the plain loop (inputs pre-tokenized and on the device)."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).to(device).train()
    if not train_embeddings:
        for name, p in model.named_parameters():
            if "word_embeddings" in name:
                p.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def enc(texts, n):
        t = tok(texts, padding="max_length", truncation=True, max_length=n, return_tensors="pt")
        return {k: v.to(device) for k, v in t.items()}

    batches = []
    for s in range(steps):
        q = queries[s * B:(s + 1) * B]
        p = passages[2 * s * B:2 * (s + 1) * B]
        batches.append((enc([prompt_q + x for x in q], Q_LEN), enc([prompt_p + x for x in p], P_LEN)))

    def embed(feats):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            h = model(**feats).last_hidden_state
        m = feats["attention_mask"].unsqueeze(-1).to(h.dtype)
        return F.normalize(((h * m).sum(1) / m.sum(1)).float(), dim=-1)

    times = []
    for qf, pf in batches:
        _sync(device)
        t = time.perf_counter()
        q, p = embed(qf), embed(pf)
        loss = F.cross_entropy(q @ p.T / 0.02, torch.arange(0, 2 * len(q), 2, device=device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        _sync(device)
        times.append(time.perf_counter() - t)
    del model, opt
    return times


def lexdr_steps(model_dir: str, queries: list[str], passages: list[str], B: int, steps: int, device,
                bf16: bool, train_embeddings: bool, chunk: int, work: Path) -> list[float]:
    """Seconds per step of ``lexdr.training.train`` (its own per-step log, which times the whole step)."""
    from lexdr.training import TrainConfig, TrainingExample, train

    corpus = {f"p{i}": t for i, t in enumerate(passages[: 2 * B * steps])}
    examples = [TrainingExample(query=q, candidate_ids=[f"p{2 * i}", f"p{2 * i + 1}"], teacher_scores=[1.0, 0.0],
                                positive_id=f"p{2 * i}", negative_ids=[f"p{2 * i + 1}"])
                for i, q in enumerate(queries[: B * steps])]
    cfg = TrainConfig(model=model_dir, loss="contrastive", epochs=1.0, lr=1e-5, batch_size=B, mini_batch_size=chunk,
                      max_query_length=Q_LEN, max_passage_length=P_LEN, n_hard_negatives=1, warmup_ratio=0.0,
                      checkpoint_every=10**6, freeze_embeddings=not train_embeddings, seed=0, show_progress=False,
                      device=str(device), bf16=bf16)
    # The data order is a permutation: the examples keep their own positive and negative, as in the ceiling.
    train(examples, corpus, work, cfg)
    log = [json.loads(x) for x in (work / "train_log.jsonl").read_text().splitlines()]
    return [r["seconds"] for r in log]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", nargs="+", required=True)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--n", type=int, default=None, help="queries in all (default: batch x (warmup + 8))")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--cache-chunk", type=int, default=128, help="mini_batch_size of the gradient-cache row")
    ap.add_argument("--device", default=None)
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--train-embeddings", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import torch
    from transformers import AutoTokenizer

    from lexdr.dense.encoder import default_prompts

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    bf16 = not args.no_bf16
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        gpu = torch.cuda.get_device_name(device)
    else:
        gpu = "none (CPU)"
    B = args.batch_size
    n = args.n or B * (args.warmup + 8)
    steps = n // B
    if steps <= args.warmup:
        raise SystemExit(f"--n {n} gives {steps} steps of {B}: need more than --warmup {args.warmup}")
    tok = AutoTokenizer.from_pretrained(args.model)
    source = read_texts(args.text)
    queries = pack_to_tokens(source, tok, steps * B, Q_LEN)
    passages = pack_to_tokens(source[::-1], tok, 2 * steps * B, P_LEN)
    cfg_json = json.loads((Path(args.model) / "config_sentence_transformers.json").read_text()) \
        if (Path(args.model) / "config_sentence_transformers.json").exists() else {}
    guess_q, guess_p = default_prompts(args.model)
    pq = (cfg_json.get("prompts") or {}).get("query", guess_q)
    pp = (cfg_json.get("prompts") or {}).get("passage", guess_p)

    rows = []

    def add(what, times):
        steady = times[args.warmup:]
        sec = sum(steady) / len(steady)
        rows.append({"path": what, "seconds_per_step": round(sec, 4), "queries_per_s": round(B / sec, 1)})

    add(f"ceiling: plain loop, tensors on device, bf16 autocast={bf16}",
        ceiling_steps(args.model, queries, passages, B, steps, device, bf16, args.train_embeddings, pq, pp))
    with tempfile.TemporaryDirectory() as tmp:
        add(f"lexdr train(), one chunk (mini_batch_size {2 * B})",
            lexdr_steps(args.model, queries, passages, B, steps, device, bf16, args.train_embeddings, 2 * B,
                        Path(tmp) / "one"))
        if args.cache_chunk < 2 * B:
            add(f"lexdr train(), gradient cache (mini_batch_size {args.cache_chunk})",
                lexdr_steps(args.model, queries, passages, B, steps, device, bf16, args.train_embeddings,
                            args.cache_chunk, Path(tmp) / "cache"))
    t = time.perf_counter()
    for s in range(3):
        tok([pq + x for x in queries[:B]], padding=True, truncation=True, max_length=Q_LEN, return_tensors="pt")
        tok([pp + x for x in passages[:2 * B]], padding=True, truncation=True, max_length=P_LEN, return_tensors="pt")
    tok_sec = (time.perf_counter() - t) / 3
    ceiling = rows[0]["queries_per_s"]
    print(f"# Training rate — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n\n"
          f"device: {gpu}; CPU: {cpu_name()} ({os.cpu_count()} cores); torch {torch.__version__}; "
          f"python {platform.python_version()}; model: {args.model}; batch {B} x (1 query of {Q_LEN} + 2 passages "
          f"of {P_LEN} tokens); {steps} steps, first {args.warmup} left out; AdamW; word embeddings "
          f"{'trained' if args.train_embeddings else 'frozen'}\n")
    print("| path | s/step | queries/s | share of ceiling |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['path']} | {r['seconds_per_step']:.3f} | {r['queries_per_s']:,.0f} | "
              f"{100 * r['queries_per_s'] / ceiling:.0f}% |")
    print(f"| profile: tokenizing one batch (1 thread) | {tok_sec:.3f} | | |")
    if args.json:
        args.json.write_text(json.dumps({"device": gpu, "rows": rows, "tokenize_batch_s": tok_sec,
                                         "args": vars(args)}, default=str, indent=2))


if __name__ == "__main__":
    main()

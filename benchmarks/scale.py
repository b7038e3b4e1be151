"""How BM25's cost grows with the corpus: lexdr's out-of-core index beside plain bm25s, 10k to 10M passages.

Corpora: :mod:`lexdr.synthetic` passages (about 80 words; a word-bigram model fitted on a dev corpus plus an
open-vocabulary tail that grows by Heaps' law), streamed to JSONL under ``--work`` (default
``benchmarks/out/scale``, ignored by git); the N-passage corpus is the prefix of every bigger one. Queries:
1,000 short texts from the same model. Analyzer and BM25 parameters: the language's defaults, the same on both
sides, so both index the very same terms.

Every build and every search runs in its own subprocess (``--child``), which reports its wall seconds and its
peak RSS (``ru_maxrss`` of itself; analysis workers separately), so no measurement inherits another's memory:

* **lexdr** = ``lexdr.sparse.outofcore.build_out_of_core`` over ``lexdr.formats.iter_corpus`` (reading and
  analysis included; analysis in 2 worker processes), then ``BM25Index.load(mmap=True).search`` (analysis of
  the queries included, top 100, 2 threads);
* **bm25s** = bm25s indexing lexdr's terms: read the corpus into a list, analyze it with the same analyzer
  (in process, as ``Analyzer.analyze_batch`` does for a rule-based analyzer), ``bm25s.BM25.index`` on the term
  lists, ``save`` (the same index contents; bm25s's own README path, ``bm25s.tokenize`` with PyStemmer, is
  timed beside ``lexdr index sparse`` by ``bm25_build.py``); search = ``BM25.load(mmap=True)``, analyze the queries, map terms to ids, then
  ``retrieve(k=100)`` (the faster of ``n_threads`` 0 and 2; lexdr: the faster of two passes).

Run from the repository root (each size N takes about N / 1,500 s per side on 2 cores):

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/scale.py --sizes 10000 100000 1000000

Writes ``benchmarks/results/scale.md`` / ``scale.json`` / ``scale.png`` (merging with sizes measured before).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "benchmarks"))

TOP_K = 100


def _rss() -> dict:
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_rss_workers_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ------------------------------------------------------------------------------------------------ children
def child_ooc_build(corpus: Path, out: Path, lang: str, max_docs: int) -> dict:
    from lexdr.formats import iter_corpus
    from lexdr.sparse.outofcore import build_out_of_core

    t0 = time.perf_counter()
    build_out_of_core(iter_corpus(corpus), out, lang=lang, max_docs_in_memory=max_docs, n_jobs=2)
    seconds = time.perf_counter() - t0
    cfg = json.loads((out / "config.json").read_text())
    return {"seconds": seconds, "phases": cfg["build"]["seconds"], "shards": cfg["build"]["shards"],
            "postings": cfg["build"]["postings"], "vocab": cfg["vocab_size"], "docs": cfg["num_docs"],
            "disk_bytes": _du(out), **_rss(), "peak_rss_workers_mib": cfg["build"].get("analysis_peak_rss_mib", 0.0)}


def child_ooc_search(index: Path, queries: Path) -> dict:
    from lexdr.formats import read_queries
    from lexdr.sparse import BM25Index

    qs = read_queries(queries)
    t0 = time.perf_counter()
    idx = BM25Index.load(index, mmap=True)
    t1 = time.perf_counter()
    times = []
    for _ in range(2):  # best of two passes (the first also warms the analyzer and the page cache)
        s0 = time.perf_counter()
        run = idx.search(qs, k=TOP_K, n_threads=2)
        times.append(time.perf_counter() - s0)
    search_s = min(times)
    return {"load_s": t1 - t0, "search_s": search_s, "qps": len(qs) / search_s, "seconds_by_pass": times,
            "hits_per_query": sum(map(len, run.values())) / len(qs), **_rss()}


def child_bm25s_build(corpus: Path, out: Path, lang: str) -> dict:
    import bm25s

    from lexdr.analysis import default_bm25_params, get_analyzer
    from lexdr.formats import iter_corpus

    analyzer = get_analyzer(lang)
    k1, b = default_bm25_params(lang)
    t0 = time.perf_counter()
    docs = list(iter_corpus(corpus))
    texts = [d.full_text() for d in docs]
    t1 = time.perf_counter()
    terms = analyzer.analyze_batch(texts, n_jobs=2)
    t2 = time.perf_counter()
    retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
    retriever.index(terms, show_progress=False)
    t3 = time.perf_counter()
    retriever.save(out, show_progress=False)
    t4 = time.perf_counter()
    return {"seconds": t4 - t0, "read_s": t1 - t0, "analyze_s": t2 - t1, "index_s": t3 - t2, "save_s": t4 - t3,
            "disk_bytes": _du(out), **_rss()}


def child_bm25s_search(index: Path, queries: Path, lang: str) -> dict:
    import bm25s

    from lexdr.analysis import get_analyzer
    from lexdr.formats import read_queries

    analyzer = get_analyzer(lang)
    qs = read_queries(queries)
    t0 = time.perf_counter()
    retriever = bm25s.BM25.load(index, mmap=True)
    t1 = time.perf_counter()
    best = {}
    for n_threads in (0, 2):
        s0 = time.perf_counter()
        vocab = retriever.vocab_dict
        ids = [[vocab[t] for t in analyzer(q.text) if t in vocab] for q in qs]
        live = [x for x in ids if x]
        retriever.retrieve(live, k=TOP_K, n_threads=n_threads, show_progress=False)
        best[n_threads] = time.perf_counter() - s0
    search_s = min(best.values())
    return {"load_s": t1 - t0, "search_s": search_s, "qps": len(qs) / search_s,
            "seconds_by_threads": best, **_rss()}


def child_lucene_build(corpus: Path, out: Path, lang: str, threads: int) -> dict:
    """Lucene (Pyserini's ``pyserini.index.lucene``, as a subprocess: the JVM runs in it) over a JsonCollection.

    Runs under the Pyserini virtualenv's Python (``--lucene-python``). Writing the JsonCollection is timed apart
    (``convert_s``); ``seconds`` is the indexer alone, JVM start included. Postings only: no positions, doc
    vectors or raw text (lexdr's index stores none of them either).
    """
    import shutil

    coll = out.parent / f"{out.name}-collection"
    coll.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(corpus, encoding="utf-8") as src, open(coll / "docs.jsonl", "w", encoding="utf-8") as dst:
        for line in src:
            d = json.loads(line)
            text = f"{d.get('title') or ''} {d['text']}".strip()
            dst.write(json.dumps({"id": d["_id"], "contents": text}, ensure_ascii=False) + "\n")
    convert_s = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "pyserini.index.lucene", "--collection", "JsonCollection", "--input", str(coll),
           "--index", str(out), "--generator", "DefaultLuceneDocumentGenerator", "--threads", str(threads),
           "--language", lang]
    t1 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - t1
    shutil.rmtree(coll, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"Lucene indexing failed (rc={proc.returncode}): {proc.stdout[-2000:]}")
    return {"seconds": seconds, "convert_s": convert_s, "threads": threads, "disk_bytes": _du(out),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def child_lucene_search(index: Path, queries: Path, lang: str, k1: float, b: float, threads: int) -> dict:
    """``LuceneSearcher.batch_search`` (BM25 with lexdr's k1/b for the language, top 100), best of two passes."""
    from _lucene import import_lucene_searcher

    rows = [line.rstrip("\n").split("\t", 1) for line in open(queries, encoding="utf-8") if line.strip()]
    qids, texts = [r[0] for r in rows], [r[1] for r in rows]
    t0 = time.perf_counter()
    searcher = import_lucene_searcher()(str(index))
    searcher.set_language(lang)
    searcher.set_bm25(k1, b)
    t1 = time.perf_counter()
    times = []
    for _ in range(2):
        s0 = time.perf_counter()
        hits = searcher.batch_search(texts, qids, k=TOP_K, threads=threads)
        times.append(time.perf_counter() - s0)
    search_s = min(times)
    return {"load_s": t1 - t0, "search_s": search_s, "qps": len(qids) / search_s, "seconds_by_pass": times,
            "hits_per_query": sum(map(len, hits.values())) / len(qids), **_rss()}


def run_child(args: list[str], timeout: float | None = None, python: str | None = None) -> dict:
    cmd = [python or sys.executable, str(Path(__file__).resolve()), "--child", *args]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: {' | '.join(tail)}", "wall_s": time.perf_counter() - t0}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ corpora
def ensure_corpus(work: Path, n: int, task: str, n_queries: int) -> tuple[Path, Path, dict]:
    from lexdr.synthetic import fit_bigram_model, sample_queries, write_corpus, write_queries
    from lexdr.tasks import load_dev_task

    corpus, queries = work / f"corpus-{n}.jsonl", work / f"queries-{n}.tsv"
    info: dict = {}
    if not corpus.is_file() or not queries.is_file():
        model = fit_bigram_model(d.full_text() for d in load_dev_task(task).corpus)
        t0 = time.perf_counter()
        if not corpus.is_file():
            write_corpus(model, n, corpus, seed=0)
            info["generate_s"] = time.perf_counter() - t0
        write_queries(sample_queries(model, n_queries, n, seed=1), queries)
        info["model"] = model.to_json()
    info["corpus_bytes"] = corpus.stat().st_size
    return corpus, queries, info


def measure(n: int, args) -> dict:
    import shutil

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    corpus, queries, info = ensure_corpus(work, n, args.task, args.queries)
    print(f"[N={n}] corpus {info['corpus_bytes'] / 2**20:.0f} MiB", flush=True)
    row: dict = {"n": n, **info}
    ooc_dir, plain_dir = work / f"lexdr-{n}", work / f"bm25s-{n}"
    row["lexdr_build"] = run_child(["ooc-build", str(corpus), str(ooc_dir), args.lang, str(args.max_docs)])
    print(f"[N={n}] lexdr build {row['lexdr_build']}", flush=True)
    if "error" not in row["lexdr_build"]:
        row["lexdr_search"] = run_child(["ooc-search", str(ooc_dir), str(queries)])
        print(f"[N={n}] lexdr search {row['lexdr_search']}", flush=True)
    if n <= args.bm25s_max:
        row["bm25s_build"] = run_child(["bm25s-build", str(corpus), str(plain_dir), args.lang])
        print(f"[N={n}] bm25s build {row['bm25s_build']}", flush=True)
        if "error" not in row["bm25s_build"]:
            row["bm25s_search"] = run_child(["bm25s-search", str(plain_dir), str(queries), args.lang])
            print(f"[N={n}] bm25s search {row['bm25s_search']}", flush=True)
    if args.lucene_python and n <= args.lucene_max:
        from lexdr.analysis import default_bm25_params

        k1, b = default_bm25_params(args.lang)
        lucene_dir = work / f"lucene-{n}"
        row["lucene_build"] = run_child(["lucene-build", str(corpus), str(lucene_dir), args.lang, "2"],
                                        python=args.lucene_python)
        print(f"[N={n}] lucene build {row['lucene_build']}", flush=True)
        if "error" not in row["lucene_build"]:
            row["lucene_search"] = run_child(["lucene-search", str(lucene_dir), str(queries), args.lang, str(k1),
                                              str(b), "2"], python=args.lucene_python)
            print(f"[N={n}] lucene search {row['lucene_search']}", flush=True)
        if not args.keep:
            shutil.rmtree(lucene_dir, ignore_errors=True)
    if not args.keep:
        for d in (ooc_dir, plain_dir):
            shutil.rmtree(d, ignore_errors=True)
    return row


# ------------------------------------------------------------------------------------------------ report
def machine_info() -> dict:
    import bm25s
    import numpy as np

    from _common import cpu_name

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu_name(platform.processor() or "unknown CPU"), "cores": os.cpu_count(),
            "memory_gib": round(mem, 1), "python": platform.python_version(), "numpy": np.__version__,
            "bm25s": bm25s.__version__}


def fit_power(ns: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares of log y = log a + p log N; returns (a, p)."""
    import numpy as np

    p, loga = np.polyfit(np.log(ns), np.log(ys), 1)
    return float(np.exp(loga)), float(p)


def fit_linear(ns: list[float], ys: list[float]) -> tuple[float, float]:
    """y = c0 + c1 N by least squares (memory: a fixed base plus a per-passage part)."""
    import numpy as np

    c1, c0 = np.polyfit(np.asarray(ns, dtype=float), np.asarray(ys, dtype=float), 1)
    return float(c0), float(c1)


def growth(rows: list[dict]) -> dict:
    fits: dict = {}
    for side in ("lexdr", "bm25s"):
        ok = [r for r in rows if "error" not in r.get(f"{side}_build", {"error": 1})]
        if len(ok) < 2:
            continue
        ns = [r["n"] for r in ok]
        fits[side] = {
            "build_seconds": fit_power(ns, [r[f"{side}_build"]["seconds"] for r in ok]),
            "build_rss_mib_linear": fit_linear(ns, [r[f"{side}_build"]["peak_rss_mib"] for r in ok]),
            "disk_bytes_linear": fit_linear(ns, [r[f"{side}_build"]["disk_bytes"] for r in ok]),
            "sizes": ns,
        }
        srch = [r for r in ok if "error" not in r.get(f"{side}_search", {"error": 1})]
        if len(srch) >= 2:
            fits[side]["search_rss_mib_linear"] = fit_linear([r["n"] for r in srch],
                                                             [r[f"{side}_search"]["peak_rss_mib"] for r in srch])
            fits[side]["search_seconds_per_query"] = fit_power(
                [r["n"] for r in srch], [1 / r[f"{side}_search"]["qps"] for r in srch])
    vocab_rows = [r for r in rows if "vocab" in r.get("lexdr_build", {})]
    if len(vocab_rows) >= 2:
        fits["vocab"] = fit_power([r["n"] for r in vocab_rows], [r["lexdr_build"]["vocab"] for r in vocab_rows])
    return fits


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for side, style in (("lexdr", "o-"), ("bm25s", "s--")):
        ok = [r for r in rows if "error" not in r.get(f"{side}_build", {"error": 1})]
        if not ok:
            continue
        ns = [r["n"] for r in ok]
        axes[0].loglog(ns, [r[f"{side}_build"]["seconds"] for r in ok], style, label=f"{side} build s")
        axes[1].loglog(ns, [r[f"{side}_build"]["peak_rss_mib"] for r in ok], style, label=f"{side} build peak RSS")
        srch = [r for r in ok if "error" not in r.get(f"{side}_search", {"error": 1})]
        axes[1].loglog([r["n"] for r in srch], [r[f"{side}_search"]["peak_rss_mib"] for r in srch], style,
                       alpha=0.5, label=f"{side} search peak RSS")
        axes[2].loglog([r["n"] for r in srch], [1000 / r[f"{side}_search"]["qps"] for r in srch], style,
                       label=f"{side} ms/query")
    vocab = [r for r in rows if "vocab" in r.get("lexdr_build", {})]
    axes[0].loglog([r["n"] for r in vocab], [r["lexdr_build"]["vocab"] / 1000 for r in vocab], "^:",
                   label="vocabulary (thousands of terms)")
    for ax, title in zip(axes, ("build seconds / vocabulary", "peak RSS (MiB)", "search ms per query")):
        ax.set_xlabel("passages (N)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _cell(d: dict | None, key: str, fmt: str = "{:.1f}") -> str:
    if not d:
        return "–"
    if "error" in d:
        return "failed"
    return fmt.format(d[key])


def mrtydi_table(fits: dict) -> list[str]:
    """The fitted BM25 curves extrapolated to every Mr. TyDi corpus, beside lexdr.plan's whole-run verdict."""
    from lexdr.plan import MRTYDI_SIZES, PlanSettings, plan_run

    f, p = fits["lexdr"], fits.get("bm25s")
    a, pw = f["build_seconds"]
    c0, c1 = f["build_rss_mib_linear"]
    _, d1 = f["disk_bytes_linear"]
    s0, s1 = f.get("search_rss_mib_linear", (0.0, 0.0))
    qa, qp = f.get("search_seconds_per_query", (float("nan"), 0.0))
    plan = plan_run(MRTYDI_SIZES, PlanSettings(memory_bytes=24 * 2**30))
    verdicts = plan.verdicts()
    lines = ["", "## Extrapolated to Mr. TyDi (from the fits above; not measured at these sizes)", "",
             "BM25 columns: the lexdr fits (build on 2 cores with the Indonesian Snowball analyzer; segmenter "
             "languages ja/ko/th analyze slower) and, for comparison, the in-memory (plain bm25s) build's peak "
             "RSS. Linear memory fits overstate large N a little (the vocabulary grows as N^β, β < 1). "
             "Whole run: `lexdr.plan.plan_run` with every stage (dense encoding dominates: CPU rate from "
             "`retrieval.md`, GPU rate the H200 measurement in `lexdr.plan`), budget 24 GiB.", "",
             "| language | passages | BM25 build | BM25 build peak RSS (lexdr, out of core) | in-memory bm25s peak RSS "
             "| BM25 index on disk | BM25 ms/query | BM25 search peak RSS | whole run on this machine |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for lang, (n, _, _) in MRTYDI_SIZES.items():
        build_h = a * n ** pw / 3600
        mem = f"{(p['build_rss_mib_linear'][0] + p['build_rss_mib_linear'][1] * n) / 1024:.1f} GiB" if p else "–"
        lines.append(f"| {lang} | {n:,} | {build_h:.1f} h | {(c0 + c1 * n) / 1024:.1f} GiB | {mem} | "
                     f"{d1 * n / 2**30:.1f} GiB | {1000 * qa * n ** qp:.1f} | {(s0 + s1 * n) / 1024:.1f} GiB | "
                     f"{verdicts[lang]} |")
    return lines


def _mib(d: dict | None) -> str:
    return "–" if not d else "failed" if "error" in d else f"{d['disk_bytes'] / 2**20:.0f}"


def write_markdown(report: dict, path: Path) -> None:
    m = report["machine"]
    rows = report["rows"]
    lines = [
        "# BM25 cost as the corpus grows: lexdr out of core vs plain bm25s",
        "",
        f"Measured {report['date']} by `benchmarks/scale.py` on {m['cpu']} ({m['cores']} cores, "
        f"{report.get('conditions', 'shared with other jobs')}; {m['memory_gib']} GiB), Python {m['python']}, numpy {m['numpy']}, bm25s {m['bm25s']}. "
        f"Corpora: `lexdr.synthetic` passages (about 80 words) from a word-bigram model fitted on "
        f"`{report['task']}` plus a Heaps'-law open-vocabulary tail; analyzer `{report['lang']}` default, "
        f"Lucene BM25 with the language's k1/b, top {TOP_K}, {report['queries']} queries from the same model. "
        "Each build and search ran in its own subprocess; peak RSS is that process's `ru_maxrss` (lexdr's "
        "analysis workers: their own peak, in brackets). Wall seconds; see the notes for when each row ran.",
        "",
        f"Command: `{report['command']}`",
        "",
        "| N | vocabulary | postings | lexdr build s | bm25s build s | time ratio lexdr/bm25s | lexdr build peak RSS "
        "MiB [workers] | bm25s build peak RSS MiB | lexdr index MiB | bm25s index MiB | lexdr search q/s | bm25s "
        "search q/s | speed ratio lexdr/bm25s | lexdr search peak RSS MiB | bm25s search peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lb, ls = r.get("lexdr_build"), r.get("lexdr_search")
        pb, ps = r.get("bm25s_build"), r.get("bm25s_search")
        ratio_b = (f"{lb['seconds'] / pb['seconds']:.2f}" if lb and pb and "error" not in lb and "error" not in pb
                   else "–")
        ratio_s = (f"{ls['qps'] / ps['qps']:.2f}" if ls and ps and "error" not in ls and "error" not in ps else "–")
        workers = f" [{lb['peak_rss_workers_mib']:.0f}]" if lb and "error" not in lb else ""
        lines.append(
            f"| {r['n']:,} | {_cell(lb, 'vocab', '{:,}')} | {_cell(lb, 'postings', '{:,}')} | "
            f"{_cell(lb, 'seconds')} | {_cell(pb, 'seconds')} | {ratio_b} | {_cell(lb, 'peak_rss_mib', '{:.0f}')}"
            f"{workers} | {_cell(pb, 'peak_rss_mib', '{:.0f}')} | "
            f"{_mib(lb)} | {_mib(pb)} | {_cell(ls, 'qps', '{:.0f}')} | "
            f"{_cell(ps, 'qps', '{:.0f}')} | {ratio_s} | {_cell(ls, 'peak_rss_mib', '{:.0f}')} | "
            f"{_cell(ps, 'peak_rss_mib', '{:.0f}')} |")
    lines += ["", "Build phases (seconds): lexdr = analyze (pass 1, 2 workers) / score (pass 2) / merge; bm25s = "
              "read / analyze (1 process) / `index` / `save`.", "",
              "| N | lexdr analyze | score | merge | shards | bm25s read | analyze | index | save |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lb, pb = r.get("lexdr_build") or {}, r.get("bm25s_build") or {}
        ph = lb.get("phases", {})
        lines.append(f"| {r['n']:,} | {ph.get('analyze', '–')} | {ph.get('score', '–')} | {ph.get('merge', '–')} | "
                     f"{lb.get('shards', '–')} | " + " | ".join(
                         f"{pb[k]:.1f}" if k in pb else "–" for k in ("read_s", "analyze_s", "index_s", "save_s"))
                     + " |")
    lucene_rows = [r for r in rows if r.get("lucene_build")]
    if lucene_rows:
        lines += ["", "Second speed anchor: Lucene (Pyserini 0.22.1 / Anserini on OpenJDK 17, `python -m "
                  "pyserini.index.lucene --threads 2 --language <lang>`, postings only; `LuceneSearcher.batch_search("
                  "threads=2)`, BM25 with the same k1/b, top 100, best of two passes), run in the same benchmark "
                  "beside the other two (`--lucene-python`). Lucene analyzes with its own Indonesian analyzer, so "
                  "its terms differ slightly from lexdr's Snowball ones: compare speed, not index contents. Build "
                  "seconds are the indexer's subprocess (JVM start included; writing its JsonCollection is apart), "
                  "its peak RSS is the JVM's.", "",
                  "| N | Lucene build s | lexdr / Lucene build time | Lucene build peak RSS MiB | Lucene index MiB | "
                  "Lucene search q/s | lexdr / Lucene queries/s |", "|---|---|---|---|---|---|---|"]
        for r in lucene_rows:
            lb, ls = r.get("lexdr_build"), r.get("lexdr_search")
            kb, ks = r.get("lucene_build"), r.get("lucene_search")
            ok = lambda d: d and "error" not in d  # noqa: E731
            rb = f"{lb['seconds'] / kb['seconds']:.2f}" if ok(lb) and ok(kb) else "–"
            rs = f"{ls['qps'] / ks['qps']:.2f}" if ok(ls) and ok(ks) else "–"
            lines.append(f"| {r['n']:,} | {_cell(kb, 'seconds')} | {rb} | {_cell(kb, 'peak_rss_mib', '{:.0f}')} | "
                         f"{_mib(kb)} | {_cell(ks, 'qps', '{:.0f}')} | {rs} |")
    fits = report.get("fits", {})
    if fits:
        lines += ["", "## Growth (fitted over the measured sizes)", ""]
        if "vocab" in fits:
            a, p = fits["vocab"]
            lines.append(f"- vocabulary ≈ {a:.3g} · N^{p:.3f} (Heaps' law over the analyzed terms)")
        for side in ("lexdr", "bm25s"):
            f = fits.get(side)
            if not f:
                continue
            a, p = f["build_seconds"]
            c0, c1 = f["build_rss_mib_linear"]
            d0, d1 = f["disk_bytes_linear"]
            if len(f["sizes"]) < 3:
                lines.append(f"- {side} (from {len(f['sizes'])} sizes only: a weak fit)")
            lines.append(f"- {side}: build seconds ≈ {a:.3g} · N^{p:.3f}; build peak RSS ≈ {c0:.0f} MiB + "
                         f"{c1 * 1e6:.0f} MiB per million passages; index on disk ≈ {d1:.0f} bytes per passage")
            if "search_rss_mib_linear" in f:
                s0, s1 = f["search_rss_mib_linear"]
                qa, qp = f["search_seconds_per_query"]
                lines.append(f"  search peak RSS ≈ {s0:.0f} MiB + {s1 * 1e6:.0f} MiB per million passages; "
                             f"seconds per query ≈ {qa:.3g} · N^{qp:.3f}")
    if "lexdr" in fits:
        lines += mrtydi_table(fits)
    lines += ["", "![cost growth](scale.png)", ""]
    if report.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    if report.get("dense_section"):  # kept across runs: written by hand from dense_index.py's reports
        lines += [""] + report["dense_section"] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--task", default="facqa-id", help="dev task whose corpus the bigram model is fitted on")
    ap.add_argument("--lang", default="id")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--max-docs", type=int, default=200_000, help="lexdr's max_docs_in_memory")
    ap.add_argument("--bm25s-max", type=int, default=1_000_000, help="largest N to build with plain bm25s")
    ap.add_argument("--lucene-python", help="Python of a Pyserini 0.22.1 virtualenv (see lucene_reference.py): "
                    "adds Lucene's build and search beside bm25s, a second speed anchor")
    ap.add_argument("--lucene-max", type=int, default=1_000_000, help="largest N to build with Lucene")
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "out" / "scale"))
    ap.add_argument("--keep", action="store_true", help="keep the built indexes")
    ap.add_argument("--out", default=str(RESULTS / "scale"))
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from scale.json, measure nothing")
    args = ap.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        fn = {"ooc-build": lambda c, o, lang, m: child_ooc_build(Path(c), Path(o), lang, int(m)),
              "ooc-search": lambda i, q: child_ooc_search(Path(i), Path(q)),
              "bm25s-build": lambda c, o, lang: child_bm25s_build(Path(c), Path(o), lang),
              "bm25s-search": lambda i, q, lang: child_bm25s_search(Path(i), Path(q), lang),
              "lucene-build": lambda c, o, lang, t: child_lucene_build(Path(c), Path(o), lang, int(t)),
              "lucene-search": lambda i, q, lang, k1, b, t: child_lucene_search(Path(i), Path(q), lang, float(k1),
                                                                              float(b), int(t))}[kind]
        print(json.dumps(fn(*rest)))
        return 0
    out = Path(args.out)
    old = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    rows = {r["n"]: r for r in old.get("rows", [])}
    if args.report_only:
        args.sizes = []
    for n in args.sizes:
        rows[n] = measure(n, args)
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    report = {"date": old.get("date", date) if args.report_only else date, "machine": machine_info(),
              "task": args.task, "lang": args.lang, "queries": args.queries,
              "command": old.get("command") if args.report_only else
                         "PYTHONPATH=src .venv/bin/python benchmarks/scale.py --sizes " + " ".join(map(str, args.sizes))
                         + (f" --lucene-python {args.lucene_python}" if args.lucene_python else ""),
              "conditions": old.get("conditions", "shared with other jobs") if args.report_only else
                            "load: see the notes",
              "notes": old.get("notes", []), "dense_section": old.get("dense_section", []),
              "rows": [rows[n] for n in sorted(rows)]}
    report["fits"] = growth(report["rows"])
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    try:
        plot(report["rows"], out.with_suffix(".png"))
    except ImportError:
        print("matplotlib missing: no plot (pip install matplotlib)", file=sys.stderr)
    write_markdown(report, out.with_suffix(".md"))
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

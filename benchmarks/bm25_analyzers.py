"""Measure lexdr's BM25 analyzers and parameters on the dev tasks, beside Lucene's numbers, and its speed.

For every dev task (``lexdr.tasks.DEV_TASKS``) and every candidate analyzer of its language
(``lexdr.analysis.list_analyzers(lang)``: the language presets, the language-neutral ``unicode`` analyzer and,
when the multilingual tokenizer folder exists, ``subword``) x BM25 settings (k1, b) in
{(0.9, 0.4) Lucene/Anserini default, (1.2, 0.75), (1.5, 0.75)}: index the corpus (``Doc.full_text()``), search
all queries (top 100) and score MRR@10, MRR@100, Recall@100, nDCG@10 on the test half and on all queries with
``lexdr.evaluation.evaluate``. Where ``benchmarks/results/lucene_reference.json`` exists (written by
``benchmarks/lucene_reference.py``), Lucene's rows for the same task and setting are printed beside ours.

Speed: for each task's default analyzer, and for all dev corpora concatenated (a larger multilingual corpus),
index docs/s and search queries/s of lexdr's ``BM25Index`` against plain ``bm25s`` on the same token ids,
best of 3 runs; analysis (tokenization) is timed on its own.

Run from the repository root (about 5 minutes on 2 cores):

    PYTHONPATH=src .venv/bin/python benchmarks/bm25_analyzers.py [--tasks xquad-r-de ...] [--subword-tokenizer DIR]

Writes ``benchmarks/results/bm25.md`` (tables with date and machine) and the raw numbers to
``benchmarks/out/bm25_analyzers.json`` (ignored by git).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from lexdr.analysis import default_analyzer_name, default_bm25_params, get_analyzer, list_analyzers
from lexdr.analysis.subword import default_subword_tokenizer
from lexdr.evaluation import evaluate
from lexdr.sparse import BM25Index
from lexdr.sparse.vocab import build_vocab, terms_to_ids
from lexdr.tasks import DEV_TASKS, load_dev_task
from _common import cpu_name  # benchmarks/_common.py

REPO = Path(__file__).resolve().parents[1]
RESULTS_MD = REPO / "benchmarks" / "results" / "bm25.md"
RAW_JSON = REPO / "benchmarks" / "out" / "bm25_analyzers.json"
LUCENE_JSON = REPO / "benchmarks" / "results" / "lucene_reference.json"

METRICS = ("MRR@10", "MRR@100", "Recall@100", "nDCG@10")
TOP_K = 100
THREADS = 2
SETTINGS = {"k0.9_b0.4": (0.9, 0.4), "k1.2_b0.75": (1.2, 0.75), "k1.5_b0.75": (1.5, 0.75)}


# ------------------------------------------------------------------------------------------------ machine
def machine_info() -> dict:
    import bm25s

    cpu = cpu_name(default=platform.processor() or "")
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = float("nan")
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_gib, 1), "os": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__, "bm25s": bm25s.__version__}


# ------------------------------------------------------------------------------------------------ quality
def candidate_analyzers(lang: str, subword: str | None) -> list[str]:
    names = [n for n in list_analyzers(lang) if n != "subword"]
    if subword:
        names.append("subword")
    return names


def run_quality(name: str, subword: str | None) -> dict:
    lang = DEV_TASKS[name]
    task = load_dev_task(name)
    test_qids = [q.query_id for q in task.queries_of("test")]
    qrels_test, qrels_all = task.qrels_of("test"), task.qrels
    doc_ids = [d.doc_id for d in task.corpus]
    texts = [d.full_text() for d in task.corpus]
    qids = [q.query_id for q in task.queries]
    out = {"language": lang, "num_docs": len(doc_ids), "num_queries_all": len(qids),
           "num_queries_test": len(test_qids), "default_analyzer": default_analyzer_name(lang), "analyzers": {}}
    for aname in candidate_analyzers(lang, subword):
        analyzer = get_analyzer(lang, aname, tokenizer=subword) if aname == "subword" else get_analyzer(lang, aname)
        t0 = time.perf_counter()
        doc_terms = analyzer.analyze_batch(texts, n_jobs=2)
        t1 = time.perf_counter()
        query_terms = analyzer.analyze_batch([q.text for q in task.queries], n_jobs=2)
        t2 = time.perf_counter()
        entry = {"description": analyzer.description, "analyze_docs_s": round(t1 - t0, 3),
                 "analyze_queries_s": round(t2 - t1, 3), "settings": {}}
        for setting, (k1, b) in SETTINGS.items():
            index = BM25Index(analyzer, k1=k1, b=b).index_terms(doc_ids, doc_terms)
            run = index.search_terms(qids, query_terms, k=TOP_K, n_threads=THREADS)
            entry["vocab_size"] = index.vocab_size
            entry["settings"][setting] = {
                "k1": k1, "b": b,
                "test": evaluate({q: run[q] for q in test_qids}, qrels_test, METRICS),
                "all": evaluate(run, qrels_all, METRICS),
                "empty_queries": sum(1 for h in run.values() if not h),
            }
        s = entry["settings"]["k0.9_b0.4"]
        print(f"[{name}] {aname:<18} test MRR@10={s['test']['MRR@10']:.4f} R@100={s['test']['Recall@100']:.4f} "
              f"| all MRR@10={s['all']['MRR@10']:.4f}  (analysis {t2 - t0:.1f}s)", flush=True)
        out["analyzers"][aname] = entry
    return out


# ------------------------------------------------------------------------------------------------ speed
def _race(fns: dict, repeat: int = 5) -> dict[str, float]:
    """CPU seconds (this process, all threads) of each function: the best of ``repeat`` interleaved rounds.

    CPU time, not wall time: on a shared 2-core machine other jobs stretch wall time unevenly, while the CPU
    a function itself burns stays put. Wall times are kept as ``name + "_wall"``.
    """
    best = {name: float("inf") for name in fns}
    best.update({f"{name}_wall": float("inf") for name in fns})
    for _ in range(repeat):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            best[name] = min(best[name], time.process_time() - c0)
            best[f"{name}_wall"] = min(best[f"{name}_wall"], time.perf_counter() - t0)
    return best


def run_speed(label: str, lang: str, doc_ids: list[str], texts: list[str], qids: list[str], qtexts: list[str],
              analyzer_name: str | None = None, repeat: int = 5, copies: int = 1) -> dict:
    """lexdr vs plain bm25s on identical inputs; analysis timed separately."""
    import bm25s

    analyzer = get_analyzer(lang, analyzer_name)
    k1, b = default_bm25_params(lang)
    t0 = time.perf_counter()
    doc_terms = analyzer.analyze_batch(texts, n_jobs=2)
    t_analyze_docs = time.perf_counter() - t0
    if copies > 1:  # a larger corpus from the same text: copies of every document under new ids
        doc_ids = [f"{c}/{d}" for c in range(copies) for d in doc_ids]
        doc_terms = doc_terms * copies
    query_terms = analyzer.analyze_batch(qtexts, n_jobs=2)
    k = min(TOP_K, len(doc_ids))

    # Indexing. lexdr: terms -> vocab/ids -> bm25s. Plain bm25s: the same term lists (bm25s builds its own
    # vocab), and the same ids (bm25s index only).
    ids, vocab = build_vocab(doc_terms)

    def plain_tokens():
        bm25s.BM25(k1=k1, b=b, method="lucene").index(doc_terms, show_progress=False)

    def plain_ids():
        bm25s.BM25(k1=k1, b=b, method="lucene").index((ids, dict(vocab)), create_empty_token=False,
                                                      show_progress=False)

    t_index = _race({"lexdr": lambda: BM25Index(analyzer, k1=k1, b=b).index_terms(doc_ids, doc_terms),
                     "tokens": plain_tokens, "ids": plain_ids}, repeat)
    t_lexdr_index, t_plain_tokens, t_plain_ids = t_index["lexdr"], t_index["tokens"], t_index["ids"]

    # Searching: the same index, the same query ids. Plain bm25s returns arrays (k per query, no tie order,
    # zero-score documents included); lexdr returns the Run of Hits.
    index = BM25Index(analyzer, k1=k1, b=b).index_terms(doc_ids, doc_terms)
    q_ids = [terms_to_ids(t, index._vocab) for t in query_terms]
    qids_live = [q for q, x in zip(qids, q_ids) if x]
    q_ids_live = [x for x in q_ids if x]
    retr = index.retriever
    t_search = _race({
        "bm25s2": lambda: retr.retrieve(q_ids_live, k=k, n_threads=THREADS, show_progress=False),
        "bm25s0": lambda: retr.retrieve(q_ids_live, k=k, n_threads=0, show_progress=False),
        "lexdr_rank": lambda: index.rank_ids(q_ids_live, k=k, n_threads=THREADS),
        "lexdr_ids": lambda: index.search_ids(qids_live, q_ids_live, k=k, n_threads=THREADS),
        "lexdr_ids1": lambda: index.search_ids(qids_live, q_ids_live, k=k, n_threads=1),
        "lexdr_terms": lambda: index.search_terms(qids, query_terms, k=k, n_threads=THREADS),
    }, repeat)
    t_plain_search2, t_plain_search0 = t_search["bm25s2"], t_search["bm25s0"]
    t_plain_search = min(t_plain_search0, t_plain_search2)
    t_lexdr_search_ids, t_lexdr_search_terms = t_search["lexdr_ids"], t_search["lexdr_terms"]
    n_docs, n_q = len(doc_ids), len(q_ids_live)
    res = {
        "label": label, "lang": lang, "analyzer": analyzer.name, "num_docs": n_docs, "num_queries": n_q,
        "analyze_docs_per_s": len(texts) / t_analyze_docs,  # analyzed once, before any copies "analyze_queries_per_s": len(qtexts) / t_analyze_queries,
        "lexdr_index_docs_per_s": n_docs / t_lexdr_index,
        "bm25s_index_tokens_docs_per_s": n_docs / t_plain_tokens,
        "bm25s_index_ids_docs_per_s": n_docs / t_plain_ids,
        "bm25s_search_threads2_q_per_s": n_q / t_plain_search2,
        "bm25s_search_threads0_q_per_s": n_q / t_plain_search0,
        "lexdr_rank_q_per_s": n_q / t_search["lexdr_rank"],
        "lexdr_search_ids_q_per_s": n_q / t_lexdr_search_ids,
        "hits_per_query": sum(len(d) for d, _ in index.rank_ids(q_ids_live, k=k)) / max(n_q, 1),
        "lexdr_search_ids_1thread_q_per_s": n_q / t_search["lexdr_ids1"],
        "lexdr_search_terms_q_per_s": n_q / t_lexdr_search_terms,
        "index_overhead_vs_bm25s_tokens": t_lexdr_index / t_plain_tokens - 1,
        "index_overhead_vs_bm25s_ids": t_lexdr_index / t_plain_ids - 1,
        "wall_bm25s_search_threads2_q_per_s": n_q / t_search["bm25s2_wall"],
        "wall_bm25s_search_threads0_q_per_s": n_q / t_search["bm25s0_wall"],
        "wall_lexdr_search_ids_q_per_s": n_q / t_search["lexdr_ids_wall"],
        "rank_overhead_vs_bm25s": t_search["lexdr_rank"] / t_plain_search - 1,
        "search_overhead_vs_bm25s": t_lexdr_search_ids / t_plain_search - 1,
    }
    print(f"[speed {label}] index {res['lexdr_index_docs_per_s']:.0f} docs/s (bm25s tokens "
          f"{res['bm25s_index_tokens_docs_per_s']:.0f}, ids {res['bm25s_index_ids_docs_per_s']:.0f}); search "
          f"{res['lexdr_search_ids_q_per_s']:.0f} q/s (bm25s threads=2 {res['bm25s_search_threads2_q_per_s']:.0f}, "
          f"threads=0 {res['bm25s_search_threads0_q_per_s']:.0f}); overhead index "
          f"{100 * res['index_overhead_vs_bm25s_tokens']:+.1f}% rank {100 * res['rank_overhead_vs_bm25s']:+.1f}% "
          f"search (Hits) {100 * res['search_overhead_vs_bm25s']:+.1f}%",
          flush=True)
    return res


# ------------------------------------------------------------------------------------------------ report
def load_lucene() -> dict:
    if not LUCENE_JSON.exists():
        return {}
    try:
        return json.loads(LUCENE_JSON.read_text(encoding="utf-8")).get("tasks", {})
    except (OSError, json.JSONDecodeError) as e:
        print(f"cannot read {LUCENE_JSON}: {e}", file=sys.stderr)
        return {}


def lucene_rows(lucene: dict, task: str) -> list[tuple[str, str, dict]]:
    rows = []
    for aname, a in lucene.get(task, {}).get("analyzers", {}).items():
        label = a.get("analyzer", aname).split(" ")[0].rsplit(".", 1)[-1]
        if aname != "pyserini":
            label = f"{aname} ({label})"
        for setting, s in a.get("settings", {}).items():
            rows.append((f"Lucene {label}", setting, s))
    return rows


def _fmt(m: dict) -> str:
    return f"{m['MRR@10']:.4f} | {m['MRR@100']:.4f} | {m['Recall@100']:.4f}"


def best_of_task(t: dict) -> tuple[str, str, dict]:
    """Best analyzer x setting of a task by all-queries MRR@100 (both halves: more queries, less noise)."""
    best = None
    for aname, a in t["analyzers"].items():
        for setting, s in a["settings"].items():
            key = s["all"]["MRR@100"]
            if best is None or key > best[0]:
                best = (key, aname, setting, s)
    assert best is not None
    return best[1], best[2], best[3]


def write_markdown(report: dict, path: Path) -> None:
    lucene = report["lucene"]
    m = report["machine"]
    lines = [
        "# BM25 analyzers and parameters on the dev tasks",
        "",
        "Rebuild: `PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/bm25_analyzers.py` (all dev tasks, quality "
        "and speed; Lucene rows need `lucene_reference.json`, from `benchmarks/lucene_reference.py`)",
        "",
        f"Measured {report['quality_date']} (quality) and {report['date']} (speed) by "
        f"`benchmarks/bm25_analyzers.py` on {m['cpu']} ({m['cores']} cores, "
        f"{m['memory_gib']} GiB), {m['os']}; Python {m['python']}, numpy {m['numpy']}, bm25s {m['bm25s']}.",
        "Corpus text = `Doc.full_text()`; top 100; metrics by `lexdr.evaluation.evaluate` (trec_eval conventions). "
        "Cells: MRR@10 | MRR@100 | R@100 on the **test** half, then on **all** queries. "
        "Lucene rows: Pyserini/Anserini from `benchmarks/results/lucene_reference.json`"
        + ("." if lucene else " (not present when this ran)."),
        "",
        "## Best lexdr setting per task vs Lucene",
        "",
        "| task | lang | lexdr best (analyzer, k1/b) | test MRR@10 | MRR@100 | R@100 | lexdr default | test MRR@10 | "
        "MRR@100 | R@100 | Lucene (k0.9_b0.4) | test MRR@10 | MRR@100 | R@100 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in report["tasks"].items():
        aname, setting, s = best_of_task(t)
        d_name = t["default_analyzer"]
        d_setting = report["default_settings"].get(t["language"], "k0.9_b0.4")
        d = t["analyzers"][d_name]["settings"][d_setting]
        luc = [r for r in lucene_rows(lucene, name) if r[1] == "k0.9_b0.4"]
        luc_cell = f"{luc[0][0]} | {_fmt(luc[0][2]['test'])}" if luc else "n/a | | |"
        lines.append(f"| {name} | {t['language']} | {aname}, {setting} | {_fmt(s['test'])} | {d_name}, {d_setting} | "
                     f"{_fmt(d['test'])} | {luc_cell} |")
    lines += ["", "Best = highest MRR@100 over all queries (both halves). Defaults are what "
              "`lexdr.analysis.get_analyzer(lang)` / `default_bm25_params(lang)` return now.", ""]
    lines += ["## All runs", ""]
    for name, t in report["tasks"].items():
        lines += [f"### {name} ({t['language']}: {t['num_docs']} docs, {t['num_queries_all']} queries, "
                  f"{t['num_queries_test']} in the test half)", "",
                  "| analyzer | k1/b | test MRR@10 | MRR@100 | R@100 | all MRR@10 | MRR@100 | R@100 | terms |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for aname, a in t["analyzers"].items():
            star = " (default)" if aname == t["default_analyzer"] else ""
            for setting, s in a["settings"].items():
                lines.append(f"| {aname}{star} | {setting} | {_fmt(s['test'])} | {_fmt(s['all'])} | "
                             f"{a['vocab_size']} |")
        for label, setting, s in lucene_rows(lucene, name):
            lines.append(f"| {label} | {setting} | {_fmt(s['test'])} | {_fmt(s['all'])} | |")
        lines.append("")
        lines.append("Analyzers: " + "; ".join(f"`{n}`: {a['description']}" for n, a in t["analyzers"].items()))
        lines.append("")
    lines += ["## Speed: lexdr BM25Index vs plain bm25s (same token ids, best of 5 interleaved rounds)", "",
              "Throughputs are per CPU-second of this process (all its threads), best of the rounds: other jobs "
              "shared the 2 cores while this ran, which stretches wall time but not the CPU a function burns "
              "(wall-clock search rates are in the second table). Analysis (tokenization) is timed separately, "
              "wall clock. **Index**: lexdr = vocabulary + ids + bm25s index, "
              "against bm25s indexing the same term lists (it builds its own vocabulary; overhead column) and the "
              "same ids. **Search**, k = 100, queries with at least one indexed term, lexdr with `n_threads=2`: "
              "*rank* = lexdr's ranking core (`rank_ids`: per query numpy arrays of document positions and scores, "
              "exact top-k, ties by doc id), the like-for-like counterpart of `bm25s.BM25.retrieve` (arrays; shown "
              "with `n_threads=2` and `n_threads=0`, overheads against the faster); *search* = the full `Run` of "
              "`Hit` objects that `BM25Index.search` returns.", "",
              "| corpus | lang / analyzer | docs | queries | hits/query | analysis docs/s | analysis q/s | "
              "index docs/s lexdr | bm25s (terms) | bm25s (ids) | index overhead | bm25s retrieve q/s thr=2 | thr=0 | "
              "lexdr rank q/s | rank overhead | lexdr search q/s | search overhead |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in report["speed"]:
        lines.append(
            f"| {s['label']} | {s['lang']} / {s['analyzer']} | {s['num_docs']} | {s['num_queries']} | "
            f"{s['hits_per_query']:.0f} | {s['analyze_docs_per_s']:.0f} | {s['analyze_queries_per_s']:.0f} | "
            f"{s['lexdr_index_docs_per_s']:.0f} | {s['bm25s_index_tokens_docs_per_s']:.0f} | "
            f"{s['bm25s_index_ids_docs_per_s']:.0f} | {100 * s['index_overhead_vs_bm25s_tokens']:+.1f}% | "
            f"{s['bm25s_search_threads2_q_per_s']:.0f} | {s['bm25s_search_threads0_q_per_s']:.0f} | "
            f"{s['lexdr_rank_q_per_s']:.0f} | {100 * s['rank_overhead_vs_bm25s']:+.1f}% | "
            f"{s['lexdr_search_ids_q_per_s']:.0f} | {100 * s['search_overhead_vs_bm25s']:+.1f}% |")
    lines += ["", "Wall clock, same rounds (lexdr uses 2 threads from 50,000 documents up):", "",
              "| corpus | bm25s retrieve q/s thr=2 | thr=0 | lexdr search q/s |", "|---|---|---|---|"]
    for s in report["speed"]:
        lines.append(f"| {s['label']} | {s['wall_bm25s_search_threads2_q_per_s']:.0f} | "
                     f"{s['wall_bm25s_search_threads0_q_per_s']:.0f} | {s['wall_lexdr_search_ids_q_per_s']:.0f} |")
    lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(DEV_TASKS), choices=list(DEV_TASKS))
    ap.add_argument("--subword-tokenizer", default=None,
                    help="tokenizer folder for the 'subword' analyzer (default: the provisioned e5 folder, if any)")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed comparison")
    ap.add_argument("--speed-only", action="store_true",
                    help=f"rerun only the speed comparison, reusing the quality results in {RAW_JSON.name}")
    ap.add_argument("--output", type=Path, default=RESULTS_MD)
    args = ap.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")

    subword = args.subword_tokenizer or default_subword_tokenizer()
    if not Path(subword).is_dir():
        print(f"no subword tokenizer folder at {subword}: skipping the 'subword' analyzer", flush=True)
        subword = None
    started = _dt.datetime.now(_dt.timezone.utc)
    report: dict = {"date": started.isoformat(timespec="seconds"), "machine": machine_info(),
                    "settings": SETTINGS, "lucene": load_lucene(), "tasks": {}, "speed": [],
                    "default_settings": {}}
    if args.speed_only:
        previous = json.loads(RAW_JSON.read_text(encoding="utf-8"))
        report["tasks"] = {n: previous["tasks"][n] for n in args.tasks}
        report["quality_date"] = previous.get("quality_date", previous["date"])
    else:
        for name in args.tasks:
            report["tasks"][name] = run_quality(name, subword)
        report["quality_date"] = report["date"]
    for lang in {DEV_TASKS[n] for n in args.tasks}:
        k1, b = default_bm25_params(lang)
        report["default_settings"][lang] = next((s for s, v in SETTINGS.items() if v == (k1, b)), f"k{k1}_b{b}")
    if not args.no_speed:
        all_docs, all_texts, all_q, all_qt = [], [], [], []
        for name in args.tasks:
            task = load_dev_task(name)
            lang = DEV_TASKS[name]
            ids = [d.doc_id for d in task.corpus]
            texts = [d.full_text() for d in task.corpus]
            report["speed"].append(run_speed(name, lang, ids, texts, [q.query_id for q in task.queries],
                                             [q.text for q in task.queries]))
            all_docs += [f"{name}/{i}" for i in ids]
            all_texts += texts
            all_q += [f"{name}/{q.query_id}" for q in task.queries]
            all_qt += [q.text for q in task.queries]
        # All corpora together, analyzed language-neutrally: a larger corpus, where per-call costs vanish.
        report["speed"].append(run_speed("all dev corpora", "xx", all_docs, all_texts, all_q, all_qt, "unicode"))
        # Ten copies of it (about 110k documents) and 2,000 of the queries: how both scale with corpus size.
        report["speed"].append(run_speed("all dev corpora x10", "xx", all_docs, all_texts, all_q[::7][:2000],
                                         all_qt[::7][:2000], "unicode", repeat=3, copies=10))
    report["total_s"] = round((_dt.datetime.now(_dt.timezone.utc) - started).total_seconds(), 1)
    RAW_JSON.parent.mkdir(parents=True, exist_ok=True)
    RAW_JSON.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    write_markdown(report, args.output)
    print(f"wrote {args.output} and {RAW_JSON} in {report['total_s']}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

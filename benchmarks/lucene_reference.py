"""Reference measurement: Lucene BM25 (Pyserini 0.22.1 / Anserini 0.22.1) on the lexdr dev tasks.

This is the yardstick our own BM25 must match or beat per language. Pyserini is NOT a lexdr dependency: it
lives in its own virtualenv outside the repository.

Setup (Python 3.11, OpenJDK 17 on the PATH; these are exactly the commands used):

    python -m venv /work/lucene-venv
    /work/lucene-venv/bin/pip install pyserini==0.22.1 --no-deps
    /work/lucene-venv/bin/pip install pyjnius numpy pandas tqdm
    # versions installed when this was written: pyjnius 1.9.0, numpy 2.4.6, pandas 3.1.1, tqdm 4.70.1

Nothing else is needed: ``python -m pyserini.index.lucene`` runs with those. The literal
``from pyserini.search.lucene import LuceneSearcher`` would additionally pull in torch, transformers, faiss,
onnxruntime, scikit-learn and scipy, because ``pyserini/search/__init__.py`` imports the dense (faiss)
searchers and ``pyserini/search/lucene/__init__.py`` imports the impact searcher (pyserini.encode). We skip
those two package ``__init__`` files and import the module that defines the class,
``pyserini.search.lucene._searcher`` (see :func:`import_lucene_searcher`); the class is the same one.

Run (from the repository root):

    PYTHONPATH=/work/main/src /work/lucene-venv/bin/python benchmarks/lucene_reference.py
    # options: --tasks jsquad-ja xquad-r-de ...  --work-dir DIR (indexes; default a temp dir, removed)
    #          --data-dir DIR (default: lexdr's lookup, ../shared/data)  --keep-work-dir

What it does, per dev task: writes the corpus (``Doc.full_text()``) as a Pyserini JsonCollection outside the
repo, builds a Lucene index with ``python -m pyserini.index.lucene --collection JsonCollection ...
--language <lang>``, searches ALL queries (unlabeled and test halves) with ``LuceneSearcher`` +
``set_language(lang)`` + BM25, top 100, ``batch_search(threads=2)``, for two settings (Pyserini's default
k1=0.9,b=0.4 and the classic k1=1.2,b=0.75), and evaluates with ``lexdr.evaluation.evaluate`` on (a) the test
half and (b) all queries.

Analyzers. Anserini 0.22.1 maps ``--language`` through ``io.anserini.analysis.AnalyzerMap`` (ar bn da de es fa
fi fr hi hu id it ja ko nl no pl pt ru sv te th tr uk zh; ko and zh -> CJKAnalyzer, i.e. overlapping character
bigrams). ``el`` and ``vi`` are NOT in it: ``IndexCollection`` then falls back to ``DefaultEnglishAnalyzer``
(StandardTokenizer, lowercase, English stopwords, Porter stemmer), and ``SimpleSearcher.set_language`` leaves
its default analyzer, the same ``DefaultEnglishAnalyzer`` - so index and queries agree. That fallback is the
primary ("pyserini") row for el and vi; an extra "plain" row indexes with ``--stemmer none --keepStopwords``
(StandardTokenizer + lowercase only, language-neutral) and queries with the matching analyzer. Lucene does have
a GreekAnalyzer, but Anserini's ``--language`` cannot select it. Every run checks that the query-side analyzer
reproduces the indexed terms (stored doc vectors) of sampled documents.

Outputs: ``benchmarks/results/lucene_reference.json`` (machine, versions, per task/analyzer/setting metrics on
test and all, timings), a printed table, and test-half runs as TREC files
``benchmarks/out/lucene/{task}.{setting}.trec`` (``{task}.plain.{setting}.trec`` for the extra el/vi rows).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _lucene import import_lucene_searcher
from lexdr.evaluation import evaluate
from lexdr.records import Hit
from lexdr.tasks import DEV_TASKS, load_dev_task

REPO = Path(__file__).resolve().parents[1]
RESULTS_JSON = REPO / "benchmarks" / "results" / "lucene_reference.json"
TREC_DIR = REPO / "benchmarks" / "out" / "lucene"

METRICS = ("MRR@10", "MRR@100", "Recall@100", "nDCG@10")
TOP_K = 100
THREADS = 2
SETTINGS = {"k0.9_b0.4": (0.9, 0.4), "k1.2_b0.75": (1.2, 0.75)}  # first = Pyserini's BM25 default
FALLBACK_LANGS = ("el", "vi")  # not in Anserini 0.22.1's AnalyzerMap
CONSISTENCY_SAMPLE = 50


# --------------------------------------------------------------------------------------------------- pyserini
def analyzer_configs(lang: str) -> list[dict]:
    """The index/query analyzer configurations to run for ``lang`` (first = primary)."""
    from jnius import autoclass

    mapped = autoclass("io.anserini.analysis.AnalyzerMap").analyzerMap.get(lang)
    if mapped is not None:
        return [{"name": "pyserini", "index_args": ["--language", lang], "analyzer": str(mapped),
                 "note": f"--language {lang}: Anserini AnalyzerMap -> {mapped}"}]
    configs = [{"name": "pyserini", "index_args": ["--language", lang],
                "analyzer": "io.anserini.analysis.DefaultEnglishAnalyzer (porter, English stopwords)",
                "note": f"--language {lang} is not in Anserini 0.22.1's AnalyzerMap: IndexCollection falls back to "
                        "DefaultEnglishAnalyzer and SimpleSearcher.set_language leaves the same default"}]
    if lang in FALLBACK_LANGS:
        configs.append({"name": "plain", "index_args": ["--language", lang, "--stemmer", "none", "--keepStopwords"],
                        "analyzer": "io.anserini.analysis.DefaultEnglishAnalyzer (no stemmer, no stopwords) = "
                                    "StandardTokenizer + lowercase",
                        "note": "language-neutral alternative to the English fallback"})
    return configs


def query_analyzer(config: dict, lang: str):
    """The Java analyzer the searcher should use for ``config`` (None: keep what set_language chose)."""
    if config["name"] != "plain":
        return None
    from pyserini.analysis import get_lucene_analyzer

    return get_lucene_analyzer(language="en", stemming=False, stopwords=False)


# --------------------------------------------------------------------------------------------------- steps
def write_collection(task, coll_dir: Path) -> int:
    coll_dir.mkdir(parents=True, exist_ok=True)
    with open(coll_dir / "docs.jsonl", "w", encoding="utf-8") as fh:
        for doc in task.corpus:
            fh.write(json.dumps({"id": doc.doc_id, "contents": doc.full_text()}, ensure_ascii=False) + "\n")
    return len(task.corpus)


def build_index(coll_dir: Path, index_dir: Path, index_args: list[str], log_path: Path) -> dict:
    if index_dir.exists():
        shutil.rmtree(index_dir)
    cmd = [sys.executable, "-m", "pyserini.index.lucene", "--collection", "JsonCollection",
           "--input", str(coll_dir), "--index", str(index_dir),
           "--generator", "DefaultLuceneDocumentGenerator", "--threads", str(THREADS),
           "--storePositions", "--storeDocvectors", "--storeRaw", *index_args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    log_path.write_text(proc.stdout, encoding="utf-8")
    if proc.returncode != 0:
        sys.exit(f"indexing failed (rc={proc.returncode}); log: {log_path}\n{proc.stdout[-3000:]}")
    counters = {k: int(v.replace(",", "")) for k, v in
                re.findall(r"- (indexed|unindexable|empty|skipped|errors):\s+([\d,]+)", proc.stdout)}
    m = re.search(r"Using (language-specific analyzer|DefaultEnglishAnalyzer|CompositeAnalyzer)", proc.stdout)
    size = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    return {"command": " ".join(cmd[1:]), "wall_s": round(wall, 3), "counters": counters,
            "anserini_log_analyzer": m.group(1) if m else None, "index_bytes": size}


def check_analyzer_consistency(index_dir: Path, analyzer, task, seed: int = 0) -> dict:
    """Do the query-side analyzer's terms equal the indexed terms (doc vectors) of sampled docs?"""
    from pyserini.analysis import Analyzer
    from pyserini.index.lucene import IndexReader

    reader = IndexReader(str(index_dir))
    ana = Analyzer(analyzer)
    docs = random.Random(seed).sample(task.corpus, min(CONSISTENCY_SAMPLE, len(task.corpus)))
    same = 0
    mismatches = []
    for doc in docs:
        indexed = reader.get_document_vector(doc.doc_id) or {}
        analyzed: dict[str, int] = {}
        for t in ana.analyze(doc.full_text()):
            analyzed[t] = analyzed.get(t, 0) + 1
        if analyzed == dict(indexed):
            same += 1
        elif len(mismatches) < 3:
            mismatches.append(doc.doc_id)
    return {"sampled": len(docs), "identical": same, "mismatched_examples": mismatches}


def search_all(searcher, queries) -> tuple[dict[str, list[Hit]], float]:
    texts = [q.text for q in queries]
    qids = [q.query_id for q in queries]
    t0 = time.perf_counter()
    results = searcher.batch_search(texts, qids, k=TOP_K, threads=THREADS)
    elapsed = time.perf_counter() - t0
    run = {qid: [Hit(str(h.docid), float(h.score)) for h in results.get(qid, [])] for qid in qids}
    return run, elapsed


def write_trec(run: dict[str, list[Hit]], qids: list[str], path: Path, tag: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for qid in qids:
            for rank, h in enumerate(run.get(qid, []), start=1):
                fh.write(f"{qid} Q0 {h.doc_id} {rank} {h.score!r} {tag}\n")


# --------------------------------------------------------------------------------------------------- machine
def _cmd_out(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
        return (p.stdout + p.stderr).strip()
    except OSError as e:
        return f"unavailable ({e})"


def machine_info() -> dict:
    from importlib.metadata import version

    from jnius import autoclass

    import pyserini

    jars = sorted(p.name for p in (Path(pyserini.__file__).parent / "resources" / "jars").glob("*.jar"))
    return {
        "uname": _cmd_out(["uname", "-a"]),
        "nproc": _cmd_out(["nproc"]),
        "python": sys.version.split()[0],
        "java": _cmd_out(["java", "-version"]).splitlines(),
        "jvm_in_process": f"{autoclass('java.lang.System').getProperty('java.vm.name')} "
                          f"{autoclass('java.lang.System').getProperty('java.version')}",
        "lucene": str(autoclass("org.apache.lucene.util.Version").LATEST.toString()),
        "pyserini": version("pyserini"),
        "anserini_jar": jars,
        "pyjnius": version("pyjnius"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# --------------------------------------------------------------------------------------------------- main
def run_task(name: str, work: Path, LuceneSearcher, data_dir) -> dict:
    lang = DEV_TASKS[name]
    t0 = time.perf_counter()
    task = load_dev_task(name, data_dir)
    test_queries = task.queries_of("test")
    test_qids = [q.query_id for q in test_queries]
    qrels_test, qrels_all = task.qrels_of("test"), task.qrels
    coll = work / name / "collection"
    n_docs = write_collection(task, coll)
    out = {"language": lang, "num_docs": n_docs, "num_queries_all": len(task.queries),
           "num_queries_test": len(test_queries), "load_s": round(time.perf_counter() - t0, 3), "analyzers": {}}
    for config in analyzer_configs(lang):
        index_dir = work / name / f"index.{config['name']}"
        print(f"[{name}] indexing ({config['name']}: {' '.join(config['index_args'])}) ...", flush=True)
        index_info = build_index(coll, index_dir, config["index_args"], work / name / f"index.{config['name']}.log")
        searcher = LuceneSearcher(str(index_dir))
        searcher.set_language(lang)
        analyzer = query_analyzer(config, lang)
        if analyzer is not None:
            searcher.set_analyzer(analyzer)
        from pyserini.analysis import get_lucene_analyzer
        check_with = analyzer if analyzer is not None else (
            get_lucene_analyzer(language=lang) if lang not in FALLBACK_LANGS else get_lucene_analyzer())
        consistency = check_analyzer_consistency(index_dir, check_with, task)
        entry = {"analyzer": config["analyzer"], "note": config["note"], "index": index_info,
                 "searcher_num_docs": int(searcher.num_docs), "analyzer_consistency": consistency, "settings": {}}
        if searcher.num_docs != n_docs:
            print(f"[{name}] WARNING: index has {searcher.num_docs} docs, corpus {n_docs}", flush=True)
        if consistency["identical"] != consistency["sampled"]:
            print(f"[{name}] WARNING: query analyzer differs from index on {consistency}", flush=True)
        for setting, (k1, b) in SETTINGS.items():
            searcher.set_bm25(k1, b)
            run, secs = search_all(searcher, task.queries)
            res_test = evaluate({q: run[q] for q in test_qids}, qrels_test, METRICS)
            res_all = evaluate(run, qrels_all, METRICS)
            stem = f"{name}.{setting}" if config["name"] == "pyserini" else f"{name}.{config['name']}.{setting}"
            write_trec(run, test_qids, TREC_DIR / f"{stem}.trec", f"lucene-bm25-{setting}")
            entry["settings"][setting] = {
                "k1": k1, "b": b, "test": res_test, "all": res_all,
                "search_s": round(secs, 3), "queries_per_s": round(len(task.queries) / secs, 1),
                "empty_results": sum(1 for v in run.values() if not v), "trec_test": f"benchmarks/out/lucene/{stem}.trec",
            }
            print(f"[{name}] {config['name']} {setting}: test MRR@10={res_test['MRR@10']:.4f} "
                  f"R@100={res_test['Recall@100']:.4f}  all MRR@10={res_all['MRR@10']:.4f}  "
                  f"{len(task.queries) / secs:.0f} q/s", flush=True)
        searcher.close()
        out["analyzers"][config["name"]] = entry
    return out


def print_table(results: dict) -> None:
    hdr = (f"{'task':<12} {'lang':<4} {'analyzer':<27} {'setting':<11} | {'test:MRR@10':>11} {'MRR@100':>8} "
           f"{'R@100':>7} {'nDCG@10':>8} | {'all:MRR@10':>10} {'MRR@100':>8} {'R@100':>7} {'nDCG@10':>8} | "
           f"{'idx s':>6} {'q/s':>7}")
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for name, t in results.items():
        for aname, a in t["analyzers"].items():
            short = (a["analyzer"].split(" ")[0].rsplit(".", 1)[-1] if aname == "pyserini"
                     else f"{aname}: Standard+lowercase")
            for setting, s in a["settings"].items():
                te, al = s["test"], s["all"]
                print(f"{name:<12} {t['language']:<4} {short:<27} {setting:<11} | {te['MRR@10']:>11.4f} "
                      f"{te['MRR@100']:>8.4f} {te['Recall@100']:>7.4f} {te['nDCG@10']:>8.4f} | {al['MRR@10']:>10.4f} "
                      f"{al['MRR@100']:>8.4f} {al['Recall@100']:>7.4f} {al['nDCG@10']:>8.4f} | "
                      f"{a['index']['wall_s']:>6.1f} {s['queries_per_s']:>7.0f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(DEV_TASKS), choices=list(DEV_TASKS))
    ap.add_argument("--work-dir", type=Path, default=None, help="where collections and indexes go (outside the repo)")
    ap.add_argument("--keep-work-dir", action="store_true", help="keep the default temp work dir")
    ap.add_argument("--data-dir", default=None, help="shared data folder (default: lexdr's lookup)")
    ap.add_argument("--output", type=Path, default=RESULTS_JSON)
    args = ap.parse_args(argv)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="lucene-ref-"))
    if work.resolve().is_relative_to(REPO):
        sys.exit(f"--work-dir must be outside the repository ({REPO})")
    work.mkdir(parents=True, exist_ok=True)
    LuceneSearcher = import_lucene_searcher()
    started = _dt.datetime.now(_dt.timezone.utc)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "protocol": {
            "corpus_text": "Doc.full_text() (title + ' ' + text)", "top_k": TOP_K, "threads": THREADS,
            "metrics": list(METRICS), "evaluation": "lexdr.evaluation.evaluate (trec_eval conventions)",
            "settings": {k: {"k1": v[0], "b": v[1]} for k, v in SETTINGS.items()},
            "timings": "index wall_s = whole `python -m pyserini.index.lucene` subprocess (JVM start included); "
                       "queries_per_s = all queries of the task / wall time of one batch_search(threads=2), "
                       "JVM in-process and warm after the first task; it includes pyjnius wrapping every hit "
                       "object, so it measures Pyserini's Python API, not raw Lucene. Timings are only as good as "
                       "the machine was idle: see machine.loadavg_*",
        },
        "tasks": {},
    }
    try:
        for name in args.tasks:
            report["tasks"][name] = run_task(name, work, LuceneSearcher, args.data_dir)
    finally:
        if args.work_dir is None and not args.keep_work_dir:
            shutil.rmtree(work, ignore_errors=True)
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["total_s"] = round((_dt.datetime.now(_dt.timezone.utc) - started).total_seconds(), 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_table(report["tasks"])
    print(f"\nwrote {args.output} and test-half runs under {TREC_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`lexdr index sparse` beside plain bm25s: build time and peak memory on the same corpus and cores.

Three rows per corpus size, each build in its own subprocess (its wall seconds and the peak RSS of its process
tree, from ``os.wait4``), one after the other on the same machine:

* **lexdr CLI** = the command a user types, ``lexdr index sparse CORPUS --lang LANG --out DIR`` with every
  default (whichever build path the defaults pick at this size: ``[bm25] max_docs_in_memory``);
* **bm25s, its README** = what bm25s's README shows a user writing: read the JSONL, ``bm25s.tokenize(texts,
  stopwords=..., stemmer=Stemmer.Stemmer(...))``, ``bm25s.BM25(...).index(tokens)``, ``save`` (bm25s ships no
  Indonesian stop list, so the user passes lexdr's; its own regex and lowercasing, so its terms differ a
  little from lexdr's: the row for speed);
* **bm25s, lexdr's terms** = lexdr's analyzer (``Analyzer.analyze_batch``) feeding term lists to
  ``bm25s.BM25.index``, then ``save``: the very terms lexdr indexes (same vocabulary and postings: the row for
  quality parity; what ``benchmarks/scale.py`` times as "bm25s").

Corpora: :mod:`lexdr.synthetic` passages from a word-bigram model fitted on a dev task (``benchmarks/scale.py``'s
generator; the N-passage corpus is the prefix of every bigger one), under ``--work`` (ignored by git).

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/bm25_build.py --sizes 300000 1000000

Writes ``benchmarks/results/bm25_build.md`` and ``bm25_build.json`` (sizes measured before are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import RESULTS, command_line, load_average, machine, machine_line, now_utc  # noqa: E402

ROWS = ("lexdr-cli", "bm25s-readme", "bm25s-lexdr-terms")
LABELS = {"lexdr-cli": "lexdr CLI (`lexdr index sparse`, defaults)",
          "bm25s-readme": "bm25s, its README (`bm25s.tokenize` + PyStemmer)",
          "bm25s-lexdr-terms": "bm25s, lexdr's terms (analyzer -> `BM25.index`)"}


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ------------------------------------------------------------------------------------------------ children
def _read_texts(corpus: Path) -> list[str]:
    texts = []
    with open(corpus, encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            texts.append(f"{d.get('title') or ''} {d['text']}".strip())
    return texts


def _bm25s_build(corpus: Path, out: Path, lang: str, tokenize, phase: str) -> dict:
    """Read the corpus, ``tokenize`` its texts (the ``phase`` timed), index them with bm25s (Lucene's BM25 with
    the language's k1 and b) and save: each phase's seconds, the vocabulary and the postings."""
    import bm25s

    from lexdr.analysis import default_bm25_params

    k1, b = default_bm25_params(lang)
    t0 = time.perf_counter()
    texts = _read_texts(corpus)
    t1 = time.perf_counter()
    tokens = tokenize(texts)
    t2 = time.perf_counter()
    retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
    retriever.index(tokens, show_progress=False)
    t3 = time.perf_counter()
    retriever.save(out)
    t4 = time.perf_counter()
    return {"phases": {"read": t1 - t0, phase: t2 - t1, "index": t3 - t2, "save": t4 - t3},
            "vocab": len(retriever.vocab_dict), "postings": int(retriever.scores["data"].shape[0])}


def child_bm25s_readme(corpus: Path, out: Path, lang: str) -> dict:
    """bm25s as its README shows it, with the language's Snowball stemmer and stop list."""
    import bm25s
    import Stemmer

    from lexdr.analysis.stemmers import SNOWBALL_LANGUAGES
    from lexdr.analysis.stoplists import load_stopwords

    return _bm25s_build(corpus, out, lang, lambda texts: bm25s.tokenize(
        texts, stopwords=sorted(load_stopwords(lang)), stemmer=Stemmer.Stemmer(SNOWBALL_LANGUAGES[lang]),
        show_progress=False), "tokenize")


def child_bm25s_lexdr_terms(corpus: Path, out: Path, lang: str) -> dict:
    """lexdr's analyzer, then bm25s indexing the term lists (the same terms lexdr's index holds)."""
    from lexdr.analysis import get_analyzer

    analyzer = get_analyzer(lang)
    return _bm25s_build(corpus, out, lang, lambda texts: analyzer.analyze_batch(texts, n_jobs=2), "analyze")


CHILDREN = {"bm25s-readme": child_bm25s_readme, "bm25s-lexdr-terms": child_bm25s_lexdr_terms}


# ------------------------------------------------------------------------------------------------ driver
def measure(row: str, corpus: Path, out: Path, lang: str, lexdr_args: list[str]) -> dict:
    import numpy as np

    shutil.rmtree(out, ignore_errors=True)
    when, load = now_utc(), load_average()
    if row == "lexdr-cli":
        cmd = [sys.executable, "-m", "lexdr", "index", "sparse", str(corpus), "--lang", lang, "--out", str(out),
               *lexdr_args]
        seconds, rss, cpu, _ = _timed_rusage(cmd)
        cfg = json.loads((out / "config.json").read_text())
        result = {"command": " ".join(["lexdr", *cmd[3:]]), "vocab": cfg["vocab_size"],
                  "postings": int(np.load(out / "indptr.csc.index.npy", mmap_mode="r")[-1]),
                  "build": cfg.get("build", {"mode": "in-memory"})}
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", row, str(corpus), str(out), lang]
        seconds, rss, cpu, stdout = _timed_rusage(cmd)
        result = json.loads(stdout.strip().splitlines()[-1])
    result.update({"date": when, "load": f"{load} before, {load_average()} after", "seconds": seconds,
                   "cpu_seconds": cpu, "peak_rss_mib": rss, "disk_bytes": _du(out)})
    shutil.rmtree(out, ignore_errors=True)
    return result


def _become_subreaper() -> None:
    """Adopt orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``): the CLI's analysis workers are children of
    multiprocessing's forkserver, which outlives the CLI; reaping it here counts their CPU and memory too."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:
        raise SystemExit(f"prctl(PR_SET_CHILD_SUBREAPER) failed (errno {ctypes.get_errno()}): Linux only")


def _timed_rusage(cmd: list[str]) -> tuple[float, float, float, str]:
    """Run ``cmd``; its wall seconds (until it exits), the peak RSS (MiB) of the largest process of its tree
    (itself, the forkserver, an analysis worker), the CPU seconds of the whole tree (user + system, every
    descendant reaped) and its stdout."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bm25_build.{os.getpid()}.out"
    with open(out_path, "w+", encoding="utf-8") as out_fh, open(f"{out_path}.err", "w+", encoding="utf-8") as err_fh:
        t0 = time.perf_counter()
        pid = subprocess.Popen(cmd, stdout=out_fh, stderr=err_fh, env=env).pid
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - t0
        peak, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        while True:  # orphans of the tree, adopted by this subreaper (the forkserver with its workers' usage)
            try:
                _, _, more = os.wait4(-1, 0)
            except ChildProcessError:
                break
            peak, cpu = max(peak, more.ru_maxrss), cpu + more.ru_utime + more.ru_stime
        out_fh.seek(0)
        err_fh.seek(0)
        stdout, stderr = out_fh.read(), err_fh.read()
    out_path.unlink()
    Path(f"{out_path}.err").unlink()
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {code}): {stderr.strip()[-1500:]}")
    return seconds, peak / 1024, cpu, stdout


def ensure_corpus(work: Path, n: int, task: str) -> Path:
    from scale import ensure_corpus as scale_corpus

    return scale_corpus(work, n, task, n_queries=10)[0]


# ------------------------------------------------------------------------------------------------ report
def write_markdown(report: dict, path: Path) -> None:
    lines = [
        "# `lexdr index sparse` beside plain bm25s: build time and memory",
        "",
        f"Rebuild: `{report['command']}`",
        "",
        f"Last run {report['date']} on {report['machine']}; {report['load']} (each row's own time and load "
        "below). Corpus: `lexdr.synthetic` "
        f"passages (about 80 words) from a word-bigram model fitted on `{report['task']}` "
        f"(`benchmarks/scale.py`'s generator), language `{report['lang']}` (Snowball stemmer and lexdr's stop "
        "list on every row). Each build ran alone in its own subprocess under `nice -n 10`, the rows one after "
        "the other on the same cores; wall seconds include reading the corpus and writing the index. CPU seconds "
        "and peak RSS cover the build's whole process tree (the benchmark is a child subreaper, so it also reaps "
        "multiprocessing's forkserver and with it the analysis workers' usage): CPU = user + system of every "
        "process, peak RSS = `ru_maxrss` of the largest one (the CLI's main process or an analysis worker).",
        "",
        "| passages | build | wall s | vs bm25s README | CPU s | peak RSS MiB | vocabulary | postings | index MiB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, rows in sorted(report["sizes"].items(), key=lambda kv: int(kv[0])):
        ref = rows.get("bm25s-readme", {}).get("seconds")
        for row in ROWS:
            r = rows.get(row)
            if r is None:
                continue
            # a ratio only between rows of the same sitting (a row without its own date came from an older one)
            ratio = f"{r['seconds'] / ref:.2f}" if ref and "date" in r else "–"
            postings = f"{r['postings']:,}" if r.get("postings") else "–"
            cpu = f"{r['cpu_seconds']:.0f}" if "cpu_seconds" in r else "–"
            lines.append(f"| {int(n):,} | {LABELS[row]} | {r['seconds']:.1f} | {ratio} | {cpu} | "
                         f"{r['peak_rss_mib']:.0f} | "
                         f"{r['vocab']:,} | {postings} | {r['disk_bytes'] / 2**20:.0f} |")
    lines += ["", "When each row ran (load average 1 / 5 / 15 minutes, before and after) and its phases (seconds):",
              ""]
    for n, rows in sorted(report["sizes"].items(), key=lambda kv: int(kv[0])):
        for row in ROWS:
            r = rows.get(row)
            if r is None:
                continue
            if row == "lexdr-cli":
                b = r["build"]
                phases = ", ".join(f"{k} {v:.1f}" for k, v in b.get("seconds", {}).items())
                how = (f"{b['mode']}, {b.get('shards', 1)} shard(s) of {b.get('shard_docs', '–')}, "
                       f"{b.get('n_jobs', 1)} analysis workers; {phases}")
            else:
                how = ", ".join(f"{k} {v:.1f}" for k, v in r["phases"].items())
            when = f"{r['date']}, load {r['load']}" if "date" in r else "an earlier run (no per-row date, load, CPU)"
            lines.append(f"- {int(n):,}, {LABELS[row]}: {when}; {how}")
    lines += ["", *report.get("notes", [])]
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")


def _non_default(args: argparse.Namespace) -> list[str]:
    """The options of this run that change what is measured (not which rows or sizes)."""
    out = []
    if args.task != "facqa-id" or args.lang != "id":
        out += ["--task", args.task, "--lang", args.lang]
    if args.lexdr_args:
        out += [f"--lexdr-args={args.lexdr_args}"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", type=int, nargs="+", default=[300_000, 1_000_000])
    ap.add_argument("--task", default="facqa-id", help="dev task whose corpus the bigram model is fitted on")
    ap.add_argument("--lang", default="id")
    ap.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    ap.add_argument("--lexdr-args", default="", help="extra options of `lexdr index sparse`, one string "
                    "(default: none, every setting at its default)")
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "out" / "bm25_build"))
    ap.add_argument("--out", default=str(RESULTS / "bm25_build"))
    ap.add_argument("--report-only", action="store_true", help="rewrite the .md from the .json, measure nothing")
    args = ap.parse_args(argv)
    if args.report_only:
        write_markdown(json.loads(Path(args.out).with_suffix(".json").read_text()), Path(args.out).with_suffix(".md"))
        return 0
    if args.child:
        row, corpus, out, lang = args.child
        print(json.dumps(CHILDREN[row](Path(corpus), Path(out), lang)))
        return 0
    _become_subreaper()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    json_path = Path(args.out).with_suffix(".json")
    report = json.loads(json_path.read_text()) if json_path.is_file() else {"sizes": {}}
    load_before = load_average()
    for n in args.sizes:
        corpus = ensure_corpus(work, n, args.task)
        rows = report["sizes"].setdefault(str(n), {})
        for row in args.rows:
            rows[row] = measure(row, corpus, work / f"index-{row}-{n}", args.lang, shlex.split(args.lexdr_args))
            print(f"[N={n}] {row}: {rows[row]['seconds']:.1f} s, {rows[row]['peak_rss_mib']:.0f} MiB", flush=True)
            json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    report.update({"date": now_utc(), "machine": machine_line(machine()), "task": args.task, "lang": args.lang,
                   # rows measured in several runs merge: the command that rebuilds them all is the default one
                   "command": command_line("benchmarks/bm25_build.py",
                                           ["--sizes", *sorted(report["sizes"], key=int), *_non_default(args)]),
                   "load": f"load average (1 / 5 / 15 minutes) {load_before} at the start, {load_average()} at the end"})
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_markdown(report, Path(args.out).with_suffix(".md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

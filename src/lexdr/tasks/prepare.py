"""The data stage: one language's inputs (a dev task, a public dataset by name, or local files) written as
standard files into its run folder, with the unlabeled and test queries sampled as configured."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from lexdr.errors import ConfigError, LexdrError
from lexdr.formats import (iter_corpus, read_qrels, read_queries, write_corpus_jsonl, write_qrels_trec,
                           write_queries_tsv)
from lexdr.settings import at_least, setting

if TYPE_CHECKING:
    from lexdr.executors import Executor

__all__ = ["LanguageInput", "prepare_language", "data_stage", "take_evenly", "check_inputs", "LABEL_PATTERN"]

# A language's label names its folders in a run directory: letters, digits, '.', '_', '-' only (no path
# separators, no '..'), so nothing is ever written outside the run directory.
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PATH_FIELDS = ("corpus", "unlabeled_queries", "test_queries", "test_qrels", "unlabeled_qrels")


@dataclass(frozen=True)
class LanguageInput:
    """Where one language's data comes from (a ``[[languages]]`` block)."""

    lang: str = setting(help="ISO 639-1 code of the corpus language.")
    name: str = setting("", "Label in reports and folder names (default: dev_task or lang).")
    dev_task: str | None = setting(None, "A dev task from ../shared/data (lexdr.tasks.DEV_TASKS).")
    source: str | None = setting(None, "mrtydi | miracl: the Hugging Face datasets loader (needs network).")
    analyzer: str | None = setting(None, "This language's BM25 analyzer (default: [bm25] analyzer, else the "
                                         "language's measured choice; 'unicode'/'subword' work for any code).")
    corpus: str | None = setting(None, "Corpus file (BEIR / Mr. TyDi / Pyserini JSONL, plain or .gz).")
    unlabeled_queries: str | None = setting(None, "Unlabeled queries (optional: without them lexdr trains on "
                                                  "generated queries).")
    test_queries: str | None = setting(None, "Held-out test queries (with test_qrels).")
    test_qrels: str | None = setting(None, "Relevance judgments of the test queries (TREC or BEIR TSV).")
    unlabeled_qrels: str | None = setting(None, "Only for the gold-supervised upper bound and mining-precision "
                                                "reports.")
    max_unlabeled: int | None = setting(None, "At most N unlabeled queries, evenly spaced over the file.")
    max_test: int | None = setting(None, "At most N test queries, evenly spaced over the file.")

    def __post_init__(self) -> None:
        if not LABEL_PATTERN.match(self.label()) or ".." in self.label():
            raise ConfigError(f"label {self.label()!r} cannot name a folder: use letters, digits, '.', '_' and '-' "
                              "(set name=)")
        at_least(self, ("max_unlabeled", "max_test"), 1, optional=True, note=" (leave it out to use every query)")

    def label(self) -> str:
        return self.name or self.dev_task or self.lang

    @property
    def has_unlabeled(self) -> bool:
        return bool(self.dev_task or self.source or self.unlabeled_queries)

    @property
    def has_test(self) -> bool:
        return bool(self.dev_task or self.source or self.test_queries)


def check_inputs(languages: "Sequence[LanguageInput]") -> list[str]:
    """What is wrong with the languages' query and qrels files, read before any work starts (one line each,
    naming the language and the file): unreadable files, judged query ids with no query, qrels that judge no
    test query. An empty list: nothing found."""
    problems = []
    for li in languages:
        if li.test_queries and li.test_qrels:
            try:
                qids = {q.query_id for q in read_queries(li.test_queries)}
                qrels = read_qrels(li.test_qrels)
            except LexdrError as e:
                problems.append(f"{li.label()}: {e}")
                continue
            orphan = sorted(set(qrels) - qids)
            if orphan:
                problems.append(f"{li.label()}: {len(orphan)} query ids in {li.test_qrels} are not in {li.test_queries} "
                                f"(e.g. {orphan[:3]}); the files do not belong together")
            if not set(qrels) & qids:
                problems.append(f"{li.label()}: no test query has a judgment in {li.test_qrels}")
        if li.unlabeled_queries:
            try:
                read_queries(li.unlabeled_queries)
            except LexdrError as e:
                problems.append(f"{li.label()}: {e}")
    return problems


def take_evenly(items: list, n: int | None) -> list:
    """At most ``n`` items, evenly spaced over the list (deterministic): files are often ordered by article or
    topic, and the first ``n`` would cover only a few of them."""
    if n is None or n >= len(items):
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def prepare_language(spec: LanguageInput, out_dir: str | Path) -> dict[str, Any]:
    """Write ``spec``'s data into ``out_dir``: ``queries.{unlabeled,test}.tsv``, ``qrels.test.txt``, and for dev
    tasks and public datasets also ``corpus.jsonl`` (+ ``qrels.unlabeled.txt``, read only by the gold upper
    bound and the mining report). Validates the whole corpus once (``file:line`` errors)."""
    folder = Path(out_dir)
    out: dict[str, Any] = {}
    unl_src, test_src, qrels_src = spec.unlabeled_queries, spec.test_queries, spec.test_qrels
    if spec.dev_task:
        from lexdr.tasks.devtasks import load_dev_task

        task = load_dev_task(spec.dev_task)
        write_corpus_jsonl(task.corpus, folder / "corpus.jsonl")
        unl = take_evenly(task.queries_of("unlabeled"), spec.max_unlabeled)
        test = take_evenly(task.queries_of("test"), spec.max_test)
        write_queries_tsv(unl, folder / "queries.unlabeled.tsv")
        write_queries_tsv(test, folder / "queries.test.tsv")
        write_qrels_trec({q.query_id: task.qrels[q.query_id] for q in test}, folder / "qrels.test.txt")
        write_qrels_trec({q.query_id: task.qrels[q.query_id] for q in unl}, folder / "qrels.unlabeled.txt")
        out["corpus"] = str(folder / "corpus.jsonl")
        out["unlabeled_qrels"] = str(folder / "qrels.unlabeled.txt")
        unl_src = test_src = None  # written above
    elif spec.source:
        from lexdr.tasks.sources import load_hf_source

        paths = load_hf_source(spec.source, spec.lang, folder)
        out["corpus"] = str(paths["corpus"])
        unl_src, test_src, qrels_src = paths["unlabeled_queries"], paths["test_queries"], paths["test_qrels"]
    else:
        out["corpus"] = spec.corpus
        out["unlabeled_qrels"] = spec.unlabeled_qrels
    if unl_src:
        write_queries_tsv(take_evenly(read_queries(unl_src), spec.max_unlabeled), folder / "queries.unlabeled.tsv")
    if test_src:
        test = take_evenly(read_queries(test_src), spec.max_test)
        write_queries_tsv(test, folder / "queries.test.tsv")
        qrels = read_qrels(qrels_src)
        write_qrels_trec({q.query_id: qrels[q.query_id] for q in test if q.query_id in qrels},
                         folder / "qrels.test.txt")
    out["passages"] = sum(1 for _ in iter_corpus(out["corpus"]))
    for name in ("queries.unlabeled.tsv", "queries.test.tsv"):
        out[name] = len(read_queries(folder / name)) if (folder / name).exists() else 0
    return out


def data_stage(inputs: LanguageInput, config: None, out_dir: str | Path, executor: "Executor") -> dict[str, Any]:
    """The pipeline's ``data`` stage: :func:`prepare_language`. A ``[[languages]]`` entry names the files and
    how many queries to take, so it is the stage's inputs and there is no other config (``None``).

    ===============================  ======  ====================================================
    file                             r / w   format
    ===============================  ======  ====================================================
    a dev task, a public dataset,    read    the shared QA sets / a Hugging Face dataset / corpus
    or the entry's own files                 JSONL, topics TSV or ``queries.jsonl``, TREC qrels
    ``out_dir/corpus.jsonl``         write   BEIR corpus JSONL (dev tasks, public datasets)
    ``out_dir/queries.<part>.tsv``   write   topics TSV (``unlabeled``, ``test``)
    ``out_dir/qrels.<part>.txt``     write   TREC qrels (``test``; ``unlabeled`` for dev tasks)
    ===============================  ======  ====================================================
    """
    return prepare_language(inputs, out_dir)

"""Turn the QA sets in ``../shared/data`` into retrieval tasks with an unlabeled half and a test half.

A QA set gives a closed corpus (its paragraphs; for XQuAD-R its sentences) and questions whose gold
passage is known (the passage holding the answer). Questions are split *by article*: articles are ordered
by the SHA-1 of their title and the first half goes to ``unlabeled`` (the pipeline may read these
question texts, never their labels), the rest to ``test`` (scored). Splitting by article keeps a test
question from sharing its article with a training question.

Task names: ``jsquad-ja``, ``facqa-id`` and ``xquad-r-{de,el,es,hi,tr,vi,zh}``.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from lexdr.errors import InputError, LexdrError
from lexdr.formats import write_corpus_jsonl, write_qrels_trec, write_queries_tsv
from lexdr.records import Doc, Query

__all__ = ["DEV_TASKS", "DevTask", "find_data_dir", "load_dev_task", "write_dev_task", "dev_task_files"]

XQUAD_R_LANGS = ("de", "el", "es", "hi", "tr", "vi", "zh")
DEV_TASKS: dict[str, str] = {
    "jsquad-ja": "ja",
    "facqa-id": "id",
    **{f"xquad-r-{lang}": lang for lang in XQUAD_R_LANGS},
}


@dataclass
class DevTask:
    name: str
    lang: str
    corpus: list[Doc]
    queries: list[Query]
    qrels: dict[str, dict[str, int]]
    split: dict[str, str] = field(default_factory=dict)  # query id -> "unlabeled" | "test"

    def queries_of(self, part: str) -> list[Query]:
        return [q for q in self.queries if self.split[q.query_id] == part]

    def qrels_of(self, part: str) -> dict[str, dict[str, int]]:
        return {q: r for q, r in self.qrels.items() if self.split[q] == part}


def find_data_dir(explicit: str | Path | None = None) -> Path | None:
    """The shared data folder: ``explicit``, else ``$LEXDR_DATA``, else ``../shared/data`` from the cwd or
    from this checkout. ``None`` where none exists (callers skip with a message)."""
    candidates = [explicit, os.environ.get("LEXDR_DATA"), Path.cwd() / ".." / "shared" / "data",
                  Path(__file__).resolve().parents[3] / ".." / "shared" / "data"]
    for c in candidates:
        if c and (Path(c) / "README.md").exists():
            return Path(c).resolve()
    return None


def _split_by_article(article_of: dict[str, str]) -> dict[str, str]:
    titles = sorted(set(article_of.values()), key=lambda t: hashlib.sha1(t.encode("utf-8")).hexdigest())
    unlabeled = set(titles[: len(titles) // 2])
    return {qid: ("unlabeled" if art in unlabeled else "test") for qid, art in article_of.items()}


def _load_xquad_r(data_dir: Path, lang: str) -> DevTask:
    path = data_dir / "xquad-r" / f"{lang}.json"
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    corpus, queries, qrels, article_of = [], [], {}, {}
    for a_idx, art in enumerate(data):
        for p_idx, para in enumerate(art["paragraphs"]):
            breaks = para["sentence_breaks"]
            for s_idx, sent in enumerate(para["sentences"]):
                corpus.append(Doc(doc_id=f"{a_idx}-{p_idx}-{s_idx}", text=sent))
            for qa in para["qas"]:
                start = qa["answers"][0]["answer_start"]
                # The gold sentence is the one whose [begin, end] span holds the answer's first character.
                s_idx = next((i for i, (b, e) in enumerate(breaks) if b <= start <= e), None)
                if s_idx is None:
                    continue
                qid = str(qa["id"])
                queries.append(Query(qid, qa["question"]))
                qrels[qid] = {f"{a_idx}-{p_idx}-{s_idx}": 1}
                article_of[qid] = art["title"]
    return DevTask(f"xquad-r-{lang}", lang, corpus, queries, qrels, _split_by_article(article_of))


def _load_jsquad(data_dir: Path) -> DevTask:
    path = data_dir / "jsquad" / "valid-v1.3.json"
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    corpus, queries, qrels, article_of = [], [], {}, {}
    for a_idx, art in enumerate(data):
        for p_idx, para in enumerate(art["paragraphs"]):
            title, _, text = para["context"].partition(" [SEP] ")
            doc_id = f"{a_idx}-{p_idx}"
            corpus.append(Doc(doc_id=doc_id, text=text, title=title))
            for qa in para["qas"]:
                if qa.get("is_impossible"):
                    continue
                qid = str(qa["id"])
                queries.append(Query(qid, qa["question"]))
                qrels[qid] = {doc_id: 1}
                article_of[qid] = art["title"]
    return DevTask("jsquad-ja", "ja", corpus, queries, qrels, _split_by_article(article_of))


_SPACE_BEFORE_PUNCT = re.compile(r" ([,.;:!?)\]%])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[]) ")


def _detokenize(tokens: list[str]) -> str:
    return _SPACE_AFTER_OPEN.sub(r"\1", _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(tokens)))


def _load_facqa(data_dir: Path) -> DevTask:
    # FacQA stores token lists as Python literals; ast.literal_eval parses literals only (no code runs).
    corpus_ids: dict[str, str] = {}
    corpus, queries, qrels, article_of = [], [], {}, {}
    for split in ("train", "valid"):
        path = data_dir / "facqa" / f"{split}_preprocess.csv"
        with open(path, encoding="utf-8", newline="") as fh:
            for lineno, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    question = _detokenize(ast.literal_eval(row["question"]))
                    passage = _detokenize(ast.literal_eval(row["passage"]))
                except (ValueError, SyntaxError, KeyError) as e:
                    raise InputError(path, lineno, f"cannot parse FacQA row ({e})") from None
                doc_id = corpus_ids.get(passage)
                if doc_id is None:
                    doc_id = corpus_ids[passage] = f"p{len(corpus_ids)}"
                    corpus.append(Doc(doc_id=doc_id, text=passage))
                qid = f"{split}-{lineno - 2}"
                queries.append(Query(qid, question))
                qrels[qid] = {doc_id: 1}
                article_of[qid] = doc_id  # no titles: the passage itself is the article
    return DevTask("facqa-id", "id", corpus, queries, qrels, _split_by_article(article_of))


def _task_root(name: str, data_dir: str | Path | None) -> Path:
    """The shared data folder for dev task ``name``; a LexdrError for an unknown task or a missing folder."""
    if name not in DEV_TASKS:
        raise LexdrError(f"unknown dev task {name!r}; known: {', '.join(DEV_TASKS)}")
    root = find_data_dir(data_dir)
    if root is None:
        raise LexdrError("dev data not found: pass data_dir, set LEXDR_DATA, or run from a checkout "
                         "that has ../shared/data")
    return root


def dev_task_files(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """The files under the shared data folder that :func:`load_dev_task` reads for task ``name`` (absolute
    paths), so a run can record their hashes as its inputs like any user file."""
    root = _task_root(name, data_dir)
    if name == "jsquad-ja":
        return [root / "jsquad" / "valid-v1.3.json"]
    if name == "facqa-id":
        return [root / "facqa" / f"{split}_preprocess.csv" for split in ("train", "valid")]
    return [root / "xquad-r" / f"{DEV_TASKS[name]}.json"]


def load_dev_task(name: str, data_dir: str | Path | None = None) -> DevTask:
    """Build dev task ``name`` (see :data:`DEV_TASKS`) from the shared data folder."""
    root = _task_root(name, data_dir)
    if name == "jsquad-ja":
        return _load_jsquad(root)
    if name == "facqa-id":
        return _load_facqa(root)
    return _load_xquad_r(root, DEV_TASKS[name])


def write_dev_task(task: DevTask, out_dir: str | Path) -> dict[str, Path]:
    """Write a task as standard files: corpus.jsonl, queries.{unlabeled,test}.tsv, qrels.{unlabeled,test}.txt."""
    out = Path(out_dir)
    paths = {
        "corpus": out / "corpus.jsonl",
        "queries_unlabeled": out / "queries.unlabeled.tsv",
        "queries_test": out / "queries.test.tsv",
        "qrels_unlabeled": out / "qrels.unlabeled.txt",
        "qrels_test": out / "qrels.test.txt",
    }
    write_corpus_jsonl(task.corpus, paths["corpus"])
    for part in ("unlabeled", "test"):
        write_queries_tsv(task.queries_of(part), paths[f"queries_{part}"])
        write_qrels_trec(task.qrels_of(part), paths[f"qrels_{part}"])
    return paths

"""Query readers: BEIR ``queries.jsonl`` and topics TSV (``qid<TAB>text``), plain or gzipped."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from lexdr.errors import InputError
from lexdr.formats.files import atomic_write, iter_jsonl, open_text, write_jsonl
from lexdr.formats.ids import check_id
from lexdr.records import Query

__all__ = ["iter_queries", "read_queries", "write_queries_tsv", "write_queries_jsonl"]


def _is_jsonl(path: Path) -> bool:
    name = path.name.removesuffix(".gz")
    return name.endswith(".jsonl") or name.endswith(".json")


def iter_queries(path: str | Path) -> Iterator[Query]:
    """Stream queries from ``*.jsonl`` (BEIR: ``_id``, ``text``) or ``*.tsv`` / ``*.txt`` (``qid<TAB>text``).

    Raises :class:`InputError` with ``path:line`` on bad JSON, a missing field, a TSV line that is not exactly
    ``qid<TAB>text``, an empty query text, a duplicate id, or an id with whitespace (TREC runs and qrels are
    whitespace-separated: such an id would write a run that cannot be read back).
    """
    path = Path(path)
    seen: set[str] = set()
    n = 0
    for lineno, qid, text in (_jsonl_rows(path) if _is_jsonl(path) else _tsv_rows(path)):
        qid = str(qid).strip()
        check_id(qid, path, lineno, "query")
        if not text.strip():
            raise InputError(path, lineno, f"query {qid!r} has empty text", "remove the line or add the text")
        if qid in seen:
            raise InputError(path, lineno, f"duplicate query id {qid!r}", "query ids must be unique")
        seen.add(qid)
        n += 1
        yield Query(query_id=qid, text=text.strip())
    if n == 0:
        raise InputError(path, 0, "query file is empty", "point at a non-empty query file")


def _jsonl_rows(path: Path) -> Iterator[tuple[int, object, str]]:
    for lineno, rec in iter_jsonl(path):
        qid = next((rec[f] for f in ("_id", "query_id", "qid", "id") if f in rec), None)
        if qid is None:
            raise InputError(path, lineno, "missing query id field '_id'", 'add "_id" to every query')
        text = rec.get("text", rec.get("query"))
        if not isinstance(text, str):
            raise InputError(path, lineno, "missing or non-string query field 'text'", 'add "text" to every query')
        yield lineno, qid, text


def _tsv_rows(path: Path) -> Iterator[tuple[int, str, str]]:
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            if "\t" not in line:
                raise InputError(path, lineno, "expected 'qid<TAB>query text', found no tab",
                                 "separate the query id and the text with a tab")
            cols = line.split("\t")
            if len(cols) != 2:
                raise InputError(path, lineno, f"expected 2 tab-separated columns (qid, query text), found "
                                 f"{len(cols)}", "keep only the query id and the text on each line; a tab inside "
                                 "the text must become a space")
            qid, text = cols
            yield lineno, qid, text


def read_queries(path: str | Path) -> list[Query]:
    return list(iter_queries(path))


def write_queries_tsv(queries: Iterable[Query], path: str | Path) -> int:
    n = 0
    with atomic_write(path) as fh:
        for q in queries:
            text = " ".join(q.text.split())  # a tab or newline inside a query would break the format
            fh.write(f"{q.query_id}\t{text}\n")
            n += 1
    return n


def write_queries_jsonl(queries: Iterable[Query], path: str | Path) -> int:
    return write_jsonl(({"_id": q.query_id, "text": q.text} for q in queries), path)

"""Qrels: TREC (``qid Q0 docid rel``) and BEIR TSV (``query-id<TAB>corpus-id<TAB>score`` with a header)."""

from __future__ import annotations

from pathlib import Path

from lexdr.errors import InputError
from lexdr.formats.files import atomic_write, open_text
from lexdr.formats.ids import check_run_id, find_bad_id

__all__ = ["Qrels", "read_qrels", "write_qrels_trec"]

# query id -> doc id -> graded relevance (the shape pytrec_eval takes).
Qrels = dict[str, dict[str, int]]


def read_qrels(path: str | Path) -> Qrels:
    """Read TREC or BEIR qrels; the format is detected per file from the first line.

    TREC lines have 4 whitespace-separated columns; BEIR files have a ``query-id corpus-id score`` header
    and 3 tab-separated columns. Any other column count is an :class:`InputError` with ``path:line``.
    A (query, doc) pair given twice with different grades is an error as well, and so is a fractional grade
    (``0.5``: trec_eval takes integer grades; truncating it silently would change the scores).
    """
    path = Path(path)
    qrels: Qrels = {}
    fmt: str | None = None
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            cols = line.split()
            if fmt is None:
                if cols[:2] == ["query-id", "corpus-id"] or cols[:1] == ["query_id"]:
                    fmt = "beir"
                    continue
                fmt = "beir" if len(cols) == 3 else "trec"
            want = 3 if fmt == "beir" else 4
            if len(cols) != want:
                layout = "query-id corpus-id score" if fmt == "beir" else "qid Q0 docid relevance"
                raise InputError(path, lineno, f"expected {want} columns ({layout}), found {len(cols)}",
                                 "fix the line; TREC qrels have 4 columns, BEIR qrels 3 with a header")
            qid, did, rel = (cols[0], cols[1], cols[2]) if fmt == "beir" else (cols[0], cols[2], cols[3])
            try:
                grade = int(rel)
            except ValueError:
                try:
                    value = float(rel)
                except ValueError:
                    raise InputError(path, lineno, f"relevance {rel!r} is not a number",
                                     "the relevance column must be an integer grade") from None
                if not value.is_integer():
                    # trec_eval reads grades as integers; silently truncating 0.5 to 0 would turn a judged
                    # relevant document into a non-relevant one.
                    raise InputError(path, lineno, f"relevance {rel!r} is not an integer grade",
                                     "round the grades yourself (e.g. 0.5 -> 1 if it means relevant); lexdr, "
                                     "like trec_eval, takes integer grades only") from None
                grade = int(value)
            prev = qrels.setdefault(qid, {}).get(did)
            if prev is not None and prev != grade:
                raise InputError(path, lineno, f"pair ({qid}, {did}) judged twice: {prev} and {grade}",
                                 "keep one judgment per pair")
            qrels[qid][did] = grade
    if not qrels:
        raise InputError(path, 0, "qrels file is empty", "point at a non-empty qrels file")
    return qrels


def write_qrels_trec(qrels: Qrels, path: str | Path) -> None:
    """Write TREC qrels atomically; an id with whitespace is refused (it could not be read back)."""
    for ids, what in ((list(qrels), "query"), ([d for r in qrels.values() for d in r], "document")):
        bad = find_bad_id(ids)
        if bad is not None:
            check_run_id(bad, path, what)
    with atomic_write(path) as fh:
        for qid in qrels:
            for did, rel in qrels[qid].items():
                fh.write(f"{qid} Q0 {did} {rel}\n")

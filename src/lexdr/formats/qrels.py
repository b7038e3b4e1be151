"""Qrels: TREC (``qid Q0 docid rel``) and BEIR TSV (``query-id<TAB>corpus-id<TAB>score`` with a header)."""

from __future__ import annotations

from pathlib import Path

from lexdr.errors import InputError
from lexdr.formats.files import atomic_write, open_text

__all__ = ["Qrels", "read_qrels", "write_qrels_trec"]

# query id -> doc id -> graded relevance (the shape pytrec_eval takes).
Qrels = dict[str, dict[str, int]]


def read_qrels(path: str | Path) -> Qrels:
    """Read TREC or BEIR qrels; the format is detected per file from the first line.

    TREC lines have 4 whitespace-separated columns; BEIR files have a ``query-id corpus-id score`` header
    and 3 tab-separated columns. Any other column count is an :class:`InputError` with ``path:line``.
    A (query, doc) pair given twice with different grades is an error as well.
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
                grade = int(float(rel))
            except ValueError:
                raise InputError(path, lineno, f"relevance {rel!r} is not a number",
                                 "the relevance column must be an integer grade") from None
            prev = qrels.setdefault(qid, {}).get(did)
            if prev is not None and prev != grade:
                raise InputError(path, lineno, f"pair ({qid}, {did}) judged twice: {prev} and {grade}",
                                 "keep one judgment per pair")
            qrels[qid][did] = grade
    if not qrels:
        raise InputError(path, 0, "qrels file is empty", "point at a non-empty qrels file")
    return qrels


def write_qrels_trec(qrels: Qrels, path: str | Path) -> None:
    with atomic_write(path) as fh:
        for qid in qrels:
            for did, rel in qrels[qid].items():
                fh.write(f"{qid} Q0 {did} {rel}\n")

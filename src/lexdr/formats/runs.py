"""TREC run files: ``qid Q0 docid rank score tag``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Sequence

from lexdr.errors import InputError
from lexdr.formats.files import atomic_write, open_text
from lexdr.formats.ids import check_run_id, find_bad_id
from lexdr.records import Hit, Run

__all__ = ["read_run", "iter_run", "write_run", "write_run_items", "sort_hits"]


def sort_hits(hits: list[Hit]) -> list[Hit]:
    """Best first; ties broken by doc id so the order never depends on hashing or insertion."""
    return sorted(hits, key=lambda h: (-h.score, h.doc_id))


def _lines(path: Path) -> Iterator[tuple[int, str, str, float]]:
    """``(line number, qid, doc id, score)`` of each non-blank line of a TREC run, checked."""
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            cols = line.split()
            if len(cols) != 6:
                raise InputError(path, lineno, f"expected 6 columns (qid Q0 docid rank score tag), found {len(cols)}",
                                 "write runs in TREC format")
            qid, _, did, rank, score, _tag = cols
            try:
                int(rank)
                s = float(score)
            except ValueError:
                raise InputError(path, lineno, f"rank {rank!r} or score {score!r} is not a number") from None
            yield lineno, qid, did, s


def _twice(path: Path, lineno: int, qid: str, did: str) -> InputError:
    return InputError(path, lineno, f"document {did!r} appears twice for query {qid!r}",
                      "a run lists each document at most once per query")


def read_run(path: str | Path) -> Run:
    """Read a TREC run. Hits are returned sorted by score (desc), ties by doc id; the rank column is ignored
    for ordering (as trec_eval does) but must be an integer."""
    path = Path(path)
    run: Run = {}
    seen: set[tuple[str, str]] = set()
    for lineno, qid, did, s in _lines(path):
        if (qid, did) in seen:
            raise _twice(path, lineno, qid, did)
        seen.add((qid, did))
        run.setdefault(qid, []).append(Hit(did, s))
    if not run:
        raise InputError(path, 0, "run file is empty", "point at a non-empty run file")
    return {q: sort_hits(h) for q, h in run.items()}


def iter_run(path: str | Path) -> Iterator[tuple[str, list[Hit]]]:
    """A TREC run one query at a time, ``(qid, hits best first)``, holding one query's hits: the lines of a
    query must be consecutive (every run lexdr, Pyserini or trec_eval writes is); a query whose lines are
    split is an :class:`InputError` naming the line. Same checks and order as :func:`read_run`."""
    path = Path(path)
    done: set[str] = set()
    qid_now, hits, docs = None, [], set()
    for lineno, qid, did, s in _lines(path):
        if qid != qid_now:
            if qid_now is not None:
                done.add(qid_now)
                yield qid_now, sort_hits(hits)
            if qid in done:
                raise InputError(path, lineno, f"the lines of query {qid!r} are not consecutive",
                                 "sort the run by query, keeping each query's order (sort -s -k1,1)")
            qid_now, hits, docs = qid, [], set()
        if did in docs:
            raise _twice(path, lineno, qid, did)
        docs.add(did)
        hits.append(Hit(did, s))
    if qid_now is None:
        raise InputError(path, 0, "run file is empty", "point at a non-empty run file")
    yield qid_now, sort_hits(hits)


def write_run(run: Run, path: str | Path, tag: str = "lexdr") -> None:
    """Write a run in TREC format atomically, hits in the order given (callers pass them sorted).

    An empty id or one holding whitespace is refused (:class:`LexdrError`) before anything is written: it
    would split into extra columns and the run could not be read back."""
    write_run_items(run.items(), path, tag, list(run))


def write_run_items(items: Iterable[tuple[str, list[Hit]]], path: str | Path, tag: str = "lexdr",
                    query_ids: Sequence[str] = ()) -> int:
    """:func:`write_run` for a run that arrives query by query (``(query id, hits)`` pairs, e.g. a search
    streamed in batches: :meth:`lexdr.sparse.BM25Index.iter_search`), so it is never held whole; the same
    bytes. ``query_ids``, the queries to come, are checked before anything is written. Returns how many
    queries had no hit."""
    tag = "_".join(tag.split()) or "lexdr"
    bad_q = find_bad_id(list(query_ids))
    if bad_q is not None:
        check_run_id(bad_q, path, "query")
    empty = 0
    with atomic_write(path) as fh:
        for qid, hits in items:
            bad = find_bad_id([h.doc_id for h in hits])
            if bad is not None:  # raised inside the atomic write: nothing is left behind
                check_run_id(bad, path, "document")
            empty += not hits
            for rank, h in enumerate(hits, start=1):
                fh.write(f"{qid} Q0 {h.doc_id} {rank} {h.score:.6f} {tag}\n")
    return empty

"""Corpus readers: BEIR and Mr. TyDi / Pyserini JSONL, plain or gzipped, streamed."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Iterable, Iterator

from lexdr.doc_ids import SeenIds
from lexdr.errors import InputError
from lexdr.formats.files import iter_jsonl, write_jsonl
from lexdr.formats.ids import check_id
from lexdr.records import Doc

__all__ = ["EmptyTextPolicy", "iter_corpus", "read_corpus", "write_corpus_jsonl"]

# Field names by format, tried in this order. BEIR uses `_id`; Mr. TyDi / Pyserini use `docid`
# (Pyserini's JsonCollection uses `id` + `contents`).
_ID_FIELDS = ("_id", "docid", "id", "doc_id")
_TEXT_FIELDS = ("text", "contents")


class EmptyTextPolicy(str, enum.Enum):
    """What to do with a passage whose title and text are both empty."""

    error = "error"  # stop with file:line (default: an empty passage is usually a conversion bug)
    skip = "skip"  # drop it silently (counted in the log)
    keep = "keep"  # keep it; it can never be retrieved by BM25


def iter_corpus(
    path: str | Path,
    empty_text: EmptyTextPolicy | str = EmptyTextPolicy.error,
    check_duplicates: bool = True,
) -> Iterator[Doc]:
    """Stream the passages of a JSONL corpus (``.jsonl`` or ``.jsonl.gz``).

    Accepted records: BEIR ``{"_id", "title", "text"}``, Mr. TyDi ``{"docid", "title", "text"}``,
    Pyserini ``{"id", "contents"}``. ``title`` is optional. Ids are read as strings.

    Raises
    ------
    InputError
        Bad JSON, a record that is not an object, a missing id or text field, an empty id or one with
        whitespace (it could not be written to a TREC run), a duplicate id, an empty
        passage (under ``empty_text="error"``), or an empty file; always with ``path:line``.
    """
    path = Path(path)
    policy = EmptyTextPolicy(empty_text)
    seen = SeenIds()  # 8 bytes an id (a set of the ids: about 100), hits confirmed from the file
    n = 0
    for lineno, rec in iter_jsonl(path):
        doc_id = _record_id(rec)
        if doc_id is None:
            raise InputError(path, lineno, f"missing id field (one of {', '.join(_ID_FIELDS)})",
                             'add "_id" (BEIR) or "docid" (Mr. TyDi)')
        text = next((rec[f] for f in _TEXT_FIELDS if f in rec), None)
        if text is None:
            raise InputError(path, lineno, f"missing text field (one of {', '.join(_TEXT_FIELDS)})",
                             'add "text" to every record')
        title = rec.get("title") or ""
        if not isinstance(text, str) or not isinstance(title, str):
            raise InputError(path, lineno, "text and title must be strings")
        doc_id = str(doc_id)
        check_id(doc_id, path, lineno, "document")
        if check_duplicates and seen.add(doc_id) and (first := _first_line_of(path, doc_id, lineno)):
            raise InputError(path, lineno, f"duplicate document id {doc_id!r} (first at line {first})",
                             "document ids must be unique in a corpus")
        if not text.strip() and not title.strip():
            if policy is EmptyTextPolicy.error:
                raise InputError(path, lineno, f"document {doc_id!r} has empty title and text",
                                 "remove it, or pass empty_text='skip' / --empty-text skip")
            if policy is EmptyTextPolicy.skip:
                continue
        n += 1
        yield Doc(doc_id=doc_id, text=text, title=title)
    if n == 0:
        raise InputError(path, 0, "corpus is empty (no documents)", "point at a non-empty corpus file")


def _record_id(rec: dict):
    """A record's id field, the first of :data:`_ID_FIELDS` it has (None: none)."""
    return next((rec[f] for f in _ID_FIELDS if f in rec), None)


def _first_line_of(path: Path, doc_id: str, before: int) -> int | None:
    """The line before ``before`` whose record has id ``doc_id`` (None: an id that only shares its hash)."""
    for lineno, rec in iter_jsonl(path):
        if lineno >= before:
            return None
        if str(_record_id(rec)) == doc_id:
            return lineno
    return None


def read_corpus(path: str | Path, empty_text: EmptyTextPolicy | str = EmptyTextPolicy.error) -> list[Doc]:
    """Read a whole corpus into a list (see :func:`iter_corpus`)."""
    return list(iter_corpus(path, empty_text=empty_text))


def write_corpus_jsonl(docs: Iterable[Doc], path: str | Path) -> int:
    """Write BEIR-style ``{"_id","title","text"}`` JSONL atomically; returns the number written."""
    return write_jsonl(({"_id": d.doc_id, "title": d.title, "text": d.text} for d in docs), path)

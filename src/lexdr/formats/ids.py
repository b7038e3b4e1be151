"""Ids that TREC files can carry: non-empty, no whitespace.

TREC runs and qrels are whitespace-separated columns, so an id holding a space or a tab turns into extra
columns and the file cannot be read back (by lexdr, trec_eval or Pyserini). Readers refuse such an id where it
enters (with file and line); writers refuse it rather than write an unreadable file.
"""

from __future__ import annotations

import re
from pathlib import Path

from lexdr.errors import InputError, LexdrError

__all__ = ["id_problem", "check_id", "check_run_id", "find_bad_id"]

# Whatever str.split() splits on (Unicode whitespace, NBSP included): what lexdr's TREC readers split on.
_WS = re.compile(r"\s")


def id_problem(value: str) -> str | None:
    """Why ``value`` cannot be a TREC id, or None when it can."""
    if not value:
        return "is empty"
    if _WS.search(value):
        return "contains whitespace (TREC runs and qrels are whitespace-separated)"
    return None


def check_id(value: str, path: str | Path, line: int, what: str) -> None:
    """:class:`InputError` at ``path:line`` when ``value`` (a ``what`` id: "query", "document") is not a valid id."""
    problem = id_problem(value)
    if problem:
        raise InputError(path, line, f"{what} id {value!r} {problem}",
                         "use ids without spaces or tabs (e.g. replace them with '_')")


def check_run_id(value: str, path: str | Path, what: str) -> None:
    """:class:`LexdrError` when an id about to be written to the TREC file ``path`` would make it unreadable."""
    problem = id_problem(value)
    if problem:
        raise LexdrError(f"cannot write {path}: {what} id {value!r} {problem}; the file could not be read back "
                         "(fix: use ids without spaces or tabs, e.g. replace them with '_')")


def find_bad_id(values: list[str]) -> str | None:
    """The first id of ``values`` that :func:`id_problem` refuses, or None; one C-level scan for the common
    case where all are fine (run writers check millions of doc ids)."""
    if "" in values or _WS.search("\x00".join(values)):
        return next(v for v in values if id_problem(v))
    return None

"""Stop-word lists shipped with lexdr (``stopwords/{lang}.txt``), loaded once per process.

Each file states where its words come from and under which licence. Lists are plain text (one word a line,
``#`` comments) so they can be read, diffed and replaced without touching code.
"""

from __future__ import annotations

import functools
from importlib import resources

from lexdr.errors import LexdrError

__all__ = ["load_stopwords", "available_stoplists"]


def _folder():
    return resources.files("lexdr.analysis").joinpath("stopwords")


def available_stoplists() -> list[str]:
    """Language codes that have a shipped stop list."""
    return sorted(p.name[:-4] for p in _folder().iterdir() if p.name.endswith(".txt"))


@functools.lru_cache(maxsize=None)
def load_stopwords(name: str) -> frozenset[str]:
    """The raw words of stop list ``name`` (a language code), as written in the file."""
    path = _folder().joinpath(f"{name}.txt")
    if not path.is_file():
        raise LexdrError(f"no stop list {name!r}; shipped lists: {', '.join(available_stoplists())}")
    words = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            words.add(line)
    return frozenset(words)

"""Server-side pages: Jinja2 templates (``templates/``, autoescaped), query-term highlighting, and the links
between pages, which differ between the live service (query strings) and the static copy (file names)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlencode

import jinja2
from markupsafe import Markup, escape

__all__ = ["environment", "highlight", "LiveLinks", "StaticLinks", "snippet"]

_WORD = re.compile(r"\w+")


def highlight(text: str, analyzer: Callable[[str], list[str]] | None, query: str) -> Markup:
    """``text`` escaped, with the words that analyze to one of the query's terms in ``<mark>``.

    A word is marked when the BM25 analyzer of the language maps it to a query term (so "cats" matches
    "cat" where the analyzer stems). A long unsegmented run (Japanese, Chinese, Thai) analyzes to several
    terms; inside it the query's own words and terms are marked where they occur literally.
    """
    if not query or analyzer is None:
        return escape(text)
    terms = set(analyzer(query))
    if not terms:
        return escape(text)
    literal = sorted({w for w in _WORD.findall(query.lower()) if len(w) >= 2} | {t for t in terms if len(t) >= 2},
                     key=len, reverse=True)
    cache: dict[str, list[str]] = {}
    out, pos = [], 0
    for m in _WORD.finditer(text):
        out.append(escape(text[pos:m.start()]))
        word = m.group(0)
        if word not in cache:
            cache[word] = analyzer(word)
        analyzed = cache[word]
        if len(analyzed) <= 1:
            out.append(Markup("<mark>%s</mark>") % word if set(analyzed) & terms else escape(word))
        else:
            out.append(_mark_literal(word, literal))
        pos = m.end()
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def _mark_literal(word: str, literal: list[str]) -> Markup:
    if not literal:
        return escape(word)
    pattern = re.compile("|".join(re.escape(w) for w in literal), re.IGNORECASE)
    out, pos = [], 0
    for m in pattern.finditer(word):
        out.append(escape(word[pos:m.start()]))
        out.append(Markup("<mark>%s</mark>") % m.group(0))
        pos = m.end()
    out.append(escape(word[pos:]))
    return Markup("").join(out)


def snippet(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


class LiveLinks:
    """Links of the running service."""

    static = False

    def search(self, lang: str, q: str = "", qid: str | None = None, trained: str | None = None) -> str:
        params = {"lang": lang, "q": q}
        if qid:
            params["qid"] = qid
        if trained:
            params["trained"] = trained
        return "/?" + urlencode(params)

    def tests(self, lang: str, trained: str | None = None, versus: str = "bm25", only: str = "all") -> str:
        params = {"lang": lang, "versus": versus, "only": only}
        if trained:
            params["trained"] = trained
        return "/tests?" + urlencode(params)

    def mining(self, lang: str, stage: str = "mine", only: str = "all", doc: str | None = None) -> str:
        params = {"lang": lang, "stage": stage, "only": only}
        if doc:
            params["doc"] = doc
        return "/mining?" + urlencode(params)

    def generated(self, lang: str) -> str:
        return "/generated?" + urlencode({"lang": lang})

    def home(self) -> str:
        return "/"


def _safe(name: str) -> str:
    return quote(name, safe="").replace("%", "_")


class StaticLinks:
    """Links between the files of ``lexdr report --html`` (all in one folder, test queries under ``q/``)."""

    static = True

    def __init__(self, written_queries: set[tuple[str, str]] | None = None):
        self.written = written_queries if written_queries is not None else set()

    def search(self, lang: str, q: str = "", qid: str | None = None, trained: str | None = None) -> str:
        return f"q/{_safe(lang)}/{_safe(qid)}.html" if qid and (lang, qid) in self.written else ""

    def tests(self, lang: str, trained: str | None = None, versus: str = "bm25", only: str = "all") -> str:
        return f"tests-{_safe(lang)}-{versus}-{only}.html"

    def mining(self, lang: str, stage: str = "mine", only: str = "all", doc: str | None = None) -> str:
        return f"mining-{_safe(lang)}-{stage}.html" + (f"#doc-{_safe(doc)}" if doc else "")

    def generated(self, lang: str) -> str:
        return f"generated-{_safe(lang)}.html"

    def home(self) -> str:
        return "index.html"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["snippet"] = snippet
    env.filters["fmt"] = _fmt
    env.globals["rank_class"] = _rank_class
    return env


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _rank_class(rank: int | None) -> str:
    if rank is None:
        return "r-miss"
    return "r-top" if rank == 1 else "r-good" if rank <= 10 else "r-far"

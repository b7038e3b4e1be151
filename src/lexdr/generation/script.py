"""Unicode script of a text, from ``unicodedata`` alone (no new dependency).

Python's ``unicodedata`` has no Script property, but every letter's character name starts with its script
("LATIN SMALL LETTER A", "CJK UNIFIED IDEOGRAPH-6771", "HIRAGANA LETTER HI", "ARABIC LETTER ALEF"), which
is exact for the scripts retrieval corpora are written in. Only letters (categories L*) vote: digits,
punctuation and combining marks are shared across scripts and say nothing about the language.

Writing systems that mix scripts are handled as *groups*: a Japanese passage is Han + Hiragana + Katakana, a
Korean one Hangul with the odd Han character. :func:`passage_script` names the group, and
:func:`script_share` measures how much of a query is written in it.

Limitation (by design): a script check cannot tell German from Spanish, only Latin from Cyrillic or Han.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Iterable

__all__ = ["char_script", "script_counts", "passage_script", "dominant_script", "allowed_scripts", "script_share",
           "script_matches"]

# First words of character names that are not a script (or need a second look).
_WIDTH_PREFIXES = ("FULLWIDTH", "HALFWIDTH")
_RENAME = {
    "CJK": "Han",
    "IDEOGRAPHIC": "Han",  # 々 IDEOGRAPHIC ITERATION MARK
    "KATAKANA-HIRAGANA": "Katakana",  # ー prolonged sound mark: only used in Japanese
    "KANGXI": "Han",
}
_NOT_A_SCRIPT = {"MODIFIER", "SMALL", "LETTER", "COMBINING", "SUPERSCRIPT", "SUBSCRIPT", "CIRCLED", "PARENTHESIZED",
                 "MATHEMATICAL", "DOUBLE-STRUCK", "SCRIPT", "BLACK-LETTER", "SQUARED", "NEGATIVE"}

# Japanese mixes three scripts; a passage with kana is Japanese, Han alone is Chinese (or kanji-only Japanese
# text, which is rare in running prose).
_KANA = {"Hiragana", "Katakana"}
_GROUPS: dict[str, frozenset[str]] = {
    "Japanese": frozenset({"Han", "Hiragana", "Katakana"}),
    "Korean": frozenset({"Hangul", "Han"}),
}
_KANA_SHARE_FOR_JAPANESE = 0.05


@lru_cache(maxsize=65536)
def char_script(ch: str) -> str | None:
    """The script of one letter ("Latin", "Han", "Hiragana", ...), or None for a non-letter / unnamed char."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    name = unicodedata.name(ch, "")
    if not name:
        return None
    words = name.split(" ")
    if words[0] in _WIDTH_PREFIXES and len(words) > 1:
        words = words[1:]
    first = words[0]
    if first in _RENAME:
        return _RENAME[first]
    if first in _NOT_A_SCRIPT:
        return None
    return first.capitalize()  # "LATIN" -> "Latin", "DEVANAGARI" -> "Devanagari"


def script_counts(text: str) -> Counter[str]:
    """How many letters of ``text`` each script has."""
    counts: Counter[str] = Counter()
    for ch in text:
        s = char_script(ch)
        if s is not None:
            counts[s] += 1
    return counts


def passage_script(text: str) -> str | None:
    """The passage's dominant script or script group ("Japanese", "Korean", "Latin", "Han", ...).

    None for a passage without letters (then no query can be checked against it).
    """
    return _group(script_counts(text))


def dominant_script(texts: Iterable[str]) -> str | None:
    """The script group of a whole collection (letters counted over all ``texts``): a corpus's script."""
    counts: Counter[str] = Counter()
    for t in texts:
        counts.update(script_counts(t))
    return _group(counts)


def _group(counts: Counter[str]) -> str | None:
    total = sum(counts.values())
    if total == 0:
        return None
    kana = sum(counts[s] for s in _KANA)
    japanese = counts["Han"] + kana
    if kana / total >= _KANA_SHARE_FOR_JAPANESE and japanese >= max(counts.values()):
        return "Japanese"
    if counts["Hangul"] and counts["Hangul"] + counts["Han"] >= max(counts.values()):
        return "Korean"
    return counts.most_common(1)[0][0]


def allowed_scripts(group: str) -> frozenset[str]:
    """The scripts a query for a passage written in ``group`` may use."""
    return _GROUPS.get(group, frozenset({group}))


def script_share(query: str, group: str) -> float:
    """Share of the query's letters written in ``group``'s scripts; 0.0 for a query without letters."""
    counts = script_counts(query)
    total = sum(counts.values())
    if total == 0:
        return 0.0
    allowed = allowed_scripts(group)
    return sum(n for s, n in counts.items() if s in allowed) / total


def script_matches(query: str, passage: str, min_share: float = 0.5, corpus_script: str | None = None) -> bool:
    """True when at least ``min_share`` of the query's letters are in the passage's dominant script (group).

    ``corpus_script`` (e.g. from :func:`dominant_script` over the corpus) is accepted too: a passage that is
    just a name in Latin letters ("Tiddeman.") inside a Greek corpus should still get Greek queries. A passage
    without letters accepts every query (there is nothing to compare with). A query without letters (only
    digits or punctuation) is rejected: it is not a search query in any language.
    """
    group = passage_script(passage)
    if group is None:
        return True
    if script_share(query, group) >= min_share:
        return True
    return corpus_script is not None and script_share(query, corpus_script) >= min_share

"""Rule-based tokenizers: Unicode words (a UAX #29 approximation) and Lucene-style CJK bigrams.

Both are pure Python (``re`` + ``unicodedata``), fast, picklable and dependency-free. Dictionary/model-based
segmenters (Japanese, Korean, Thai) and the subword tokenizer live in :mod:`lexdr.analysis.segmenters` and
:mod:`lexdr.analysis.subword`.
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = ["word_tokens", "cjk_bigram_tokens", "is_cjk", "CJK_CHARS"]


@functools.lru_cache(maxsize=1)
def _mark_class() -> str:
    """Character-class body with every combining mark (Mn, Mc, Me) plus ZWNJ/ZWJ.

    Python's ``\\w`` leaves out spacing and non-spacing marks, which would cut Devanagari, Bengali, Telugu, Thai
    and Arabic words at every vowel sign or diacritic; UAX #29 keeps marks inside their word.
    """
    ranges: list[tuple[int, int]] = []
    for cp in range(0x0300, 0x20000):
        if unicodedata.category(chr(cp)) in ("Mn", "Mc", "Me"):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    body = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return body + "\u200c\u200d"


# Han ideographs (+ extensions, compatibility), hiragana, katakana (incl. the prolonged sound mark),
# half-width katakana, and Hangul syllables/jamo: the scripts Lucene's CJKBigramFilter pairs up.
CJK_CHARS = (
    "\u1100-\u11ff\u3005\u3007\u3021-\u3029\u3031-\u3035\u3040-\u309f\u30a0-\u30ff\u3130-\u318f\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0002fa1f"
)
# Han and hiragana are split into single characters by UAX #29 (Lucene's StandardTokenizer) as well.
_SINGLE_CHARS = "\u3005\u3007\u3040-\u309f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"


@functools.lru_cache(maxsize=1)
def _word_re() -> re.Pattern[str]:
    w = rf"[^\W{_SINGLE_CHARS}]|[{_mark_class()}]"
    # A word: word characters/marks, optionally joined by an apostrophe or a dot between letters/digits
    # ("don't", "U.S", "3.14") or a comma between digits ("1,000"), like UAX #29's MidLetter/MidNum rules.
    word = rf"(?:{w})+(?:(?:['\u2019.]|(?<=\d),(?=\d))(?:{w})+)*"
    return re.compile(rf"[{_SINGLE_CHARS}]|{word}")


@functools.lru_cache(maxsize=1)
def _ascii_word_re() -> re.Pattern[str]:
    # _word_re() restricted to ASCII text, where neither its single characters nor its marks can occur: the
    # same matches, about 5 times faster (the full pattern tries a large alternation at every character).
    return re.compile(r"\w+(?:(?:['.]|(?<=\d),(?=\d))\w+)*", re.ASCII)


def word_tokens(text: str) -> list[str]:
    """Split ``text`` into Unicode words; each Han/hiragana character is its own token (as in UAX #29)."""
    return (_ascii_word_re() if text.isascii() else _word_re()).findall(text)


@functools.lru_cache(maxsize=1)
def _cjk_split_re() -> re.Pattern[str]:
    return re.compile(rf"([{CJK_CHARS}]+)")


def is_cjk(ch: str) -> bool:
    return bool(_cjk_split_re().fullmatch(ch))


def cjk_bigram_tokens(text: str, unigrams: bool = False) -> list[str]:
    """Lucene CJKAnalyzer-style tokens: overlapping bigrams over each run of CJK characters, words elsewhere.

    A run of one CJK character yields that character. With ``unigrams=True`` every character is emitted as
    well (Lucene's ``outputUnigrams``), which helps single-character queries at the cost of a larger index.
    """
    out: list[str] = []
    for i, part in enumerate(_cjk_split_re().split(text)):
        if not part:
            continue
        if i % 2 == 1:  # a CJK run (captured group)
            if len(part) == 1:
                out.append(part)
                continue
            if unigrams:
                for j in range(len(part) - 1):
                    out.append(part[j])
                    out.append(part[j : j + 2])
                out.append(part[-1])
            else:
                out.extend(part[j : j + 2] for j in range(len(part) - 1))
        else:
            out.extend(word_tokens(part))
    return out

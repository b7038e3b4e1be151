"""Text- and token-level normalizers shared by the language analyzers.

Each function does one thing and is named in an analyzer's config (``"char_filters"`` run on the whole text
before tokenization, ``"token_filters"`` on each token after it), so an index can record exactly which
normalizations made its terms and rebuild the same analyzer at query time.

Lucene equivalents, for readers who know that stack: ``nfkc`` covers CJKWidthFilter (and more), ``lower`` is
LowerCaseFilter, ``turkish_lower`` TurkishLowerCaseFilter, ``decimal_digits`` DecimalDigitFilter,
``possessive`` EnglishPossessiveFilter, ``apostrophe`` ApostropheFilter, ``greek`` GreekLowerCaseFilter's accent
and final-sigma folding. The Arabic and Indic normalizers live in :mod:`lexdr.analysis.arabic` and
:mod:`lexdr.analysis.indic`.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Callable

__all__ = [
    "nfkc",
    "nfc",
    "lower",
    "turkish_lower",
    "decimal_digits",
    "possessive",
    "apostrophe",
    "greek",
    "CHAR_FILTERS",
]


def nfkc(text: str) -> str:
    """NFKC: folds full-width/half-width forms, ligatures, Arabic presentation forms and compatibility digits.

    Right for retrieval in every language we support: the folded variants are typographic, not lexical.
    """
    return unicodedata.normalize("NFKC", text)


def nfc(text: str) -> str:
    """NFC only (canonical composition), for analyzers that must keep compatibility characters apart."""
    return unicodedata.normalize("NFC", text)


def lower(text: str) -> str:
    """Unicode lowercasing (``str.lower``), like Lucene's LowerCaseFilter."""
    return text.lower()


_TR_UPPER = str.maketrans({"I": "ı", "İ": "i"})


def turkish_lower(text: str) -> str:
    """Turkish casing: dotted İ -> i and dotless I -> ı before the generic lowercasing.

    ``str.lower`` maps 'I' to 'i' and 'İ' to 'i' + U+0307, both wrong for Turkish and both break stemming.
    """
    return text.translate(_TR_UPPER).lower().replace("i\u0307", "i")


@functools.lru_cache(maxsize=1)
def _digit_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for cp in range(0x80, 0x20000):
        ch = chr(cp)
        if unicodedata.category(ch) == "Nd":
            table[cp] = str(unicodedata.decimal(ch))
    return table


def decimal_digits(text: str) -> str:
    """Fold every Unicode decimal digit (Arabic-Indic, Devanagari, Bengali, Thai, ...) to ASCII 0-9.

    Queries and passages mix digit scripts ("١٩٩٠" vs "1990"); Lucene's DecimalDigitFilter does the same.
    """
    if text.isascii():
        return text
    return text.translate(_digit_table())


_POSSESSIVE_ENDINGS = ("'s", "\u2019s", "\uff07s")


def possessive(token: str) -> str:
    """Strip a trailing English possessive ('s), as Lucene's EnglishPossessiveFilter."""
    for end in _POSSESSIVE_ENDINGS:
        if token.endswith(end) and len(token) > len(end):
            return token[: -len(end)]
    return token


def apostrophe(token: str) -> str:
    """Drop an apostrophe and everything after it (Turkish suffixes on proper names: "İstanbul'da")."""
    for sep in ("'", "\u2019"):
        pos = token.find(sep)
        if pos > 0:
            return token[:pos]
    return token


def greek(token: str) -> str:
    """Greek folding: strip tonos/dialytika and map final sigma to sigma (GreekLowerCaseFilter's job)."""
    if token.isascii():
        return token
    decomposed = unicodedata.normalize("NFD", token)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped).replace("ς", "σ")


# Named text-level filters (run before tokenization). Token filters are resolved in ``pipeline``.
CHAR_FILTERS: dict[str, Callable[[str], str]] = {
    "nfkc": nfkc,
    "nfc": nfc,
    "lower": lower,
    "turkish_lower": turkish_lower,
    "decimal_digits": decimal_digits,
}

"""Arabic orthographic normalization and light stemming, ported from Lucene's ArabicNormalizer/ArabicStemmer.

Lucene (Apache-2.0) implements the light stemmer of Larkey, Ballesteros & Connell, "Light Stemming for Arabic
Information Retrieval" (2005): one definite-article/conjunction prefix and any of a fixed list of suffixes are
removed, each only when enough of the word remains. It is the Arabic analyzer Anserini/Pyserini use for Mr. TyDi,
so matching it keeps our BM25 comparable to theirs; Snowball's Arabic stemmer is offered as an alternative.
"""

from __future__ import annotations

__all__ = ["normalize_arabic", "stem_arabic_light"]

ALEF, ALEF_MADDA, ALEF_HAMZA_ABOVE, ALEF_HAMZA_BELOW = "\u0627", "\u0622", "\u0623", "\u0625"
YEH, DOTLESS_YEH = "\u064a", "\u0649"
TEH_MARBUTA, HEH = "\u0629", "\u0647"
BEH, TEH, FEH, KAF, LAM, NOON, WAW = "\u0628", "\u062a", "\u0641", "\u0643", "\u0644", "\u0646", "\u0648"

# Alef variants -> bare alef, alef maksura -> yeh, teh marbuta -> heh; tatweel and the harakat
# (fathatan .. sukun, U+064B-U+0652) are deleted.
_NORMALIZE = str.maketrans(
    {ALEF_MADDA: ALEF, ALEF_HAMZA_ABOVE: ALEF, ALEF_HAMZA_BELOW: ALEF, DOTLESS_YEH: YEH, TEH_MARBUTA: HEH,
     "\u0640": None, **{chr(c): None for c in range(0x064B, 0x0653)}}
)

# Checked in this order; only the first matching prefix is removed.
_PREFIXES = (ALEF + LAM, WAW + ALEF + LAM, BEH + ALEF + LAM, KAF + ALEF + LAM, FEH + ALEF + LAM, LAM + LAM, WAW)
# Checked in this order; every suffix that still matches is removed in turn.
_SUFFIXES = (HEH + ALEF, ALEF + NOON, ALEF + TEH, WAW + NOON, YEH + NOON, YEH + HEH, YEH + TEH_MARBUTA,
             HEH, TEH_MARBUTA, YEH)


def normalize_arabic(token: str) -> str:
    """Lucene ArabicNormalizer: unify alef/yeh/teh-marbuta spellings, drop tatweel and diacritics."""
    return token.translate(_NORMALIZE)


def stem_arabic_light(token: str) -> str:
    """Lucene ArabicStemmer: strip one prefix (ال, وال, بال, كال, فال, لل, و) then common suffixes.

    The length guards keep short words intact: a prefix needs 2 letters left after it (the one-letter و needs
    a 4-letter word), a suffix needs 2 letters left before it.
    """
    for p in _PREFIXES:
        if len(p) == 1 and len(token) < 4:
            continue
        if len(token) >= len(p) + 2 and token.startswith(p):
            token = token[len(p):]
            break
    for s in _SUFFIXES:
        if len(token) >= len(s) + 2 and token.endswith(s):
            token = token[: -len(s)]
    return token

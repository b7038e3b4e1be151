"""Indic normalization and light stemming, ported from Lucene (Apache-2.0).

* :func:`normalize_indic` - Lucene's IndicNormalizer: composes multi-codepoint spellings of one letter (Unicode
  5.2 ch. 6 and the LDC Indian-scripts table) into the single precomposed codepoint, per script.
* :func:`normalize_hindi`, :func:`stem_hindi` - HindiNormalizer (Pingali & Varma; Larkey et al.) and
  HindiStemmer (Ramanathan & Rao, "A Lightweight Stemmer for Hindi").
* :func:`normalize_bengali`, :func:`stem_bengali` - BengaliNormalizer (UzZaman & Khan) and BengaliStemmer.
* :func:`normalize_telugu`, :func:`stem_telugu` - TeluguNormalizer and TeluguStemmer.

They are what Anserini's Hindi/Bengali/Telugu analyzers do, which is what Mr. TyDi's published BM25 numbers
used, so they are our defaults for those languages. The ports keep Lucene's rule order and length guards
(lengths are in UTF-16 units there; every character here is in the BMP, so ``len`` agrees).
"""

from __future__ import annotations

__all__ = [
    "normalize_indic",
    "normalize_hindi",
    "stem_hindi",
    "normalize_bengali",
    "stem_bengali",
    "normalize_telugu",
    "stem_telugu",
]

# ----------------------------------------------------------------------------------------- IndicNormalizer
_DEVANAGARI, _BENGALI, _GURMUKHI, _GUJARATI, _ORIYA, _TAMIL, _TELUGU, _KANNADA, _MALAYALAM = (
    1, 2, 4, 8, 16, 32, 64, 128, 256)
_BASES = {_DEVANAGARI: 0x0900, _BENGALI: 0x0980, _GURMUKHI: 0x0A00, _GUJARATI: 0x0A80, _ORIYA: 0x0B00,
          _TAMIL: 0x0B80, _TELUGU: 0x0C00, _KANNADA: 0x0C80, _MALAYALAM: 0x0D00}
_ZWJ = 0xFF  # in the table: "zero-width joiner"

# (ch1, ch2, ch3, result, scripts): offsets into each script's 0x80 block; ch3 -1 = none. Lucene's order.
_DECOMPOSITIONS: tuple[tuple[int, int, int, int, int], ...] = (
    (0x05, 0x3E, 0x45, 0x11, _DEVANAGARI | _GUJARATI),
    (0x05, 0x3E, 0x46, 0x12, _DEVANAGARI),
    (0x05, 0x3E, 0x47, 0x13, _DEVANAGARI | _GUJARATI),
    (0x05, 0x3E, 0x48, 0x14, _DEVANAGARI | _GUJARATI),
    (0x05, 0x3E, -1, 0x06, _DEVANAGARI | _BENGALI | _GURMUKHI | _GUJARATI | _ORIYA),
    (0x05, 0x45, -1, 0x72, _DEVANAGARI),
    (0x05, 0x45, -1, 0x0D, _GUJARATI),
    (0x05, 0x46, -1, 0x04, _DEVANAGARI),
    (0x05, 0x47, -1, 0x0F, _GUJARATI),
    (0x05, 0x48, -1, 0x10, _GURMUKHI | _GUJARATI),
    (0x05, 0x49, -1, 0x11, _DEVANAGARI | _GUJARATI),
    (0x05, 0x4A, -1, 0x12, _DEVANAGARI),
    (0x05, 0x4B, -1, 0x13, _DEVANAGARI | _GUJARATI),
    (0x05, 0x4C, -1, 0x14, _DEVANAGARI | _GURMUKHI | _GUJARATI),
    (0x06, 0x45, -1, 0x11, _DEVANAGARI | _GUJARATI),
    (0x06, 0x46, -1, 0x12, _DEVANAGARI),
    (0x06, 0x47, -1, 0x13, _DEVANAGARI | _GUJARATI),
    (0x06, 0x48, -1, 0x14, _DEVANAGARI | _GUJARATI),
    (0x07, 0x57, -1, 0x08, _MALAYALAM),
    (0x09, 0x41, -1, 0x0A, _DEVANAGARI),
    (0x09, 0x57, -1, 0x0A, _TAMIL | _MALAYALAM),
    (0x0E, 0x46, -1, 0x10, _MALAYALAM),
    (0x0F, 0x45, -1, 0x0D, _DEVANAGARI),
    (0x0F, 0x46, -1, 0x0E, _DEVANAGARI),
    (0x0F, 0x47, -1, 0x10, _DEVANAGARI),
    (0x0F, 0x57, -1, 0x10, _ORIYA),
    (0x12, 0x3E, -1, 0x13, _MALAYALAM),
    (0x12, 0x4C, -1, 0x14, _TELUGU | _KANNADA),
    (0x12, 0x55, -1, 0x13, _TELUGU),
    (0x12, 0x57, -1, 0x14, _TAMIL | _MALAYALAM),
    (0x13, 0x57, -1, 0x14, _ORIYA),
    (0x15, 0x3C, -1, 0x58, _DEVANAGARI),
    (0x16, 0x3C, -1, 0x59, _DEVANAGARI | _GURMUKHI),
    (0x17, 0x3C, -1, 0x5A, _DEVANAGARI | _GURMUKHI),
    (0x1C, 0x3C, -1, 0x5B, _DEVANAGARI | _GURMUKHI),
    (0x21, 0x3C, -1, 0x5C, _DEVANAGARI | _BENGALI | _ORIYA),
    (0x22, 0x3C, -1, 0x5D, _DEVANAGARI | _BENGALI | _ORIYA),
    (0x23, 0x4D, _ZWJ, 0x7A, _MALAYALAM),
    (0x24, 0x4D, _ZWJ, 0x4E, _BENGALI),
    (0x28, 0x3C, -1, 0x29, _DEVANAGARI),
    (0x28, 0x4D, _ZWJ, 0x7B, _MALAYALAM),
    (0x2B, 0x3C, -1, 0x5E, _DEVANAGARI | _GURMUKHI),
    (0x2F, 0x3C, -1, 0x5F, _DEVANAGARI | _BENGALI),
    (0x2C, 0x41, 0x41, 0x0B, _TELUGU),
    (0x30, 0x3C, -1, 0x31, _DEVANAGARI),
    (0x30, 0x4D, _ZWJ, 0x7C, _MALAYALAM),
    (0x32, 0x4D, _ZWJ, 0x7D, _MALAYALAM),
    (0x33, 0x3C, -1, 0x34, _DEVANAGARI),
    (0x33, 0x4D, _ZWJ, 0x7E, _MALAYALAM),
    (0x35, 0x41, -1, 0x2E, _TELUGU),
    (0x3E, 0x45, -1, 0x49, _DEVANAGARI | _GUJARATI),
    (0x3E, 0x46, -1, 0x4A, _DEVANAGARI),
    (0x3E, 0x47, -1, 0x4B, _DEVANAGARI | _GUJARATI),
    (0x3E, 0x48, -1, 0x4C, _DEVANAGARI | _GUJARATI),
    (0x3F, 0x55, -1, 0x40, _KANNADA),
    (0x41, 0x41, -1, 0x42, _GURMUKHI),
    (0x46, 0x3E, -1, 0x4A, _TAMIL | _MALAYALAM),
    (0x46, 0x42, 0x55, 0x4B, _KANNADA),
    (0x46, 0x42, -1, 0x4A, _KANNADA),
    (0x46, 0x46, -1, 0x48, _MALAYALAM),
    (0x46, 0x55, -1, 0x47, _TELUGU | _KANNADA),
    (0x46, 0x56, -1, 0x48, _TELUGU | _KANNADA),
    (0x46, 0x57, -1, 0x4C, _TAMIL | _MALAYALAM),
    (0x47, 0x3E, -1, 0x4B, _BENGALI | _ORIYA | _TAMIL | _MALAYALAM),
    (0x47, 0x57, -1, 0x4C, _BENGALI | _ORIYA),
    (0x4A, 0x55, -1, 0x4B, _KANNADA),
    (0x72, 0x3F, -1, 0x07, _GURMUKHI),
    (0x72, 0x40, -1, 0x08, _GURMUKHI),
    (0x72, 0x47, -1, 0x0F, _GURMUKHI),
    (0x73, 0x41, -1, 0x09, _GURMUKHI),
    (0x73, 0x42, -1, 0x0A, _GURMUKHI),
    (0x73, 0x4B, -1, 0x13, _GURMUKHI),
)

# script flag -> first char offset -> the table rows (in order) that start with it
_BY_SCRIPT: dict[int, dict[int, list[tuple[int, int, int]]]] = {}
for _c1, _c2, _c3, _res, _flags in _DECOMPOSITIONS:
    for _flag in _BASES:
        if _flags & _flag:
            _BY_SCRIPT.setdefault(_flag, {}).setdefault(_c1, []).append((_c2, _c3, _res))


def _script_of(ch: str) -> int:
    cp = ord(ch)
    if 0x0900 <= cp < 0x0D80:
        return 1 << ((cp - 0x0900) >> 7)
    return 0


def normalize_indic(token: str) -> str:
    """Compose decomposed Indic letters into their single codepoint (Lucene IndicNormalizer)."""
    if token.isascii():
        return token
    s = list(token)
    i = 0
    while i < len(s):
        flag = _script_of(s[i])
        rows = _BY_SCRIPT.get(flag, {}).get(ord(s[i]) - _BASES[flag]) if flag else None
        if rows and i + 1 < len(s) and _script_of(s[i + 1]) == flag:
            base = _BASES[flag]
            ch1 = ord(s[i + 1]) - base
            ch2 = -1
            if i + 2 < len(s):
                if s[i + 2] == "\u200d":
                    ch2 = _ZWJ
                elif _script_of(s[i + 2]) == flag:
                    ch2 = ord(s[i + 2]) - base
            for c2, c3, res in rows:
                if c2 == ch1 and (c3 < 0 or c3 == ch2):
                    s[i] = chr(base + res)
                    del s[i + 1]
                    if c3 >= 0:
                        del s[i + 1]
                    break
        i += 1
    return "".join(s)


def _suffix_stemmer(rules: tuple[tuple[int, tuple[str, ...]], ...]):
    """Build a Lucene-style light stemmer: for (min_len, suffixes) in order, the first group whose length guard
    holds and that has a matching suffix strips ``len(suffix)`` characters; nothing else happens."""

    def stem(token: str) -> str:
        n = len(token)
        for min_len, suffixes in rules:
            if n > min_len:
                for suf in suffixes:
                    if token.endswith(suf):
                        return token[: n - len(suf)]
        return token

    return stem


# ------------------------------------------------------------------------------------------------- Hindi
_HINDI_MAP = str.maketrans({
    "\u0901": "\u0902",  # candrabindu -> bindu
    "\u093c": None,  # nukta deleted
    "\u0929": "\u0928", "\u0931": "\u0930", "\u0934": "\u0933",
    "\u0958": "\u0915", "\u0959": "\u0916", "\u095a": "\u0917", "\u095b": "\u091c",
    "\u095c": "\u0921", "\u095d": "\u0922", "\u095e": "\u092b", "\u095f": "\u092f",
    "\u200d": None, "\u200c": None,  # zwj / zwnj
    "\u094d": None,  # virama
    "\u0945": "\u0947", "\u0946": "\u0947", "\u0949": "\u094b", "\u094a": "\u094b",
    "\u090d": "\u090f", "\u090e": "\u090f", "\u0911": "\u0913", "\u0912": "\u0913", "\u0972": "\u0905",
    # long -> short independent vowels
    "\u0906": "\u0905", "\u0908": "\u0907", "\u090a": "\u0909", "\u0960": "\u090b", "\u0961": "\u090c",
    "\u0910": "\u090f", "\u0914": "\u0913",
    # long -> short dependent vowels
    "\u0940": "\u093f", "\u0942": "\u0941", "\u0944": "\u0943", "\u0963": "\u0962", "\u0948": "\u0947",
    "\u094c": "\u094b",
})


def normalize_hindi(token: str) -> str:
    """Lucene HindiNormalizer: NA+virama -> anusvara, nukta/virama/ZWJ removal, long -> short vowels."""
    if token.isascii():
        return token
    # "dead n" (NA + virama) becomes anusvara before the virama deletion below.
    return token.replace("\u0928\u094d", "\u0902").translate(_HINDI_MAP)


stem_hindi = _suffix_stemmer((
    (6, ("ाएंगी", "ाएंगे", "ाऊंगी", "ाऊंगा", "ाइयाँ", "ाइयों", "ाइयां")),
    (5, ("ाएगी", "ाएगा", "ाओगी", "ाओगे", "एंगी", "ेंगी", "एंगे", "ेंगे", "ूंगी", "ूंगा", "ातीं", "नाओं", "नाएं",
         "ताओं", "ताएं", "ियाँ", "ियों", "ियां")),
    (4, ("ाकर", "ाइए", "ाईं", "ाया", "ेगी", "ेगा", "ोगी", "ोगे", "ाने", "ाना", "ाते", "ाती", "ाता", "तीं", "ाओं",
         "ाएं", "ुओं", "ुएं", "ुआं")),
    (3, ("कर", "ाओ", "िए", "ाई", "ाए", "ने", "नी", "ना", "ते", "ीं", "ती", "ता", "ाँ", "ां", "ों", "ें")),
    (2, ("ो", "े", "ू", "ु", "ी", "ि", "ा")),
))
stem_hindi.__doc__ = "Lucene HindiStemmer (Ramanathan & Rao light stemmer): strip the longest listed suffix."


# ----------------------------------------------------------------------------------------------- Bengali
def normalize_bengali(token: str) -> str:
    """Lucene BengaliNormalizer, rule for rule (including its in-place index arithmetic)."""
    if token.isascii():
        return token
    s = list(token)
    i = 0
    while i < len(s):
        c = s[i]
        n = len(s)
        if c == "\u0981":  # delete chandrabindu
            del s[i]
            i -= 1
        elif c == "\u09c0":  # dirgho-i kar -> rossho-i kar
            s[i] = "\u09bf"
        elif c == "\u09c2":  # dirgho-u kar -> rossho-u kar
            s[i] = "\u09c1"
        elif c == "\u0995":  # khio
            if i + 2 < n and s[i + 1] == "\u09cd" and s[i + 2] == "\u09bf":
                if i == 0:
                    s[i] = "\u0996"
                    del s[i + 2]
                    del s[i + 1]
                else:
                    s[i + 1] = "\u0996"
                    del s[i + 2]
        elif c == "\u0999":  # nga -> anusvara
            s[i] = "\u0982"
        elif c == "\u09af":  # ja phala
            if i - 2 == 0 and s[i - 1] == "\u09cd":
                s[i - 1] = "\u09c7"
                if i + 1 < n and s[i + 1] == "\u09be":
                    del s[i + 1]
                del s[i]
                i -= 1
            elif i - 1 >= 0 and s[i - 1] == "\u09cd":
                del s[i]
                del s[i - 1]
                i -= 2
        elif c == "\u09ac":  # ba phala
            if not ((i >= 1 and s[i - 1] != "\u09cd") or i == 0):
                if i - 2 == 0:
                    del s[i]
                    del s[i - 1]
                    i -= 2
                elif i - 5 >= 0 and s[i - 3] == "\u09cd":
                    del s[i]
                    del s[i - 1]
                    i -= 2
                elif i - 2 >= 0:
                    s[i - 1] = s[i - 2]
                    del s[i]
                    i -= 1
        elif c == "\u0983":  # visarga
            if i == n - 1:
                if n <= 3:
                    s[i] = "\u09b9"
                else:
                    del s[i]
            else:
                s[i] = s[i + 1]
        elif c in ("\u09b6", "\u09b7"):  # all sh -> s
            s[i] = "\u09b8"
        elif c == "\u09a3":  # nna -> na
            s[i] = "\u09a8"
        elif c in ("\u09dc", "\u09dd"):  # rra, rha -> ra
            s[i] = "\u09b0"
        elif c == "\u09ce":  # khanda ta -> ta
            s[i] = "\u09a4"
        i += 1
    return "".join(s)


stem_bengali = _suffix_stemmer((
    (9, ("িয়াছিলাম", "িতেছিলাম", "িতেছিলেন", "ইতেছিলেন", "িয়াছিলেন", "ইয়াছিলেন")),
    (8, ("িতেছিলি", "িতেছিলে", "িয়াছিলা", "িয়াছিলে", "িতেছিলা", "িয়াছিলি", "য়েদেরকে")),
    (7, ("িতেছিস", "িতেছেন", "িয়াছিস", "িয়াছেন", "েছিলাম", "েছিলেন", "েদেরকে")),
    (6, ("িতেছি", "িতেছা", "িতেছে", "ছিলাম", "ছিলেন", "িয়াছি", "িয়াছা", "িয়াছে", "েছিলে", "েছিলা", "য়েদের",
         "দেরকে")),
    (5, ("িলাম", "িলেন", "িতাম", "িতেন", "িবেন", "ছিলি", "ছিলে", "ছিলা", "তেছে", "িতেছ", "খানা", "খানি", "গুলো",
         "গুলি", "য়েরা", "েদের")),
    (4, ("লাম", "িলি", "ইলি", "িলে", "ইলে", "লেন", "িলা", "ইলা", "তাম", "িতি", "ইতি", "িতে", "ইতে", "তেন", "িতা",
         "িবা", "ইবা", "িবি", "ইবি", "বেন", "িবে", "ইবে", "ছেন", "য়োন", "য়ের", "েরা", "দের")),
    (3, ("িস", "েন", "লি", "লে", "লা", "তি", "তে", "তা", "বি", "বে", "বা", "ছি", "ছা", "ছে", "ুন", "ুক", "টা", "টি",
         "নি", "ের", "রা", "কে")),
    (2, ("ি", "ী", "া", "ো", "ে", "ব", "ত")),
))
stem_bengali.__doc__ = "Lucene BengaliStemmer (Sengupta & Chaudhuri; Savoy's light rules)."


# ------------------------------------------------------------------------------------------------ Telugu
_TELUGU_MAP = str.maketrans({
    "\u0c00": "\u0c02", "\u0c01": "\u0c02",  # candrabindu -> bindu
    "\u0c03": None,  # visarga deleted
    "\u200d": None, "\u200c": None,
    "\u0c14": "\u0c13", "\u0c10": "\u0c0f", "\u0c06": "\u0c05", "\u0c08": "\u0c07", "\u0c0a": "\u0c09",
    "\u0c40": "\u0c3f", "\u0c42": "\u0c41", "\u0c47": "\u0c46", "\u0c4b": "\u0c4a",
})


def normalize_telugu(token: str) -> str:
    """Lucene TeluguNormalizer: bindu/visarga/ZWJ, long -> short vowels, composed diphthongs."""
    if token.isascii():
        return token
    s = list(token)
    i = 0
    while i < len(s):
        c = s[i]
        nxt = s[i + 1] if i + 1 < len(s) else ""
        if c == "\u0c46" and nxt == "\u0c56":  # e + ai length mark -> ai
            s[i] = "\u0c48"
            del s[i + 1]
        elif c == "\u0c12" and nxt == "\u0c55":  # o + length mark -> oo
            s[i] = "\u0c13"
            del s[i + 1]
        elif c == "\u0c12" and nxt == "\u0c4c":  # o + au sign -> au
            s[i] = "\u0c14"
            del s[i + 1]
        else:
            mapped = c.translate(_TELUGU_MAP)
            if mapped:
                s[i] = mapped
            else:
                del s[i]
                continue
        i += 1
    return "".join(s)


stem_telugu = _suffix_stemmer((
    (5, ("ళ్ళు", "డ్లు")),
    (3, ("డు", "ము", "వు", "లు", "ని", "ను", "చే", "కై", "లో", "ది", "కి", "సు", "వై", "పై")),
    (2, ("ి", "ీ", "ు", "ూ", "ె", "ే", "ొ", "ో", "ా")),
))
stem_telugu.__doc__ = "Lucene TeluguStemmer: plural/case suffixes, then a final vowel sign."

"""Language code -> named analyzers, the default one per language, and the default BM25 parameters.

The defaults are chosen by measurement on the dev tasks (``benchmarks/bm25_analyzers.py``, results in
``benchmarks/results/bm25.md``, reasoning in ``docs/analyzers.md``); languages without a dev task follow what
Lucene's analyzer for the language does (the analyzers Anserini/Pyserini use for Mr. TyDi).

Two generic analyzers work for any language code, listed or not: ``unicode`` (Unicode words, lowercased, no
stemming: an ICU-like baseline) and ``subword`` (the multilingual encoder's tokenizer).
"""

from __future__ import annotations

from typing import Any

from lexdr.analysis.analyzer import Analyzer
from lexdr.analysis.subword import default_subword_tokenizer
from lexdr.errors import LexdrError

__all__ = [
    "SUPPORTED_LANGUAGES",
    "GENERIC_ANALYZERS",
    "check_language",
    "get_analyzer",
    "list_analyzers",
    "default_analyzer_name",
    "default_bm25_params",
    "analyzer_from_config",
    "normalize_lang",
]

_BASE = ("nfkc", "lower", "decimal_digits")


def _p(description: str, **kw: Any) -> dict[str, Any]:
    return {"description": description, **kw}


def _snowball_family(lang: str, algo: str, filters: tuple[str, ...] = (), chars: tuple[str, ...] = _BASE,
                     stop: str | None = None) -> dict[str, dict[str, Any]]:
    stop = stop or lang
    return {
        "snowball": _p(f"Unicode words, {' + '.join(chars)}, {stop} stop words, Snowball {algo}",
                       char_filters=chars, token_filters=filters, stopwords=stop, stemmer=f"snowball:{algo}"),
        "snowball-keepstop": _p("as 'snowball' without stop words",
                                char_filters=chars, token_filters=filters, stemmer=f"snowball:{algo}"),
        "nostem": _p("as 'snowball' without stemming", char_filters=chars, token_filters=filters, stopwords=stop),
    }


# lang -> analyzer name -> Analyzer fields (lang/name added by get_analyzer). The first entry of DEFAULTS
# is the language default.
_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "ar": {
        "lucene": _p("Lucene ArabicAnalyzer: normalization (alef/yeh/teh marbuta, diacritics, tatweel), stop words, "
                     "light stemmer (Larkey et al.)", token_filters=("arabic_normalize",), stopwords="ar",
                     stemmer="lucene:arabic"),
        "snowball": _p("Arabic normalization, stop words, Snowball arabic", token_filters=("arabic_normalize",),
                       stopwords="ar", stemmer="snowball:arabic"),
        "nostem": _p("Arabic normalization and stop words, no stemming", token_filters=("arabic_normalize",),
                     stopwords="ar"),
    },
    "bn": {
        "lucene": _p("Lucene BengaliAnalyzer: Indic + Bengali normalization, stop words, Bengali light stemmer",
                     token_filters=("indic_normalize", "bengali_normalize"), stopwords="bn", stemmer="lucene:bengali"),
        "nostem": _p("Indic + Bengali normalization, stop words",
                     token_filters=("indic_normalize", "bengali_normalize"), stopwords="bn"),
    },
    "en": {
        "lucene": _p("Lucene EnglishAnalyzer: possessive removal, 33 stop words, Porter stemmer",
                     token_filters=("possessive",), stopwords="en", stemmer="snowball:porter"),
        "snowball": _p("possessive removal, stop words, Snowball english (Porter2)", token_filters=("possessive",),
                       stopwords="en", stemmer="snowball:english"),
        "nostem": _p("possessive removal and stop words, no stemming", token_filters=("possessive",), stopwords="en"),
    },
    "fi": _snowball_family("fi", "finnish"),
    "id": _snowball_family("id", "indonesian"),
    "ja": {
        "fugashi": _p("fugashi + UniDic segmentation, content words only (POS), base forms, katakana "
                      "long-vowel stem, stop words", tokenizer="fugashi", stopwords="ja"),
        "cjk-bigram": _p("Lucene CJKAnalyzer: overlapping character bigrams over CJK runs", tokenizer="cjk_bigram",
                         stopwords="en"),
        "cjk-unibigram": _p("CJK character unigrams + bigrams", tokenizer="cjk_unibigram", stopwords="en"),
    },
    "ko": {
        "kiwi": _p("Kiwi morphological analysis, content morphemes only (POS), like Lucene's Nori KoreanAnalyzer",
                   tokenizer="kiwi"),
        "cjk-bigram": _p("Lucene CJKAnalyzer: overlapping Hangul syllable bigrams", tokenizer="cjk_bigram",
                         stopwords="en"),
    },
    "ru": _snowball_family("ru", "russian"),
    "sw": {
        "words": _p("Unicode words, lowercased; no stemmer exists (Anserini uses a whitespace analyzer)"),
        "words-stop": _p("Unicode words, lowercased, Swahili stop words", stopwords="sw"),
    },
    "te": {
        "lucene": _p("Lucene TeluguAnalyzer: Indic + Telugu normalization, stop words, Telugu light stemmer",
                     token_filters=("indic_normalize", "telugu_normalize"), stopwords="te", stemmer="lucene:telugu"),
        "nostem": _p("Indic + Telugu normalization, stop words", token_filters=("indic_normalize", "telugu_normalize"),
                     stopwords="te"),
    },
    "th": {
        "newmm": _p("PyThaiNLP newmm dictionary segmentation, stop words (like Lucene's ThaiAnalyzer)",
                    tokenizer="thai_newmm", stopwords="th"),
        "char-bigram": _p("character bigrams inside each Thai run", tokenizer="char_bigram"),
    },
    "de": _snowball_family("de", "german"),
    "el": _snowball_family("el", "greek", filters=("greek",)),
    "es": _snowball_family("es", "spanish"),
    "hi": {
        "lucene": _p("Lucene HindiAnalyzer: Indic + Hindi normalization, stop words, Hindi light stemmer",
                     token_filters=("indic_normalize", "hindi_normalize"), stopwords="hi", stemmer="lucene:hindi"),
        "snowball": _p("Indic normalization, stop words, Snowball hindi", token_filters=("indic_normalize",),
                       stopwords="hi", stemmer="snowball:hindi"),
        "nostem": _p("Indic + Hindi normalization, stop words", token_filters=("indic_normalize", "hindi_normalize"),
                     stopwords="hi"),
    },
    "tr": _snowball_family("tr", "turkish", filters=("apostrophe",), chars=("nfkc", "turkish_lower", "decimal_digits")),
    "vi": {
        "words": _p("Unicode words (syllables), lowercased: what Lucene's fallback analyzer amounts to here"),
        "words-stop": _p("Unicode words (syllables), lowercased, Vietnamese stop words", stopwords="vi"),
        "syllable-bigram": _p("syllables + adjacent syllable pairs (approximate words), stop words on syllables",
                              tokenizer="word_bigrams", stopwords="vi"),
    },
    "zh": {
        "cjk-bigram": _p("Lucene CJKAnalyzer: overlapping character bigrams over CJK runs", tokenizer="cjk_bigram",
                         stopwords="en"),
        "cjk-unibigram": _p("CJK character unigrams + bigrams", tokenizer="cjk_unibigram", stopwords="en"),
    },
}

# Language default analyzer and BM25 (k1, b), from benchmarks/results/bm25.md (reasoning in docs/analyzers.md).
# Rule: the Lucene-equivalent analyzer, unless another model-free analyzer beats it by >= 0.005 MRR@100 over all
# queries of the language's dev task without losing on the test half (ja, zh: unigrams + bigrams). k1=0.9, b=0.4
# (Lucene/Anserini's default) was best for every analyzer on every dev task. No dev task (ar bn en fi ko ru sw
# te th): the analyzer Lucene/Anserini uses for the language.
DEFAULTS: dict[str, tuple[str, float, float]] = {
    "ar": ("lucene", 0.9, 0.4),
    "bn": ("lucene", 0.9, 0.4),
    "en": ("lucene", 0.9, 0.4),
    "fi": ("snowball", 0.9, 0.4),
    "id": ("snowball", 0.9, 0.4),
    "ja": ("cjk-unibigram", 0.9, 0.4),
    "ko": ("kiwi", 0.9, 0.4),
    "ru": ("snowball", 0.9, 0.4),
    "sw": ("words", 0.9, 0.4),
    "te": ("lucene", 0.9, 0.4),
    "th": ("newmm", 0.9, 0.4),
    "de": ("snowball", 0.9, 0.4),
    "el": ("snowball", 0.9, 0.4),
    "es": ("snowball", 0.9, 0.4),
    "hi": ("lucene", 0.9, 0.4),
    "tr": ("snowball", 0.9, 0.4),
    "vi": ("words", 0.9, 0.4),
    "zh": ("cjk-unibigram", 0.9, 0.4),
}

SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(_PRESETS)
GENERIC_ANALYZERS: tuple[str, ...] = ("unicode", "subword")
_FALLBACK_BM25 = (0.9, 0.4)  # Lucene/Anserini's BM25 default


def normalize_lang(lang: str) -> str:
    """``'ZH-cn'`` -> ``'zh'``: lowercase ISO 639-1, region dropped."""
    return str(lang).strip().lower().replace("_", "-").split("-")[0]


def _unknown_language(lang: str) -> LexdrError:
    return LexdrError(
        f"no language-specific analyzer for {lang!r}; supported: {', '.join(sorted(SUPPORTED_LANGUAGES))}. "
        f"For another language use a generic analyzer: get_analyzer({lang!r}, 'unicode') (Unicode words, "
        f"lowercased, no stemming) or get_analyzer({lang!r}, 'subword') (the multilingual encoder's tokenizer; "
        f"CLI: --analyzer unicode | --analyzer subword)"
    )


def list_analyzers(lang: str) -> list[str]:
    """Analyzer names for ``lang``: its default first, then the other presets, then the generic ones."""
    lang = normalize_lang(lang)
    if lang not in _PRESETS:
        return list(GENERIC_ANALYZERS)
    default = DEFAULTS[lang][0]
    return [default, *(n for n in _PRESETS[lang] if n != default), *GENERIC_ANALYZERS]


def default_analyzer_name(lang: str) -> str:
    lang = normalize_lang(lang)
    if lang not in DEFAULTS:
        raise _unknown_language(lang)
    return DEFAULTS[lang][0]


def default_bm25_params(lang: str) -> tuple[float, float]:
    """The chosen (k1, b) for ``lang``; Lucene's (0.9, 0.4) for languages without a measured choice."""
    entry = DEFAULTS.get(normalize_lang(lang))
    return (entry[1], entry[2]) if entry else _FALLBACK_BM25


def check_language(lang: str, analyzer: str | None = None) -> str:
    """The one rule for which (language, analyzer) pairs lexdr accepts, used by the config and the CLI alike:
    the code is normalized (``'ID'`` -> ``'id'``), any code works with a generic analyzer (``unicode``,
    ``subword``), and otherwise the language needs its own analyzer. Returns the normalized code."""
    code = normalize_lang(lang)
    if not code or not code.isalpha():
        raise LexdrError(f"{lang!r} is not a language code; use an ISO 639-1 code such as 'de' or 'ja'")
    if analyzer in GENERIC_ANALYZERS:
        return code
    if code not in _PRESETS:
        raise _unknown_language(code)
    if analyzer is not None and analyzer not in _PRESETS[code]:
        raise LexdrError(f"no analyzer {analyzer!r} for {code!r}; available: {', '.join(list_analyzers(code))}")
    return code


def get_analyzer(lang: str, name: str | None = None, *, tokenizer: str | None = None) -> Analyzer:
    """The analyzer ``name`` for language ``lang`` (default: the language's chosen analyzer).

    ``name="unicode"`` and ``name="subword"`` work for any language code; ``tokenizer`` is the subword
    tokenizer's folder or hub id (default: the provisioned multilingual-e5-small tokenizer).

    Raises
    ------
    LexdrError
        ``lang`` has no language-specific analyzer (the message lists the supported codes and the generic
        fallbacks), or ``name`` is not one of ``list_analyzers(lang)``.
    """
    code = normalize_lang(lang)
    if name == "unicode":
        return Analyzer(lang=code, name="unicode", description="Unicode words, NFKC, lowercased, no stemming "
                        "(ICU-like, language-neutral)")
    if name == "subword":
        return Analyzer(lang=code, name="subword", char_filters=("nfkc", "lower"), tokenizer="subword",
                        tokenizer_path=tokenizer or default_subword_tokenizer(),
                        description="the multilingual encoder's subword tokenizer (lowercased input)")
    if code not in _PRESETS:
        raise _unknown_language(code)
    name = name or DEFAULTS[code][0]
    preset = _PRESETS[code].get(name)
    if preset is None:
        raise LexdrError(f"no analyzer {name!r} for {code!r}; available: {', '.join(list_analyzers(code))}")
    return Analyzer(lang=code, name=name, **preset)


def analyzer_from_config(config: dict[str, Any]) -> Analyzer:
    """Rebuild an analyzer from :meth:`Analyzer.to_config` output (e.g. read from an index's config.json)."""
    return Analyzer.from_config(config)

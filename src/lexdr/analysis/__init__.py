"""Language analysis for BM25: text -> index terms, per language, recorded as JSON with each index.

>>> from lexdr.analysis import get_analyzer
>>> get_analyzer("en")("The cats' owners were running")
['cat', 'owner', 'were', 'run']

Every Mr. TyDi language (ar bn en fi id ja ko ru sw te th) and every dev-task language (de el es hi tr vi zh)
has a language-specific default (see :data:`SUPPORTED_LANGUAGES`, :func:`list_analyzers`); any other language
can use ``get_analyzer(lang, "unicode")`` or ``get_analyzer(lang, "subword")``.
"""

from lexdr.analysis.analyzer import Analyzer
from lexdr.analysis.batch import analyze_batch
from lexdr.analysis.registry import (
    GENERIC_ANALYZERS,
    SUPPORTED_LANGUAGES,
    analyzer_from_config,
    check_language,
    default_analyzer_name,
    default_bm25_params,
    get_analyzer,
    list_analyzers,
    normalize_lang,
)

__all__ = [
    "Analyzer",
    "analyze_batch",
    "GENERIC_ANALYZERS",
    "SUPPORTED_LANGUAGES",
    "analyzer_from_config",
    "check_language",
    "default_analyzer_name",
    "default_bm25_params",
    "get_analyzer",
    "list_analyzers",
    "normalize_lang",
]

"""Token filters and stemmers by name, so an analyzer's config (plain JSON) fully determines its behaviour.

Stemmers: ``snowball:<algorithm>`` (PyStemmer; ``porter`` is the original Porter algorithm that Lucene's
EnglishAnalyzer uses) and the Lucene ports ``lucene:arabic``, ``lucene:hindi``, ``lucene:bengali``,
``lucene:telugu``.
"""

from __future__ import annotations

from typing import Callable

from lexdr.analysis import arabic, indic, normalize
from lexdr.errors import LexdrError

__all__ = ["TOKEN_FILTERS", "Stemmer", "make_stemmer", "SNOWBALL_LANGUAGES"]

TOKEN_FILTERS: dict[str, Callable[[str], str]] = {
    "possessive": normalize.possessive,
    "apostrophe": normalize.apostrophe,
    "greek": normalize.greek,
    "arabic_normalize": arabic.normalize_arabic,
    "indic_normalize": indic.normalize_indic,
    "hindi_normalize": indic.normalize_hindi,
    "bengali_normalize": indic.normalize_bengali,
    "telugu_normalize": indic.normalize_telugu,
}

_LUCENE_STEMMERS: dict[str, Callable[[str], str]] = {
    "arabic": arabic.stem_arabic_light,
    "hindi": indic.stem_hindi,
    "bengali": indic.stem_bengali,
    "telugu": indic.stem_telugu,
}

# Snowball algorithm per ISO 639-1 code (those PyStemmer ships), for the registry and for error messages.
SNOWBALL_LANGUAGES: dict[str, str] = {
    "ar": "arabic", "ca": "catalan", "da": "danish", "de": "german", "el": "greek", "en": "english",
    "es": "spanish", "eu": "basque", "fi": "finnish", "fr": "french", "ga": "irish", "hi": "hindi",
    "hu": "hungarian", "hy": "armenian", "id": "indonesian", "it": "italian", "lt": "lithuanian", "ne": "nepali",
    "nl": "dutch", "no": "norwegian", "pl": "polish", "pt": "portuguese", "ro": "romanian", "ru": "russian",
    "sr": "serbian", "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}


class Stemmer:
    """A named stemmer applied to a whole token list; picklable (PyStemmer objects are rebuilt lazily)."""

    def __init__(self, spec: str) -> None:
        kind, _, algo = spec.partition(":")
        if kind == "lucene":
            if algo not in _LUCENE_STEMMERS:
                raise LexdrError(f"unknown Lucene stemmer {algo!r}; known: {', '.join(_LUCENE_STEMMERS)}")
        elif kind == "snowball":
            import Stemmer as _pystemmer

            if algo not in _pystemmer.algorithms():
                raise LexdrError(f"PyStemmer has no {algo!r} algorithm; known: {', '.join(_pystemmer.algorithms())}")
        else:
            raise LexdrError(f"unknown stemmer {spec!r}: use 'snowball:<algorithm>' or 'lucene:<language>'")
        self.spec = spec
        self.kind = kind
        self.algo = algo
        self._impl = None

    def __getstate__(self) -> dict:
        return {"spec": self.spec, "kind": self.kind, "algo": self.algo, "_impl": None}

    def __call__(self, tokens: list[str]) -> list[str]:
        if self.kind == "lucene":
            fn = _LUCENE_STEMMERS[self.algo]
            return [fn(t) for t in tokens]
        if self._impl is None:
            import Stemmer as _pystemmer

            self._impl = _pystemmer.Stemmer(self.algo)
        return self._impl.stemWords(tokens)


def make_stemmer(spec: str | None) -> Stemmer | None:
    return Stemmer(spec) if spec else None

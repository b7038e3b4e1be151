"""Word segmenters for scripts written without spaces: Japanese (fugashi + UniDic), Korean (Kiwi), Thai (PyThaiNLP).

Each segmenter loads its model lazily on first use, once per process, and drops it when pickled, so an analyzer
can be shipped to worker processes (see :mod:`lexdr.analysis.batch`) and rebuilt there. Each also does what
Lucene's analyzer for that language does after segmentation, by part of speech rather than by stop list:

* Japanese (like Kuromoji's JapaneseAnalyzer): particles, auxiliary verbs, symbols and whitespace are dropped;
  inflected words (verbs, adjectives) are reduced to their dictionary form; katakana words lose a trailing
  prolonged-sound mark (KatakanaStemFilter: コンピューター -> コンピュータ).
* Korean (like Nori's KoreanAnalyzer): endings, particles, suffixes, determiners, adverbs, interjections and
  punctuation are dropped; predicates keep Kiwi's stem.
* Thai (like ThaiAnalyzer's dictionary tokenizer): PyThaiNLP's ``newmm`` maximal matching; whitespace and
  punctuation pieces are dropped.
"""

from __future__ import annotations

import functools
import logging
import re
import warnings
from typing import Any

from lexdr.errors import LexdrError

__all__ = ["Segmenter", "JapaneseSegmenter", "KoreanSegmenter", "ThaiSegmenter", "SEGMENTERS"]

logger = logging.getLogger(__name__)

_HAS_WORD_CHAR = re.compile(r"\w")


def _missing(package: str, lang: str, lang_code: str) -> LexdrError:
    return LexdrError(
        f"the {lang} segmenter needs the '{package}' package, which is not installed "
        f"(pip install {package}), or pick another analyzer from lexdr.analysis.list_analyzers({lang_code!r})"
    )


class Segmenter:
    """Base class: ``__call__(text) -> list[str]`` with a lazily created, unpicklable model."""

    name = "segmenter"
    slow = True  # worth a process pool for large batches

    def __init__(self) -> None:
        self._model: Any = None

    def _load(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = _shared_model(type(self))
        return self._model

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_model"] = None
        return state

    def __call__(self, text: str) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError


@functools.lru_cache(maxsize=None)
def _shared_model(cls: type[Segmenter]) -> Any:
    """One model per segmenter class and process: Kiwi takes seconds to load, fugashi and newmm a fraction."""
    return cls()._load()


# UniDic top-level parts of speech that carry no content (Kuromoji's default stop tags, in UniDic terms).
_JA_DROP_POS = frozenset({"助詞", "助動詞", "補助記号", "空白", "記号"})
_JA_BASE_FORM_POS = frozenset({"動詞", "形容詞"})
_KATAKANA_WORD = re.compile(r"^[\u30a0-\u30ff]+$")


class JapaneseSegmenter(Segmenter):
    name = "fugashi-unidic"

    def _load(self) -> Any:
        try:
            import fugashi
        except ImportError:  # pragma: no cover - depends on the install
            raise _missing("fugashi", "Japanese", "ja") from None
        try:
            return fugashi.Tagger()  # finds unidic-lite (or a full UniDic) by itself
        except RuntimeError as e:  # pragma: no cover - depends on the install
            raise LexdrError(f"fugashi found no dictionary ({e}); pip install unidic-lite") from None

    def __call__(self, text: str) -> list[str]:
        out: list[str] = []
        for word in self.model(text):
            # The raw CSV is much cheaper than fugashi's feature namedtuple. UniDic field 0 is the top-level
            # part of speech, field 10 the base-form orthography (unknown words have only 6 fields); quoted
            # fields that may hold commas come after field 20, so a bounded split is safe.
            feat = word.feature_raw.split(",", 11)
            pos = feat[0]
            if pos in _JA_DROP_POS:
                continue
            token = word.surface
            if not _HAS_WORD_CHAR.search(token):
                continue
            if pos in _JA_BASE_FORM_POS and len(feat) > 10 and feat[10] not in ("", "*"):
                token = feat[10]
            if len(token) > 3 and token.endswith("ー") and _KATAKANA_WORD.match(token):
                token = token[:-1]
            out.append(token)
        return out


# Sejong tags kept (content): nouns, pronouns, numerals, predicates, roots, foreign/hanja/number tokens,
# Kiwi's web tokens. Everything else (E*, J*, X[PS]*, M*, IC, S[FPSEOW]..., VCP/VCN copulas) is dropped.
_KO_KEEP = frozenset({"NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "VX", "XR", "SL", "SH", "SN",
                      "W_URL", "W_EMAIL", "W_HASHTAG", "W_MENTION", "W_SERIAL"})


class KoreanSegmenter(Segmenter):
    name = "kiwi"

    def _load(self) -> Any:
        try:
            from kiwipiepy import Kiwi
        except ImportError:  # pragma: no cover
            raise _missing("kiwipiepy", "Korean", "ko") from None
        with warnings.catch_warnings():
            # kiwipiepy >= 0.21 warns that num_workers=0 now means "single thread", which is what we want:
            # parallelism comes from worker processes (lexdr.analysis.batch).
            warnings.simplefilter("ignore", DeprecationWarning)
            return Kiwi(num_workers=0)

    def __call__(self, text: str) -> list[str]:
        out: list[str] = []
        for tok in self.model.tokenize(text):
            tag = tok.tag.split("-", 1)[0]  # Kiwi marks irregular conjugations as "VV-R" etc.
            if tag in _KO_KEEP:
                out.append(tok.form)
        return out


class ThaiSegmenter(Segmenter):
    name = "pythainlp-newmm"

    def _load(self) -> Any:
        try:
            from pythainlp.tokenize import word_tokenize
        except ImportError:  # pragma: no cover
            raise _missing("pythainlp", "Thai", "th") from None
        return word_tokenize

    def __call__(self, text: str) -> list[str]:
        pieces = self.model(text, engine="newmm", keep_whitespace=False)
        return [p for p in pieces if _HAS_WORD_CHAR.search(p)]


SEGMENTERS: dict[str, type[Segmenter]] = {
    "fugashi": JapaneseSegmenter,
    "kiwi": KoreanSegmenter,
    "thai_newmm": ThaiSegmenter,
}

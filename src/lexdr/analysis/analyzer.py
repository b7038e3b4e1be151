"""The :class:`Analyzer`: text -> index terms, as a declarative pipeline that round-trips through JSON.

Pipeline (the order Lucene's language analyzers use): char filters on the whole text (Unicode normalization,
lowercasing, digit folding) -> tokenizer (words, CJK bigrams, a segmenter or the subword tokenizer) -> token
filters (script-specific normalization) -> stop filter -> stemmer -> drop empties.

Every step is named, so :meth:`Analyzer.to_config` is a small JSON-serialisable dict; an index stores it and
:meth:`Analyzer.from_config` rebuilds the identical analyzer at query time, in another process or years later.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field, fields
from itertools import chain, islice
from typing import Any, Callable, Iterable, Iterator

from lexdr.analysis import normalize, tokenizers
from lexdr.analysis.segmenters import SEGMENTERS
from lexdr.analysis.stemmers import TOKEN_FILTERS, make_stemmer
from lexdr.analysis.stoplists import load_stopwords
from lexdr.analysis.subword import SubwordTokenizer
from lexdr.errors import ConfigError

__all__ = ["Analyzer", "TOKENIZERS", "CONFIG_VERSION"]

logger = logging.getLogger(__name__)

CONFIG_VERSION = 1
_SEGMENT_BREAK = re.compile(r"[^\w\s'\u2019]+")


def _word_bigrams(text: str) -> list[str]:
    """Words plus the pairs of adjacent words inside each punctuation-delimited span ("a b" terms).

    For Vietnamese, where words are written as space-separated syllables, a syllable pair approximates a word.
    """
    out: list[str] = []
    for span in _SEGMENT_BREAK.split(text):
        words = tokenizers.word_tokens(span)
        out.extend(words)
        out.extend(f"{a} {b}" for a, b in zip(words, words[1:]))
    return out


def _char_bigrams(text: str) -> list[str]:
    """Overlapping character bigrams inside each word (a script-agnostic fallback for unsegmented scripts)."""
    out: list[str] = []
    for w in tokenizers.word_tokens(text):
        if len(w) == 1:
            out.append(w)
        else:
            out.extend(w[i : i + 2] for i in range(len(w) - 1))
    return out


# Stateless rule-based tokenizers by name; segmenters and "subword" are built per analyzer (they hold models).
TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "words": tokenizers.word_tokens,
    "cjk_bigram": tokenizers.cjk_bigram_tokens,
    "cjk_unibigram": functools.partial(tokenizers.cjk_bigram_tokens, unigrams=True),
    "char_bigram": _char_bigrams,
    "word_bigrams": _word_bigrams,
}


@dataclass
class Analyzer:
    """A named analysis pipeline for one language. Call it on a text to get its terms.

    Parameters
    ----------
    lang, name
        ISO 639-1 code and the analyzer's name in the registry (``get_analyzer(lang, name)``).
    char_filters
        Text-level normalizers, in order (see :data:`lexdr.analysis.normalize.CHAR_FILTERS`).
    tokenizer
        ``words`` | ``cjk_bigram`` | ``cjk_unibigram`` | ``char_bigram`` | ``word_bigrams`` | ``fugashi`` |
        ``kiwi`` | ``thai_newmm`` | ``subword``.
    token_filters
        Per-token normalizers, in order (see :data:`lexdr.analysis.stemmers.TOKEN_FILTERS`).
    stopwords
        Name of a shipped stop list (a language code) or ``None``. The list goes through the same char and token
        filters before use, so it matches however the file spells its words.
    stemmer
        ``snowball:<algorithm>``, ``lucene:<language>`` or ``None``.
    tokenizer_path
        For ``subword`` only: a local tokenizer folder or hub id.
    """

    lang: str
    name: str
    char_filters: tuple[str, ...] = ("nfkc", "lower", "decimal_digits")
    tokenizer: str = "words"
    token_filters: tuple[str, ...] = ()
    stopwords: str | None = None
    stemmer: str | None = None
    tokenizer_path: str | None = None
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        self.char_filters = tuple(self.char_filters)
        self.token_filters = tuple(self.token_filters)
        for cf in self.char_filters:
            if cf not in normalize.CHAR_FILTERS:
                raise ConfigError(f"analyzer {self.name!r}: unknown char filter {cf!r}; "
                                  f"known: {', '.join(normalize.CHAR_FILTERS)}")
        for tf in self.token_filters:
            if tf not in TOKEN_FILTERS:
                raise ConfigError(f"analyzer {self.name!r}: unknown token filter {tf!r}; "
                                  f"known: {', '.join(TOKEN_FILTERS)}")
        known = [*TOKENIZERS, *SEGMENTERS, "subword"]
        if self.tokenizer not in known:
            raise ConfigError(f"analyzer {self.name!r}: unknown tokenizer {self.tokenizer!r}; "
                              f"known: {', '.join(known)}")
        if self.tokenizer == "subword" and not self.tokenizer_path:
            raise ConfigError("the subword tokenizer needs tokenizer_path (a tokenizer folder or hub id)")
        self._char_fns = [normalize.CHAR_FILTERS[c] for c in self.char_filters]
        self._token_fns = [TOKEN_FILTERS[t] for t in self.token_filters]
        self._stem = make_stemmer(self.stemmer)
        if self.tokenizer in TOKENIZERS:
            self._tokenize: Any = TOKENIZERS[self.tokenizer]
        elif self.tokenizer == "subword":
            self._tokenize = SubwordTokenizer(self.tokenizer_path)  # type: ignore[arg-type]
        else:
            self._tokenize = SEGMENTERS[self.tokenizer]()
        self._stopset: frozenset[str] | None = None

    # ------------------------------------------------------------------------------------------- analysis
    @property
    def slow(self) -> bool:
        """True when the tokenizer is a model-based segmenter: worth a process pool on large batches."""
        return bool(getattr(self._tokenize, "slow", False))

    def _normalize_text(self, text: str) -> str:
        for fn in self._char_fns:
            text = fn(text)
        return text

    @property
    def stopset(self) -> frozenset[str]:
        """The stop list after this analyzer's own normalization (empty when no stop list is configured)."""
        if self._stopset is None:
            words: set[str] = set()
            if self.stopwords:
                for w in load_stopwords(self.stopwords):
                    w = self._normalize_text(w)
                    for fn in self._token_fns:
                        w = fn(w)
                    if w:
                        words.add(w)
            self._stopset = frozenset(words)
        return self._stopset

    def _finish(self, tokens: list[str]) -> list[str]:
        for fn in self._token_fns:
            tokens = [fn(t) for t in tokens]
        stop = self.stopset
        if stop:
            tokens = [t for t in tokens if t not in stop]
        if self._stem is not None and tokens:
            tokens = self._stem(tokens)
        return [t for t in tokens if t]

    def __call__(self, text: str) -> list[str]:
        """The terms of ``text``, in order, duplicates kept (BM25 counts them)."""
        return self._finish(self._tokenize(self._normalize_text(text)))

    def analyze_batch(self, texts: list[str], n_jobs: int = 2, chunk_size: int | None = None) -> list[list[str]]:
        """Analyze many texts, in order; model-based segmenters run in ``n_jobs`` worker processes."""
        from lexdr.analysis.batch import analyze_batch

        return analyze_batch(self, texts, n_jobs=n_jobs, chunk_size=chunk_size)

    def _analyze_many(self, texts: list[str]) -> list[list[str]]:
        """Sequential batch analysis in this process (the subword tokenizer batches in Rust): the terms of
        each text, as :meth:`__call__` gives them."""
        memo: dict[str, str] = {}
        out: list[list[str]] = []
        for chunk in self.token_chunks(texts):
            self.learn_terms(chunk, memo)
            out.extend([term for term in map(memo.__getitem__, tokens) if term] for tokens in chunk)
        return out

    def token_chunks(self, texts: Iterable[str], size: int = 1024) -> Iterator[list[list[str]]]:
        """The tokens of each text (normalized, before token filters, stop list and stemmer), ``size`` texts
        at a time; map them to terms with :meth:`learn_terms`."""
        texts = iter(texts)
        while chunk := list(islice(texts, size)):
            if isinstance(self._tokenize, SubwordTokenizer):
                yield self._tokenize.batch([self._normalize_text(t) for t in chunk])
            else:
                yield [self._tokenize(self._normalize_text(t)) for t in chunk]

    def learn_terms(self, token_lists: list[list[str]], memo: dict[str, str]) -> list[str]:
        """Add to ``memo`` the term of every token of ``token_lists`` it lacks ("" where :meth:`__call__`
        drops the token: a stop word); returns the tokens added, in no particular order.

        Token filters, the stop list and the stemmer act on each token alone, so each distinct token goes
        through them once (as bm25s stems its vocabulary, not every occurrence)."""
        unique = list(set(chain.from_iterable(token_lists)).difference(memo))
        if not unique:
            return unique
        words = unique
        for fn in self._token_fns:
            words = [fn(w) for w in words]
        stop = self.stopset
        keep = [i for i, w in enumerate(words) if w and w not in stop]
        kept = [words[i] for i in keep]
        stems = self._stem(kept) if self._stem is not None and kept else kept
        memo.update(dict.fromkeys(unique, ""))
        memo.update((unique[i], stem) for i, stem in zip(keep, stems))
        return unique

    # ------------------------------------------------------------------------------------------- config
    def to_config(self) -> dict[str, Any]:
        """A JSON-serialisable dict from which :meth:`from_config` rebuilds this exact analyzer."""
        cfg: dict[str, Any] = {"config_version": CONFIG_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            cfg[f.name] = list(value) if isinstance(value, tuple) else value
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Analyzer":
        cfg = dict(config)
        version = cfg.pop("config_version", CONFIG_VERSION)
        if version > CONFIG_VERSION:
            raise ConfigError(f"analyzer config version {version} is newer than this lexdr understands "
                              f"({CONFIG_VERSION}); upgrade lexdr")
        names = {f.name for f in fields(cls)}
        unknown = set(cfg) - names
        if unknown:
            raise ConfigError(f"unknown analyzer config keys {sorted(unknown)}; expected some of {sorted(names)}")
        return cls(**cfg)

    def __getstate__(self) -> dict:
        # Pickled only to reach worker processes; the config is the whole state.
        return self.to_config()

    def __setstate__(self, state: dict) -> None:
        other = type(self).from_config(state)
        self.__dict__.update(other.__dict__)

    def __repr__(self) -> str:
        return f"Analyzer(lang={self.lang!r}, name={self.name!r})"

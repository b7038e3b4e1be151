"""Synthetic corpora with real term statistics, of any size, for measuring how cost grows with the corpus.

A word-bigram model fitted on real text (the dev corpora) gives passages whose common words, word pairs and
sentence lengths are those of the language; a fixed vocabulary, though, would hide what really grows with N
(the vocabulary, hence the index's term dictionary and its long postings tail). So a share of the tokens
(``tail_share``, 10% by default: names, numbers, rare words) comes from an open-vocabulary process instead:
after ``m`` such tokens, ``K * m ** beta`` distinct new words have appeared (Heaps' law; defaults K = 40,
beta = 0.6), and a token that is not new repeats an earlier new word, older ones more often
(index ``floor(V * u ** gamma)``: a power-law frequency curve, as Zipf's law has it). New words are spelled
from the fitted text's most frequent letter pairs, so every analyzer sees them as ordinary words.

Everything is deterministic given the seed, and streamed: :func:`write_corpus` generates batches of
``BATCH`` passages and writes them as BEIR JSONL, never holding more than one batch; the first ``n`` passages
of a bigger corpus are the ``n``-passage corpus (same seed).

>>> model = fit_bigram_model(["The cat sat on the mat. The dog sat on the cat.", "A cat and a dog."])
>>> texts = list(iter_passages(model, 3, seed=1))
>>> len(texts), all(isinstance(t, str) and t for t in texts)
(3, True)
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from lexdr.errors import ConfigError
from lexdr.settings import at_least, at_most
from lexdr.formats.files import atomic_write

__all__ = ["BATCH", "BigramModel", "TailProcess", "fit_bigram_model", "iter_passages", "sample_queries",
           "write_corpus", "write_queries"]

BATCH = 10_000  # passages generated at a time (also the prefix granularity: corpora are prefixes of each other)
_TOKEN = re.compile(r"\w+|[.!?]")
_BOUNDARY = 0  # word id 0 is the sentence boundary "."


@dataclass(frozen=True)
class TailProcess:
    """The open-vocabulary share of the tokens (see the module docstring)."""

    share: float = 0.10  # fraction of tokens drawn from the growing vocabulary
    heaps_k: float = 40.0  # K in V(m) = K * m ** beta
    heaps_beta: float = 0.6
    reuse_gamma: float = 2.0  # repeats pick earlier words: index floor(V * u ** gamma)

    def __post_init__(self) -> None:
        at_least(self, ("share",), 0, prefix="tail ")
        at_least(self, ("heaps_k", "heaps_beta"), 0, prefix="tail ", strict=True)
        at_most(self, ("share", "heaps_beta"), 1, prefix="tail ", strict=True)

    def distinct(self, tail_tokens: float) -> int:
        """Distinct tail words after ``tail_tokens`` tail tokens (Heaps' law), at least 1."""
        return max(1, int(self.heaps_k * tail_tokens ** self.heaps_beta))


@dataclass(frozen=True)
class BigramModel:
    """Word bigram counts as a CSR matrix: successors of word ``w`` are ``succ[start[w]:start[w+1]]`` with
    cumulative counts ``cum`` (global, so one ``searchsorted`` samples a whole batch)."""

    words: tuple[str, ...]  # id -> word; id 0 is the sentence boundary "."
    start: np.ndarray  # int64 [V+1]
    succ: np.ndarray  # int32 successor ids
    cum: np.ndarray  # float64 running count over all rows (exact integers)
    syllables: tuple[str, ...]  # letter pairs that spell the tail words
    tokens_fitted: int

    @property
    def vocab_size(self) -> int:
        return len(self.words) - 1

    def to_json(self) -> dict:
        return {"words": len(self.words) - 1, "bigrams": int(len(self.succ)), "tokens_fitted": self.tokens_fitted,
                "syllables": len(self.syllables)}


def fit_bigram_model(texts: Iterable[str], n_syllables: int = 64) -> BigramModel:
    """Count word bigrams (sentence boundaries included) in ``texts``; case is kept."""
    words: dict[str, int] = {".": _BOUNDARY}
    pairs: Counter[tuple[int, int]] = Counter()
    letters: Counter[str] = Counter()
    n_tokens = 0
    for text in texts:
        prev = _BOUNDARY
        for tok in _TOKEN.findall(text):
            wid = _BOUNDARY if tok in ".!?" else words.setdefault(tok, len(words))
            if wid == _BOUNDARY and prev == _BOUNDARY:
                continue
            pairs[prev, wid] += 1
            prev = wid
            n_tokens += 1
            if wid != _BOUNDARY and tok.isalpha():
                low = tok.lower()
                letters.update(low[i : i + 2] for i in range(len(low) - 1))
        if prev != _BOUNDARY:
            pairs[prev, _BOUNDARY] += 1
    if len(words) < 2 or not pairs:
        raise ConfigError("cannot fit a bigram model: the texts hold no words")
    keys = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    counts = np.array([pairs[int(a), int(b)] for a, b in keys], dtype=np.float64)
    start = np.zeros(len(words) + 1, dtype=np.int64)
    np.add.at(start, keys[:, 0] + 1, 1)
    start = np.cumsum(start)
    syllables = tuple(s for s, _ in letters.most_common(n_syllables))
    if len(syllables) < 4:
        syllables = tuple("ba be bi bo bu da de di do du ka ke ki ko ku".split())
    return BigramModel(words=tuple(words), start=start, succ=keys[:, 1].astype(np.int32), cum=np.cumsum(counts),
                       syllables=syllables, tokens_fitted=n_tokens)


class _Sampler:
    """The generator's state: one random stream, the bigram walk and the tail process's counters."""

    def __init__(self, model: BigramModel, seed: int, tail: TailProcess):
        self.model, self.tail = model, tail
        self.rng = np.random.default_rng(seed)
        # every word has a successor (a text's last word is followed by the boundary), except possibly none
        self.row_lo = np.concatenate([[0.0], model.cum])[model.start[:-1]]
        self.row_total = np.concatenate([[0.0], model.cum])[model.start[1:]] - self.row_lo
        self.tail_tokens = 0
        self.tail_words = 0
        self._spelled: dict[int, str] = {}
        base = len(model.syllables)
        self._base = base
        self._offset = base * base  # at least three syllables, so tail words are never very short

    def _next_words(self, state: np.ndarray) -> np.ndarray:
        total = self.row_total[state]
        target = self.row_lo[state] + self.rng.random(len(state)) * total
        nxt = self.model.succ[np.minimum(np.searchsorted(self.model.cum, target, side="right"),
                                         len(self.model.succ) - 1)]
        return np.where(total > 0, nxt, _BOUNDARY)

    def _tail_ids(self, n: int) -> np.ndarray:
        """``n`` tail tokens: new words at the Heaps rate, else repeats biased to older words."""
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        before = self.tail_words
        target = self.tail.distinct(self.tail_tokens + n)
        n_new = min(n, max(0, target - before))
        vocab = max(before + n_new, 1)  # repeats may pick any word seen by the end of this batch
        ids = np.floor(vocab * self.rng.random(n) ** self.tail.reuse_gamma).astype(np.int64)
        if n_new:
            where = self.rng.choice(n, size=n_new, replace=False)
            ids[np.sort(where)] = np.arange(before, before + n_new)
        self.tail_tokens += n
        self.tail_words = max(before, before + n_new)
        return ids

    def spell(self, tail_id: int) -> str:
        word = self._spelled.get(tail_id)
        if word is None:
            x, parts = tail_id + self._offset, []
            while x:
                x, d = divmod(x, self._base)
                parts.append(self.model.syllables[d])
            word = "".join(reversed(parts))
            if len(self._spelled) < 200_000:  # a small cache of the (frequent) early words
                self._spelled[tail_id] = word
        return word

    def batch(self, n: int, min_len: int, max_len: int) -> list[str]:
        """``n`` passages of ``min_len``..``max_len`` tokens (sentence ends count as tokens)."""
        lengths = self.rng.integers(min_len, max_len + 1, size=n)
        steps = int(lengths.max())
        state = np.full(n, _BOUNDARY, dtype=np.int64)
        grid = np.empty((n, steps), dtype=np.int64)
        for t in range(steps):
            state = self._next_words(state)
            grid[:, t] = state
        live = np.arange(steps)[None, :] < lengths[:, None]
        is_tail = (self.rng.random((n, steps)) < self.tail.share) & live & (grid != _BOUNDARY)
        tail_ids = self._tail_ids(int(is_tail.sum()))
        words = np.asarray(self.model.words, dtype=object)
        out = []
        k = 0
        for i in range(n):
            row = grid[i, : lengths[i]]
            toks = words[row].tolist()
            for j in np.flatnonzero(is_tail[i, : lengths[i]]):
                toks[j] = self.spell(int(tail_ids[k]))
                k += 1
            out.append(" ".join(toks).replace(" .", ".").lstrip(". "))
        return out


def iter_passages(model: BigramModel, n: int, seed: int = 0, min_len: int = 60, max_len: int = 100,
                  tail: TailProcess | None = None, batch: int = BATCH) -> Iterator[str]:
    """``n`` passages of ``min_len``..``max_len`` words (about 80), deterministic for ``seed``; generated
    ``batch`` at a time, so the first ``m`` of ``n`` passages do not depend on ``n`` (same ``batch``)."""
    sampler = _Sampler(model, seed, tail or TailProcess())
    done = 0
    while done < n:
        for text in sampler.batch(batch, min_len, max_len)[: n - done]:
            yield text
            done += 1


def write_corpus(model: BigramModel, n: int, path: str | Path, seed: int = 0, tail: TailProcess | None = None,
                 id_prefix: str = "s", batch: int = BATCH) -> Path:
    """Stream ``n`` passages to BEIR JSONL ``{"_id", "title", "text"}`` at ``path`` (atomically)."""
    width = max(7, len(str(n - 1)))
    with atomic_write(path) as fh:
        lines = []
        for i, text in enumerate(iter_passages(model, n, seed=seed, tail=tail, batch=batch)):
            lines.append(json.dumps({"_id": f"{id_prefix}{i:0{width}d}", "title": "", "text": text},
                                    ensure_ascii=False))
            if len(lines) == batch:
                fh.write("\n".join(lines) + "\n")
                lines = []
        if lines:
            fh.write("\n".join(lines) + "\n")
    return Path(path)


def sample_queries(model: BigramModel, n: int, corpus_passages: int, seed: int = 1, min_len: int = 3,
                   max_len: int = 8, tail: TailProcess | None = None) -> list[str]:
    """``n`` short queries from the same model, their tail words drawn from the vocabulary a corpus of
    ``corpus_passages`` passages (about 80 tokens each) has reached."""
    tail = tail or TailProcess()
    sampler = _Sampler(model, seed, tail)
    sampler.tail_tokens = int(corpus_passages * 80 * tail.share)
    sampler.tail_words = tail.distinct(sampler.tail_tokens)
    out = []
    while len(out) < n:
        # start inside a sentence: walk a few words from the boundary, keep the next ones
        texts = sampler.batch(n, min_len + 3, max_len + 3)
        for t in texts:
            words = [w for w in t.replace(".", " ").split()][3:]
            if words:
                out.append(" ".join(words))
    return out[:n]


def write_queries(queries: list[str], path: str | Path, id_prefix: str = "q") -> Path:
    """Queries as ``qid<TAB>text`` lines."""
    with atomic_write(path) as fh:
        for i, q in enumerate(queries):
            fh.write(f"{id_prefix}{i:05d}\t{q}\n")
    return Path(path)

"""``passage-cut``: a pseudo-query cut from the passage itself (the cheap baseline; no model).

A cut is a window of at most ``cut_max_words`` words (or ``cut_max_chars`` characters for text written
without spaces: Japanese, Chinese, Thai) taken from one of the passage's sentences, and never more than
45% of the passage so it cannot trip the stage's copy filter. Sentence and window are drawn with a
generator seeded by (seed, passage text, sample index): reruns cut the same queries.

Cuts are extractive by construction, so BM25 finds their passage easily; they teach a dense retriever
little about how people ask. The point of the backend is a floor that every learned generator must beat.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from lexdr.generation.base import text_rng
from lexdr.generation.config import GenerationConfig
from lexdr.generation.filters import normalize_text
from lexdr.generation.pairs import Example
from lexdr.generation.registry import PASSAGE_CUT
from lexdr.generation.script import passage_script

__all__ = ["PassageCutGenerator", "split_sentences", "build"]

# Sentence ends: Latin/Greek/Cyrillic/Devanagari punctuation followed by a space, or CJK full stops (no space).
_SENTENCE_END = re.compile(r"(?<=[.!?;।؟])\s+|(?<=[。！？])")
_MAX_SHARE = 0.45  # of the passage; the copy filter drops outputs covering >= copy_threshold (0.5) of it
_SPACED_MIN_SPACE_RATIO = 0.05  # fewer spaces per character than this: treat as unspaced script


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


# Scripts written without spaces between words: a cut there is a character window. (XQuAD's Chinese has
# stray spaces around names, so the space count alone would misjudge it.)
_UNSPACED_SCRIPTS = {"Han", "Japanese", "Thai", "Lao", "Khmer", "Myanmar", "Tibetan"}


def _is_spaced(text: str) -> bool:
    if passage_script(text) in _UNSPACED_SCRIPTS:
        return False
    return text.count(" ") / max(1, len(text)) >= _SPACED_MIN_SPACE_RATIO


class PassageCutGenerator:
    name = PASSAGE_CUT

    def __init__(self, config: GenerationConfig):
        self.config = config

    def _cut(self, passage: str, rng: np.random.Generator) -> str:
        text = " ".join(passage.split())
        if not text:
            return ""
        sentences = split_sentences(text) or [text]
        # Prefer sentences with some substance; a heading or a "See also." carries nothing to ask about.
        long_enough = [s for s in sentences if len(s) >= 12]
        sentence = (long_enough or sentences)[int(rng.integers(len(long_enough or sentences)))]
        # Measured like the copy filter measures (normalized: no spaces or punctuation).
        budget = max(1, int(_MAX_SHARE * len(normalize_text(text))))
        if _is_spaced(text):
            words = sentence.split()
            width = min(self.config.cut_max_words, len(words))
            start = int(rng.integers(0, len(words) - width + 1))
            while width > 1 and len(normalize_text(" ".join(words[start:start + width]))) > budget:
                width -= 1
            return " ".join(words[start:start + width])
        width = min(self.config.cut_max_chars, len(sentence))
        start = int(rng.integers(0, len(sentence) - width + 1))
        while width > 1 and len(normalize_text(sentence[start:start + width])) > budget:
            width -= 1
        return sentence[start:start + width]

    def generate(self, passages: list[str], lang: str | None = None) -> list[list[str]]:
        out: list[list[str]] = []
        for passage in passages:
            cuts = [self._cut(passage, text_rng(self.config.seed, passage, i))
                    for i in range(self.config.n_per_passage)]
            out.append(cuts)
        return out


def build(config: GenerationConfig, examples: Sequence[Example], work_dir: Path | None) -> PassageCutGenerator:
    return PassageCutGenerator(config)

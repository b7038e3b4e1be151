"""A sentence-transformers encoder with the prompts a retrieval model needs.

e5 models are trained with ``query: `` / ``passage: `` prefixes and lose several points without them, so the
prompts are part of the encoder's identity: they are read from the model folder
(``config_sentence_transformers.json``) when present, else from the known defaults for the model family, and
can always be set explicitly. Batching is sentence-transformers' own (it sorts by length so a batch pads to
its longest member, not the corpus's), which keeps lexdr's overhead over a plain ``encode`` call near zero.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from lexdr.errors import ConfigError

__all__ = ["EncoderConfig", "Encoder", "default_prompts"]

logger = logging.getLogger(__name__)

# Known prompt conventions by model family, used only when the model folder does not define its own.
_FAMILY_PROMPTS = {
    "e5": ("query: ", "passage: "),
    "bge-m3": ("", ""),
    "bge": ("Represent this sentence for searching relevant passages: ", ""),
}


def default_prompts(model_name: str) -> tuple[str, str]:
    """(query prompt, passage prompt) guessed from the model's name; ("", "") when unknown."""
    name = model_name.lower()
    for family, prompts in _FAMILY_PROMPTS.items():
        if family in name:
            return prompts
    return "", ""


@dataclass
class EncoderConfig:
    """How to turn text into vectors.

    ``query_prompt`` / ``passage_prompt``: ``None`` means "take them from the model folder, else from the
    model family"; ``""`` means explicitly none.
    """

    model: str = "intfloat/multilingual-e5-small"
    query_prompt: str | None = None
    passage_prompt: str | None = None
    max_seq_length: int = 256  # caps memory and time; e5 was trained at 512 but most passages are shorter
    batch_size: int = 64
    device: str | None = None  # None: cuda if available, else cpu
    fp16: bool = True  # half precision on GPU only; the CPU always runs float32
    normalize: bool = True  # unit vectors, so inner product = cosine
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.max_seq_length < 8:
            raise ConfigError(f"max_seq_length={self.max_seq_length} is too small; use at least 8 (e.g. 256)")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")

    def to_dict(self) -> dict:
        return asdict(self)


class Encoder:
    """Encodes queries and passages with their prompts; returns float32 numpy arrays (n, dim)."""

    def __init__(self, config: EncoderConfig | None = None, model=None):
        self.config = config or EncoderConfig()
        if model is None:
            from lexdr.models import load_sentence_transformer

            model = load_sentence_transformer(self.config.model, device=self.config.device)
        self.model = model
        self.model.max_seq_length = self.config.max_seq_length
        if self.config.fp16 and self.model.device.type == "cuda":
            self.model.half()
        q, p = self._resolve_prompts()
        self.query_prompt, self.passage_prompt = q, p

    def _resolve_prompts(self) -> tuple[str, str]:
        stored = getattr(self.model, "prompts", None) or {}
        guess_q, guess_p = default_prompts(self.config.model)
        q = self.config.query_prompt
        if q is None:
            q = stored.get("query") or guess_q
        p = self.config.passage_prompt
        if p is None:
            p = stored.get("passage") or stored.get("document") or guess_p
        return q, p

    @property
    def dim(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    def _encode(self, texts: Sequence[str], prompt: str, desc: str) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        emb = self.model.encode(
            list(texts), prompt=prompt, batch_size=self.config.batch_size,
            show_progress_bar=self.config.show_progress, convert_to_numpy=True,
            normalize_embeddings=self.config.normalize,
        )
        return np.ascontiguousarray(emb, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt, "queries")

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prompt, "passages")

    def describe(self) -> dict:
        """What an index must record to reproduce its query encoding."""
        d = {**self.config.to_dict(), "query_prompt": self.query_prompt, "passage_prompt": self.passage_prompt,
             "dim": self.dim}
        d.pop("show_progress")  # display only: it must not make two identical indexes look different
        return d

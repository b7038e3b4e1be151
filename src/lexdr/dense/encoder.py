"""A sentence-transformers encoder with the prompts a retrieval model needs.

e5 models are trained with ``query: `` / ``passage: `` prefixes and lose several points without them, so the
prompts are part of the encoder's identity: they are read from the model folder
(``config_sentence_transformers.json``) when present, else from the known defaults for the model family, and
can always be set explicitly. Batching is sentence-transformers' own (it sorts by length so a batch pads to
its longest member, not the corpus's), which keeps lexdr's overhead over a plain ``encode`` call near zero.

A passage longer than ``max_seq_length`` tokens is cut there unless ``window_stride`` is set: then it is
encoded as overlapping windows of ``max_seq_length`` tokens (prompt and special tokens included) starting
every ``window_stride`` tokens, the last one ending at the passage's end (:meth:`Encoder.encode_passage_windows`
returns one vector per window and the window -> passage map). An index stores the windows under their
passage's id and :meth:`lexdr.dense.DenseIndex.search_vectors` scores a passage by its best window (MaxP; Dai & Callan
2019, "Deeper text understanding for IR with contextual neural language modeling").
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from typing import NamedTuple, Sequence

import numpy as np

from lexdr.defaults import DEFAULT_ENCODER
from lexdr.errors import ConfigError
from lexdr.settings import at_least, fingerprint_fields, setting

__all__ = ["EncoderConfig", "Encoder", "PassageWindows", "default_prompts", "window_spans"]

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


@dataclass(frozen=True)
class EncoderConfig:
    """How to turn text into vectors.

    ``query_prompt`` / ``passage_prompt``: ``None`` means "take them from the model folder, else from the
    model family"; ``""`` means explicitly none.
    """

    model: str = setting(DEFAULT_ENCODER, "Hub id or local sentence-transformers folder.")
    query_prompt: str | None = setting(None, "Query prompt (None: the model's own, else its family's; e5: 'query: ').")
    passage_prompt: str | None = setting(None, "Passage prompt (None: the model's own, else its family's; e5: 'passage: ').")
    max_seq_length: int = setting(256, "Tokens per passage (memory and time scale with it); e5 was trained at 512 "
                                       "but most passages are shorter.")
    batch_size: int = setting(64, "Passages per forward pass.", fingerprint=False)
    device: str | None = setting(None, "cpu | cuda | cuda:1 ... (None: cuda if available, else cpu).", fingerprint=False)
    fp16: bool = setting(True, "Half precision on a GPU (the CPU always runs float32).")
    normalize: bool = setting(True, "Unit vectors, so inner product = cosine.")
    show_progress: bool = setting(True, "Progress bars.", fingerprint=False)
    window_stride: int | None = setting(None, "Passages longer than max_seq_length tokens as overlapping windows of "
                                              "max_seq_length tokens starting every window_stride tokens, each "
                                              "passage scored by its best window (MaxP). None: cut at max_seq_length.")

    def __post_init__(self) -> None:
        at_least(self, ("max_seq_length",), 8, note=" (e.g. 256)")
        at_least(self, ("batch_size",), 1)
        if self.window_stride is not None and not 1 <= self.window_stride < self.max_seq_length:
            raise ConfigError(f"window_stride={self.window_stride} must be in [1, max_seq_length={self.max_seq_length}) "
                              "(e.g. half of max_seq_length), or None to cut long passages instead")

    def to_dict(self) -> dict:
        return asdict(self)


class PassageWindows(NamedTuple):
    """Window vectors of a list of passages: window ``i`` belongs to passage ``passage_index[i]`` (ascending)."""

    embeddings: np.ndarray  # (n_windows, dim) float32
    passage_index: np.ndarray  # (n_windows,) int64


def window_spans(n_tokens: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Token ranges [start, end) of windows of ``size`` tokens every ``stride`` tokens, covering ``n_tokens``:
    one window when the passage fits, else starts 0, stride, 2*stride, ... and a last window ending at the end."""
    if size < 1 or not 1 <= stride <= size:
        raise ConfigError(f"windows of {size} tokens need a stride in [1, {size}], got {stride}")
    if n_tokens <= size:
        return [(0, n_tokens)]
    starts = list(range(0, n_tokens - size, stride)) + [n_tokens - size]
    return [(s, s + size) for s in starts]


class Encoder:
    """Encodes queries and passages with their prompts; returns float32 numpy arrays (n, dim)."""

    def __init__(self, config: EncoderConfig | None = None, model=None):
        self.config = config or EncoderConfig()
        # A trained model's training fingerprint, when it has one (set by the pipeline's dense stage): stored
        # vectors are matched to the model by it, not by the folder's path (lexdr.dense.stage.same_encoder).
        self.model_identity: str | None = None
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
        if self.model.device.type == "cuda":
            # On a GPU the tokenizer, not the forward, bounds the rate: sort by length, tokenize ahead in threads,
            # pinned asynchronous copies (benchmarks/results/gpu_rates.md: 1.55x sentence-transformers' encode on
            # an H200). The same vectors as encode (tests/test_fast_encode.py).
            from lexdr.dense.fast_encode import encode_texts

            return encode_texts(self.model, texts, batch_size=self.config.batch_size,
                                max_length=self.config.max_seq_length, prompt=prompt,
                                normalize=self.config.normalize, workers=min(8, os.cpu_count() or 1))
        emb = self.model.encode(
            list(texts), prompt=prompt, batch_size=self.config.batch_size,
            show_progress_bar=self.config.show_progress, convert_to_numpy=True,
            normalize_embeddings=self.config.normalize,
        )
        return np.ascontiguousarray(emb, dtype=np.float32)

    @property
    def reads_token_ids(self) -> bool:
        """Whether passages can be encoded from stored token ids: a sentence-transformers model whose first
        module is a Hugging Face ``Transformer`` (its features are the tokenizer's ids and mask) and passages
        cut, not windowed (a window is re-tokenized from its text). Else :func:`lexdr.dense.stage.encode_corpus`
        encodes text."""
        try:
            first = self.model[0]
        except (TypeError, IndexError, KeyError):
            return False
        return (type(first).__name__ == "Transformer" and getattr(self.model, "tokenizer", None) is not None
                and self.config.window_stride is None)

    def passage_tokenizer(self):
        """The :class:`lexdr.dense.token_ids.PassageTokenizer` of this encoder's passages (prompt, length):
        its ids are what :meth:`encode_passages` tokenizes, stored once per corpus and shared by every model
        with the same tokenizer (:func:`lexdr.dense.token_ids.ensure_token_ids`)."""
        if getattr(self, "_passage_tokenizer", None) is None:
            from lexdr.dense.token_ids import PassageTokenizer

            self._passage_tokenizer = PassageTokenizer(self.model.tokenizer, self.config.max_seq_length,
                                                       self.passage_prompt, name=self.config.model)
        return self._passage_tokenizer

    def encode_passage_ids(self, ids: np.ndarray, lengths: np.ndarray, chars: np.ndarray | None = None) -> np.ndarray:
        """One vector per passage from its stored token ids (:meth:`passage_tokenizer`: ids, lengths and
        character counts), the vectors :meth:`encode_passages` gives for the same passages' text (on the CPU bit
        for bit, given ``chars``: the same batches); batches are sorted by length and padded to their longest
        passage, results come back in input order."""
        from lexdr.dense.fast_encode import encode_ids

        return encode_ids(self.model, ids, lengths, chars, batch_size=self.config.batch_size,
                          prompt=self.passage_prompt, normalize=self.config.normalize)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt, "queries")

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """One vector per passage, cut at ``max_seq_length`` tokens (windows: :meth:`encode_passage_windows`)."""
        return self._encode(texts, self.passage_prompt, "passages")

    def window_texts(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The passages cut into overlapping windows (``config.window_stride``), as text, with each window's
        passage index. A passage that fits in ``max_seq_length`` tokens is one window, its own text."""
        stride = self.config.window_stride
        if stride is None:
            return list(texts), np.arange(len(texts), dtype=np.int64)
        tok = self.model.tokenizer
        if not getattr(tok, "is_fast", False):
            raise ConfigError(f"window_stride needs a fast (Rust) tokenizer with offsets; {self.config.model} has "
                              f"{type(tok).__name__}: set window_stride = None")
        prompt_tokens = len(tok(self.passage_prompt, add_special_tokens=False)["input_ids"]) if self.passage_prompt else 0
        overhead = tok.num_special_tokens_to_add(pair=False) + prompt_tokens
        size = self.config.max_seq_length - overhead
        if not 1 <= stride <= size:
            raise ConfigError(f"window_stride={stride} is larger than a window's {size} passage tokens "
                              f"(max_seq_length {self.config.max_seq_length} less prompt and special tokens): "
                              "windows would skip text; use at most half of max_seq_length")
        out: list[str] = []
        owner: list[int] = []
        if len(texts) == 0:  # the tokenizer refuses an empty batch
            return out, np.zeros(0, dtype=np.int64)
        enc = tok(list(texts), add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        for i, (text, offsets) in enumerate(zip(texts, enc)):
            if len(offsets) <= size:
                out.append(text)
                owner.append(i)
                continue
            for start, end in window_spans(len(offsets), size, stride):
                out.append(text[offsets[start][0]:offsets[end - 1][1]])
                owner.append(i)
        return out, np.asarray(owner, dtype=np.int64)

    def encode_passage_windows(self, texts: Sequence[str]) -> PassageWindows:
        """One vector per window (``config.window_stride``; one per passage when it is None) and the window ->
        passage map; an index stores each window under its passage's id (MaxP at search time)."""
        windows, owner = self.window_texts(texts)
        return PassageWindows(self._encode(windows, self.passage_prompt, "passages"), owner)

    def describe(self) -> dict:
        """What an index must record to reproduce its query encoding."""
        keep = fingerprint_fields(EncoderConfig)  # not batch size, device or progress bars: they change no vector
        d = {k: v for k, v in self.config.to_dict().items() if k in keep}
        return {**d, "query_prompt": self.query_prompt, "passage_prompt": self.passage_prompt, "dim": self.dim}

"""The language-agnostic fallback: the multilingual encoder's own subword tokenizer (XLM-R SentencePiece for e5).

Any language the encoder reads gets a usable BM25 this way, without a stemmer or segmenter (Anserini's
``-analyzeWithHuggingFaceTokenizer`` idea). Pieces are the tokenizer's strings (e.g. ``▁Hel``, ``lo``); the
bare word-boundary piece and pure punctuation pieces are dropped because they match everything.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from lexdr.defaults import DEFAULT_ENCODER
from lexdr.errors import LexdrError

__all__ = ["SubwordTokenizer", "DEFAULT_SUBWORD_TOKENIZER", "default_subword_tokenizer"]

logger = logging.getLogger(__name__)

DEFAULT_SUBWORD_TOKENIZER = DEFAULT_ENCODER
_HAS_WORD_CHAR = re.compile(r"\w")
_BOUNDARY = ("▁", "Ġ", "##")


def default_subword_tokenizer() -> str:
    """The provisioned XLM-R tokenizer folder if present (``~/.cache/lexdr/models/intfloat--multilingual-e5-small``),
    else the hub id (which only resolves where the model is cached or the hub is reachable)."""
    local = Path(os.environ.get("LEXDR_HOME", Path.home() / ".cache" / "lexdr")) / "models" / (
        DEFAULT_SUBWORD_TOKENIZER.replace("/", "--"))
    return str(local) if local.is_dir() else DEFAULT_SUBWORD_TOKENIZER


class SubwordTokenizer:
    """A Hugging Face tokenizer by folder or hub id (``transformers.AutoTokenizer.from_pretrained(path)``)."""

    name = "subword"
    slow = False  # the Rust tokenizer batches by itself

    def __init__(self, path: str) -> None:
        self.path = path
        self._tok: Any = None

    @property
    def tokenizer(self) -> Any:
        """The loaded tokenizer: a ``tokenizers.Tokenizer`` when the folder has ``tokenizer.json`` (loads in
        a second or two, where ``AutoTokenizer`` takes several times longer), else ``AutoTokenizer``'s."""
        if self._tok is None:
            tokenizer_json = Path(self.path) / "tokenizer.json"
            # A hub id is "org/name"; anything absolute, relative-looking or deeper is a folder that must exist.
            looks_local = Path(self.path).is_absolute() or self.path.startswith((".", "~")) or self.path.count("/") > 1
            if looks_local and not Path(self.path).expanduser().is_dir():
                raise LexdrError(f"subword tokenizer folder {self.path!r} does not exist; pass an existing "
                                 "tokenizer folder as get_analyzer(lang, 'subword', tokenizer=PATH), or provision "
                                 "the default model first")
            try:
                if tokenizer_json.is_file():
                    from tokenizers import Tokenizer

                    self._tok = Tokenizer.from_file(str(tokenizer_json))
                else:
                    from transformers import AutoTokenizer

                    self._tok = AutoTokenizer.from_pretrained(self.path)
            except ImportError:  # pragma: no cover
                raise LexdrError("the subword analyzer needs 'transformers' (pip install transformers)") from None
            except Exception as e:  # noqa: BLE001 - IO, hub and parse errors all mean "cannot load"
                raise LexdrError(
                    f"cannot load the subword tokenizer {self.path!r} ({e.__class__.__name__}: {e}); pass a local "
                    "tokenizer folder (one with tokenizer.json or a sentencepiece model) as "
                    "get_analyzer(lang, 'subword', tokenizer=PATH), or provision the default model first"
                ) from None
        return self._tok

    def __getstate__(self) -> dict:
        return {"path": self.path, "_tok": None}

    @staticmethod
    def _clean(pieces: list[str]) -> list[str]:
        out = []
        for p in pieces:
            core = p
            for b in _BOUNDARY:
                if core.startswith(b):
                    core = core[len(b):]
                    break
            if core and _HAS_WORD_CHAR.search(core):
                out.append(p)
        return out

    def _backend(self) -> Any:
        tok = self.tokenizer
        return getattr(tok, "backend_tokenizer", None) if not hasattr(tok, "encode_batch") else tok

    def __call__(self, text: str) -> list[str]:
        backend = self._backend()
        if backend is None:  # a slow (Python) transformers tokenizer
            return self._clean(self.tokenizer.tokenize(text))
        return self._clean(backend.encode(text, add_special_tokens=False).tokens)

    def batch(self, texts: list[str]) -> list[list[str]]:
        backend = self._backend()
        if backend is None:
            return [self(t) for t in texts]
        return [self._clean(e.tokens) for e in backend.encode_batch(texts, add_special_tokens=False)]

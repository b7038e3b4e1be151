"""The generation backends by name: built-ins (imported on first use) and factories registered at run time.

Kept apart from :mod:`lexdr.generation.base` so the config can validate a backend name without importing the
backends (and without an import cycle between the config and the generator protocol).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from lexdr.errors import ConfigError

__all__ = ["register_backend", "backend_names", "backend_factory"]

# name -> "module:function" for built-ins (imported on first use) or a factory registered at run time.
_BUILTIN: dict[str, str] = {
    "passage-cut": "lexdr.generation.passage_cut:build",
    "seq2seq": "lexdr.generation.seq2seq:build_seq2seq",
    "bert2bert": "lexdr.generation.seq2seq:build_bert2bert",
    "causal-fewshot": "lexdr.generation.causal:build",
    "trained": "lexdr.generation.trained:build",
}
_REGISTRY: dict[str, Callable[..., Any]] = {}


def register_backend(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a factory under ``name`` (overrides a built-in of the same name)."""

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[name] = factory
        return factory

    return deco


def backend_names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def backend_factory(name: str) -> Callable[..., Any]:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _BUILTIN:
        module, func = _BUILTIN[name].split(":")
        return getattr(importlib.import_module(module), func)
    raise ConfigError(f"unknown generation backend {name!r}; known: {', '.join(backend_names())}")

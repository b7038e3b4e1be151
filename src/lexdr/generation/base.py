"""The query-generator protocol and the backend registry.

Contract of a backend: ``generate(passages, lang) -> outputs`` with ``len(outputs) == len(passages)`` and
``outputs[i]`` a list of at most ``config.n_per_passage`` query strings for ``passages[i]`` (possibly fewer,
possibly empty strings: the stage's filters deal with bad outputs, backends do not filter). ``lang`` is the
corpus language code (``"ja"``, ``"id"`` ...) or None; backends may ignore it.

Backends are built by a factory ``factory(config, examples, work_dir) -> QueryGenerator``:

* ``examples``: mined (passage text, query) pairs of the language being generated (demonstrations for
  few-shot prompting, training data for fine-tuned backends);
* ``work_dir``: a folder the backend may use (a fine-tuned model is saved there and reused on resume);
  None means "use a temporary folder".

Built-in backends are imported lazily so that, e.g., ``passage-cut`` never imports torch.
"""

from __future__ import annotations

import importlib
import zlib
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from lexdr.errors import ConfigError
from lexdr.generation.config import GenerationConfig
from lexdr.generation.pairs import Example

__all__ = ["QueryGenerator", "GeneratorFactory", "register_backend", "build_generator", "backend_names",
           "text_rng"]


@runtime_checkable
class QueryGenerator(Protocol):
    name: str

    def generate(self, passages: list[str], lang: str | None = None) -> list[list[str]]: ...


GeneratorFactory = Callable[[GenerationConfig, Sequence[Example], "Path | None"], QueryGenerator]

# name -> "module:function" for built-ins (imported on first use) or a factory registered at run time.
_BUILTIN: dict[str, str] = {
    "passage-cut": "lexdr.generation.passage_cut:build",
    "seq2seq": "lexdr.generation.seq2seq:build_seq2seq",
    "bert2bert": "lexdr.generation.seq2seq:build_bert2bert",
    "causal-fewshot": "lexdr.generation.causal:build",
    "trained": "lexdr.generation.trained:build",
}
_REGISTRY: dict[str, GeneratorFactory] = {}


def register_backend(name: str) -> Callable[[GeneratorFactory], GeneratorFactory]:
    """Decorator registering a factory under ``name`` (overrides a built-in of the same name)."""

    def deco(factory: GeneratorFactory) -> GeneratorFactory:
        _REGISTRY[name] = factory
        return factory

    return deco


def backend_names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def _factory(name: str) -> GeneratorFactory:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _BUILTIN:
        module, func = _BUILTIN[name].split(":")
        return getattr(importlib.import_module(module), func)
    raise ConfigError(f"unknown generation backend {name!r}; known: {', '.join(backend_names())}")


def build_generator(config: GenerationConfig, examples: Sequence[Example] = (),
                    work_dir: str | Path | None = None) -> QueryGenerator:
    """The backend ``config.backend`` names, built from ``config`` (and trained on ``examples`` if it trains)."""
    return _factory(config.backend)(config, list(examples), Path(work_dir) if work_dir is not None else None)


def text_rng(seed: int, text: str, *extra: int) -> np.random.Generator:
    """A generator seeded by (seed, CRC32 of ``text``, extra...): the same passage draws the same way on every
    run and machine (Python's ``hash`` is salted per process, so it cannot be used)."""
    return np.random.default_rng([seed, zlib.crc32(text.encode("utf-8")), *extra])

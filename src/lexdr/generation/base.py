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

import zlib
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from lexdr.errors import ConfigError
from lexdr.generation.config import GenerationConfig
from lexdr.generation.pairs import Example
from lexdr.generation.registry import backend_factory, backend_names, register_backend

__all__ = ["QueryGenerator", "GeneratorFactory", "register_backend", "build_generator", "backend_names",
           "text_rng"]


@runtime_checkable
class QueryGenerator(Protocol):
    name: str

    def generate(self, passages: list[str], lang: str | None = None) -> list[list[str]]: ...


GeneratorFactory = Callable[[GenerationConfig, Sequence[Example], "Path | None"], QueryGenerator]

def build_generator(config: GenerationConfig, examples: Sequence[Example] = (),
                    work_dir: str | Path | None = None) -> QueryGenerator:
    """The backend ``config.backend`` names, built from ``config`` (and trained on ``examples`` if it trains)."""
    return backend_factory(config.backend)(config, list(examples), Path(work_dir) if work_dir is not None else None)


def text_rng(seed: int, text: str, *extra: int) -> np.random.Generator:
    """A generator seeded by (seed, CRC32 of ``text``, extra...): the same passage draws the same way on every
    run and machine (Python's ``hash`` is salted per process, so it cannot be used)."""
    return np.random.default_rng([seed, zlib.crc32(text.encode("utf-8")), *extra])

"""The corpus-only user: where a language's first queries come from when it has no query log.

With ``unlabeled_queries`` absent for a language there is nothing to mine, so the pipeline *generates* the
queries it mines: for a seeded sample of that language's passages (all unreached: its mined-pairs file is
empty) a generator writes queries, the round trip against BM25 + dense keeps those that find their passage,
and the kept queries are mined like user queries (the generation stage's ``generate_stage`` already mines
what it keeps). :func:`pick_bootstrap_source` picks the generator, best first:

1. ``trained`` — the run's trained generator (:func:`lexdr.generation.trained.train_query_generator`), when
   one was trained on at least ``trained.min_pairs`` mined pairs of *other* languages: the prompt names this
   language, so it writes in it what it learnt from the others;
2. ``causal-fewshot`` — Gemma-3-270M without in-language demonstrations (there are none), kept only if the
   round trip passes (``top_k`` is switched on if the given config had it off);
3. ``passage-cut`` — spans of the passage: no model, always available.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from pathlib import Path

from lexdr.generation.config import GenerationConfig
from lexdr.generation.registry import CAUSAL_FEWSHOT, GEMMA_GGUF_MODEL, PASSAGE_CUT, TRAINED

__all__ = ["BootstrapSource", "BootstrapPlan", "pick_bootstrap_source"]

ROUND_TRIP_TOP_K = 10  # the round trip a bootstrap always uses when the given config switched it off


class BootstrapSource(str, enum.Enum):
    """The backends a bootstrap picks among, best first (their names are the registry's)."""

    trained = TRAINED
    causal_fewshot = CAUSAL_FEWSHOT
    passage_cut = PASSAGE_CUT


@dataclass(frozen=True)
class BootstrapPlan:
    """Which generator bootstraps ``lang``, the generation config to run it with, and why."""

    lang: str
    source: BootstrapSource
    config: GenerationConfig
    reason: str


def _pairs_from_other_languages(folder: Path, lang: str) -> int | None:
    marker = folder / "lexdr_generator.json"
    if not marker.is_file():
        return None
    try:
        languages = json.loads(marker.read_text(encoding="utf-8")).get("languages", {})
    except json.JSONDecodeError:
        return None
    return sum(int(n) for code, n in languages.items() if code != lang)


def pick_bootstrap_source(lang: str, config: GenerationConfig, trained_generator: str | Path | None = None,
                          few_shot_available: bool | None = None) -> BootstrapPlan:
    """The bootstrap generator for a language without queries (see the module docstring).

    ``config``: the run's generation settings (sampling, filters, ``max_passages`` ...), whose backend and
    model the plan overrides. ``trained_generator``: the folder the run's generator training wrote, if any.
    ``few_shot_available``: whether the few-shot model can be loaded (None: the Gemma GGUF package is checked).
    """
    top_k = config.top_k if config.top_k is not None else ROUND_TRIP_TOP_K
    if trained_generator is not None:
        others = _pairs_from_other_languages(Path(trained_generator), lang)
        if others is not None and others >= config.trained.min_pairs:
            return BootstrapPlan(lang, BootstrapSource.trained,
                                 dataclasses.replace(config, backend=TRAINED, model=str(trained_generator),
                                                     top_k=top_k),
                                 f"the run's trained generator ({others} mined pairs of other languages)")
    if few_shot_available is None:
        from lexdr.generation.gguf import gemma_gguf_available

        few_shot_available = gemma_gguf_available()
    if few_shot_available:
        model = config.model if config.backend == CAUSAL_FEWSHOT and config.model else GEMMA_GGUF_MODEL
        return BootstrapPlan(lang, BootstrapSource.causal_fewshot,
                             dataclasses.replace(config, backend=CAUSAL_FEWSHOT, model=model, top_k=top_k),
                             "no trained generator: few-shot Gemma (no in-language demonstrations), "
                             "kept by the round trip")
    return BootstrapPlan(lang, BootstrapSource.passage_cut,
                         dataclasses.replace(config, backend=PASSAGE_CUT, model=None, top_k=top_k),
                         "no trained generator and no few-shot model installed: passage spans")

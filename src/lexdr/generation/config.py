"""The generation stage's configuration: one typed dataclass, validated on construction.

Fields fall in three groups, and only the first decides what a shard holds (see :meth:`fingerprint`):

* generation: backend, model, ``n_per_passage``, decoding, few-shot and prompt settings, seed;
* filters: round-trip ``top_k``, script check, dedup threshold, length/copy limits (cheap to change: the
  stage re-filters cached shards without generating again);
* bookkeeping: shard size, ``max_passages``, progress bar.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from lexdr.defaults import DEFAULT_SEED
from lexdr.errors import ConfigError
from lexdr.generation.marker import model_identity
from lexdr.generation.registry import (BERT2BERT, BUILTIN_BACKENDS, GEMMA_GGUF_MODEL, PASSAGE_CUT, TRAINED,
                                       backend_names, backends_help, default_model)
from lexdr.settings import at_least, at_most, setting, valid_seed

__all__ = ["GenerationConfig", "GeneratorTrainConfig", "TrainedGeneratorConfig", "BACKENDS", "GEMMA_GGUF_MODEL"]

# The built-in backends' names, from the registry (which also answers to factories registered at run time).
BACKENDS = tuple(BUILTIN_BACKENDS)


@dataclass(frozen=True)
class TrainedGeneratorConfig:
    """Fine-tuning of the ``trained`` backend: a causal LM with LoRA on mined (passage → query) pairs.

    One model for all languages: the prompt names the passage's language
    (``Language: German\nPassage: ...\nQuery:``); the loss is on the query tokens (and the end token) only.
    """

    base_model: str = setting(GEMMA_GGUF_MODEL, "The causal LM to fine-tune: the Gemma-3-270M GGUF marker, a .gguf "
                                                "file, or a Hugging Face causal LM folder (Gemma's terms apply "
                                                "to Gemma and its derivatives).")
    lora_r: int = setting(16, "LoRA rank.")
    lora_alpha: int = setting(32, "LoRA scaling (alpha).")
    lora_dropout: float = setting(0.05, "Dropout on the LoRA inputs.")
    target_modules: tuple[str, ...] = setting(("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                               "down_proj"), "The projections that get LoRA adapters.")
    learning_rate: float = setting(2e-4, "AdamW peak learning rate (linear warm-up, then linear decay).")
    weight_decay: float = setting(0.0, "AdamW weight decay.")
    warmup_ratio: float = setting(0.05, "Share of the steps spent warming up.")
    epochs: int = setting(1, "Passes over the mined pairs.")
    max_steps: int | None = setting(None, "Exactly this many optimizer steps, overriding epochs.")
    batch_size: int = setting(8, "Pairs per optimizer step.")
    max_length: int = setting(256, "Prompt + query tokens; the passage is cut to fit.")
    max_query_tokens: int = setting(48, "Query tokens kept for training (and reserved in max_length).")
    max_pairs_per_lang: int | None = setting(None, "Train on a seeded sample of at most this many pairs per "
                                                   "language (none: all).")
    min_pairs: int = setting(8, "Fewer usable pairs in all languages together is an error, not a model.")
    save_merged: bool = setting(False, "Also write the LoRA-merged full model (model/merged/, ~1 GB for Gemma).",
                                fingerprint=False)
    checkpoint_every: int = setting(50, "Optimizer steps between checkpoints.", fingerprint=False)
    seed: int = setting(DEFAULT_SEED, "Data order, LoRA initialisation and dropout (the pipeline uses [run] seed).")
    device: str | None = setting(None, "cuda / cpu; none: cuda if available (bf16), else cpu (float32).",
                                 fingerprint=False)
    show_progress: bool = setting(True, "Progress bar.", fingerprint=False)

    # Fields that change neither the trained weights nor their order of computation.
    BOOKKEEPING = frozenset({"checkpoint_every", "device", "show_progress", "save_merged"})

    def __post_init__(self) -> None:
        valid_seed(self)
        if isinstance(self.target_modules, list):  # from a JSON/TOML config
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        at_least(self, ("lora_r", "lora_alpha", "epochs", "batch_size", "max_length", "max_query_tokens",
                        "checkpoint_every", "min_pairs"), 1, prefix="trained.")
        at_least(self, ("max_steps", "max_pairs_per_lang"), 1, prefix="trained.", optional=True)
        at_least(self, ("learning_rate",), 0, prefix="trained.", strict=True)
        at_least(self, ("lora_dropout", "warmup_ratio", "weight_decay"), 0, prefix="trained.")
        at_most(self, ("lora_dropout", "warmup_ratio"), 1, prefix="trained.", strict=True)
        if self.max_query_tokens >= self.max_length // 2:
            raise ConfigError(f"trained.max_query_tokens={self.max_query_tokens} leaves too little of "
                              f"max_length={self.max_length} for the passage: keep it below max_length / 2")
        if not self.target_modules:
            raise ConfigError("trained.target_modules must name at least one module (e.g. q_proj)")

    def identity_fields(self) -> dict[str, Any]:
        """The fields a trained model depends on (a checkpoint of other values is never resumed)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.BOOKKEEPING}


@dataclass(frozen=True)
class GeneratorTrainConfig:
    """Fine-tuning of a seq2seq / bert2bert generator on mined (passage → query) pairs (``[generation.train]``)."""

    epochs: int = setting(1, "Passes over the mined pairs.")
    max_steps: int | None = setting(None, "Exactly this many optimizer steps, overriding epochs (none: run all "
                                          "epochs).")
    batch_size: int = setting(8, "Pairs per optimizer step.")
    learning_rate: float = setting(5e-5, "AdamW peak learning rate (linear warm-up, then linear decay).")
    weight_decay: float = setting(0.01, "AdamW weight decay.")
    warmup_ratio: float = setting(0.1, "Share of the steps spent warming up.")
    max_source_length: int = setting(256, "Passage tokens kept.")
    max_target_length: int = setting(48, "Query tokens kept.")
    max_pairs: int | None = setting(None, "Train on a seeded sample of at most this many pairs (none: all).")
    tie_encoder_decoder: bool = setting(False, "bert2bert only: share encoder and decoder weights (Rothe et al. "
                                               "2020).")

    def __post_init__(self) -> None:
        at_least(self, ("epochs", "batch_size", "max_source_length", "max_target_length"), 1, prefix="train.")
        at_least(self, ("max_steps", "max_pairs"), 1, prefix="train.", optional=True)
        at_least(self, ("learning_rate",), 0, prefix="train.", strict=True)
        at_least(self, ("weight_decay", "warmup_ratio"), 0, prefix="train.")
        at_most(self, ("warmup_ratio",), 1, prefix="train.", strict=True)


@dataclass(frozen=True)
class GenerationConfig:
    """How to generate and filter queries for passages that no mined query reached (``[generation]``)."""

    backend: str = setting(PASSAGE_CUT, "The query generator: " + backends_help() + ".")
    model: str | None = setting(None, "Hub id or folder; none: the backend's default.")
    n_per_passage: int = setting(1, "Queries generated per passage.")
    max_new_tokens: int = setting(48, "Tokens generated per query at most.")
    batch_size: int = setting(4, "Passages per generation batch.")
    # Decoding. Greedy by default: the team measured greedy few-shot Gemma to round-trip best; with
    # n_per_passage > 1 and greedy decoding, causal-fewshot varies the demonstrations and seq2seq uses beams.
    do_sample: bool = setting(False, "Sample instead of greedy decoding (greedy round-tripped best; with "
                                     "n_per_passage > 1 greedy causal-fewshot varies the demonstrations, "
                                     "seq2seq uses beams).")
    temperature: float = setting(1.0, "Sampling temperature (do_sample).")
    top_p: float = setting(0.95, "Nucleus sampling mass (do_sample).")
    top_k_sampling: int = setting(50, "Sample from the top k tokens (do_sample).")
    num_beams: int = setting(1, "Beam width of seq2seq / bert2bert decoding.")
    repetition_penalty: float = setting(1.0, "Penalty on repeated tokens (1: none).")
    few_shot: int = setting(3, "causal-fewshot: in-language (passage, query) demonstrations per prompt.")
    demo_max_chars: int = setting(250, "causal-fewshot: longer demonstration passages are cut around the sentence "
                                       "their query asks about.")
    passage_max_chars: int = setting(600, "causal-fewshot: the target passage is cut to this many characters in "
                                          "the prompt.")
    input_prefix: str = setting("", "seq2seq / bert2bert: text put before the passage (e.g. \"generate question: "
                                    "\" for a model fine-tuned with that prefix).")
    finetune: bool | None = setting(None, "seq2seq / bert2bert: train on the mined pairs first; none: only for "
                                          "bert2bert.")
    train: GeneratorTrainConfig = setting(factory=GeneratorTrainConfig, help="[generation.train]: how seq2seq / "
                                          "bert2bert fine-tune on the mined pairs.")
    trained: TrainedGeneratorConfig = setting(factory=TrainedGeneratorConfig, help="[generation.trained]: how the "
                                              "trained backend fine-tunes its causal LM (LoRA) on the mined pairs.")
    cut_max_words: int = setting(8, "passage-cut: a cut is at most this many words (scripts with spaces) ...")
    cut_max_chars: int = setting(20, "passage-cut: ... or characters (scripts without spaces: ja, zh, th).")
    top_k: int | None = setting(10, "Round trip: keep a query whose passage ranks in the retriever's top_k; none: "
                                    "off (unverified queries).")
    script_check: bool = setting(True, "Drop a query not written in its passage's script(s).")
    min_script_share: float = setting(0.5, "Share of the query's letters that must be in the passage's script(s).")
    dedup_threshold: float = setting(0.8, "Char n-gram Jaccard at or above which two queries are near-duplicates.")
    dedup_ngram: int = setting(3, "The n of the dedup char n-grams.")
    min_query_chars: int = setting(2, "Shorter queries are dropped.")
    max_query_chars: int = setting(200, "Longer queries are dropped.")
    copy_threshold: float = setting(0.5, "Drop a query whose longest run copied from the passage covers this share "
                                         "of it.")
    shard_size: int = setting(64, "Passages per resumable shard.")
    max_passages: int | None = setting(200, "Generate for a seeded sample of at most this many unreached passages "
                                            "per language (none: all of them; on a Mr. TyDi corpus that is "
                                            "millions).")
    seed: int = setting(DEFAULT_SEED, "Sampling and passage sample (the pipeline uses [run] seed).")
    device: str | None = setting(None, "cuda / cpu; none: cuda if available, else cpu.")
    show_progress: bool = setting(True, "Progress bar.")

    def __post_init__(self) -> None:
        valid_seed(self)
        if isinstance(self.train, dict):  # from a JSON/TOML config
            object.__setattr__(self, "train", GeneratorTrainConfig(**self.train))
        if isinstance(self.trained, dict):
            object.__setattr__(self, "trained", TrainedGeneratorConfig(**self.trained))
        if self.backend not in backend_names():
            raise ConfigError(f"unknown generation backend {self.backend!r}; use one of "
                              f"{', '.join(backend_names())}")
        at_least(self, ("n_per_passage", "max_new_tokens", "batch_size", "shard_size", "num_beams", "dedup_ngram",
                        "cut_max_words", "cut_max_chars", "max_query_chars", "passage_max_chars", "demo_max_chars"), 1)
        at_least(self, ("few_shot",), 0)
        at_least(self, ("top_k",), 1, optional=True, note=" (none switches the round trip off)")
        at_least(self, ("max_passages",), 1, optional=True)
        at_least(self, ("dedup_threshold", "copy_threshold", "min_script_share", "temperature"), 0, strict=True)
        at_most(self, ("dedup_threshold", "copy_threshold", "min_script_share"), 1)
        at_least(self, ("max_query_chars",), self.min_query_chars, note=" (min_query_chars)")

    @property
    def model_name(self) -> str:
        """The model actually used: ``model`` or the backend's default."""
        return self.model if self.model else default_model(self.backend)

    @property
    def should_finetune(self) -> bool:
        # bert2bert's cross-attention starts random: untrained it writes noise, so it always trains.
        return self.backend == BERT2BERT or bool(self.finetune)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    _FILTER_FIELDS = frozenset({
        "top_k", "script_check", "min_script_share", "dedup_threshold", "dedup_ngram", "min_query_chars",
        "max_query_chars", "copy_threshold", "shard_size", "max_passages", "device", "show_progress", "batch_size",
    })

    def fingerprint(self) -> str:
        """A hash of the fields that change what a generator writes (not filters, batching or bookkeeping).

        Shards record it; a resumed run with a different fingerprint refuses to mix outputs.
        """
        relevant = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self._FILTER_FIELDS}
        relevant["model"] = self.model_name
        if not self.should_finetune:
            relevant.pop("train")
        else:
            relevant["train"] = asdict(self.train)
        if self.backend != TRAINED:  # (kept out so other backends' shards keep their fingerprints)
            relevant.pop("trained")
        elif self.model:  # a trained folder: what it was trained on and how, not just where it lies

            relevant.pop("trained")
            relevant["model_identity"] = model_identity(self.model)
        else:
            relevant["trained"] = self.trained.identity_fields()
        blob = json.dumps(relevant, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

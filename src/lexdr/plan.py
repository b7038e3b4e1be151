"""Plan before you spend: estimated time, peak memory and disk of every stage, before any work starts.

:func:`plan_run` takes the passage and query counts of each language and the run's settings and returns a
:class:`Plan`: per language and stage, CPU seconds (this kind of 2-core machine), GPU seconds where the stage
runs on a GPU (from rates measured on an H200 and an H100), peak memory and disk. :func:`check_fits` raises
:class:`~lexdr.errors.ConfigError` naming the setting to change when a stage cannot fit this machine's memory
(``MemTotal`` of ``/proc/meminfo``) or the output folder's free disk.

Every constant of the cost model, and where it was measured (all on real runs; nothing here is tuned to
make a table look good):

============================  ==================  ==========================================================
constant                      value               source
============================  ==================  ==========================================================
BM25_OOC_BUILD_S_PER_DOC      see ``RATES``       ``benchmarks/results/scale.md``: lexdr out-of-core build
                                                  (read + analyze in 2 workers + score + merge), fitted
                                                  power law over 10k-1M synthetic Indonesian passages
                                                  (118 e5-small tokens a passage with the prompt; a corpus
                                                  is priced in proportion to its own tokens per passage)
BM25_OOC_RSS                  base + per doc      same runs: peak RSS of the build process (main; analysis
                              + per shard doc     workers ~440 MiB each beside it), solved from 3 sizes
BM25_MEM_RSS                  base + per doc      same runs: plain bm25s in-memory build (what
                                                  ``BM25Index.build`` does), linear fit
BM25_DISK_PER_DOC             bytes               same runs: index folder size, linear fit
BM25_SEARCH_S_PER_QUERY       power law in N      same runs: ``BM25Index.search`` top 100, 2 threads
BM25_SEARCH_RSS               base + per doc      same runs: search process peak RSS (vocabulary + doc ids)
CPU_ENCODE_S_PER_TOKEN        see ``RATES``       CPU seconds of a token through the encoder on 2 free cores:
CPU_ENCODE_S_PER_TOKEN_LAYER                      a part every token costs plus one per layer (x (hidden /
DENSE_STAGE_S                                     384)^2), and a dense stage's own start; least squares
                                                  (relative errors) over the dense stages of the rehearsal
                                                  (``benchmarks/rehearsal.py``: e5-small cut to 2 layers,
                                                  10k-1M synthetic passages at 32 tokens) and of the README
                                                  job (dev-quick, 12 layers, 2 x 3 stages), with the
                                                  corpus's own tokens per passage (counted by
                                                  ``lexdr.pipeline.planning`` with the base model's
                                                  tokenizer); ``benchmarks/rehearsal.py --refit`` prints them
GPU_ENCODE_IDS_S_PER_PASSAGE  a + b x tokens     ``benchmarks/results/gpu/rates-h200/rates.md`` (2026-11-30):
GPU_ENCODE_IDS_S_PER_TOKEN                        the profile row "forward alone, real tokens on the
                                                  device" on an H200 (19,707 passages/s at 128 tokens,
                                                  16,371 at 256), the line through both points: what an
                                                  encode from stored token ids runs at once the ids are
                                                  tokenized (``lexdr.dense.token_ids``). Composed from a
                                                  measured part; the whole ids path is not yet measured on
                                                  a GPU (the old tokenizer-bound path ran 2,298/s at 256)
TOKENIZE_TOKENS_PER_CPU_S     378,603             this machine, 2026-12-07: ``encode_batch_fast`` (what
GPU_HOST_CORES                16                  ``ensure_token_ids`` runs) over the 10,981 dev passages,
                                                  process CPU time, best of 3, beside one training job;
                                                  a corpus is tokenized once, on the GPU host's cores
                                                  (the H200's host had 16), whole passages counted
GPU_TRAIN_S_PER_EXAMPLE       56.4 / 8,114        an H100 pipeline run's manifest, ``train-r1``: 8,114
                                                  examples, 1 epoch,
                                                  batch 32, 8 candidates, 192 tokens, TF32
CPU_TRAIN_FORWARDS            see ``RATES``       a training example costs CPU_TRAIN_FORWARDS x its tokens
TRAIN_STAGE_S                                     (query + candidates, at ``[training]``'s lengths) at the
CPU_TRAIN_S_PER_STEP                              encode rate, plus a cost per optimizer step and the stage's
                                                  start; candidates =
                                                  min(max_candidates, 2 x [mining] n_candidates_each - 1);
                                                  a fractional epoch trains that share of the examples;
                                                  fitted on the same runs' train-r1 and train-gen
MINE_S_PER_QUERY              see ``RATES``       the same runs' mine stages
GENERATE_STAGE_S              see ``RATES``       the same runs' passage-cut generate stages: a start, a cost
GENERATE_S_PER_PASSAGE                            per passage, and each kept query's round trip (BM25 and
                                                  dense search of the whole corpus, priced as those searches)
EVALUATE_STAGE_S              see ``RATES``       the same runs' evaluate stages: a start, a cost per test
EVALUATE_S_PER_QUERY                              query and one per unlabeled query (their runs are read to
EVALUATE_S_PER_UNLABELED_QUERY                    fit the adaptive hybrids)
TRAIN_PEAK_RSS                7.3 GiB             README (2026-11-25): the main job's peak on 2 CPU cores
ENCODER_RSS                   4.3 GiB             the H100 run's manifest, ``jsquad-ja/dense-base`` peak RSS
FLAT_SEARCH_S_PER_VEC_QUERY   5.5e-10 per dim     measured here (2026-11-30): FAISS IndexFlatIP, 384 dims,
                                                  100k vectors, 1,000 queries, top 100, 2 shared cores
                                                  (load ~17): 20.9 s
bytes per vector by type      FAISS layouts       ``lexdr.dense.index`` docstring: flat 4d, hnsw 4d+8M,
                                                  hnsw-sq8 d+8M, ivf 4d, ivf-sq8 d, ivfpq pq_bytes (d/4)
                                                  +d with rerank (+8 B id each); ``[dense.index]`` decides
DENSE_RSS_PER_DOC             bytes               ``benchmarks/results/stage_memory.md``: the dense stage's
                                                  peak beyond the vectors (doc ids, run bookkeeping) per
                                                  passage
============================  ==================  ==========================================================

The BM25 constants are refitted by ``benchmarks/scale.py``, the CPU encode, training, generation, mining and
evaluation constants by ``benchmarks/rehearsal.py --refit``; update ``RATES`` when either is re-run.
``RATE_SOURCES`` names the machine each rate was measured on (``MACHINES``), and every plan ends with one line
per machine whose rates priced it.

>>> plan = plan_run({"sw": (136_000, 2_072, 526)}, PlanSettings(memory_bytes=24 * 2**30))
>>> print(plan.render())  # doctest: +SKIP
>>> sorted(plan.verdicts())
['sw']
"""

from __future__ import annotations

import enum
import math
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from lexdr.dense.encoder import EncoderConfig
from lexdr.dense.index import DenseIndexConfig, IndexType
from lexdr.errors import ConfigError
from lexdr.generation.config import GenerationConfig
from lexdr.generation.registry import PASSAGE_CUT, TRAINED
from lexdr.mining.rules import MineConfig
from lexdr.settings import as_enums, at_least
from lexdr.sparse.config import BM25Config
from lexdr.training.config import TrainConfig

__all__ = ["Device", "PlanSettings", "RATES", "StageEstimate", "Plan", "plan_run", "check_fits",
           "machine_memory_bytes", "MRTYDI_SIZES", "index_bytes_per_vector"]

GIB = 2**30
MIB = 2**20

# The measured constants (see the table in the module docstring for where each comes from).
RATES: dict[str, float] = {
    # BM25, lexdr out of core, 2 analysis workers: the exponents from benchmarks/results/scale.md (2026-12-01, fitted
    # over 10k, 100k, 1M and 10M synthetic Indonesian passages on 2 otherwise idle cores), the coefficients refitted
    # (2026-12-08) on the rehearsal's build times (0.7 s / 4.1 s / 49.5 s at 10k / 100k / 1M) and the README job's
    # (benchmarks/rehearsal.py --refit)
    "bm25_stage_s": 0.2515,  # a BM25 stage's own start and end (analyzer, workers, loading the index, writing runs)
    "bm25_ooc_build_a": 1.676e-4,  # seconds = a * N ** p
    "bm25_ooc_build_p": 0.889,
    "bm25_ref_tokens": 118.0,  # the fit's passages: e5-small tokens per passage, prompt included (counted here)
    # peak RSS 124 / 450 / 729 MiB at 10k (one 10k shard) / 100k / 1M (shards of 66,666): solved for
    # base + per_doc * N + per_shard_doc * shard_docs
    "bm25_ooc_rss_base": 66 * MIB,
    "bm25_ooc_rss_per_doc": 310.0,  # bytes: vocabulary, doc ids, lengths (grows with N)
    "bm25_ooc_rss_per_shard_doc": 5_500.0,  # bytes per document of a shard (text, terms, postings; bounded)
    "bm25_ooc_worker_rss_base": 60 * MIB,  # each of the 2 analysis workers: 435 MiB with 66,666-doc shards
    "bm25_ooc_worker_rss_per_shard_doc": 5_600.0,
    "bm25_mem_rss_base": 70 * MIB,  # plain bm25s (what BM25Index.build does): every term list in Python objects
    "bm25_mem_rss_per_doc": 5_300.0,
    "bm25_disk_per_doc": 510.0,
    "bm25_search_a": 3.103e-08,  # seconds per query = a * N ** p (BM25Index.search, top 100, 2 threads; p from
    "bm25_search_s_per_query": 2.753e-4,  # a query's own cost whatever N (analysis, Python around numpy, writing)
    "bm25_search_p": 0.775,  # scale.md: 3,155 / 1,671 / 255 / 15 queries/s at 10k / 100k / 1M / 10M then)
    "bm25_search_rss_base": 93 * MIB,
    "bm25_search_rss_per_doc": 720.0,
    # dense, CPU (refitted from the rehearsal and dev-quick: see RATE_SOURCES): seconds per token of a forward
    # = cpu_encode_s_per_token + layers * (hidden / 384) ** 2 * cpu_encode_s_per_token_layer
    "cpu_encode_s_per_token": 4.224e-06,
    "cpu_encode_s_per_token_layer": 1.283e-05,
    "dense_stage_s": 7.62,  # a dense stage's own start: model and token ids loaded, index written
    # GPU encode from stored ids: seconds a passage = a + b * tokens, through the H200 profile's forward-alone rows
    # (1 / 19,707 s at 128 tokens, 1 / 16,371 s at 256); the corpus is tokenized once, on the host's cores
    "gpu_encode_ids_s_per_passage": 2 / 19707 - 1 / 16371,
    "gpu_encode_ids_s_per_token": (1 / 16371 - 1 / 19707) / 128,
    "tokenize_tokens_per_cpu_s": 378_603.0,
    "gpu_host_cores": 16,
    "dense_rss_per_doc": 260.0,  # bytes beyond the index vectors: ids, mapped shard pages (stage_memory.md)
    "gpu_train_s_per_example": 56.4 / 8114,
    "gpu_train_candidates_ref": 8.0,
    "mine_s_per_query": 0.0007987,
    "generate_stage_s": 3.58,  # passage-cut: loading both indexes and the encoder
    "generate_s_per_passage": 0.006517,  # cutting, round trip and mining a passage's queries
    "generate_s_per_corpus_passage": 5.563e-05,  # streaming the corpus (twice) and loading both indexes: grows with N
    "cpu_train_forwards": 10.91,  # a training token costs this many encoding tokens (forward + backward + step)
    "cpu_train_s_per_step": 0,  # an optimizer step's own cost (gradient cache bookkeeping, AdamW, Python)
    "train_stage_s": 0,  # a training stage's start: model, corpus ids of the cited passages, the final save
    "evaluate_stage_s": 0,  # reading every system's runs, fusing, writing
    "evaluate_s_per_query": 0.003462,
    "evaluate_s_per_unlabeled_query": 0.002489,
    # the trained generator (backend "trained"): LoRA steps of 8 pairs on Gemma-3-270M, CPU float32 (the pipeline's
    # generator stage, 2026-12-01: 49 steps in 781 s on 2 cores shared with one other benchmark), and generation
    # at batch 4 on 2 free cores (benchmarks/results/generation_speed.md). No GPU rate is measured yet.
    "generator_s_per_step_cpu": 781.4 / 49,
    "trained_generate_s_per_passage_cpu": 1.34,
    "train_peak_rss": 7.3 * GIB,
    "encoder_rss": 4.3 * GIB,
    "flat_search_s_per_vec_query": 1.042e-11,  # per vector x query x dimension (batched: BLAS; the rehearsal's fit)
}

# Where each rate was measured: RATES key -> MACHINES key. ``lexdr plan`` prints the machines of the rates it used.
MACHINES: dict[str, str] = {
    "cpu-2core-rehearsal": "a 2-core Intel Xeon VM, 23.5 GiB (the project's), 2026-12-08: benchmarks/rehearsal.py "
                           "(10k, 100k and 1M passages, e5-small cut to 2 layers and 128 hidden units, free cores) "
                           "and the README job (dev-quick, 12 layers, nearly free cores); the tokenizer's rate over "
                           "the dev passages (2026-12-07)",
    "cpu-2core-scale": "a 2-core AMD EPYC VM, 23.5 GiB, 2026-12-01: benchmarks/scale.py (10k-10M passages, idle cores)",
    "cpu-2core-older": "the 2-core AMD EPYC VM, 2026-11-25 .. 12-01: earlier dev-quick manifests, README runs and a "
                       "FAISS flat search measurement",
    "gpu-h200": "one NVIDIA H200 with a 16-core host, 2026-11-30: benchmarks/results/gpu/rates-h200",
    "gpu-h100": "one NVIDIA H100, a pipeline run (train-r1 of 8,114 examples)",
}
RATE_SOURCES: dict[str, str] = {
    **{k: "cpu-2core-scale" for k in ("bm25_ooc_build_p", "bm25_ref_tokens", "bm25_ooc_rss_base",
                                      "bm25_ooc_rss_per_doc", "bm25_ooc_rss_per_shard_doc", "bm25_ooc_worker_rss_base",
                                      "bm25_ooc_worker_rss_per_shard_doc", "bm25_mem_rss_base", "bm25_mem_rss_per_doc",
                                      "bm25_disk_per_doc", "bm25_search_p", "bm25_search_rss_base",
                                      "bm25_search_rss_per_doc")},
    **{k: "cpu-2core-rehearsal" for k in ("bm25_stage_s", "bm25_ooc_build_a", "bm25_search_a",
                                          "bm25_search_s_per_query", "generate_s_per_corpus_passage",
                                          "flat_search_s_per_vec_query",
                                          "cpu_encode_s_per_token", "cpu_encode_s_per_token_layer", "dense_stage_s",
                                          "cpu_train_forwards", "cpu_train_s_per_step",
                                          "generate_stage_s", "generate_s_per_passage", "train_stage_s",
                                          "evaluate_stage_s", "evaluate_s_per_query", "evaluate_s_per_unlabeled_query",
                                          "mine_s_per_query")},
    **{k: "cpu-2core-older" for k in ("dense_rss_per_doc", "generator_s_per_step_cpu",
                                      "trained_generate_s_per_passage_cpu", "train_peak_rss", "encoder_rss")},
    "gpu_encode_ids_s_per_passage": "gpu-h200", "gpu_encode_ids_s_per_token": "gpu-h200", "gpu_host_cores": "gpu-h200",
    "tokenize_tokens_per_cpu_s": "cpu-2core-rehearsal",
    "gpu_train_s_per_example": "gpu-h100", "gpu_train_candidates_ref": "gpu-h100",
}
# The rates each stage's time is priced with (the machines ``lexdr plan`` names).
_STAGE_RATES: dict[str, dict[str, tuple[str, ...]]] = {
    "cpu": {"bm25": ("bm25_ooc_build_a", "bm25_search_a", "bm25_ooc_build_p"),
            "dense": ("cpu_encode_s_per_token", "dense_stage_s", "flat_search_s_per_vec_query"),
            "mine": ("mine_s_per_query",), "generate": ("generate_s_per_passage", "trained_generate_s_per_passage_cpu"),
            "generator": ("generator_s_per_step_cpu",), "train": ("cpu_encode_s_per_token", "train_stage_s"),
            "evaluate": ("evaluate_s_per_query",)},
    "gpu": {"dense": ("gpu_encode_ids_s_per_token", "tokenize_tokens_per_cpu_s"), "train": ("gpu_train_s_per_example",)},
}


def cpu_seconds_per_token(model_shape: tuple[int, int, int]) -> float:
    """CPU seconds of one token through a forward pass of a BERT-like encoder of ``(hidden, layers, heads)``:
    a part every token costs whatever the depth (embedding, pooling, the data path) plus a part per layer,
    scaled by the square of the hidden size (the matmuls)."""
    hidden, layers, _ = model_shape
    return RATES["cpu_encode_s_per_token"] + layers * (hidden / 384) ** 2 * RATES["cpu_encode_s_per_token_layer"]


# Mr. TyDi v1.1: passages (as issue 9 rounds them) and train / dev topic counts (the Anserini topic files in
# ../shared/data/mrtydi/topics, counted).
MRTYDI_SIZES: dict[str, tuple[int, int, int]] = {
    "sw": (136_000, 2_072, 526), "bn": (304_000, 1_713, 440), "te": (549_000, 3_880, 983),
    "th": (568_000, 3_319, 807), "id": (1_470_000, 4_902, 1_224), "ko": (1_500_000, 1_295, 303),
    "fi": (1_900_000, 6_561, 1_738), "ar": (2_100_000, 12_377, 3_115), "ja": (7_000_000, 3_697, 928),
    "ru": (9_600_000, 5_366, 1_375), "en": (32_900_000, 3_547, 878),
}

def index_bytes_per_vector(kind: IndexType, dim: int, cfg: DenseIndexConfig) -> int:
    """Bytes a vector takes in a ``kind`` index (FAISS layouts; ``lexdr.dense.index`` docstring), without its id."""
    m = cfg.hnsw_m
    return {IndexType.flat: 4 * dim, IndexType.hnsw: 4 * dim + 8 * m, IndexType.hnsw_sq8: dim + 8 * m,
            IndexType.ivf: 4 * dim, IndexType.ivf_sq8: dim,
            IndexType.ivfpq: (cfg.pq_bytes or dim // 4) + (dim if cfg.rerank else 0)}[kind]


class Device(str, enum.Enum):
    cpu = "cpu"
    gpu = "gpu"


class PlannedStage(str, enum.Enum):
    bm25 = "bm25"
    dense = "dense"
    mine = "mine"
    generate = "generate"
    generator = "generator"
    train = "train"
    evaluate = "evaluate"


@dataclass(frozen=True)
class PlanSettings:
    """What the cost depends on: the run's own section settings (each the owning package's class, so a plan
    made without a config prices the run's defaults), plus what only the plan knows.

    ``bm25`` (``max_docs_in_memory``; None: the in-memory build), ``dense`` (``max_seq_length``), ``index``
    (``[dense.index]``: type, or ``auto`` by corpus size; shard size; whether shards are kept), ``mining``
    (``n_candidates_each``), ``training`` (epochs, batch size, ``max_candidates``), ``generation``
    (backend, ``max_passages``, the trained generator's batch size) and ``rounds`` are the run config's;
    :func:`lexdr.pipeline.planning.plan_config` passes a config's sections. ``passage_tokens``: mean encoder
    tokens per passage before truncation (``lexdr plan`` counts them from the corpus; 128 is about Mr. TyDi's
    100-word passages); ``language_tokens``: ``(label, tokens)`` of the languages whose own corpus sample was
    counted (their dense stages are planned with it; training with ``passage_tokens``, the mean over all).
    ``query_tokens``: the same for queries. ``memory_bytes``: the memory budget; ``None`` =
    this machine's ``MemTotal``. ``model_shape``: the base model's hidden size, layers and heads; with
    ``train_on_cpu`` a forward chunk's activations (:func:`estimate_chunk_memory_bytes` of ``[training]``
    ``mini_batch_size`` x ``max_passage_length``) count towards the training's peak memory beyond the shape its
    measured peak was taken at.
    """

    stages: tuple[PlannedStage, ...] = tuple(PlannedStage)
    bm25: BM25Config = field(default_factory=BM25Config)
    dense: EncoderConfig = field(default_factory=EncoderConfig)
    index: DenseIndexConfig = field(default_factory=DenseIndexConfig)
    mining: MineConfig = field(default_factory=MineConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    rounds: int = 1  # [run] rounds (its class lives in lexdr.pipeline, above this module)
    passage_tokens: int = 128
    language_tokens: tuple[tuple[str, int], ...] = ()
    query_tokens: int = 16
    dim: int = 384
    device: Device = Device.cpu
    memory_bytes: int | None = None
    model_shape: tuple[int, int, int] = (384, 12, 12)
    train_on_cpu: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(PlannedStage(s) for s in self.stages))
        as_enums(self, ("device",))
        at_least(self, ("passage_tokens", "query_tokens", "dim", "rounds"), 1)

    # The settings the cost model reads, by the names it uses.
    @property
    def max_seq_length(self) -> int:
        return self.dense.max_seq_length

    @property
    def max_docs_in_memory(self) -> int | None:
        return self.bm25.max_docs_in_memory

    @property
    def epochs(self) -> int:
        return max(1, math.ceil(self.training.epochs))

    @property
    def max_candidates(self) -> int:
        return self.training.max_candidates

    @property
    def candidates(self) -> int:
        """Passages per training example besides the query: ``min(max_candidates, 2 * n_candidates_each - 1)``
        (the two runs agree on about one; dev-quick mined 2.8 a query with n_candidates_each = 2)."""
        return max(1, 2 * self.mining.n_candidates_each - 1)

    @property
    def generate_passages(self) -> int:
        return self.generation.max_passages or 10**9

    @property
    def generation_backend(self) -> str:
        return self.generation.backend

    @property
    def generator_batch_size(self) -> int:
        return self.generation.trained.batch_size

    @property
    def mini_batch_size(self) -> int:
        return self.training.mini_batch_size

    @property
    def max_passage_length(self) -> int:
        return self.training.max_passage_length

    def tokens_of(self, lang: str) -> int:
        """Tokens per passage of language ``lang``'s corpus: its own count, else ``passage_tokens``."""
        return dict(self.language_tokens).get(lang, self.passage_tokens)

    def resolved_index(self, passages: int) -> IndexType:
        return self.index.resolve(passages)


@dataclass(frozen=True)
class StageEstimate:
    """One stage of one language (``lang`` is ``"*"`` for the joint training)."""

    lang: str
    stage: PlannedStage
    cpu_seconds: float
    gpu_seconds: float | None  # None: the stage does not use a GPU
    peak_bytes: float
    disk_bytes: float
    knob: str  # the setting that lowers this stage's peak memory
    detail: str = ""

    def seconds(self, device: Device) -> float:
        return self.gpu_seconds if device is Device.gpu and self.gpu_seconds is not None else self.cpu_seconds


@dataclass(frozen=True)
class Plan:
    settings: PlanSettings
    sizes: Mapping[str, tuple[int, int, int]]
    estimates: tuple[StageEstimate, ...]
    memory_bytes: int
    notes: tuple[str, ...] = field(default=())

    def by_lang(self, lang: str) -> list[StageEstimate]:
        return [e for e in self.estimates if e.lang == lang or e.lang.startswith("*")]

    def total_seconds(self, device: Device | None = None) -> float:
        device = device or self.settings.device
        return sum(e.seconds(device) for e in self.estimates)

    def peak_bytes(self) -> float:
        return max((e.peak_bytes for e in self.estimates), default=0.0)

    def disk_bytes(self) -> float:
        return sum(e.disk_bytes for e in self.estimates)

    def verdicts(self, cpu_hours_limit: float = 24.0) -> dict[str, str]:
        """Per language, its own stages (training shared): ``fits in X GiB (H h on CPU)``, ``needs X GiB``
        or ``needs a GPU for Y hours``."""
        out = {}
        budget = self.memory_bytes / GIB
        for lang in self.sizes:
            own = [e for e in self.estimates if e.lang == lang]
            peak = max((e.peak_bytes for e in own), default=0.0) / GIB
            cpu_h = sum(e.cpu_seconds for e in own) / 3600
            gpu_h = sum(e.seconds(Device.gpu) for e in own) / 3600
            if peak > budget:
                out[lang] = f"needs {math.ceil(peak)} GiB"
            elif cpu_h > cpu_hours_limit:
                out[lang] = f"needs a GPU for {gpu_h:.1f} hours ({cpu_h:,.0f} h on CPU)"
            else:
                out[lang] = f"fits in {budget:.0f} GiB ({cpu_h:.1f} h on CPU)"
        return out

    def to_table(self) -> str:
        """Markdown: one row per language and stage, then the totals."""
        rows = ["| language | stage | CPU time | GPU time | peak memory | disk | detail |",
                "|---|---|---:|---:|---:|---:|---|"]
        for e in self.estimates:
            gpu = "–" if e.gpu_seconds is None else _duration(e.gpu_seconds)
            rows.append(f"| {e.lang} | {e.stage.value} | {_duration(e.cpu_seconds)} | {gpu} | "
                        f"{_size(e.peak_bytes)} | {_size(e.disk_bytes)} | {e.detail} |")
        rows.append(f"| **all** | | **{_duration(self.total_seconds(Device.cpu))}** | "
                    f"**{_duration(self.total_seconds(Device.gpu))}** | **{_size(self.peak_bytes())}** | "
                    f"**{_size(self.disk_bytes())}** | memory budget {_size(self.memory_bytes)} |")
        return "\n".join(rows)

    def render(self) -> str:
        """The table plus one verdict line per language (what ``lexdr plan CONFIG`` prints)."""
        lines = [self.to_table(), ""]
        lines += [f"{lang}: {v}" for lang, v in self.verdicts().items()]
        lines += list(self.notes)
        return "\n".join(lines)


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:,.1f} h"


def _size(b: float) -> str:
    return f"{b / GIB:.1f} GiB" if b >= GIB else f"{b / MIB:.0f} MiB"


def machine_memory_bytes(meminfo: str | Path = "/proc/meminfo") -> int:
    """``MemTotal`` of this machine, in bytes."""
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    raise ConfigError(f"cannot read MemTotal from {meminfo}; pass memory_bytes explicitly")


# ------------------------------------------------------------------------------------------------ the model
def _bm25(lang: str, n: int, queries: int, s: PlanSettings) -> StageEstimate:
    r = RATES
    # analysis dominates the build: scaled by the language's passage length against the fit's corpus
    build = (r["bm25_stage_s"]
             + r["bm25_ooc_build_a"] * n ** r["bm25_ooc_build_p"] * s.tokens_of(lang) / r["bm25_ref_tokens"])
    search = _bm25_search_seconds(queries, n)
    if s.max_docs_in_memory is None:
        build_peak = r["bm25_mem_rss_base"] + r["bm25_mem_rss_per_doc"] * n
        knob, how = "[bm25] max_docs_in_memory", "in memory"
    else:
        shard = min(n, max(1, s.max_docs_in_memory // 3))  # shard_docs_for(max_docs_in_memory, n_jobs=2)
        build_peak = (r["bm25_ooc_rss_base"] + r["bm25_ooc_rss_per_doc"] * n + r["bm25_ooc_rss_per_shard_doc"] * shard
                      + 2 * (r["bm25_ooc_worker_rss_base"] + r["bm25_ooc_worker_rss_per_shard_doc"] * shard))
        knob, how = "[bm25] max_docs_in_memory (lower it)", f"out of core, {s.max_docs_in_memory:,} docs at a time"
    search_peak = r["bm25_search_rss_base"] + r["bm25_search_rss_per_doc"] * n
    return StageEstimate(lang, PlannedStage.bm25, build + search, None, max(build_peak, search_peak),
                         r["bm25_disk_per_doc"] * n, knob, how)


def _encode_seconds(n: int, tokens: int, s: PlanSettings) -> tuple[float, float]:
    """CPU and GPU seconds to encode ``n`` texts of ``tokens`` tokens (cut at ``max_seq_length``)."""
    tokens = min(tokens, s.max_seq_length)
    cpu = n * tokens * cpu_seconds_per_token(s.model_shape)
    gpu = n * (RATES["gpu_encode_ids_s_per_passage"] + tokens * RATES["gpu_encode_ids_s_per_token"])
    return cpu, gpu


def _tokenize_gpu_host_seconds(n: int, tokens: int) -> float:
    """Seconds to tokenize ``n`` passages of ``tokens`` tokens once (whole passages) on the GPU host's cores."""
    return n * tokens / (RATES["tokenize_tokens_per_cpu_s"] * RATES["gpu_host_cores"])


def _scan_seconds(queries: int, n: int, s: PlanSettings) -> float:
    """Seconds to search ``queries`` vectors in the ``n``-passage index ``[dense.index]`` resolves to."""
    kind, ix = s.resolved_index(n), s.index
    rate = RATES["flat_search_s_per_vec_query"]
    if kind in (IndexType.flat, IndexType.hnsw, IndexType.hnsw_sq8):  # HNSW: charged as flat (an upper bound)
        return queries * n * s.dim * rate
    # IVF scans nprobe of its nlist lists (codes of their bytes per vector; float32 dims cost 4 bytes each)
    nlist = ix.lists_for(n)
    scanned = min(n, n * ix.probes_for(nlist) / nlist)
    return queries * scanned * index_bytes_per_vector(kind, s.dim, ix) / 4 * rate


def _bm25_search_seconds(queries: int, n: int) -> float:
    return queries * (RATES["bm25_search_s_per_query"] + RATES["bm25_search_a"] * n ** RATES["bm25_search_p"])


def _dense(lang: str, n: int, queries: int, s: PlanSettings) -> StageEstimate:
    kind = s.resolved_index(n)
    ix = s.index
    per_vec = index_bytes_per_vector(kind, s.dim, ix) + 8
    cpu, gpu = _encode_seconds(n, s.tokens_of(lang), s)
    qcpu, qgpu = _encode_seconds(queries, s.query_tokens, s)
    scan = _scan_seconds(queries, n, s)
    index_bytes = per_vec * n
    trained = kind not in (IndexType.flat, IndexType.hnsw)
    sample = 4 * s.dim * min(n, ix.train_sample) if trained else 0  # float32 training sample
    shard = 4 * s.dim * min(n, ix.shard_size)  # the shard being added (float32)
    shard_disk = (4 if kind is IndexType.flat else 2) * s.dim * n if ix.keep_shards else 0
    peak = RATES["encoder_rss"] + index_bytes + sample + shard + RATES["dense_rss_per_doc"] * n
    start = RATES["dense_stage_s"]
    return StageEstimate(lang, PlannedStage.dense, start + cpu + qcpu + scan, start + gpu + qgpu + scan, peak, index_bytes + shard_disk,
                         "[dense.index] index_type (ivf-sq8 or ivfpq for large corpora)",
                         f"{kind.value}, {per_vec} B/passage" + ("; shards kept" if ix.keep_shards else ""))


def _mine(lang: str, queries: int, s: PlanSettings) -> StageEstimate:
    t = queries * RATES["mine_s_per_query"]
    return StageEstimate(lang, PlannedStage.mine, t, None, 1 * GIB, queries * 20_000, "[mining] depth")


def _generate(lang: str, n: int, s: PlanSettings) -> StageEstimate:
    k = min(n, s.generate_passages)
    # each passage's kept query goes round trip: searched in both indexes of the whole corpus
    t = RATES["generate_stage_s"] + k * RATES["generate_s_per_passage"] + _bm25_search_seconds(k, n) \
        + _scan_seconds(k, n, s) + n * RATES["generate_s_per_corpus_passage"]
    if s.generation_backend == TRAINED:
        # writing the query, then the same filters, round trip and mining as a passage-cut query
        t += k * RATES["trained_generate_s_per_passage_cpu"]
        return StageEstimate(lang, PlannedStage.generate, t, None, RATES["encoder_rss"] + 2 * GIB, k * 2_000,
                             "[generation] max_passages", f"{k} passages (trained generator; no GPU rate measured: "
                             "CPU time)")
    return StageEstimate(lang, PlannedStage.generate, t, t, RATES["encoder_rss"], k * 2_000, "[generation] max_passages",
                         f"{k} passages (passage-cut)" if s.generation_backend == PASSAGE_CUT else
                         f"{k} passages ({s.generation_backend}, priced at passage-cut's rate: not measured)")


def _generator(pairs: int, s: PlanSettings) -> StageEstimate:
    """The joint trained generator (backend "trained"): one LoRA epoch over about one pair per mined query."""
    steps = max(1, math.ceil(pairs / s.generator_batch_size))
    t = steps * RATES["generator_s_per_step_cpu"]
    return StageEstimate("*", PlannedStage.generator, t, None, 3 * GIB, 50 * MIB, "[generation.trained] max_pairs_per_lang",
                         f"{steps:,} LoRA steps of {s.generator_batch_size} pairs (no GPU rate measured: CPU time)")


def estimate_chunk_memory_bytes(hidden: int, layers: int, heads: int, seqs: int, seq_len: int) -> int:
    """Activation memory of one training forward chunk in float32 (Korthikanti et al. 2022: per layer
    s*b*h*(34 + 5*a*s/h) bytes at 16 bit), doubled for 32 bit, plus 20% for embeddings and the optimizer's
    transient buffers. A planning number, deliberately on the safe side (the trainer refuses a CPU
    training whose chunk does not fit, :func:`lexdr.training.trainer._check_memory`; the plan prices it the
    same way)."""
    per_layer = seq_len * seqs * hidden * (34 + 5 * heads * seq_len / hidden)
    return int(per_layer * layers * 2 * 1.2)


# The training shape RATES["train_peak_rss"] was measured at ([training] defaults, e5-small: hidden, layers, heads).
_TRAIN_REF = {"mini_batch_size": 32, "max_passage_length": 256, "model_shape": (384, 12, 12)}


def train_tokens(s: PlanSettings) -> int:
    """Tokens one training example puts through the encoder: its query and its candidates, each cut at
    ``[training]``'s own lengths."""
    cand = min(s.max_candidates, s.candidates)
    return min(s.query_tokens, s.training.max_query_length) + cand * min(s.passage_tokens, s.max_passage_length)


def _train(examples: int, s: PlanSettings, label: str = "*") -> StageEstimate:
    cand = min(s.max_candidates, s.candidates)
    cpu_per = RATES["cpu_train_forwards"] * train_tokens(s) * cpu_seconds_per_token(s.model_shape)
    gpu_per = RATES["gpu_train_s_per_example"] * (1 + cand) / (1 + RATES["gpu_train_candidates_ref"]) \
        * min(s.passage_tokens, s.max_seq_length) / 192
    n = math.ceil(examples * s.training.epochs)  # a fractional epoch trains on that share of the examples
    peak, detail = RATES["train_peak_rss"], f"{n:,} examples x epochs, {cand} candidates each"
    if s.train_on_cpu:  # a chunk's activations live in host memory: above the measured shape, they add up
        chunk = estimate_chunk_memory_bytes(*s.model_shape, s.mini_batch_size, s.max_passage_length)
        ref = estimate_chunk_memory_bytes(*_TRAIN_REF["model_shape"], _TRAIN_REF["mini_batch_size"],
                                          _TRAIN_REF["max_passage_length"])
        peak += max(0, chunk - ref)
        detail += (f"; a forward chunk of {s.mini_batch_size} x {s.max_passage_length} tokens holds about "
                   f"{_size(chunk)} of activations")
    start = RATES["train_stage_s"] + math.ceil(n / s.training.batch_size) * RATES["cpu_train_s_per_step"]
    return StageEstimate(label, PlannedStage.train, start + n * cpu_per, start + n * gpu_per, peak, 500 * MIB,
                         "[training] mini_batch_size (memory; batch_size can stay) or max_passage_length", detail)


def _evaluate(lang: str, n: int, test_queries: int, s: PlanSettings, unlabeled: int = 0) -> StageEstimate:
    # runs are read and fused, nothing is encoded: a start, seconds per test query, and the unlabeled queries'
    # runs read to fit the adaptive hybrids
    t = (RATES["evaluate_stage_s"] + test_queries * RATES["evaluate_s_per_query"]
         + unlabeled * RATES["evaluate_s_per_unlabeled_query"])
    return StageEstimate(lang, PlannedStage.evaluate, t, t, 1 * GIB, test_queries * 20_000, "[run] metrics")


def plan_run(sizes: Mapping[str, tuple[int, int, int]], settings: PlanSettings | None = None) -> Plan:
    """Estimate every stage for ``sizes`` = ``{label: (passages, unlabeled_queries, test_queries)}``.

    Per language: BM25 (build + search of its unlabeled and test queries), dense (encode the corpus + index +
    search; re-encoded after each training round), mining, generation; then one joint training over all
    languages' mined examples (about one per unlabeled query, plus the generated ones), and evaluation.
    """
    s = settings or PlanSettings()
    memory = s.memory_bytes if s.memory_bytes is not None else machine_memory_bytes()
    est: list[StageEstimate] = []
    mined = generated = 0
    generating = PlannedStage.generate in s.stages
    # trained models, each indexed again: round 1 (and round 2), plus mined + generated with generation on
    models = (s.rounds + (1 if generating else 0)) if PlannedStage.train in s.stages else 0
    for lang, (n, unl, test) in sizes.items():
        if n < 1:
            raise ConfigError(f"{lang}: a corpus needs at least one passage (got {n})")
        if PlannedStage.bm25 in s.stages:
            est.append(_bm25(lang, n, unl + test, s))
        if PlannedStage.dense in s.stages:
            base = _dense(lang, n, unl + test, s)
            trained = _dense(lang, n, test, s)  # a trained model's index: test queries (round 2: unlabeled too)
            times = 1 + models
            cpu = base.cpu_seconds + models * trained.cpu_seconds
            gpu = (base.gpu_seconds or 0) + models * (trained.gpu_seconds or 0) \
                + _tokenize_gpu_host_seconds(n, s.tokens_of(lang))
            # the corpus's token ids, written once and read by every model's encode: int32 ids + 12 B a passage
            token_disk = n * (4 * min(s.tokens_of(lang), s.max_seq_length) + 12)
            est.append(replace(base, cpu_seconds=cpu, gpu_seconds=gpu, disk_bytes=base.disk_bytes * times + token_disk,
                               detail=f"{base.detail}; indexed {times}x; token ids once"))
        if PlannedStage.mine in s.stages:
            est.append(_mine(lang, unl * s.rounds, s))
        if generating:
            est.append(_generate(lang, n, s))
            generated += min(n, s.generate_passages)
        mined += unl
        if PlannedStage.evaluate in s.stages:
            est.append(_evaluate(lang, n, test, s, unl))
    if generating and s.generation_backend == TRAINED and mined:
        est.append(_generator(mined, s))
    if PlannedStage.train in s.stages:
        for r in range(s.rounds):
            est.append(_train(mined, s, "*" if r == 0 else "* (round 2)"))
        if generating:
            est.append(_train(mined + generated, s, "* (mined + generated)"))
    notes = ("CPU times are for 2 free cores of the machine named below (on cores shared with other jobs, measured "
             "stages took 2-7x longer).",) + rate_notes(s, {e.stage for e in est})
    return Plan(settings=s, sizes=dict(sizes), estimates=tuple(est), memory_bytes=memory, notes=notes)


def rate_notes(s: PlanSettings, stages: set[PlannedStage]) -> tuple[str, ...]:
    """One line per machine whose measured rates priced this plan's times: the machine and the stages."""
    by_machine: dict[str, list[str]] = {}
    devices = ("cpu", "gpu") if s.device is Device.gpu else ("cpu",)
    for device in devices:
        for stage in stages:
            for key in _STAGE_RATES[device].get(stage.value, ()):
                names = by_machine.setdefault(RATE_SOURCES[key], [])
                label = f"{stage.value} ({device.upper()})" if s.device is Device.gpu else stage.value
                if label not in names:
                    names.append(label)
    order = list(MACHINES)
    return tuple(f"rates for {', '.join(sorted(names))}: measured on {MACHINES[m]}"
                 for m, names in sorted(by_machine.items(), key=lambda kv: order.index(kv[0])))


def check_fits(plan: Plan, out_dir: str | Path | None = None) -> None:
    """Raise :class:`ConfigError` naming the setting to change when a stage's estimated peak memory exceeds
    the plan's memory budget, or the estimated disk exceeds the free space where ``out_dir`` will be."""
    for e in plan.estimates:
        if e.peak_bytes > plan.memory_bytes:
            raise ConfigError(
                f"{e.lang}/{e.stage.value}: needs about {_size(e.peak_bytes)} of memory ({e.detail or 'estimated'}), "
                f"this machine has {_size(plan.memory_bytes)}; change {e.knob}")
    if out_dir is not None:
        target = Path(out_dir)
        while not target.exists() and target != target.parent:
            target = target.parent
        free = shutil.disk_usage(target).free
        if plan.disk_bytes() > free:
            raise ConfigError(f"the run needs about {_size(plan.disk_bytes())} of disk, {target} has "
                              f"{_size(free)} free; choose another [run] out_dir or fewer languages")

"""Plan before you spend: estimated time, peak memory and disk of every stage, before any work starts.

:func:`plan_run` takes the passage and query counts of each language and the run's settings and returns a
:class:`Plan`: per language and stage, CPU seconds (this kind of 2-core machine), GPU seconds where the stage
runs on a GPU (from rates measured on an H100), peak memory and disk. :func:`check_fits` raises
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
BM25_OOC_RSS                  base + per doc      same runs: peak RSS of the build process (main; analysis
                              + per shard doc     workers ~440 MiB each beside it), solved from 3 sizes
BM25_MEM_RSS                  base + per doc      same runs: plain bm25s in-memory build (what
                                                  ``BM25Index.build`` does), linear fit
BM25_DISK_PER_DOC             bytes               same runs: index folder size, linear fit
BM25_SEARCH_S_PER_QUERY       power law in N      same runs: ``BM25Index.search`` top 100, 2 threads
BM25_SEARCH_RSS               base + per doc      same runs: search process peak RSS (vocabulary + doc ids)
CPU_ENCODE_PASSAGES_PER_S     9.4 at 35 tokens    ``benchmarks/results/retrieval.md`` (2026-11-25): e5-small
                                                  ``encode_passages`` on XQuAD-R sentences, 2 shared cores;
                                                  scaled linearly with tokens per passage
GPU_ENCODE_PASSAGES_PER_S     183 (lower bound)   ``benchmarks/results/gpu/dev-gpu/manifest.json``: stage
                                                  ``jsquad-ja/dense-r1`` on an H100, 6.26 s for 1,145
                                                  paragraphs (+4,442 queries and the model load)
GPU_TRAIN_S_PER_EXAMPLE       56.4 / 8,114        same manifest, ``train-r1``: 8,114 examples, 1 epoch,
                                                  batch 32, 8 candidates, 192 tokens, TF32
CPU_TRAIN_S_PER_EXAMPLE       derived             3 x (1 + max_candidates) passage encodes per example
                                                  (forward + backward ~ 3 forwards) at the CPU encode rate
MINE_S_PER_QUERY              4.22 / 2,623        same manifest, ``jsquad-ja/mine`` (CPU work)
GENERATE_S_PER_PASSAGE        6.54 / 387          same manifest, ``jsquad-ja/generate`` (passage-cut + hybrid
                                                  round trip; CPU-bound backend)
TRAIN_PEAK_RSS                7.3 GiB             README (2026-11-25): the main job's peak on 2 CPU cores
ENCODER_RSS                   4.3 GiB             same manifest, ``jsquad-ja/dense-base`` peak RSS
FLAT_SEARCH_S_PER_VEC_QUERY   5.5e-10 per dim     measured here (2026-11-30): FAISS IndexFlatIP, 384 dims,
                                                  100k vectors, 1,000 queries, top 100, 2 shared cores
                                                  (load ~17): 20.9 s
bytes per vector by type      FAISS layouts       ``lexdr.dense.index`` docstring: flat 4d, hnsw 4d+8M,
                                                  hnsw-sq8 d+8M, ivf 4d, ivfpq d/4 (+8 B id each)
============================  ==================  ==========================================================

The BM25 constants are refitted by ``benchmarks/scale.py``; update ``RATES`` when it is re-run.

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

from lexdr.errors import ConfigError

__all__ = ["Device", "PlanSettings", "RATES", "StageEstimate", "Plan", "plan_run", "check_fits",
           "machine_memory_bytes", "MRTYDI_SIZES"]

GIB = 2**30
MIB = 2**20

# The measured constants (see the table in the module docstring for where each comes from).
RATES: dict[str, float] = {
    # BM25, lexdr out of core, 2 analysis workers (benchmarks/results/scale.md, 2026-11-30, fitted over 10k, 100k
    # and 1M synthetic Indonesian passages on 2 cores shared with other jobs: slower than an idle machine)
    "bm25_ooc_build_a": 9.42e-4,  # seconds = a * N ** p (fit of 14 s / 187 s / 1,782 s; the 1M re-run that
    "bm25_ooc_build_p": 1.05,  # measured 729 MiB ran beside the bm25s 1M build: 2,475 s)
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
    "bm25_search_a": 2.16e-6,  # seconds per query = a * N ** p (BM25Index.search, top 100, 2 threads)
    "bm25_search_p": 0.671,
    "bm25_search_rss_base": 93 * MIB,
    "bm25_search_rss_per_doc": 720.0,
    # dense
    "cpu_encode_passages_per_s": 9.4,
    "cpu_encode_tokens_ref": 35.0,
    "gpu_encode_passages_per_s": 1145 / 6.26,
    "gpu_train_s_per_example": 56.4 / 8114,
    "gpu_train_candidates_ref": 8.0,
    "mine_s_per_query": 4.22 / 2623,
    "generate_s_per_passage": 6.54 / 387,
    "train_peak_rss": 7.3 * GIB,
    "encoder_rss": 4.3 * GIB,
    "flat_search_s_per_vec_query": 5.5e-10,  # per vector x query x dimension
}

# Mr. TyDi v1.1: passages (as issue 9 rounds them) and train / dev topic counts (the Anserini topic files in
# ../shared/data/mrtydi/topics, counted).
MRTYDI_SIZES: dict[str, tuple[int, int, int]] = {
    "sw": (136_000, 2_072, 526), "bn": (304_000, 1_713, 440), "te": (549_000, 3_880, 983),
    "th": (568_000, 3_319, 807), "id": (1_470_000, 4_902, 1_224), "ko": (1_500_000, 1_295, 303),
    "fi": (1_900_000, 6_561, 1_738), "ar": (2_100_000, 12_377, 3_115), "ja": (7_000_000, 3_697, 928),
    "ru": (9_600_000, 5_366, 1_375), "en": (32_900_000, 3_547, 878),
}

_INDEX_BYTES = {  # bytes per vector (dim d, HNSW M), without ids; lexdr.dense.index docstring
    "flat": lambda d, m: 4 * d, "hnsw": lambda d, m: 4 * d + 8 * m, "hnsw-sq8": lambda d, m: d + 8 * m,
    "ivf": lambda d, m: 4 * d, "ivfpq": lambda d, m: d // 4,
}


class Device(str, enum.Enum):
    cpu = "cpu"
    gpu = "gpu"


class Stage(str, enum.Enum):
    bm25 = "bm25"
    dense = "dense"
    mine = "mine"
    generate = "generate"
    train = "train"
    evaluate = "evaluate"


@dataclass(frozen=True)
class PlanSettings:
    """The run settings the cost depends on (names follow the run config's sections and keys).

    ``max_docs_in_memory``: ``[bm25]``; ``None`` = the in-memory BM25 build. ``index_type`` /
    ``flat_max_passages`` / ``hnsw_m``: ``[dense]`` (``auto`` = flat up to ``flat_max_passages``, ivfpq above).
    ``passage_tokens``: typical encoder tokens per passage before truncation (Mr. TyDi passages are about 100
    words). ``memory_bytes``: the memory budget; ``None`` = this machine's ``MemTotal``.
    """

    stages: tuple[Stage, ...] = tuple(Stage)
    max_seq_length: int = 192
    passage_tokens: int = 128
    dim: int = 384
    index_type: str = "auto"
    flat_max_passages: int = 1_000_000
    hnsw_m: int = 32
    max_docs_in_memory: int | None = 200_000
    epochs: int = 1
    train_batch_size: int = 32
    max_candidates: int = 8
    rounds: int = 1
    generate_passages: int = 400
    device: Device = Device.cpu
    memory_bytes: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(Stage(s) for s in self.stages))
        object.__setattr__(self, "device", Device(self.device))
        if self.index_type != "auto" and self.index_type not in _INDEX_BYTES:
            raise ConfigError(f"index_type={self.index_type!r} is not one of auto, {', '.join(_INDEX_BYTES)}")
        for name in ("max_seq_length", "passage_tokens", "dim", "epochs", "train_batch_size", "rounds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.max_docs_in_memory is not None and self.max_docs_in_memory < 1:
            raise ConfigError(f"max_docs_in_memory must be >= 1 or unset (got {self.max_docs_in_memory})")

    def resolved_index(self, passages: int) -> str:
        if self.index_type != "auto":
            return self.index_type
        return "flat" if passages <= self.flat_max_passages else "ivfpq"


@dataclass(frozen=True)
class StageEstimate:
    """One stage of one language (``lang`` is ``"*"`` for the joint training)."""

    lang: str
    stage: Stage
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
        return [e for e in self.estimates if e.lang in (lang, "*")]

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
    build = r["bm25_ooc_build_a"] * n ** r["bm25_ooc_build_p"]
    search = queries * r["bm25_search_a"] * n ** r["bm25_search_p"]
    if s.max_docs_in_memory is None:
        build_peak = r["bm25_mem_rss_base"] + r["bm25_mem_rss_per_doc"] * n
        knob, how = "[bm25] max_docs_in_memory", "in memory"
    else:
        shard = min(n, max(1, s.max_docs_in_memory // 3))  # shard_docs_for(max_docs_in_memory, n_jobs=2)
        build_peak = (r["bm25_ooc_rss_base"] + r["bm25_ooc_rss_per_doc"] * n + r["bm25_ooc_rss_per_shard_doc"] * shard
                      + 2 * (r["bm25_ooc_worker_rss_base"] + r["bm25_ooc_worker_rss_per_shard_doc"] * shard))
        knob, how = "[bm25] max_docs_in_memory (lower it)", f"out of core, {s.max_docs_in_memory:,} docs at a time"
    search_peak = r["bm25_search_rss_base"] + r["bm25_search_rss_per_doc"] * n
    return StageEstimate(lang, Stage.bm25, build + search, None, max(build_peak, search_peak),
                         r["bm25_disk_per_doc"] * n, knob, how)


def _encode_seconds(n: int, s: PlanSettings) -> tuple[float, float]:
    tokens = min(s.passage_tokens, s.max_seq_length)
    cpu = n / RATES["cpu_encode_passages_per_s"] * tokens / RATES["cpu_encode_tokens_ref"]
    gpu = n / RATES["gpu_encode_passages_per_s"] * tokens / min(s.passage_tokens, 192)
    return cpu, gpu


def _dense(lang: str, n: int, queries: int, s: PlanSettings) -> StageEstimate:
    kind = s.resolved_index(n)
    per_vec = _INDEX_BYTES[kind](s.dim, s.hnsw_m) + 8
    cpu, gpu = _encode_seconds(n, s)
    qcpu, qgpu = _encode_seconds(queries, replace(s, passage_tokens=min(32, s.passage_tokens)))
    rate = RATES["flat_search_s_per_vec_query"]
    if kind in ("flat", "hnsw", "hnsw-sq8"):  # HNSW: charged as flat (an upper bound; its graph is faster)
        scan = queries * n * s.dim * rate
    else:  # IVF with nprobe 64 of 4*sqrt(N) lists scans about 16*sqrt(N) vectors (PQ: d/4 code bytes each)
        scan = queries * min(n, 16 * math.sqrt(n)) * (s.dim if kind == "ivf" else s.dim / 4) * rate
    index_bytes = per_vec * n
    shards = 2 * s.dim * n  # encoded shards kept as float16
    peak = RATES["encoder_rss"] + index_bytes
    return StageEstimate(lang, Stage.dense, cpu + qcpu + scan, gpu + qgpu + scan, peak, index_bytes + shards,
                         "[dense] index_type (ivfpq or hnsw-sq8 for large corpora)", f"{kind}, {per_vec} B/passage")


def _mine(lang: str, queries: int, s: PlanSettings) -> StageEstimate:
    t = queries * RATES["mine_s_per_query"]
    return StageEstimate(lang, Stage.mine, t, None, 1 * GIB, queries * 20_000, "[mining] depth")


def _generate(lang: str, n: int, s: PlanSettings) -> StageEstimate:
    k = min(n, s.generate_passages)
    t = k * RATES["generate_s_per_passage"]
    return StageEstimate(lang, Stage.generate, t, t, RATES["encoder_rss"], k * 2_000, "[generation] max_passages",
                         f"{k} passages (passage-cut)")


def _train(examples: int, s: PlanSettings) -> StageEstimate:
    cand = s.max_candidates
    cpu_per = 3 * (1 + cand) * min(s.passage_tokens, s.max_seq_length) / RATES["cpu_encode_tokens_ref"] \
        / RATES["cpu_encode_passages_per_s"]
    gpu_per = RATES["gpu_train_s_per_example"] * (1 + cand) / (1 + RATES["gpu_train_candidates_ref"]) \
        * min(s.passage_tokens, s.max_seq_length) / 192
    n = examples * s.epochs * s.rounds
    return StageEstimate("*", Stage.train, n * cpu_per, n * gpu_per, RATES["train_peak_rss"], 500 * MIB,
                         "[training] mini_batch_size / max_passage_length", f"{n:,} examples x epochs x rounds")


def _evaluate(lang: str, n: int, test_queries: int, s: PlanSettings) -> StageEstimate:
    qcpu, qgpu = _encode_seconds(test_queries, replace(s, passage_tokens=min(32, s.passage_tokens)))
    search = test_queries * RATES["bm25_search_a"] * n ** RATES["bm25_search_p"]
    return StageEstimate(lang, Stage.evaluate, qcpu + search, qgpu + search, 1 * GIB, test_queries * 20_000,
                         "[run] metrics")


def plan_run(sizes: Mapping[str, tuple[int, int, int]], settings: PlanSettings | None = None) -> Plan:
    """Estimate every stage for ``sizes`` = ``{label: (passages, unlabeled_queries, test_queries)}``.

    Per language: BM25 (build + search of its unlabeled and test queries), dense (encode the corpus + index +
    search; re-encoded after each training round), mining, generation; then one joint training over all
    languages' mined examples (about one per unlabeled query, plus the generated ones), and evaluation.
    """
    s = settings or PlanSettings()
    memory = s.memory_bytes if s.memory_bytes is not None else machine_memory_bytes()
    est: list[StageEstimate] = []
    examples = 0
    for lang, (n, unl, test) in sizes.items():
        if n < 1:
            raise ConfigError(f"{lang}: a corpus needs at least one passage (got {n})")
        if Stage.bm25 in s.stages:
            est.append(_bm25(lang, n, unl + test, s))
        if Stage.dense in s.stages:
            d = _dense(lang, n, unl + test, s)
            times = 1 + (s.rounds if Stage.train in s.stages else 0)  # base + each trained model
            est.append(replace(d, cpu_seconds=d.cpu_seconds * times, gpu_seconds=(d.gpu_seconds or 0) * times,
                               detail=f"{d.detail}; encoded {times}x"))
        if Stage.mine in s.stages:
            est.append(_mine(lang, unl, s))
        if Stage.generate in s.stages:
            est.append(_generate(lang, n, s))
            examples += min(n, s.generate_passages)
        examples += unl
        if Stage.evaluate in s.stages:
            est.append(_evaluate(lang, n, test, s))
    if Stage.train in s.stages:
        est.append(_train(examples, s))
    notes = ("GPU times use rates measured on an H100 (lower bounds on its speed: they include model loading); "
             "CPU times are for 2 cores.",)
    return Plan(settings=s, sizes=dict(sizes), estimates=tuple(est), memory_bytes=memory, notes=notes)


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

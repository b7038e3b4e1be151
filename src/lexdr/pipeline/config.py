"""The run configuration (TOML), validated completely before any work starts.

Unknown keys, missing files, unsupported languages and test queries without qrels (or the reverse) are
reported together in one error, so a user fixes the config once instead of discovering problems an hour in.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lexdr.dense.encoder import EncoderConfig
from lexdr.errors import ConfigError, LexdrError
from lexdr.mining import MineConfig
from lexdr.training import TrainConfig

__all__ = ["LanguageInput", "RunConfig", "BM25Settings", "GenerationSettings", "load_config"]


@dataclass
class LanguageInput:
    lang: str
    name: str = ""  # label in reports; defaults to dev_task or lang
    dev_task: str | None = None  # one of lexdr.tasks.DEV_TASKS: builds corpus/queries/qrels from ../shared/data
    source: str | None = None  # "mrtydi" | "miracl": the Hugging Face datasets loader (needs network)
    corpus: str | None = None
    unlabeled_queries: str | None = None  # optional: without them lexdr relies on generated queries
    test_queries: str | None = None
    test_qrels: str | None = None
    unlabeled_qrels: str | None = None  # only for the gold-supervised upper bound and mining-precision reports
    max_unlabeled: int | None = None  # at most N unlabeled queries, evenly spaced over the file (deterministic)
    max_test: int | None = None  # likewise for the test queries

    def label(self) -> str:
        return self.name or self.dev_task or self.lang


@dataclass
class BM25Settings:
    analyzer: str | None = None  # None: the language's measured default
    k1: float | None = None
    b: float | None = None
    depth: int = 100


@dataclass
class GenerationSettings:
    enabled: bool = False
    backend: str = "passage-cut"
    model: str | None = None
    max_passages: int | None = 200  # generate for at most this many unreached passages per language
    options: dict = field(default_factory=dict)  # passed to lexdr.generation.GenerationConfig


@dataclass
class RunConfig:
    out_dir: Path
    languages: list[LanguageInput]
    base_model: str = "intfloat/multilingual-e5-small"
    seed: int = 13
    rounds: int = 1  # 2: re-mine with the round-1 model and train again
    gold_upper_bound: bool = False
    # The gold model's loss. "contrastive": the true labels as hard positives (in-batch + mined hard negatives).
    # "kl+contrastive": the same soft BM25+dense targets as lexdr plus the true labels as hard positives, i.e.
    # what labels add on top of the method.
    gold_loss: str = "contrastive"
    metrics: list[str] = field(default_factory=lambda: ["MRR@10", "MRR@100", "Recall@100", "nDCG@10"])
    bm25: BM25Settings = field(default_factory=BM25Settings)
    dense: EncoderConfig = field(default_factory=EncoderConfig)
    mining: MineConfig = field(default_factory=MineConfig)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    training: TrainConfig = field(default_factory=TrainConfig)
    config_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        def conv(x):
            if dataclasses.is_dataclass(x):
                return {k: conv(v) for k, v in dataclasses.asdict(x).items()}
            if isinstance(x, Path):
                return str(x)
            if isinstance(x, list):
                return [conv(v) for v in x]
            if isinstance(x, dict):
                return {k: conv(v) for k, v in x.items()}
            return getattr(x, "value", x)

        return conv({k: getattr(self, k) for k in self.__dataclass_fields__ if k != "config_path"})


def _build(cls, table: dict, where: str, errors: list[str], **extra):
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - fields)
    if unknown:
        errors.append(f"[{where}] unknown key(s) {unknown}; known: {sorted(fields - set(extra))}")
        table = {k: v for k, v in table.items() if k in fields}
    try:
        return cls(**{**table, **extra})
    except (TypeError, ValueError, LexdrError) as e:
        errors.append(f"[{where}] {e}")
        return None


def _resolve(base: Path, p: str | None) -> str | None:
    if p is None:
        return None
    path = Path(p).expanduser()
    return str(path if path.is_absolute() else (base / path))


def load_config(path: str | Path, overrides: dict | None = None) -> RunConfig:
    """Read and validate a run config. Relative paths are relative to the config file."""
    from lexdr.analysis import SUPPORTED_LANGUAGES
    from lexdr.tasks import DEV_TASKS

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from None
    for k, v in (overrides or {}).items():
        raw.setdefault(k, {}).update(v) if isinstance(v, dict) else raw.__setitem__(k, v)
    base = path.parent
    errors: list[str] = []
    known_top = {"run", "languages", "bm25", "dense", "mining", "generation", "training"}
    for k in sorted(set(raw) - known_top):
        errors.append(f"unknown section [{k}]; known: {sorted(known_top)}")
    run = dict(raw.get("run", {}))
    run_fields = {"out_dir", "base_model", "seed", "rounds", "gold_upper_bound", "gold_loss", "metrics"}
    for k in sorted(set(run) - run_fields):
        errors.append(f"[run] unknown key {k!r}; known: {sorted(run_fields)}")
    if "out_dir" not in run:
        errors.append("[run] out_dir is required (the run directory)")
    base_model = run.get("base_model", "intfloat/multilingual-e5-small")
    if Path(_resolve(base, base_model)).exists():  # a local folder given relative to the config
        base_model = _resolve(base, base_model)

    languages = []
    for i, table in enumerate(raw.get("languages", [])):
        lang_in = _build(LanguageInput, dict(table), f"languages.{i}", errors)
        if lang_in is None:
            continue
        for attr in ("corpus", "unlabeled_queries", "test_queries", "test_qrels", "unlabeled_qrels"):
            setattr(lang_in, attr, _resolve(base, getattr(lang_in, attr)))
        where = f"languages.{i} ({lang_in.label()})"
        if lang_in.lang not in SUPPORTED_LANGUAGES:
            errors.append(f"{where}: unsupported language {lang_in.lang!r}; supported: {', '.join(sorted(SUPPORTED_LANGUAGES))}")
        if lang_in.dev_task is not None:
            if lang_in.dev_task not in DEV_TASKS:
                errors.append(f"{where}: unknown dev_task {lang_in.dev_task!r}; known: {', '.join(DEV_TASKS)}")
            elif DEV_TASKS[lang_in.dev_task] != lang_in.lang:
                errors.append(f"{where}: dev_task {lang_in.dev_task} is in {DEV_TASKS[lang_in.dev_task]!r}, not {lang_in.lang!r}")
        elif lang_in.source is None and lang_in.corpus is None:
            errors.append(f"{where}: give corpus= (local files), dev_task=, or source= (mrtydi | miracl)")
        for attr in ("corpus", "unlabeled_queries", "test_queries", "test_qrels", "unlabeled_qrels"):
            p = getattr(lang_in, attr)
            if p is not None and not Path(p).exists():
                errors.append(f"{where}: {attr} file {p} does not exist")
        if (lang_in.test_queries is None) != (lang_in.test_qrels is None):
            errors.append(f"{where}: test_queries and test_qrels go together (give both or neither)")
        languages.append(lang_in)
    if not raw.get("languages"):
        errors.append("no [[languages]] given: add at least one language block")

    sections = {}
    for name, cls, extra in (("bm25", BM25Settings, {}), ("dense", EncoderConfig, {"model": base_model}),
                             ("mining", MineConfig, {}), ("generation", GenerationSettings, {}),
                             ("training", TrainConfig, {"model": base_model, "seed": run.get("seed", 13)})):
        table = dict(raw.get(name, {}))
        for k in extra:
            if k in table:
                errors.append(f"[{name}] {k!r} is set in [run] for the whole pipeline, not here")
                table.pop(k)
        sections[name] = _build(cls, table, name, errors, **extra)
    if errors:
        raise ConfigError(f"{path}: the config has {len(errors)} problem(s):\n  - " + "\n  - ".join(errors))
    rounds = int(run.get("rounds", 1))
    if rounds not in (1, 2):
        raise ConfigError(f"{path}: [run] rounds must be 1 or 2, got {rounds}")
    gold_loss = str(run.get("gold_loss", "contrastive"))
    if gold_loss not in ("contrastive", "kl+contrastive"):
        raise ConfigError(f"{path}: [run] gold_loss must be 'contrastive' or 'kl+contrastive', got {gold_loss!r}")
    cfg = RunConfig(out_dir=Path(_resolve(base, run["out_dir"])), languages=languages, base_model=base_model,
                    seed=int(run.get("seed", 13)), rounds=rounds, gold_upper_bound=bool(run.get("gold_upper_bound", False)),
                    gold_loss=gold_loss, config_path=path.resolve(), **sections)
    if "metrics" in run:
        cfg.metrics = list(run["metrics"])
    labels = [l.label() for l in languages]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{path}: two language blocks share the label {labels}; set name= to tell them apart")
    return cfg

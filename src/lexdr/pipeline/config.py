"""The run configuration (TOML), validated completely before any work starts.

Each section is the owning package's own frozen settings class — ``[bm25]`` is :class:`lexdr.sparse.BM25Config`,
``[dense]`` :class:`lexdr.dense.EncoderConfig`, ``[dense.index]`` :class:`lexdr.dense.DenseIndexConfig`,
``[mining]`` :class:`lexdr.mining.MineConfig`, ``[generation]`` :class:`lexdr.generation.GenerationConfig` (plus ``enabled``), ``[training]``
:class:`lexdr.training.TrainConfig`, ``[fusion]`` :class:`lexdr.fusion.FusionConfig` — so a default and its help
text are written once, where the code that uses them lives. Values shared by several sections are set once in
``[run]`` and resolved here: ``base_model`` (the dense encoder and the model training starts from), ``seed``
(training and generation), and mining's ``teacher_temperature`` (training distils that distribution).

Unknown keys, wrong types, missing files, unsupported languages and test queries without qrels are reported
together in one error, each with its section, so a user fixes the config once instead of an hour in.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lexdr.defaults import DEFAULT_ENCODER, DEFAULT_METRICS, DEFAULT_SEED
from lexdr.dense.encoder import EncoderConfig
from lexdr.dense.index import DenseIndexConfig
from lexdr.errors import ConfigError, LexdrError
from lexdr.executors import ClusterSettings, ExecutorKind, ExecutorSpec, require_ray
from lexdr.fusion import FusionConfig
from lexdr.generation.config import GenerationConfig
from lexdr.mining import MineConfig
from lexdr.settings import as_enums, build, setting, to_plain, valid_seed
from lexdr.sparse.config import BM25Config
from lexdr.tasks.prepare import PATH_FIELDS, LanguageInput
from lexdr.training import LossKind, TrainConfig

__all__ = ["LanguageInput", "RunSettings", "RunConfig", "GenerationSettings", "load_config"]

@dataclass(frozen=True)
class RunSettings:
    """The ``[run]`` section."""

    out_dir: str = setting(help="The run directory (relative paths are relative to the config file).")
    base_model: str = setting(DEFAULT_ENCODER, "The base dense encoder: hub id or folder; training starts from it.")
    seed: int = setting(DEFAULT_SEED, "One seed for training order, dropout and generation samples.")
    rounds: int = setting(1, "2: re-mine with the round-1 model and train again.")
    gold_upper_bound: bool = setting(False, "Also train on the unlabeled queries' true labels (dev tasks): the "
                                            "supervised upper bound, reported beside the method.")
    gold_loss: LossKind = setting(LossKind.contrastive, "The gold model's loss: contrastive (true labels as hard "
                                  "positives) or kl+contrastive (the method's soft targets plus the labels).")
    metrics: tuple[str, ...] = setting(DEFAULT_METRICS, "Metrics reported per system (MRR@k, Recall@k, nDCG@k).")
    executor: ExecutorKind = setting(ExecutorKind.local, "Where per-shard work runs: local (this machine) or ray "
                                     "(a Ray cluster; pip install 'lexdr[cluster]'). Same results either way.",
                                     fingerprint=False)
    ray_address: str | None = setting(None, "executor = \"ray\": the cluster to join (\"auto\": the one `ray start` "
                                            "runs here; None: start Ray on this machine).", fingerprint=False)

    def __post_init__(self) -> None:
        from lexdr.evaluation.metrics import parse_metric

        as_enums(self, ("gold_loss", "executor"))
        valid_seed(self)
        object.__setattr__(self, "metrics", tuple(self.metrics))
        if self.rounds not in (1, 2):
            raise ConfigError(f"rounds must be 1 or 2, got {self.rounds}")
        if self.gold_loss is LossKind.kl:
            raise ConfigError("gold_loss must be 'contrastive' or 'kl+contrastive' (the gold bound uses the labels)")
        for m in self.metrics:
            parse_metric(m)


@dataclass(frozen=True)
class GenerationSettings:
    """The ``[generation]`` section: ``enabled`` plus every :class:`GenerationConfig` key."""

    enabled: bool = setting(False, "Generate queries for passages no unlabeled query reached.")
    config: GenerationConfig = setting(factory=GenerationConfig, help="The generator's settings.")


@dataclass(frozen=True)
class RunConfig:
    out_dir: Path
    languages: tuple[LanguageInput, ...]
    run: RunSettings
    bm25: BM25Config = dataclasses.field(default_factory=BM25Config)
    dense: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    dense_index: DenseIndexConfig = dataclasses.field(default_factory=DenseIndexConfig)  # [dense.index]
    mining: MineConfig = dataclasses.field(default_factory=MineConfig)
    generation: GenerationSettings = dataclasses.field(default_factory=GenerationSettings)
    training: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    fusion: FusionConfig = dataclasses.field(default_factory=FusionConfig)
    cluster: ClusterSettings = dataclasses.field(default_factory=ClusterSettings)  # [cluster]
    config_path: Path | None = None
    missing_inputs: tuple[str, ...] = ()  # load_config(allow_missing=True): input files not on this machine

    @property
    def executor(self) -> ExecutorSpec:
        """Where the stages' per-shard work runs: ``[run] executor`` / ``ray_address`` and ``[cluster]``."""
        return ExecutorSpec(self.run.executor, self.run.ray_address, self.cluster)

    # The [run] values most stages read, as attributes.
    @property
    def base_model(self) -> str:
        return self.run.base_model

    @property
    def seed(self) -> int:
        return self.run.seed

    @property
    def rounds(self) -> int:
        return self.run.rounds

    @property
    def metrics(self) -> list[str]:
        return list(self.run.metrics)

    def to_dict(self) -> dict[str, Any]:
        """The whole config as the manifest records it: the [run] keys at the top, one entry per section."""
        d = {"out_dir": str(self.out_dir), **to_plain(self.run), "languages": to_plain(self.languages)}
        d["out_dir"] = str(self.out_dir)
        for name in ("bm25", "dense", "mining", "training", "fusion", "cluster"):
            d[name] = to_plain(getattr(self, name))
        d["dense"]["index"] = to_plain(self.dense_index)
        d["generation"] = {"enabled": self.generation.enabled, **to_plain(self.generation.config)}
        return d


def _resolve(base: Path, p: str | None) -> str | None:
    """Absolute and normalized (``examples/../runs`` -> ``/…/runs``): the same config gives the same paths, and
    so the same fingerprints, from any working directory."""
    if p is None:
        return None
    path = Path(p).expanduser()
    return str((path if path.is_absolute() else base / path).resolve())


# Keys that belong to [run] (set once there for the whole pipeline), by the section that must not repeat them.
_SHARED = {"dense": {"model": "base_model"}, "training": {"model": "base_model", "seed": "seed",
                                                          "teacher_temperature": "[mining] teacher_temperature"},
           "generation": {"seed": "seed"}}
_SECTIONS = ("run", "languages", "bm25", "dense", "mining", "generation", "training", "fusion", "cluster")


def load_config(path: str | Path, overrides: dict | None = None, allow_missing: bool = False) -> RunConfig:
    """Read and validate a run config. Relative paths are relative to the config file. ``allow_missing``
    (``lexdr plan``): an input file that does not exist is listed in ``missing_inputs`` instead of an error.
    Every problem found is reported at once (one :class:`ConfigError` listing them all)."""
    path = Path(path)
    raw = _read_toml(path, overrides)
    base = path.parent.resolve()
    errors: list[str] = []
    tables = _section_tables(raw, errors)
    run, out_dir = _run_section(tables["run"], base, errors)
    mining = build(MineConfig, tables["mining"], "mining", errors) or MineConfig()
    bm25 = build(BM25Config, tables["bm25"], "bm25", errors) or BM25Config()
    fusion = build(FusionConfig, tables["fusion"], "fusion", errors) or FusionConfig()
    cluster = build(ClusterSettings, tables["cluster"], "cluster", errors) or ClusterSettings()
    if run.executor is ExecutorKind.ray:
        try:
            require_ray()
        except ConfigError as e:
            errors.append(f"[run] {e}")
    dense_index = _dense_index_section(tables["dense"], errors)
    sections = _model_sections(tables, run, mining, errors)
    _check_lengths(run.base_model, sections, errors)
    languages, missing = _language_blocks(tables["languages"], base, bm25, sections["generation"].enabled,
                                          allow_missing, errors)
    if errors:
        raise ConfigError(f"{path}: the config has {len(errors)} problem(s):\n  - " + "\n  - ".join(errors))
    return RunConfig(out_dir=out_dir, languages=tuple(languages), run=run, bm25=bm25, dense=sections["dense"],
                     dense_index=dense_index, mining=mining, generation=sections["generation"],
                     training=sections["training"], fusion=fusion, cluster=cluster, config_path=path.resolve(),
                     missing_inputs=tuple(missing))


def _read_toml(path: Path, overrides: dict | None) -> dict[str, Any]:
    """The config file's tables with ``overrides`` applied (a table's keys merged, a plain value replaced)."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist" if not path.exists() else
                          f"{path} is not a file; give the run config's TOML file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    for k, v in (overrides or {}).items():
        raw.setdefault(k, {}).update(v) if isinstance(v, dict) else raw.__setitem__(k, v)
    return raw


def _section_tables(raw: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    """One entry per known section (empty where absent); unknown sections and non-tables are errors."""
    for k in sorted(set(raw) - set(_SECTIONS)):
        errors.append(f"unknown section [{k}]; known: {', '.join(_SECTIONS)}")
    tables = {name: raw.get(name, {}) for name in _SECTIONS}
    for name, table in tables.items():
        if name != "languages" and not isinstance(table, dict):
            errors.append(f"[{name}] must be a table")
            tables[name] = {}
    return tables


def _run_section(table: dict[str, Any], base: Path, errors: list[str]) -> tuple[RunSettings, Path]:
    """[run], with a local base model folder and out_dir resolved against the config's folder."""
    run_table = dict(table)
    if "out_dir" not in run_table:
        errors.append("[run] out_dir is required (the run directory)")
        run_table["out_dir"] = "."
    run = build(RunSettings, run_table, "run", errors) or RunSettings(out_dir=".")
    local_model = _resolve(base, run.base_model)
    if local_model and Path(local_model).exists():  # a local folder given relative to the config
        run = dataclasses.replace(run, base_model=local_model)
    out_dir = Path(_resolve(base, run.out_dir))
    if out_dir.exists() and not out_dir.is_dir():
        errors.append(f"[run] out_dir {out_dir} is a file; name a folder (it is created if missing)")
    return run, out_dir


def _dense_index_section(dense_table: dict[str, Any], errors: list[str]) -> DenseIndexConfig:
    index_table = dict(dense_table).get("index", {})
    if not isinstance(index_table, dict):
        errors.append(f"[dense] index must be a table: write [dense.index] and its keys under it "
                      f"(e.g. index_type = \"ivf-sq8\"), got index = {index_table!r}")
        index_table = {}
    return build(DenseIndexConfig, index_table, "dense.index", errors) or DenseIndexConfig()


def _model_sections(tables: dict[str, Any], run: RunSettings, mining: MineConfig,
                    errors: list[str]) -> dict[str, Any]:
    """[dense], [training] and [generation], each with the keys [run] and [mining] set once for them."""
    fixed = {"dense": {"model": run.base_model},
             "training": {"model": run.base_model, "seed": run.seed,
                          "teacher_temperature": mining.teacher_temperature},
             "generation": {"seed": run.seed}}
    sections: dict[str, Any] = {}
    for name, cls in (("dense", EncoderConfig), ("training", TrainConfig), ("generation", GenerationConfig)):
        table = dict(tables[name])
        if name == "dense":
            table.pop("index", None)  # [dense.index]: read apart
        for key, where in _SHARED[name].items():
            if key in table:
                errors.append(f"[{name}] {key!r} is set once for the whole pipeline ({where}), not here")
                table.pop(key)
        enabled = False
        if name == "generation":
            enabled = table.pop("enabled", False)
            if not isinstance(enabled, bool):
                errors.append(f"[generation] enabled must be true or false, got {enabled!r}")
                enabled = False
            legacy = table.pop("options", None)  # older configs nested GenerationConfig keys under options
            if isinstance(legacy, dict):
                table = {**legacy, **table}
        built = build(cls, table, name, errors, **fixed[name])
        sections[name] = GenerationSettings(enabled, built or GenerationConfig()) if name == "generation" else built
    return sections


def _check_lengths(base_model: str, sections: dict[str, Any], errors: list[str]) -> None:
    from lexdr.models.resolve import check_max_seq_length

    for setting_name, value in (("[dense] max_seq_length", sections["dense"].max_seq_length if sections["dense"] else 0),
                                ("[training] max_passage_length",
                                 sections["training"].max_passage_length if sections["training"] else 0)):
        try:
            check_max_seq_length(base_model, value, setting_name)
        except LexdrError as e:
            errors.append(str(e))


def _language_blocks(blocks: Any, base: Path, bm25: BM25Config, generation_enabled: bool, allow_missing: bool,
                     errors: list[str]) -> tuple[list[LanguageInput], list[str]]:
    """The [[languages]] blocks, validated; and the input files missing where ``allow_missing`` lets them be."""
    languages: list[LanguageInput] = []
    missing: list[str] = []
    if not isinstance(blocks, list) or not blocks:
        errors.append("no [[languages]] given: add at least one language block")
        blocks = []
    for i, table in enumerate(blocks):
        if not isinstance(table, dict):
            errors.append(f"[languages.{i}] must be a table")
            continue
        table = {k: (_resolve(base, v) if k in PATH_FIELDS and isinstance(v, str) else v) for k, v in table.items()}
        spec = build(LanguageInput, table, f"languages.{i}", errors)
        if spec is not None:
            languages.append(_check_language_block(spec, f"[languages.{i}] ({spec.label()})", bm25,
                                                   generation_enabled, allow_missing, missing, errors))
    labels = [spec.label() for spec in languages]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        errors.append(f"two language blocks share the label(s) {dupes}; set name= to tell them apart")
    return languages, missing


def _check_language_block(spec: LanguageInput, where: str, bm25: BM25Config, generation_enabled: bool,
                          allow_missing: bool, missing: list[str], errors: list[str]) -> LanguageInput:
    """One language block: a supported language, a known dev task, existing input files, something to train on.
    Returns it with its language code normalized."""
    from lexdr.analysis import check_language
    from lexdr.tasks import DEV_TASKS

    try:
        spec = dataclasses.replace(spec, lang=check_language(spec.lang, spec.analyzer or bm25.analyzer))
    except LexdrError as e:
        errors.append(f"{where} unsupported language {spec.lang!r}: {e}")
    if spec.dev_task is not None:
        if spec.dev_task not in DEV_TASKS:
            errors.append(f"{where} unknown dev_task {spec.dev_task!r}; known: {', '.join(DEV_TASKS)}")
        elif DEV_TASKS[spec.dev_task] != spec.lang:
            errors.append(f"{where} dev_task {spec.dev_task} is in {DEV_TASKS[spec.dev_task]!r}, not {spec.lang!r}")
    elif spec.source is None and spec.corpus is None:
        errors.append(f"{where} give corpus= (local files), dev_task=, or source= (mrtydi | miracl)")
    for attr in PATH_FIELDS:
        p = getattr(spec, attr)
        if p is not None and not Path(p).is_file():
            if allow_missing and not Path(p).exists():
                missing.append(f"{spec.label()} {attr} {p}")
                continue
            errors.append(f"{where} {attr} file {p} " + ("is not a file" if Path(p).exists() else "does not exist"))
    if (spec.test_queries is None) != (spec.test_qrels is None):
        errors.append(f"{where} test_queries and test_qrels go together (give both or neither)")
    if not spec.has_unlabeled and not generation_enabled:
        errors.append(f"{where} no unlabeled queries and [generation] is disabled: there is nothing to train on; "
                      "give unlabeled_queries= or set [generation] enabled = true")
    return spec

"""``lexdr plan CONFIG`` / ``lexdr run --plan``: count what a config will process and estimate each stage's
time, memory and disk with the fitted cost model (:mod:`lexdr.plan`) before any work starts.

Counts come from the files on this machine. A corpus that is not here (``load_config(allow_missing=True)``,
what ``lexdr plan`` uses) is planned with Mr. TyDi v1.1's published passage count when its language block is a
Mr. TyDi one, and the plan says so; any other missing corpus is planned as one passage and named as uncounted.
"""

from __future__ import annotations

import json
import unicodedata
from itertools import islice
from pathlib import Path

from lexdr.errors import ConfigError
from lexdr.formats import read_queries
from lexdr.formats.files import open_text
from lexdr.pipeline.config import RunConfig
from lexdr.plan import MRTYDI_SIZES, Device, Plan, PlanSettings, Stage, plan_run

__all__ = ["count_inputs", "plan_config", "estimate_tokens"]

SAMPLE = 2_000  # passages read to estimate tokens per passage
_WIDE = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI")  # about one token per 1.5 characters, not 4


def _count_lines(path: str) -> int:
    with open_text(path) as fh:
        return sum(1 for line in fh if line.strip())


def estimate_tokens(texts: list[str]) -> int:
    """Mean encoder (XLM-R sentencepiece) tokens per text, from characters: about 4 characters a token in
    alphabetic scripts (3.9 measured on XQuAD-R de/es with e5-small's tokenizer: 43.2 and 44.6 tokens a
    passage), 1.5 in CJK, Hangul and Thai; plus 3 for the prompt and special tokens."""
    if not texts:
        return 16
    total = 0.0
    for t in texts:
        wide = sum(1 for ch in t if ord(ch) > 0x2E7F and unicodedata.name(ch, "").startswith(_WIDE))
        total += (len(t) - wide) / 4.0 + wide / 1.5
    return max(1, round(total / len(texts) + 3))


def _corpus_sample(path: str) -> list[str]:
    out = []
    with open_text(path) as fh:
        for line in islice((x for x in fh if x.strip()), SAMPLE):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            out.append(" ".join(str(rec.get(k) or "") for k in ("title", "text")).strip())
    return out


def _mrtydi_passages(li) -> int | None:
    """Mr. TyDi v1.1's passage count for a Mr. TyDi language block (source = "mrtydi" or a path naming it)."""
    named = li.source == "mrtydi" or any("mrtydi" in str(getattr(li, a) or "").lower().replace("-", "")
                                         for a in ("corpus", "unlabeled_queries", "test_queries"))
    return MRTYDI_SIZES[li.lang][0] if named and li.lang in MRTYDI_SIZES else None


def count_inputs(cfg: RunConfig, notes: list[str] | None = None,
                 samples: dict[str, list[str]] | None = None) -> dict[str, tuple[int, int, int]]:
    """``{label: (passages, unlabeled queries, test queries)}`` after ``max_unlabeled`` / ``max_test``; a corpus
    file is counted by its non-blank lines (one passage a line), without parsing it. What could not be
    counted here is said in ``notes``; ``samples`` receives up to 2,000 passages per language (token estimate)."""
    notes = notes if notes is not None else []
    missing = {m.split(" ", 2)[2] for m in cfg.missing_inputs}
    sizes = {}
    for li in cfg.languages:
        label = li.label()
        if li.dev_task:
            from lexdr.tasks import load_dev_task

            task = load_dev_task(li.dev_task)
            n, unl, test = len(task.corpus), len(task.queries_of("unlabeled")), len(task.queries_of("test"))
            if samples is not None:
                samples[label] = [d.full_text() for d in task.corpus[:SAMPLE]]
        else:
            known = _mrtydi_passages(li)
            if li.corpus and li.corpus not in missing:
                n = _count_lines(li.corpus)
                if samples is not None:
                    samples[label] = _corpus_sample(li.corpus)
            elif known is not None:
                n = known
                where = li.corpus or f"source = {li.source!r}"
                notes.append(f"{label}: the corpus ({where}) is not on this machine; planned with Mr. TyDi v1.1's "
                             f"{known:,} passages")
            else:  # a public dataset by name, or a missing file: its size is unknown here
                n = 1
                notes.append(f"{label}: the corpus ({li.corpus or li.source}) is not on this machine and its size "
                             "is unknown: planned as 1 passage (not counted)")
            unl = test = 0
            for attr in ("unlabeled_queries", "test_queries"):
                p = getattr(li, attr)
                if p and p not in missing:
                    count = len(read_queries(p))
                    unl, test = (count, test) if attr == "unlabeled_queries" else (unl, count)
                elif p or li.source:
                    notes.append(f"{label}: {attr} ({p or li.source}) not on this machine: 0 counted")
        unl = min(unl, li.max_unlabeled or unl)
        test = min(test, li.max_test or test)
        sizes[label] = (n, unl, test)
    return sizes


def base_model_shape(base_model: str) -> tuple[int, int, int]:
    """(hidden size, layers, attention heads) of the base model, from its config.json; a model that is not on
    this machine is a :class:`ConfigError` before any work (a folder that does not exist, or a hub id neither
    provisioned nor in the Hugging Face cache while the hub is offline). A hub id that will be downloaded is
    priced as e5-small."""
    import os

    from lexdr.models.resolve import _transformer_config, resolve_model

    folder = Path(resolve_model(base_model)).expanduser()
    if not folder.is_dir():
        looks_like_path = base_model.startswith((".", "/", "~")) or base_model.count("/") != 1
        if looks_like_path:
            raise ConfigError(f"[run] base_model {base_model!r}: no such folder (fix: point it at a model folder, "
                              "or a hub id such as intfloat/multilingual-e5-small)")
        cached = _hf_cached_config(base_model)
        if cached is None and os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            raise ConfigError(f"[run] base_model {base_model!r} is not on this machine and the hub is offline "
                              "(HF_HUB_OFFLINE) (fix: a local model folder, or `lexdr model provision` for the "
                              "default encoder)")
        folder = cached.parent if cached is not None else folder
    conf = _transformer_config(folder) if folder.is_dir() else {}
    try:
        return (int(conf["hidden_size"]), int(conf["num_hidden_layers"]), int(conf["num_attention_heads"]))
    except (KeyError, TypeError, ValueError):
        return (384, 12, 12)


def _hf_cached_config(hub_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(hub_id, "config.json")
    return Path(found) if isinstance(found, str) else None


def plan_config(cfg: RunConfig, device: Device | str = Device.cpu, train_on_cpu: bool | None = None) -> Plan:
    """The plan of ``cfg`` on ``device`` (the settings the cost model depends on are read from the config; tokens
    per passage are estimated from up to 2,000 passages of each corpus that is here). ``train_on_cpu``: whether
    training's activations live in host memory (None: ``[training] device``, else ``device``)."""
    try:
        device = Device(device)
    except ValueError:
        raise ConfigError(f"unknown device {device!r}; use one of {', '.join(d.value for d in Device)}") from None
    model_shape = base_model_shape(cfg.base_model)
    stages = [Stage.bm25, Stage.dense, Stage.mine, Stage.train, Stage.evaluate]
    if cfg.generation.enabled:
        stages.append(Stage.generate)
    notes: list[str] = []
    samples: dict[str, list[str]] = {}
    sizes = count_inputs(cfg, notes, samples)
    texts = [t for v in samples.values() for t in v]
    passage_tokens = estimate_tokens(texts) if texts else PlanSettings.passage_tokens
    # each language's dense stages from its own sample (sentence corpora and paragraph corpora differ 3-7x)
    language_tokens = tuple((label, estimate_tokens(v)) for label, v in samples.items() if v)
    counted = ", ".join(f"{label} {t}" for label, t in language_tokens)
    notes.append(f"tokens per passage: {counted} (each estimated from its corpus's first {SAMPLE:,} passages); "
                 f"{passage_tokens} over all (training)" if texts
                 else f"tokens per passage: {passage_tokens} (no corpus here to count: Mr. TyDi-like)")
    uncounted = sorted(set(sizes) - {label for label, _ in language_tokens})
    if texts and uncounted:
        notes.append(f"tokens per passage of {', '.join(uncounted)}: not on this machine, planned at {passage_tokens}")
    settings = PlanSettings(stages=tuple(stages), bm25=cfg.bm25, dense=cfg.dense, index=cfg.dense_index,
                            mining=cfg.mining, training=cfg.training, generation=cfg.generation.config,
                            rounds=cfg.rounds, passage_tokens=passage_tokens, language_tokens=language_tokens,
                            device=device, model_shape=model_shape,
                            train_on_cpu=(cfg.training.device or device.value).startswith("cpu")
                            if train_on_cpu is None else train_on_cpu)
    plan = plan_run(sizes, settings)
    return Plan(settings=plan.settings, sizes=plan.sizes, estimates=plan.estimates, memory_bytes=plan.memory_bytes,
                notes=plan.notes + tuple(notes))

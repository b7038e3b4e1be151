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
from lexdr.formats import iter_corpus, read_queries
from lexdr.formats.files import count_lines
from lexdr.pipeline.config import RunConfig
from lexdr.plan import MRTYDI_SIZES, Device, Plan, PlanSettings, PlannedStage, plan_run

__all__ = ["count_inputs", "plan_config", "estimate_tokens", "count_tokens"]

SAMPLE = 2_000  # passages read to estimate tokens per passage
_WIDE = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI")  # about one token per 1.5 characters, not 4


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


def count_tokens(model_folder: str | Path | None, texts: list[str], prompt: str = "") -> int | None:
    """Mean token ids per text with the model's own tokenizer (``tokenizer.json`` in its folder): ``prompt`` and
    the special tokens included, not truncated (what :func:`estimate_tokens` guesses from characters). None when
    the folder or its fast tokenizer is not on this machine, or there is nothing to count."""
    path = Path(model_folder) / "tokenizer.json" if model_folder else None
    if not texts or path is None or not path.is_file():
        return None
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    lengths = [len(e.ids) for e in tok.encode_batch([prompt + t for t in texts], add_special_tokens=True)]
    return max(1, round(sum(lengths) / len(lengths)))


def _prompts(model_folder: Path | None, base_model: str) -> tuple[str, str]:
    """(query prompt, passage prompt) the encoder will use: the folder's own, else its family's."""
    from lexdr.dense.encoder import default_prompts

    if model_folder is not None:
        try:
            stored = json.loads((model_folder / "config_sentence_transformers.json").read_text(encoding="utf-8"))
            prompts = stored.get("prompts") or {}
            if "query" in prompts or "passage" in prompts:
                return prompts.get("query", ""), prompts.get("passage", "")
        except (OSError, ValueError):
            pass
    return default_prompts(base_model)


def _corpus_sample(path: str) -> list[str]:
    """The first ``SAMPLE`` passages' text (title and text), read by the corpus reader every stage uses (a
    malformed line is its error, naming the file and line)."""
    return [" ".join(p for p in (d.title, d.text) if p).strip()
            for d in islice(iter_corpus(path, empty_text="skip", check_duplicates=False), SAMPLE)]


def _mrtydi_passages(li) -> int | None:
    """Mr. TyDi v1.1's passage count for a Mr. TyDi language block (source = "mrtydi" or a path naming it)."""
    named = li.source == "mrtydi" or any("mrtydi" in str(getattr(li, a) or "").lower().replace("-", "")
                                         for a in ("corpus", "unlabeled_queries", "test_queries"))
    return MRTYDI_SIZES[li.lang][0] if named and li.lang in MRTYDI_SIZES else None


def count_inputs(cfg: RunConfig, notes: list[str] | None = None,
                 samples: dict[str, list[str]] | None = None,
                 query_samples: dict[str, list[str]] | None = None) -> dict[str, tuple[int, int, int]]:
    """``{label: (passages, unlabeled queries, test queries)}`` after ``max_unlabeled`` / ``max_test``; a corpus
    file is counted by its non-blank lines (one passage a line), without parsing it. What could not be
    counted here is said in ``notes``; ``samples`` receives up to 2,000 passages per language and
    ``query_samples`` up to 2,000 of its unlabeled queries (token counts)."""
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
            if query_samples is not None:
                query_samples[label] = [q.text for q in task.queries_of("unlabeled")[:SAMPLE]]
        else:
            known = _mrtydi_passages(li)
            if li.corpus and li.corpus not in missing:
                n = count_lines(li.corpus)
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
                    queries = read_queries(p)
                    count = len(queries)
                    if query_samples is not None and attr == "unlabeled_queries":
                        query_samples[label] = [q.text for q in queries[:SAMPLE]]
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
    return _base_model(base_model)[0]


def _base_model(base_model: str) -> tuple[tuple[int, int, int], Path | None]:
    """The base model's shape (:func:`base_model_shape`) and its folder on this machine (None: not here yet)."""
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
    here = folder if folder.is_dir() else None
    try:
        return (int(conf["hidden_size"]), int(conf["num_hidden_layers"]), int(conf["num_attention_heads"])), here
    except (KeyError, TypeError, ValueError):
        return (384, 12, 12), here


def _hf_cached_config(hub_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(hub_id, "config.json")
    return Path(found) if isinstance(found, str) else None


def plan_config(cfg: RunConfig, device: Device | str = Device.cpu, train_on_cpu: bool | None = None) -> Plan:
    """The plan of ``cfg`` on ``device`` (the settings the cost model depends on are read from the config; tokens
    per passage are counted with the base model's tokenizer, or estimated from characters where it is not here,
    in up to 2,000 passages of each corpus that is here; tokens per query in up to 2,000 unlabeled queries of
    each language). ``train_on_cpu``: whether
    training's activations live in host memory (None: ``[training] device``, else ``device``)."""
    try:
        device = Device(device)
    except ValueError:
        raise ConfigError(f"unknown device {device!r}; use one of {', '.join(d.value for d in Device)}") from None
    model_shape, folder = _base_model(cfg.base_model)
    stages = [PlannedStage.bm25, PlannedStage.dense, PlannedStage.mine, PlannedStage.train, PlannedStage.evaluate]
    if cfg.generation.enabled:
        stages.append(PlannedStage.generate)
    notes: list[str] = []
    samples: dict[str, list[str]] = {}
    query_samples: dict[str, list[str]] = {}
    sizes = count_inputs(cfg, notes, samples, query_samples)
    # tokens per passage and per query: each language's own sample, counted with the base model's tokenizer
    # (prompt and special tokens included) when it is here, else estimated from characters
    query_prompt, passage_prompt = _prompts(folder, cfg.base_model)
    language_tokens, how = [], set()
    for label, texts in samples.items():
        if texts:
            counted = count_tokens(folder, texts, passage_prompt)
            how.add("counted with the base model's tokenizer" if counted else "estimated from characters")
            language_tokens.append((label, counted or estimate_tokens(texts)))
    texts = [t for v in samples.values() for t in v]
    passage_tokens = (round(sum(t * len(samples[label]) for label, t in language_tokens) / len(texts))
                      if texts else PlanSettings.passage_tokens)
    queries = [t for v in query_samples.values() for t in v]
    query_tokens = ((count_tokens(folder, queries, query_prompt) or estimate_tokens(queries)) if queries
                    else PlanSettings.query_tokens)
    counted = ", ".join(f"{label} {t}" for label, t in language_tokens)
    notes.append(f"tokens per passage: {counted} (each {' / '.join(sorted(how))} from its corpus's first "
                 f"{SAMPLE:,} passages); {passage_tokens} over all (training); {query_tokens} per query"
                 if texts else f"tokens per passage: {passage_tokens} (no corpus here to count: Mr. TyDi-like)")
    uncounted = sorted(set(sizes) - {label for label, _ in language_tokens})
    if texts and uncounted:
        notes.append(f"tokens per passage of {', '.join(uncounted)}: not on this machine, planned at {passage_tokens}")
    settings = PlanSettings(stages=tuple(stages), bm25=cfg.bm25, dense=cfg.dense, index=cfg.dense_index,
                            mining=cfg.mining, training=cfg.training, generation=cfg.generation.config,
                            rounds=cfg.rounds, passage_tokens=passage_tokens, language_tokens=tuple(language_tokens),
                            query_tokens=query_tokens,
                            device=device, model_shape=model_shape,
                            train_on_cpu=(cfg.training.device or device.value).startswith("cpu")
                            if train_on_cpu is None else train_on_cpu)
    plan = plan_run(sizes, settings)
    return Plan(settings=plan.settings, sizes=plan.sizes, estimates=plan.estimates, memory_bytes=plan.memory_bytes,
                notes=plan.notes + tuple(notes))

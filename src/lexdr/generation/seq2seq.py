"""Encoder-decoder backends: ``seq2seq`` (any ``AutoModelForSeq2SeqLM``: mT5, doc2query-mT5) and
``bert2bert`` (an ``EncoderDecoderModel`` warm-started from the base encoder, Rothe et al. 2020).

Both can be fine-tuned on the mined (passage → query) pairs with :func:`train_generator`, which saves an
ordinary Hugging Face folder (model + tokenizer + ``lexdr_generator.json``) that ``seq2seq`` loads later like
any other checkpoint. ``bert2bert`` always trains first (its cross-attention starts random); ``seq2seq``
trains only when ``config.finetune`` is true. A trained folder in the stage's work dir is reused on resume
when its fingerprint matches.

Training data contract: labels are the query's tokens *without* the tokenizer's leading special token plus
one end-of-sequence token, so the decoder learns "start token → query → eos" for BERT-style ([CLS]/[SEP])
and T5-style (</s>) tokenizers alike.
"""

from __future__ import annotations

import json
from dataclasses import asdict
import logging
import math
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lexdr.errors import ConfigError, LexdrError
from lexdr.formats.files import atomic_folder
from lexdr.generation._hf import (batched, load_error, load_pretrained, pick_device, resolve_hf_model,
                                  transformer_subfolder)
from lexdr.generation.config import GenerationConfig
from lexdr.generation.registry import BERT2BERT, SEQ2SEQ
from lexdr.generation.marker import MARKER as _MARKER, read_marker as _read_marker
from lexdr.generation.pairs import Example

__all__ = ["Seq2SeqGenerator", "train_generator", "warm_start_bert2bert", "load_seq2seq",
           "build_seq2seq", "build_bert2bert"]

logger = logging.getLogger(__name__)


def _special_ids(tokenizer) -> tuple[int, int, int]:
    """(pad, eos, decoder start) for a BERT-style or T5-style tokenizer."""
    pad = tokenizer.pad_token_id
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    if pad is None or eos is None:
        raise LexdrError("the generator's tokenizer needs a pad token and an eos (or [SEP]) token")
    return pad, eos, start if start is not None else pad


def _configure_special_tokens(model, tokenizer) -> None:
    pad, eos, start = _special_ids(tokenizer)
    if model.config.model_type == "encoder-decoder":
        model.config.decoder_start_token_id = start
    for cfg in (model.config, model.generation_config):
        cfg.pad_token_id = pad
        cfg.eos_token_id = eos
        if getattr(cfg, "decoder_start_token_id", None) is None:
            cfg.decoder_start_token_id = start if model.config.model_type == "encoder-decoder" else pad


def load_seq2seq(name_or_path: str, device: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) from a hub id or folder; never runs remote code."""
    from transformers import AutoModelForSeq2SeqLM

    model, tokenizer = load_pretrained(AutoModelForSeq2SeqLM, name_or_path)
    _configure_special_tokens(model, tokenizer)
    return model.to(pick_device(device)).eval(), tokenizer


def warm_start_bert2bert(encoder_name_or_path: str, tie_encoder_decoder: bool = False) -> tuple[Any, Any]:
    """An ``EncoderDecoderModel`` whose encoder *and* decoder start from the encoder checkpoint.

    Accepts a sentence-transformers folder (the Transformer module's folder is used) or a plain HF folder /
    hub id. The decoder gets causal self-attention and new (random) cross-attention layers; its LM head is tied
    to the word embeddings, so only the cross-attention and the head's bias start from scratch.
    """
    from transformers import AutoTokenizer, EncoderDecoderModel

    resolved, is_local = resolve_hf_model(encoder_name_or_path)
    if not is_local:
        try:  # the default encoder is provisioned as a sentence-transformers folder
            from lexdr.models import resolve_model

            resolved = resolve_model(encoder_name_or_path)
            is_local = Path(resolved).is_dir()
        except ImportError:  # pragma: no cover
            pass
    hf_dir = str(transformer_subfolder(resolved)) if is_local else resolved
    if is_local:  # a folder whose weights are only a pickle: refused before transformers unpickles anything
        from lexdr.models.resolve import refuse_pickled_weights

        refuse_pickled_weights(hf_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(hf_dir, local_files_only=is_local)
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(
            hf_dir, hf_dir, tie_encoder_decoder=tie_encoder_decoder,
            encoder_local_files_only=is_local, decoder_local_files_only=is_local,
        )
    except (OSError, ValueError) as exc:
        if not is_local:
            raise LexdrError(f"cannot load encoder {encoder_name_or_path!r} to warm-start bert2bert ({exc}); run "
                             "`lexdr model provision` for the default encoder or pass a local folder") from exc
        raise load_error(hf_dir, is_local, exc) from exc
    _configure_special_tokens(model, tokenizer)
    return model, tokenizer


class Seq2SeqGenerator:
    """Generates with a loaded encoder-decoder model; see the module docstring."""

    def __init__(self, model, tokenizer, config: GenerationConfig, name: str = SEQ2SEQ):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.name = name

    def _generate_kwargs(self) -> dict:
        cfg = self.config
        n = cfg.n_per_passage
        kw: dict = {"max_new_tokens": cfg.max_new_tokens, "num_return_sequences": n,
                    "repetition_penalty": cfg.repetition_penalty}
        if cfg.do_sample:
            kw.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k_sampling,
                      num_beams=1)
        else:
            # Greedy cannot return n different sequences; beams can.
            kw.update(do_sample=False, num_beams=max(cfg.num_beams, n))
        return kw

    def generate(self, passages: list[str], lang: str | None = None) -> list[list[str]]:
        import torch

        cfg = self.config
        out: list[list[str]] = []
        device = self.model.device
        for b, batch in enumerate(batched(passages, cfg.batch_size)):
            enc = self.tokenizer([cfg.input_prefix + p for p in batch], truncation=True, padding=True,
                                 max_length=cfg.train.max_source_length, return_tensors="pt").to(device)
            enc.pop("token_type_ids", None)
            torch.manual_seed(cfg.seed * 1_000_003 + b)  # sampling is reproducible per batch
            with torch.inference_mode():
                ids = self.model.generate(**enc, **self._generate_kwargs())
            texts = [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
            n = cfg.n_per_passage
            out.extend(texts[i * n:(i + 1) * n] for i in range(len(batch)))
        return out


def _labels(tokenizer, queries: Sequence[str], max_len: int):
    import torch

    pad, eos, _ = _special_ids(tokenizer)
    rows = [tokenizer(q, add_special_tokens=False)["input_ids"][: max_len - 1] + [eos] for q in queries]
    width = max(len(r) for r in rows)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, r in enumerate(rows):
        labels[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return labels


def train_generator(pairs: Sequence[Example], config: GenerationConfig, out_dir: str | Path) -> Path:
    """Fine-tune the configured encoder-decoder on (passage → query) pairs; save a HF folder at ``out_dir``.

    ``bert2bert``: warm-started from ``config.model_name`` (an encoder); ``seq2seq``: from the seq2seq
    checkpoint ``config.model_name``. Seeded (shuffling per epoch with ``default_rng([seed, epoch])``, torch
    for dropout). The folder appears only when complete (written to a temp folder, then renamed); if
    ``out_dir`` already holds a model trained with the same config fingerprint it is returned untouched.
    """
    import torch

    if config.backend not in (SEQ2SEQ, BERT2BERT):
        raise ConfigError(f"train_generator trains seq2seq/bert2bert generators, not {config.backend!r}")
    out = Path(out_dir)
    fingerprint = config.fingerprint()
    marker = _read_marker(out)
    if marker and marker.get("fingerprint") == fingerprint:
        logger.info("reusing trained generator at %s", out)
        return out
    examples = [e for e in pairs if e.passage.strip() and e.query.strip()]
    if not examples:
        raise LexdrError(f"no (passage, query) pairs to train the {config.backend} generator on: mining found no "
                         "positive in this language; use backend 'causal-fewshot' or 'passage-cut' instead")
    tcfg = config.train
    if tcfg.max_pairs is not None and len(examples) > tcfg.max_pairs:
        keep = np.sort(np.random.default_rng([config.seed, 1]).choice(len(examples), tcfg.max_pairs, replace=False))
        examples = [examples[i] for i in keep]

    torch.manual_seed(config.seed)
    if config.backend == BERT2BERT:
        model, tokenizer = warm_start_bert2bert(config.model_name, tcfg.tie_encoder_decoder)
    else:
        model, tokenizer = load_seq2seq(config.model_name, device="cpu")
    device = pick_device(config.device)
    model.to(device).train()

    steps_per_epoch = math.ceil(len(examples) / tcfg.batch_size)
    # max_steps, when set, wins over epochs (as in HF's Trainer): a few pairs may be seen many times.
    total = tcfg.max_steps if tcfg.max_steps is not None else steps_per_epoch * tcfg.epochs
    n_epochs = math.ceil(total / steps_per_epoch)
    warmup = int(tcfg.warmup_ratio * total)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tcfg.learning_rate, weight_decay=tcfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))

    step, losses, t0 = 0, [], time.perf_counter()
    for epoch in range(n_epochs):
        order = np.random.default_rng([config.seed, 2, epoch]).permutation(len(examples))
        for idx in batched(order.tolist(), tcfg.batch_size):
            if step >= total:
                break
            batch = [examples[i] for i in idx]
            enc = tokenizer([config.input_prefix + e.passage for e in batch], truncation=True, padding=True,
                            max_length=tcfg.max_source_length, return_tensors="pt")
            labels = _labels(tokenizer, [e.query for e in batch], tcfg.max_target_length)
            with warnings.catch_warnings():
                # EncoderDecoderModel warns on every call with labels that its loss moved in v4.12: not actionable.
                warnings.filterwarnings("ignore", message=".*v4.12.0 introduces a better way", category=FutureWarning)
                loss = model(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
                             labels=labels.to(device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            step += 1
            if step % 50 == 0 or step == total:
                logger.info("generator training: step %d/%d loss %.4f", step, total, float(np.mean(losses[-50:])))
    model.eval()

    info = {"fingerprint": fingerprint, "backend": config.backend, "base_model": config.model_name,
            "pairs": len(examples), "steps": step, "final_loss": float(np.mean(losses[-20:])) if losses else None,
            "seconds": round(time.perf_counter() - t0, 1), "train": asdict(config.train)}
    with atomic_folder(out, mode=0o755) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps(info, indent=2), encoding="utf-8")
    logger.info("trained %s generator on %d pairs (%d steps) -> %s", config.backend, len(examples), step, out)
    return out


def _trained_or_train(config: GenerationConfig, examples: Sequence[Example], work_dir: Path | None) -> str:
    if work_dir is None:
        work_dir = Path(tempfile.mkdtemp(prefix="lexdr-generator-"))
    return str(train_generator(examples, config, work_dir / "generator"))


def build_seq2seq(config: GenerationConfig, examples: Sequence[Example], work_dir: Path | None) -> Seq2SeqGenerator:
    path = _trained_or_train(config, examples, work_dir) if config.should_finetune else config.model_name
    model, tokenizer = load_seq2seq(path, config.device)
    return Seq2SeqGenerator(model, tokenizer, config, name=SEQ2SEQ)


def build_bert2bert(config: GenerationConfig, examples: Sequence[Example], work_dir: Path | None) -> Seq2SeqGenerator:
    marker = _read_marker(Path(config.model_name)) if Path(config.model_name).is_dir() else None
    if marker is not None:  # already a trained bert2bert folder: just load it
        path = config.model_name
    else:
        path = _trained_or_train(config, examples, work_dir)
    model, tokenizer = load_seq2seq(path, config.device)
    return Seq2SeqGenerator(model, tokenizer, config, name=BERT2BERT)

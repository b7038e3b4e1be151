"""The training loop: gradient-cached contrastive / distillation training of a sentence-transformers model.

Why our own loop and not ``SentenceTransformerTrainer``: the listwise loss needs per-query candidate lists
of varying length, and memory must be bounded on a 2-core, 24 GiB machine. With the gradient cache (Gao et
al. 2021, "Scaling deep contrastive learning batch size under memory limited setup") the batch of queries
is embedded in chunks without a graph, the loss is computed on the embeddings, and each chunk is then
re-encoded with a graph and back-propagated with its cached embedding gradient. Peak memory is one chunk
(``mini_batch_size`` sequences), whatever ``batch_size`` is; the gradient equals the full-batch gradient
(dropout masks are replayed by restoring the RNG state per chunk).

Word embeddings are frozen by default: in XLM-R models they hold most of the parameters (96M of e5-small's
118M), a dense gradient and two AdamW moments for them cost ~1.2 GB and a second per CPU step, and a few
thousand mined queries in a handful of languages should not move the vectors of the other 90 languages'
tokens. The transformer layers carry the adaptation.

Resumable: every ``checkpoint_every`` steps the model, optimizer and step are saved (temp folder + rename);
a re-run with the same inputs continues from there with the same data order and dropout masks.

Data-parallel: launched by ``torchrun`` (see :mod:`lexdr.training.distributed`), every rank runs this loop on
the same global batch; each embeds its slice, the embeddings are all-gathered, every rank computes the full
batch's loss, back-propagates its own slice and the gradients are summed across ranks. With one process the
same code path runs with a world of one.

On CUDA the forward passes run under bfloat16 autocast by default (``bf16``); losses are computed in float32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from lexdr.errors import ConfigError, LexdrError
from lexdr.formats import iter_corpus
from lexdr.formats.files import atomic_folder, atomic_write, recover_folder
from lexdr.plan import estimate_chunk_memory_bytes
from lexdr.training.batch import TrainingBatch
from lexdr.training.config import TrainConfig
from lexdr.training.gradcache import GradientCache
from lexdr.training.losses import build_loss
from lexdr.training.tokens import token_store

__all__ = ["TrainingExample", "examples_from_mined", "train", "estimate_chunk_memory_bytes"]

logger = logging.getLogger(__name__)


@dataclass
class TrainingExample:
    query: str
    candidate_ids: list[str] = field(default_factory=list)  # for the listwise loss, teacher order
    teacher_scores: list[float] = field(default_factory=list)
    positive_id: str | None = None  # for the contrastive loss
    negative_ids: list[str] = field(default_factory=list)
    bm25_scores: list[float] = field(default_factory=list)  # BM25 z-score per candidate (fusion-aware losses)


def examples_from_mined(mined: Iterable, cfg: TrainConfig) -> list[TrainingExample]:
    """Turn mined records (``lexdr.mining.MinedExample``) into training examples under ``cfg``."""
    out = []
    with_bm25 = "bm25" in build_loss(cfg).needs
    for m in mined:
        pos = m.positive_ids[0] if m.positive_ids else None
        if pos is not None and m.positive_confidence and m.positive_confidence[0] < cfg.min_confidence:
            pos = None
        out.append(TrainingExample(
            query=m.query, candidate_ids=list(m.candidate_ids[: cfg.max_candidates]),
            teacher_scores=list(m.teacher_scores[: cfg.max_candidates]), positive_id=pos,
            negative_ids=list(m.negative_ids[: cfg.n_hard_negatives]),
            bm25_scores=[c["bm25_z"] for c in m.candidates[: cfg.max_candidates]] if with_bm25 else [],
        ))
    return out


def _available_memory_bytes(meminfo: str = "/proc/meminfo") -> int | None:
    """Memory a new allocation can get: Linux's ``MemAvailable`` (free memory plus the page cache and other memory
    the kernel can reclaim), not ``SC_AVPHYS_PAGES`` (free pages only: after reading a large corpus the page cache
    holds most of RAM, and training was refused with gigabytes to spare). Elsewhere, the free pages."""
    try:
        with open(meminfo, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(model, cfg: TrainConfig) -> None:
    hf = getattr(model[0], "auto_model", None)
    conf = getattr(hf, "config", None)
    if conf is None or not hasattr(conf, "hidden_size"):
        return
    need = estimate_chunk_memory_bytes(conf.hidden_size, conf.num_hidden_layers, conf.num_attention_heads,
                                       cfg.mini_batch_size, cfg.max_passage_length)
    have = _available_memory_bytes()
    logger.info("training chunk needs ~%.1f GiB of activations (%d x %d tokens)", need / 2**30,
                cfg.mini_batch_size, cfg.max_passage_length)
    if model.device.type == "cpu" and have is not None and need > 0.8 * have:
        raise ConfigError(
            f"mini_batch_size={cfg.mini_batch_size} x max_passage_length={cfg.max_passage_length} needs about "
            f"{need / 2**30:.1f} GiB of activation memory but {have / 2**30:.1f} GiB is available: lower "
            "mini_batch_size (memory) — batch_size can stay as it is (it costs time, not memory)")


def _load_passages(corpus: str | Path | Mapping[str, str], needed: set[str]) -> dict[str, str]:
    if isinstance(corpus, Mapping):
        texts = {d: corpus[d] for d in needed if d in corpus}
    else:
        texts = {d.doc_id: d.full_text() for d in iter_corpus(corpus) if d.doc_id in needed}
    missing = needed - set(texts)
    if missing:
        raise LexdrError(f"{len(missing)} passage ids in the training data are not in the corpus "
                         f"(e.g. {sorted(missing)[:3]}); was the data mined on another corpus?")
    return texts


@dataclass
class _Session:
    """What a training run holds between steps."""

    model: object
    optimizer: object
    trainable: list
    step: int
    bf16: bool
    query_prompt: str
    passage_prompt: str
    query_inputs: object = None  # lexdr.training.tokens stores: ids tokenized once
    passage_inputs: object = None


def _identity(examples: list[TrainingExample], cfg: TrainConfig) -> str:
    """A finished model or a checkpoint is used only by the same training: same config and same examples."""
    rows = [{k: v for k, v in e.__dict__.items() if not (k == "bm25_scores" and not v)} for e in examples]
    return hashlib.sha256(json.dumps([cfg.to_dict(), rows], sort_keys=True, default=str).encode()).hexdigest()


def _finished(final: Path, identity: str) -> bool:
    """True when ``final`` already holds this training's model. A model of another training stays in place
    until the new one is written."""
    if not (final / "modules.json").exists():
        return False
    record = final / "lexdr_training.json"
    made_by = json.loads(record.read_text()).get("identity") if record.exists() else None
    if made_by == identity:
        logger.info("%s already holds this training's model; nothing to do", final)
        return True
    logger.warning("%s holds a model of another config or data; training again", final)
    return False


def _resume(ckpt: Path, identity: str, cfg: TrainConfig, model, device, lead: bool) -> _Session:
    """Load the model (from the checkpoint of this training, else ``model`` or ``cfg.model``), freeze what the
    config freezes, build the optimizer (restored from the checkpoint) and settle the prompts."""
    import torch

    from lexdr.dense.encoder import default_prompts
    from lexdr.models import load_sentence_transformer
    from lexdr.optim import load_optimizer_state, read_checkpoint_state
    from lexdr.training.collectives import barrier, broadcast_parameters, rank_and_world

    if lead:
        recover_folder(ckpt)  # a run killed between the two renames of a checkpoint swap
    barrier()
    state, stale = read_checkpoint_state(ckpt, identity, recover=False)
    barrier()  # every rank has read the stale state before rank 0 removes it
    if stale and lead:
        shutil.rmtree(ckpt)
    step = state["step"] if state else 0
    if state:
        model = load_sentence_transformer(str(ckpt / "model"), device=device)
        logger.info("resuming from step %d", step)
    elif model is None:
        model = load_sentence_transformer(cfg.model, device=device)
    if rank_and_world()[1] > 1:
        broadcast_parameters(model)
    _check_memory(model, cfg)
    bf16 = model.device.type == "cuda" if cfg.bf16 is None else bool(cfg.bf16)
    if model.device.type == "cuda" and cfg.tf32:
        # TF32 tensor-core matmuls: several times faster than full float32 on Ampere/Hopper GPUs, with a
        # 10-bit mantissa that contrastive fine-tuning does not notice. Off with tf32 = false.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    stored = getattr(model, "prompts", None) or {}
    guess_q, guess_p = default_prompts(cfg.model)
    q_prompt = cfg.query_prompt if cfg.query_prompt is not None else (stored.get("query") or guess_q)
    p_prompt = cfg.passage_prompt if cfg.passage_prompt is not None else (
        stored.get("passage") or stored.get("document") or guess_p)
    if cfg.freeze_embeddings:
        for name, param in model.named_parameters():
            if "word_embeddings" in name:
                param.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if step > 0 and (ckpt / "optimizer.pt").exists():
        load_optimizer_state(optimizer, ckpt, model.device)
    barrier()  # every rank has loaded the checkpoint before rank 0 may overwrite it
    return _Session(model, optimizer, trainable, step, bf16, q_prompt, p_prompt)


def _batch_rows(step: int, n_examples: int, cfg: TrainConfig) -> np.ndarray:
    """The example rows of optimizer step ``step``: one permutation per epoch from the seed (resume-exact,
    independent of the number of ranks)."""
    steps_per_epoch = math.ceil(n_examples / cfg.batch_size)
    epoch, in_epoch = divmod(step, steps_per_epoch)
    perm = np.random.default_rng([cfg.seed, epoch]).permutation(n_examples)
    return perm[in_epoch * cfg.batch_size:(in_epoch + 1) * cfg.batch_size]


def _step(s: _Session, batch: TrainingBatch, loss_fn, cfg: TrainConfig, cache: GradientCache) -> tuple[float, dict[str, float]]:
    """One gradient-cached optimizer step's gradients: each rank embeds its slice of the batch's queries and
    passages, the embeddings are gathered, the loss is computed on the whole batch and its gradient carried
    back into the encoder slice by slice. Leaves the summed gradients on the parameters."""
    from lexdr.training.collectives import all_reduce_grads, gather_rows, rank_and_world, slice_bounds

    rank, world = rank_and_world()
    queries, passage_ids = batch.queries, batch.passage_ids
    # This rank's contiguous slices of the batch's queries and unique passages.
    qa, qb = slice_bounds(len(queries), rank, world)
    pa, pb = slice_bounds(len(passage_ids), rank, world)
    direct = qb - qa <= cfg.mini_batch_size and pb - pa <= cfg.mini_batch_size
    q_local = cache.embed(queries[qa:qb], s.query_inputs, keep_graph=direct)
    p_local = cache.embed(passage_ids[pa:pb], s.passage_inputs, keep_graph=direct)
    # The whole batch's embeddings on every rank, as leaves: the loss's gradient stops there.
    q_leaf = gather_rows(q_local.value.detach(), len(queries), world).clone().requires_grad_(True)
    p_leaf = gather_rows(p_local.value.detach(), len(passage_ids), world).clone().requires_grad_(True)
    loss, parts = loss_fn(q_leaf, p_leaf, batch)
    s.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    cache.backward([(q_local, q_leaf.grad[qa:qb]), (p_local, p_leaf.grad[pa:pb])])
    if world > 1:
        all_reduce_grads(s.trainable)
    return loss.item(), parts


def _save_model(s: _Session, final: Path, record: dict) -> None:
    """The finished model: a sentence-transformers folder with its prompts and ``lexdr_training.json``."""
    # "document" too: sentence-transformers' encode_document reads that name (encode_query reads "query")
    s.model.prompts = {**(getattr(s.model, "prompts", None) or {}), "query": s.query_prompt,
                       "passage": s.passage_prompt, "document": s.passage_prompt}
    with atomic_folder(final) as tmp:
        s.model.save(str(tmp))
        # sentence-transformers copies the base model's card; this model's own is lexdr.training.card's.
        (tmp / "README.md").unlink(missing_ok=True)
        (tmp / "lexdr_training.json").write_text(json.dumps(record, indent=2))


def train(examples: list[TrainingExample], corpus: str | Path | Mapping[str, str], out_dir: str | Path, cfg: TrainConfig,
          model=None, stop_after_steps: int | None = None, device: str | None = None, loss=None) -> Path:
    """Train ``cfg.model`` on ``examples`` whose passage ids refer to ``corpus`` (a corpus file, or a mapping
    id -> text, e.g. several languages' corpora under namespaced ids); writes ``out_dir/model`` (a sentence-transformers folder),
    ``train_log.jsonl`` and ``train_config.json``. Resumes from ``out_dir/checkpoint`` when present.

    ``loss``: a loss object (:mod:`lexdr.training.losses`; default: the one ``cfg.loss`` names); examples it
    cannot use are dropped. ``stop_after_steps`` ends the run early after that many optimizer steps (tests use
    it to simulate a kill). ``device`` overrides ``cfg.device`` without changing the training's identity (each
    rank of a distributed run passes its own GPU). In an initialized ``torch.distributed`` process group the
    run is data-parallel over its ranks (:mod:`lexdr.training.distributed`).
    """
    import torch
    from tqdm.auto import tqdm

    from lexdr.optim import StepLog, linear_warmup_decay, optimizer_step, save_checkpoint
    from lexdr.training.collectives import barrier, rank_and_world

    rank, world = rank_and_world()
    lead = rank == 0  # the one rank that writes files
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final, ckpt = out / "model", out / "checkpoint"
    loss_fn = loss if loss is not None else build_loss(cfg)
    examples = [e for e in examples if loss_fn.usable(e)]
    if not examples:
        raise LexdrError("no usable training examples (no mined positives / candidate lists): check the mining "
                         "stats, or lower the rule's strictness")
    identity = _identity(examples, cfg)
    if _finished(final, identity):
        return final
    needed = {d for e in examples for d in [*e.candidate_ids, *e.negative_ids, *([e.positive_id] if e.positive_id else [])]}
    passages = _load_passages(corpus, needed)
    s = _resume(ckpt, identity, cfg, model, device or cfg.device, lead)
    # Every query and passage tokenized once for the whole run, not per step, pass and epoch.
    s.query_inputs = token_store(s.model, {e.query: s.query_prompt + e.query for e in examples}, cfg.max_query_length)
    s.passage_inputs = token_store(s.model, {d: s.passage_prompt + t for d, t in passages.items()},
                                   cfg.max_passage_length)
    cache = GradientCache(s.model, cfg.mini_batch_size, s.bf16)
    steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
    total = max(1, math.ceil(cfg.epochs * steps_per_epoch))
    log = StepLog(out / "train_log.jsonl", s.step)
    if lead:
        with atomic_write(out / "train_config.json") as fh:
            json.dump({**cfg.to_dict(), "examples": len(examples), "total_steps": total, "world_size": world,
                       "query_prompt": s.query_prompt, "passage_prompt": s.passage_prompt}, fh, indent=2)

    s.model.train()
    progress = tqdm(total=total, initial=s.step, desc="train", unit="step", disable=not (cfg.show_progress and lead))
    done_now = 0
    while s.step < total:
        t0 = time.time()
        batch = TrainingBatch([examples[i] for i in _batch_rows(s.step, len(examples), cfg)], loss_fn.needs)
        # Dropout masks depend on (seed, step, rank): resume-exact. One process draws what rank 0 draws.
        torch.manual_seed(cfg.seed * 1_000_003 + s.step + rank * 2**40)
        value, parts = _step(s, batch, loss_fn, cfg, cache)
        lr = linear_warmup_decay(s.step, total, cfg.lr, cfg.warmup_ratio)
        optimizer_step(s.optimizer, s.trainable, lr)
        s.step += 1
        done_now += 1
        log.append({"step": s.step, "epoch": round(s.step / steps_per_epoch, 4), "loss": value, **parts, "lr": lr,
                    "seconds": round(time.time() - t0, 3), "passages": len(batch.passage_ids)})
        progress.update(1)
        progress.set_postfix(loss=f"{value:.4f}")
        if (s.step % cfg.checkpoint_every == 0 or s.step == total) and lead:
            log.flush()
            save_checkpoint(ckpt, s.optimizer, {"step": s.step, "model": cfg.model, "identity": identity,
                                                "world_size": world}, lambda tmp: s.model.save(str(tmp / "model")))
        if stop_after_steps is not None and done_now >= stop_after_steps and s.step < total:
            progress.close()
            barrier()  # the checkpoint is complete before any rank returns
            return ckpt
    progress.close()
    if lead:
        _save_model(s, final, {**cfg.to_dict(), "examples": len(examples), "total_steps": total, "identity": identity})
        shutil.rmtree(ckpt, ignore_errors=True)
    barrier()  # the model is in place before any rank returns its path
    return final

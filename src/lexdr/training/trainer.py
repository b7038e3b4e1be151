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
from typing import Callable, Iterable, Mapping

import numpy as np

from lexdr.errors import ConfigError, LexdrError
from lexdr.formats import iter_corpus
from lexdr.formats.files import atomic_folder, atomic_write, recover_folder
from lexdr.plan import estimate_chunk_memory_bytes
from lexdr.training.config import LossKind, TrainConfig
from lexdr.training.losses import contrastive_loss, listwise_kl_loss

__all__ = ["TrainingExample", "examples_from_mined", "train", "estimate_chunk_memory_bytes"]

logger = logging.getLogger(__name__)


@dataclass
class TrainingExample:
    query: str
    candidate_ids: list[str] = field(default_factory=list)  # for the listwise loss, teacher order
    teacher_scores: list[float] = field(default_factory=list)
    positive_id: str | None = None  # for the contrastive loss
    negative_ids: list[str] = field(default_factory=list)


def examples_from_mined(mined: Iterable, cfg: TrainConfig) -> list[TrainingExample]:
    """Turn mined records (``lexdr.mining.MinedExample``) into training examples under ``cfg``."""
    out = []
    for m in mined:
        pos = m.positive_ids[0] if m.positive_ids else None
        if pos is not None and m.positive_confidence and m.positive_confidence[0] < cfg.min_confidence:
            pos = None
        out.append(TrainingExample(
            query=m.query, candidate_ids=list(m.candidate_ids[: cfg.max_candidates]),
            teacher_scores=list(m.teacher_scores[: cfg.max_candidates]), positive_id=pos,
            negative_ids=list(m.negative_ids[: cfg.n_hard_negatives]),
        ))
    return out


def _available_memory_bytes() -> int | None:
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


class _Batch:
    """One step's tensors: unique passages and index tensors into them."""

    def __init__(self, examples: list[TrainingExample], cfg: TrainConfig):
        import torch

        self.queries = [e.query for e in examples]
        order: dict[str, int] = {}

        def idx(doc_id: str) -> int:
            return order.setdefault(doc_id, len(order))

        loss = LossKind(cfg.loss)
        self.use_kl = loss in (LossKind.kl, LossKind.kl_contrastive)
        self.use_contrastive = loss in (LossKind.contrastive, LossKind.kl_contrastive)
        if self.use_kl:
            C = max(2, max(len(e.candidate_ids) for e in examples))
            self.cand_index = torch.zeros((len(examples), C), dtype=torch.long)
            self.cand_mask = torch.zeros((len(examples), C), dtype=torch.bool)
            self.teacher = torch.zeros((len(examples), C), dtype=torch.float32)
            for i, e in enumerate(examples):
                for j, (d, t) in enumerate(zip(e.candidate_ids, e.teacher_scores)):
                    self.cand_index[i, j] = idx(d)
                    self.cand_mask[i, j] = True
                    self.teacher[i, j] = t
        self.pos_rows: list[int] = []
        if self.use_contrastive:
            pos = []
            for i, e in enumerate(examples):
                if e.positive_id is None:
                    continue
                self.pos_rows.append(i)
                pos.append(idx(e.positive_id))
                for n in e.negative_ids:
                    idx(n)
            self.pos_index = torch.tensor(pos, dtype=torch.long)
        self.passage_ids = list(order)
        if self.use_contrastive and self.pos_rows:
            # A query's own candidates that mining did not call negatives may be unlabeled positives:
            # never push them away as in-batch negatives.
            P = len(self.passage_ids)
            self.exclude = torch.zeros((len(self.pos_rows), P), dtype=torch.bool)
            for r, i in enumerate(self.pos_rows):
                e = examples[i]
                for d in e.candidate_ids:
                    if d != e.positive_id and d not in e.negative_ids and d in order:
                        self.exclude[r, order[d]] = True


def _lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    warm = max(1, int(cfg.warmup_ratio * total))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * max(0.0, (total - step) / max(1, total - warm))


def _rng_state(device) -> tuple:
    # Dropout draws from the generator of the device the model runs on: on a GPU that is the CUDA
    # generator, which torch.get_rng_state() does not cover; replaying only the CPU state would give the
    # second (graph) pass different dropout masks than the cached first pass.
    import torch

    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_rng_state(device, state: tuple) -> None:
    import torch

    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _forward(model, texts: list[str], bf16: bool):
    """Sentence embeddings of ``texts`` (float32), the forward under bfloat16 autocast when ``bf16``."""
    import torch

    # sentence-transformers >= 6 names it `preprocess`; older versions `tokenize`.
    features = (getattr(model, "preprocess", None) or model.tokenize)(texts)
    features = {k: (v.to(model.device, non_blocking=True) if hasattr(v, "to") else v) for k, v in features.items()}
    with torch.autocast(device_type=model.device.type, dtype=torch.bfloat16, enabled=bf16):
        emb = model(features)["sentence_embedding"]
    return emb.float()


def _embed_chunks(model, texts: list[str], max_len: int, chunk: int, grad_fn: Callable | None, rng_states: list,
                  bf16: bool = False):
    """Embed ``texts`` in chunks. Without ``grad_fn``: no graph, record RNG states, return embeddings.
    With ``grad_fn``: replay RNG states, re-embed with a graph and back-propagate ``grad_fn(start, end)``."""
    import torch

    model.max_seq_length = max_len
    outs = []
    for n, start in enumerate(range(0, len(texts), chunk)):
        part = texts[start:start + chunk]
        if grad_fn is None:
            rng_states.append(_rng_state(model.device))
            with torch.no_grad():
                outs.append(_forward(model, part, bf16).detach())
        else:
            _set_rng_state(model.device, rng_states[n])
            _forward(model, part, bf16).backward(gradient=grad_fn(start, start + len(part)))
    return torch.cat(outs) if outs else None


def _embed_with_graph(model, texts: list[str], max_len: int, bf16: bool = False):
    model.max_seq_length = max_len
    return _forward(model, texts, bf16)


def _save_checkpoint(model, optimizer, state: dict, ckpt: Path) -> None:
    import torch

    with atomic_folder(ckpt) as tmp:
        model.save(str(tmp / "model"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=2))


def train(examples: list[TrainingExample], corpus: str | Path | Mapping[str, str], out_dir: str | Path, cfg: TrainConfig,
          model=None, stop_after_steps: int | None = None, device: str | None = None) -> Path:
    """Train ``cfg.model`` on ``examples`` whose passage ids refer to ``corpus`` (a corpus file, or a mapping
    id -> text, e.g. several languages' corpora under namespaced ids); writes ``out_dir/model`` (a sentence-transformers folder),
    ``train_log.jsonl`` and ``train_config.json``. Resumes from ``out_dir/checkpoint`` when present.

    ``stop_after_steps`` ends the run early after that many optimizer steps (tests use it to simulate a kill).
    ``device`` overrides ``cfg.device`` without changing the training's identity (each rank of a distributed
    run passes its own GPU). In an initialized ``torch.distributed`` process group the run is data-parallel
    over its ranks (:mod:`lexdr.training.distributed`).
    """
    import torch

    from lexdr.training.collectives import (all_reduce_grads, barrier, broadcast_parameters, gather_rows,
                                            rank_and_world, slice_bounds)

    from lexdr.dense.encoder import default_prompts
    from lexdr.models import load_sentence_transformer

    rank, world = rank_and_world()
    lead = rank == 0  # the one rank that writes files
    device = device or cfg.device
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final = out / "model"
    loss_kind = LossKind(cfg.loss)
    if loss_kind is LossKind.contrastive:
        examples = [e for e in examples if e.positive_id is not None]
    else:
        examples = [e for e in examples if len(e.candidate_ids) >= 2]
    if not examples:
        raise LexdrError("no usable training examples (no mined positives / candidate lists): check the mining "
                         "stats, or lower the rule's strictness")
    # A finished model or a checkpoint is used only by the same training: same config and same examples.
    # Anything else starts over (a stale checkpoint would silently continue another schedule).
    identity = hashlib.sha256(json.dumps([cfg.to_dict(), [e.__dict__ for e in examples]], sort_keys=True,
                                         default=str).encode()).hexdigest()
    # A finished model of another training stays in place until the new one is written.
    if (final / "modules.json").exists():
        record = final / "lexdr_training.json"
        made_by = json.loads(record.read_text()).get("identity") if record.exists() else None
        if made_by == identity:
            logger.info("%s already holds this training's model; nothing to do", final)
            return final
        logger.warning("%s holds a model of another config or data; training again", final)
    needed = {d for e in examples for d in [*e.candidate_ids, *e.negative_ids, *([e.positive_id] if e.positive_id else [])]}
    passages = _load_passages(corpus, needed)

    ckpt = out / "checkpoint"
    if lead:
        recover_folder(ckpt)  # a run killed between the two renames of a checkpoint swap
    barrier()
    state = {"step": 0, "model": cfg.model, "identity": identity}
    if (ckpt / "state.json").exists():
        saved = json.loads((ckpt / "state.json").read_text())
        if saved.get("identity") == identity:
            state = saved
            model = load_sentence_transformer(str(ckpt / "model"), device=device)
            logger.info("resuming from step %d", state["step"])
        else:
            logger.warning("%s belongs to another config or data; starting over", ckpt)
            barrier()  # every rank has read the stale state before rank 0 removes it
            if lead:
                shutil.rmtree(ckpt)
    if state["step"] == 0 and model is None:
        model = load_sentence_transformer(cfg.model, device=device)
    if world > 1:
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
    if state["step"] > 0 and (ckpt / "optimizer.pt").exists():
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True, map_location=model.device))
    barrier()  # every rank has loaded the checkpoint before rank 0 may overwrite it

    steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
    total = max(1, math.ceil(cfg.epochs * steps_per_epoch))
    log_path = out / "train_log.jsonl"
    log_lines = log_path.read_text().splitlines() if log_path.exists() else []
    log_lines = [ln for ln in log_lines if ln.strip() and json.loads(ln)["step"] <= state["step"]]
    if lead:
        with atomic_write(out / "train_config.json") as fh:
            json.dump({**cfg.to_dict(), "examples": len(examples), "total_steps": total, "world_size": world,
                       "query_prompt": q_prompt, "passage_prompt": p_prompt}, fh, indent=2)

    from tqdm.auto import tqdm

    model.train()
    progress = tqdm(total=total, initial=state["step"], desc="train", unit="step",
                    disable=not (cfg.show_progress and lead))
    step = state["step"]
    done_now = 0
    while step < total:
        epoch, in_epoch = divmod(step, steps_per_epoch)
        perm = np.random.default_rng([cfg.seed, epoch]).permutation(len(examples))
        rows = perm[in_epoch * cfg.batch_size:(in_epoch + 1) * cfg.batch_size]
        t0 = time.time()
        batch = _Batch([examples[i] for i in rows], cfg)
        # Dropout masks depend on (seed, step, rank): resume-exact. One process draws what rank 0 draws.
        torch.manual_seed(cfg.seed * 1_000_003 + step + rank * 2**40)
        q_texts = [q_prompt + q for q in batch.queries]
        p_texts = [p_prompt + passages[d] for d in batch.passage_ids]
        # This rank's contiguous slices of the batch's queries and unique passages.
        qa, qb = slice_bounds(len(q_texts), rank, world)
        pa, pb = slice_bounds(len(p_texts), rank, world)
        q_states: list = []
        p_states: list = []
        # When this rank's slice fits in one chunk each, keep the graph of the only forward pass: the
        # cache's second forward would cost a third of the step for nothing.
        direct = qb - qa <= cfg.mini_batch_size and pb - pa <= cfg.mini_batch_size
        dim = (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)()
        empty = torch.zeros((0, dim), device=model.device)
        if direct:
            q_local = _embed_with_graph(model, q_texts[qa:qb], cfg.max_query_length, bf16) if qb > qa else empty
            p_local = _embed_with_graph(model, p_texts[pa:pb], cfg.max_passage_length, bf16) if pb > pa else empty
        else:
            q_local = _embed_chunks(model, q_texts[qa:qb], cfg.max_query_length, cfg.mini_batch_size, None,
                                    q_states, bf16)
            p_local = _embed_chunks(model, p_texts[pa:pb], cfg.max_passage_length, cfg.mini_batch_size, None,
                                    p_states, bf16)
            q_local = empty if q_local is None else q_local
            p_local = empty if p_local is None else p_local
        # The whole batch's embeddings on every rank, as leaves: the loss's gradient stops there and is
        # carried into the encoder slice by slice below.
        q_leaf = gather_rows(q_local.detach(), len(q_texts), world).clone().requires_grad_(True)
        p_leaf = gather_rows(p_local.detach(), len(p_texts), world).clone().requires_grad_(True)
        loss = torch.zeros((), device=q_leaf.device)
        parts = {}
        if batch.use_kl:
            kl = listwise_kl_loss(q_leaf, p_leaf, batch.cand_index.to(q_leaf.device), batch.cand_mask.to(q_leaf.device),
                                  batch.teacher.to(q_leaf.device), cfg.student_temperature, cfg.teacher_temperature)
            loss = loss + kl
            parts["kl"] = kl.item()
        if batch.use_contrastive and batch.pos_rows:
            ce = contrastive_loss(q_leaf[batch.pos_rows], p_leaf, batch.pos_index.to(q_leaf.device),
                                  cfg.contrastive_temperature, batch.exclude.to(q_leaf.device))
            weight = cfg.contrastive_weight if batch.use_kl else 1.0
            loss = loss + weight * ce
            parts["contrastive"] = ce.item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        q_grad, p_grad = q_leaf.grad[qa:qb], p_leaf.grad[pa:pb]
        if direct:
            graphs = [(e, g) for e, g in ((q_local, q_grad), (p_local, p_grad)) if e.requires_grad]
            if graphs:
                torch.autograd.backward([e for e, _ in graphs], [g for _, g in graphs])
        else:
            _embed_chunks(model, q_texts[qa:qb], cfg.max_query_length, cfg.mini_batch_size,
                          lambda a, b: q_grad[a:b], q_states, bf16)
            _embed_chunks(model, p_texts[pa:pb], cfg.max_passage_length, cfg.mini_batch_size,
                          lambda a, b: p_grad[a:b], p_states, bf16)
        if world > 1:
            all_reduce_grads(trainable)
        lr = _lr_at(step, total, cfg)
        for g in optimizer.param_groups:
            g["lr"] = lr
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        step += 1
        done_now += 1
        log_lines.append(json.dumps({"step": step, "epoch": round(step / steps_per_epoch, 4), "loss": loss.item(),
                                     **parts, "lr": lr, "seconds": round(time.time() - t0, 3),
                                     "passages": len(p_texts)}))
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.4f}")
        if (step % cfg.checkpoint_every == 0 or step == total) and lead:
            with atomic_write(log_path) as fh:
                fh.write("\n".join(log_lines) + "\n")
            _save_checkpoint(model, optimizer, {"step": step, "model": cfg.model, "identity": identity,
                                                "world_size": world}, ckpt)
        if stop_after_steps is not None and done_now >= stop_after_steps and step < total:
            progress.close()
            barrier()  # the checkpoint is complete before any rank returns
            return ckpt
    progress.close()
    # "document" too: sentence-transformers' encode_document reads that name (encode_query reads "query")
    model.prompts = {**(getattr(model, "prompts", None) or {}), "query": q_prompt, "passage": p_prompt,
                     "document": p_prompt}
    if lead:
        with atomic_folder(final) as tmp:
            model.save(str(tmp))
            # sentence-transformers copies the base model's card; this model's own is lexdr.training.card's.
            (tmp / "README.md").unlink(missing_ok=True)
            (tmp / "lexdr_training.json").write_text(json.dumps({**cfg.to_dict(), "examples": len(examples),
                                                                 "total_steps": total, "identity": identity},
                                                                indent=2))
        shutil.rmtree(ckpt, ignore_errors=True)
    barrier()  # the model is in place before any rank returns its path
    return final

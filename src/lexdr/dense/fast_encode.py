"""Corpus encoding near the GPU's forward rate: the tokenizer never stalls the accelerator.

``SentenceTransformer.encode`` tokenizes a batch, copies it, runs the forward, and copies the result back to the
host, one after the other in one thread: on a fast GPU the accelerator waits for the tokenizer and for each
device-to-host copy. :func:`encode_texts` keeps the same model and the same numbers but pipelines the work:

- texts sorted by length (longest first), so a batch pads to about its own length and an out-of-memory batch
  size fails at once, not an hour in;
- tokenization ahead of the forward in worker threads (the Rust tokenizer releases the GIL; each thread has
  its own tokenizer copy, since a fast tokenizer's padding/truncation state is not thread-safe), a bounded
  number of batches in flight;
- pinned host memory and ``non_blocking`` copies both ways; results are read back one batch late, so the
  host never waits for the GPU to finish the batch it just launched;
- a half-precision forward (``dtype``): the model's own weights when they are already in that dtype, else
  autocast.

Embeddings come back as float32 in input order (L2-normalized when ``normalize``), like
``SentenceTransformer.encode(..., normalize_embeddings=True)``.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

__all__ = ["encode_texts"]


def _tokenizer_per_thread(tokenizer):
    local = threading.local()

    def get():
        if not hasattr(local, "tok"):
            local.tok = copy.deepcopy(tokenizer)
        return local.tok

    return get


def _prompt_length(model, tokenizer, prompt: str) -> int | None:
    """Prompt tokens to leave out of pooling, when a pooling module asks for it (as ``encode`` does)."""
    if not prompt or all(getattr(m, "include_prompt", True) for m in model):
        return None
    ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    return len(ids) - 1  # without the end token, as sentence-transformers counts it


def encode_texts(model, texts: Sequence[str], batch_size: int = 256, max_length: int = 256, prompt: str = "",
                 device=None, dtype=None, normalize: bool = True, workers: int = 4, prefetch: int = 4,
                 ) -> np.ndarray:
    """Embed ``texts`` (with ``prompt`` prepended) with a ``SentenceTransformer`` ``model``; (n, dim) float32.

    ``dtype``: ``torch.bfloat16`` / ``torch.float16`` for a half-precision forward (None: the model's dtype).
    ``workers``: tokenizer threads (0: tokenize in the calling thread, no overlap — the baseline the
    benchmark compares against); ``prefetch``: tokenized batches held ahead of the forward.
    """
    import torch
    import torch.nn.functional as F

    n = len(texts)
    device = torch.device(device) if device is not None else model.device
    param_dtype = next(model.parameters()).dtype
    autocast = dtype is not None and dtype != param_dtype
    dim = (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)()
    out = np.empty((n, dim), dtype=np.float32)
    if n == 0:
        return out
    pin = device.type == "cuda"
    tokenizer = model.tokenizer
    prompt_length = _prompt_length(model, tokenizer, prompt)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    order = np.argsort(-lengths, kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    get_tok = _tokenizer_per_thread(tokenizer)

    def tokenize(idx: np.ndarray) -> tuple[np.ndarray, dict]:
        tok = get_tok() if workers > 0 else tokenizer
        enc = tok([prompt + texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                  return_tensors="pt", pad_to_multiple_of=8)
        feats = {k: (v.pin_memory() if pin else v) for k, v in enc.items()}
        return idx, feats

    def forward(feats: dict):
        feats = {k: v.to(device, non_blocking=True) for k, v in feats.items()}
        if prompt_length is not None:
            feats["prompt_length"] = prompt_length
        with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=dtype or param_dtype,
                                                    enabled=autocast):
            emb = model(feats)["sentence_embedding"]
        emb = emb.float()
        return F.normalize(emb, dim=-1) if normalize else emb

    pending: deque = deque()  # (idx, host tensor, event) copied back asynchronously, read one batch late

    def collect(keep: int) -> None:
        while len(pending) > keep:
            idx, host, event = pending.popleft()
            if event is not None:
                event.synchronize()
            out[idx] = host.numpy()

    def run(idx: np.ndarray, feats: dict) -> None:
        emb = forward(feats)
        if pin:
            host = torch.empty(emb.shape, dtype=torch.float32, pin_memory=True)
            host.copy_(emb, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:
            host, event = emb, None
        pending.append((idx, host, event))
        collect(keep=1)

    was_training = model.training
    model.eval()
    try:
        if workers <= 0:
            for b in batches:
                run(*tokenize(b))
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lexdr-tokenize") as pool:
                ahead: deque = deque(pool.submit(tokenize, b) for b in batches[:prefetch])
                nxt = len(ahead)
                while ahead:
                    idx, feats = ahead.popleft().result()
                    if nxt < len(batches):
                        ahead.append(pool.submit(tokenize, batches[nxt]))
                        nxt += 1
                    run(idx, feats)
        collect(keep=0)
    finally:
        model.train(was_training)
    return out

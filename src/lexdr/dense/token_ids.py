"""Token ids once per corpus: every encode of a run reads them instead of tokenizing the text again.

A run encodes each corpus once per model (base, round 1, generated, round 2, gold), and every one of those
models has the same tokenizer (a trained model keeps its base model's). Tokenizing is the CPU half of encoding
and on a GPU the slower half (``benchmarks/results/gpu_rates.md``), so it is done once per (tokenizer, max
length, prompt) and stored: :func:`ensure_token_ids` writes, for each ``shard_size`` passages of the corpus,

- ``NNNNNN.ids.npy``: int32, the token ids of every passage of the shard one after the other (the passage
  prompt and the special tokens included, cut at ``max_length`` tokens: exactly what the tokenizer returns
  for ``prompt + text`` with truncation);
- ``NNNNNN.lengths.npy``: int32, each passage's number of ids;
- ``NNNNNN.chars.npy``: int32, each passage's length in characters (the order sentence-transformers' ``encode``
  batches passages in, which the CPU path keeps so its vectors are bit for bit those of the text path);
- ``NNNNNN.json``: its manifest (last: its presence marks the shard done): the key (tokenizer SHA-256, max
  length, prompt), the corpus's SHA-256, the shard's doc ids, and each ``.npy`` file's size and SHA-256.

in a folder named by the key, with a ``manifest.json`` that records the key and the corpus. A shard is reused
only when its manifest names the same key and corpus and its files have the recorded sizes and SHA-256; a
damaged or foreign shard (another corpus, another tokenizer) is tokenized again with a warning, never reused.
A killed tokenization resumes at the shards that are not done. Both ``.npy`` files are memory-mapped when read.

Tokenization runs in the Rust tokenizer's own threads: one ``encode_batch_fast`` call per block of passages on
a copy of the model's fast tokenizer, with ``TOKENIZERS_PARALLELISM`` left as the user set it (enabled for the
call when unset). A model without a fast tokenizer is tokenized through its Python tokenizer, same ids.

The tokenizer reads a whole passage before it truncates. Where its pre-tokenizer splits words at spaces (XLM-R's
Metaspace, BERT's), a passage longer than a character budget (learnt from the corpus's first passages: the 95th
percentile of characters per token, +10 %, times ``max_length``) is cut at a space before it is tokenized, and
its ids are kept only when the cut text still has more than ``max_length`` tokens — then every kept token comes
from a word the cut left whole, tokenized exactly as in the whole text; otherwise the whole text is tokenized.
``tests/test_token_ids.py`` checks the ids against tokenizing the whole text on every dev corpus of every language.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from lexdr.formats import iter_corpus
from lexdr.formats.files import atomic_path, atomic_write, file_digest, file_sha256

__all__ = ["PassageTokenizer", "TokenIds", "TokenShard", "ensure_token_ids", "corpus_shards", "tokenizer_sha256"]

logger = logging.getLogger(__name__)

FORMAT = "lexdr-token-ids"
VERSION = 1
_BLOCK = 2048  # passages per encode_batch call: bounds the tokenizer's per-passage objects, not the shard
_SAMPLE = 256  # passages tokenized whole to learn a corpus's characters per token (the character budget)


def tokenizer_sha256(tokenizer, spec: dict | None = None) -> str:
    """SHA-256 of what decides a tokenizer's ids: its ``tokenizer.json`` (``spec``, when already parsed) without
    the padding and truncation state a call leaves behind (for a tokenizer without one: its vocabulary and
    class)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = dict(spec if spec is not None else json.loads(backend.to_str()))
        spec["padding"] = spec["truncation"] = None
    else:
        spec = {"class": type(tokenizer).__name__, "vocab": sorted(tokenizer.get_vocab().items())}
    spec["model_input_names"] = list(getattr(tokenizer, "model_input_names", ()))
    blob = json.dumps(spec, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def _splits_at_spaces(spec: dict) -> bool:
    """Whether a ``tokenizer.json``'s pre-tokenizer cuts the text into words at every space (Metaspace with
    ``split``, as XLM-R / sentencepiece models; BERT's and the whitespace pre-tokenizers): then a word's tokens
    do not depend on the text after it."""
    pre = spec.get("pre_tokenizer") or {}
    kind = pre.get("type")
    if kind == "Metaspace":
        return pre.get("split", True) is not False
    return kind in {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}


def _cut_point(text: str, budget: int, look: int = 64) -> int | None:
    """Where to cut ``text`` to about ``budget`` characters: its last space in the ``look`` characters before
    the budget (the passage is cut before it); None when the text is within budget or has no such space."""
    if len(text) <= budget:
        return None
    j = text.rfind(" ", max(1, budget - look), budget)
    while j > 0 and text[j - 1].isspace():  # the cut text ends with a word, never with whitespace
        j -= 1
    return j if j >= max(1, budget - look) else None


@contextlib.contextmanager
def _rust_threads() -> Iterator[None]:
    """``TOKENIZERS_PARALLELISM`` as the user set it; unset, enabled for the duration of the call."""
    if "TOKENIZERS_PARALLELISM" in os.environ:
        yield
        return
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    try:
        yield
    finally:
        os.environ.pop("TOKENIZERS_PARALLELISM", None)


class TokenIds(NamedTuple):
    """Passages as token ids: every passage's ids one after the other, and per passage its number of ids and
    its number of characters (all int32)."""

    ids: np.ndarray
    lengths: np.ndarray
    chars: np.ndarray


class PassageTokenizer:
    """``prompt + text`` -> token ids cut at ``max_length`` (special tokens included), as flat int32 arrays.

    ``tokenizer``: the model's Hugging Face tokenizer. The ids are those ``tokenizer(prompt + text,
    truncation=True, max_length=max_length)`` returns (tests/test_token_ids.py checks it on the dev corpora).
    """

    def __init__(self, tokenizer, max_length: int, prompt: str = "", name: str = ""):
        self.tokenizer, self.max_length, self.prompt, self.name = tokenizer, int(max_length), prompt, name
        backend = getattr(tokenizer, "backend_tokenizer", None)
        text = backend.to_str() if backend is not None else None
        spec = json.loads(text) if text is not None else None
        self.sha256 = tokenizer_sha256(tokenizer, spec)
        self._backend = None
        self._chars_per_token: float | None = None  # learnt once, from the first passages (0: no budget)
        self.cut_stats = [0, 0]  # passages cut to the character budget, and of those tokenized again whole
        if backend is not None and getattr(tokenizer, "is_fast", False):
            from tokenizers import Tokenizer

            self._backend = Tokenizer.from_str(text)  # a copy: truncation state is per object
            self._backend.no_padding()
            self._backend.enable_truncation(self.max_length, stride=0, strategy="longest_first",
                                            direction=getattr(tokenizer, "truncation_side", "right"))
        # The cut is exact only where the pre-tokenizer splits words at spaces and truncation keeps the start.
        self.cut_at_budget = (self._backend is not None and _splits_at_spaces(spec)
                              and getattr(tokenizer, "truncation_side", "right") == "right")

    def _encode_block(self, texts: Sequence[str]) -> list[list[int]]:
        """One ``encode_batch_fast`` call, with passages cut to the character budget where that is exact."""
        if self.cut_at_budget and self._chars_per_token is None:
            self._learn_budget(texts[:_SAMPLE])
        if not self._chars_per_token:
            return [e.ids for e in self._backend.encode_batch_fast([self.prompt + t for t in texts])]
        budget = int(self._chars_per_token * self.max_length) + 32
        cuts = [_cut_point(t, budget) for t in texts]
        encs = self._backend.encode_batch_fast([self.prompt + (t if c is None else t[:c]) for t, c in zip(texts, cuts)])
        rows = [e.ids for e in encs]
        # A cut text with more tokens than max_length keeps the same first tokens as the whole text: the cut is
        # at a space, which the pre-tokenizer splits at, so every word before it is tokenized alone, the same
        # either way, and the kept tokens end before the cut text's last token. One that does not overflow is
        # tokenized again whole.
        again = [j for j, (c, e) in enumerate(zip(cuts, encs)) if c is not None and not e.overflowing]
        if again:
            for j, e in zip(again, self._backend.encode_batch_fast([self.prompt + texts[j] for j in again])):
                rows[j] = e.ids
        self.cut_stats[0] += sum(c is not None for c in cuts)
        self.cut_stats[1] += len(again)
        return rows

    def _learn_budget(self, texts: Sequence[str]) -> None:
        """Characters per token of this corpus, from its first passages tokenized whole (95th percentile, +10 %):
        the character budget. It decides speed only, never the ids."""
        truncation = self._backend.truncation
        self._backend.no_truncation()
        try:
            encs = self._backend.encode_batch_fast(list(texts), add_special_tokens=False)
        finally:
            self._backend.enable_truncation(**truncation)
        ratios = [len(t) / max(1, len(e.ids)) for t, e in zip(texts, encs) if t.strip()]
        # 0: too few passages to tell (then nothing is cut)
        self._chars_per_token = 1.1 * float(np.percentile(ratios, 95)) if len(ratios) >= 16 else 0.0

    def key(self) -> dict:
        """What the ids depend on; a token-id folder holds the ids of one key."""
        return {"tokenizer_sha256": self.sha256, "max_length": self.max_length, "prompt": self.prompt}

    def key_digest(self) -> str:
        return hashlib.sha256(json.dumps(self.key(), sort_keys=True).encode("utf-8")).hexdigest()[:16]

    def __call__(self, texts: Sequence[str]) -> TokenIds:
        """Every text's ids one after the other, how many each has, and each text's length in characters."""
        if self._backend is None:
            rows = self.tokenizer([self.prompt + t for t in texts], truncation=True,
                                  max_length=self.max_length)["input_ids"] if len(texts) else []
        else:
            rows = []
            with _rust_threads():
                for i in range(0, len(texts), _BLOCK):
                    rows.extend(self._encode_block(texts[i:i + _BLOCK]))
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int32, count=len(rows))
        ids = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int32, count=int(lengths.sum()))
        return TokenIds(ids, lengths, np.fromiter((len(t) for t in texts), dtype=np.int32, count=len(texts)))


@dataclass(frozen=True)
class TokenShard:
    """One shard of a corpus's token ids on disk (checked when :func:`ensure_token_ids` returned it)."""

    no: int
    paths: tuple[Path, Path, Path]  # ids, lengths, chars
    doc_ids: tuple[str, ...]

    def open(self) -> TokenIds:
        """The shard's ids, lengths and character counts, memory-mapped: nothing is read until used."""
        return TokenIds(*(np.load(p, mmap_mode="r", allow_pickle=False) for p in self.paths))


def corpus_shards(corpus_path: str | Path, shard_size: int) -> Iterator[tuple[int, list[str], list[str]]]:
    """(shard number, doc ids, texts) of each ``shard_size`` passages of the corpus, in order; a passage's text
    is its title and text joined (:meth:`lexdr.records.Doc.full_text`)."""
    ids: list[str] = []
    texts: list[str] = []
    no = 0
    for doc in iter_corpus(corpus_path):
        ids.append(doc.doc_id)
        texts.append(doc.full_text())
        if len(ids) >= shard_size:
            yield no, ids, texts
            no, ids, texts = no + 1, [], []
    if ids:
        yield no, ids, texts


_ARRAYS = TokenIds._fields  # ids, lengths, chars: NNNNNN.<name>.npy


def _paths(folder: Path, no: int) -> tuple[tuple[Path, Path, Path], Path]:
    return tuple(folder / f"{no:06d}.{name}.npy" for name in _ARRAYS), folder / f"{no:06d}.json"  # type: ignore


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _check_shard(folder: Path, no: int, identity: dict, doc_ids: list[str] | None) -> TokenShard | None:
    """The shard when its manifest exists, names ``identity`` (key + corpus), holds ``doc_ids`` (when given)
    and its files have the recorded sizes and SHA-256; else None, with a warning when a manifest was there."""
    paths, manifest_path = _paths(folder, no)
    if not manifest_path.exists():
        return None
    manifest = _read_json(manifest_path)
    if manifest is None:
        logger.warning("%s is damaged; tokenizing the shard again", manifest_path)
        return None
    if {k: manifest.get(k) for k in identity} != identity:
        logger.warning("%s holds the token ids of another corpus or tokenizer; tokenizing the shard again",
                       manifest_path)
        return None
    if doc_ids is not None and manifest.get("doc_ids") != doc_ids:
        logger.warning("%s holds other passages than the corpus's shard %d; tokenizing it again", manifest_path, no)
        return None
    for name, path in zip(_ARRAYS, paths):
        rec = (manifest.get("files") or {}).get(name)
        size = path.stat().st_size if path.exists() else None
        if not rec or size != rec.get("bytes") or file_sha256(path) != rec.get("sha256"):
            logger.warning("%s is damaged (%s bytes, recorded %s, or its SHA-256 differs); tokenizing the shard "
                           "again", path, size, (rec or {}).get("bytes"))
            return None
    return TokenShard(no, paths, tuple(manifest["doc_ids"]))


def _write_shard(folder: Path, no: int, doc_ids: list[str], tokens: TokenIds, identity: dict) -> TokenShard:
    paths, manifest_path = _paths(folder, no)
    manifest_path.unlink(missing_ok=True)  # no stale manifest may vouch for the new files
    files = {}
    for name, path, arr in zip(_ARRAYS, paths, tokens):
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(arr, dtype=np.int32), allow_pickle=False)
            files[name] = {"bytes": tmp.stat().st_size, "sha256": file_sha256(tmp)}
    with atomic_write(manifest_path) as fh:
        json.dump({**identity, "doc_ids": list(doc_ids), "passages": len(doc_ids),
                   "tokens": int(tokens.lengths.sum()), "files": files}, fh, ensure_ascii=False)
    return TokenShard(no, paths, tuple(doc_ids))


def _stray_files(folder: Path, n_shards: int) -> Iterable[Path]:
    """Shard files numbered at or past ``n_shards`` (left by a larger corpus in the same folder)."""
    for path in folder.glob("[0-9][0-9][0-9][0-9][0-9][0-9].*"):
        if int(path.name[:6]) >= n_shards:
            yield path


def ensure_token_ids(corpus_path: str | Path, tokenizer: PassageTokenizer, root: str | Path,
                     shard_size: int = 20_000, corpus_sha256: str | None = None) -> list[TokenShard]:
    """The token ids of every passage of ``corpus_path`` under ``root/<key digest>/``, one shard per
    ``shard_size`` passages, tokenizing only the shards that are not already there and sound; returns the
    shards in corpus order. When the folder's ``manifest.json`` says the corpus was fully tokenized, the corpus
    is not read at all unless a shard fails its check."""
    folder = Path(root) / tokenizer.key_digest()
    folder.mkdir(parents=True, exist_ok=True)
    corpus_sha256 = corpus_sha256 or file_digest(corpus_path)
    identity = {"format": FORMAT, "version": VERSION, **tokenizer.key(), "shard_size": int(shard_size),
                "corpus_sha256": corpus_sha256}
    manifest_path = folder / "manifest.json"
    manifest = _read_json(manifest_path) if manifest_path.exists() else None
    if manifest is not None and {k: manifest.get(k) for k in identity} != identity:
        logger.warning("%s was tokenized from another corpus or with another tokenizer; tokenizing again", folder)
        manifest = None
    if manifest is not None and manifest.get("complete"):
        shards = [_check_shard(folder, no, identity, None) for no in range(int(manifest["shards"]))]
        if all(s is not None for s in shards):
            logger.info("token ids of %s: reusing %d shard(s) in %s", corpus_path, len(shards), folder)
            return shards  # type: ignore[return-value]
    with atomic_write(manifest_path) as fh:  # not complete until every shard is written
        json.dump({**identity, "tokenizer": tokenizer.name, "corpus": str(Path(corpus_path).resolve()),
                   "complete": False}, fh, ensure_ascii=False, indent=2)
    shards: list[TokenShard] = []
    done = passages = tokens = 0
    for no, doc_ids, texts in corpus_shards(corpus_path, shard_size):
        shard = _check_shard(folder, no, identity, doc_ids)
        if shard is None:
            shard = _write_shard(folder, no, doc_ids, tokenizer(texts), identity)
            done += 1
        shards.append(shard)
        passages += len(doc_ids)
        tokens += int(shard.open().lengths.sum())
    for stray in _stray_files(folder, len(shards)):
        stray.unlink()
    with atomic_write(manifest_path) as fh:
        json.dump({**identity, "tokenizer": tokenizer.name, "corpus": str(Path(corpus_path).resolve()),
                   "complete": True, "shards": len(shards), "passages": passages, "tokens": tokens},
                  fh, ensure_ascii=False, indent=2)
    logger.info("token ids of %s: %d shard(s) tokenized, %d reused, in %s", corpus_path, done,
                len(shards) - done, folder)
    return shards

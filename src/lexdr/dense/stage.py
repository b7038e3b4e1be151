"""Stage functions (files in, files out) for dense retrieval: ``build_dense_index`` and ``dense_search``.

Encoding is done in shards of ``shard_size`` passages, each saved as ``.npy`` under ``<out>/shards/`` as
soon as it is done: a killed run resumes at the first missing shard instead of re-encoding the corpus.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from lexdr.dense.encoder import Encoder, EncoderConfig
from lexdr.dense.index import DenseIndex, IndexType
from lexdr.dense.retriever import DenseRetriever
from lexdr.formats import iter_corpus, read_queries, write_run
from lexdr.formats.files import atomic_path, atomic_write
from lexdr.records import Run

__all__ = ["encode_corpus", "build_dense_index", "dense_search"]

logger = logging.getLogger(__name__)


def encode_corpus(corpus_path: str | Path, encoder: Encoder, work_dir: str | Path,
                  shard_size: int = 20_000) -> tuple[np.ndarray, list[str]]:
    """Embed every passage of ``corpus_path``, resuming from shards already in ``work_dir/shards``."""
    shard_dir = Path(work_dir) / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    doc_ids: list[str] = []
    parts: list[np.ndarray] = []
    batch_ids: list[str] = []
    batch_texts: list[str] = []
    shard_no = 0

    def flush() -> None:
        nonlocal shard_no
        path = shard_dir / f"{shard_no:06d}.npy"
        ids_path = shard_dir / f"{shard_no:06d}.ids.json"
        done = path.exists() and ids_path.exists() and json.loads(ids_path.read_text("utf-8")) == batch_ids
        if done:
            emb = np.load(path, allow_pickle=False)
            logger.info("shard %d: reused %d embeddings", shard_no, len(batch_ids))
        else:
            emb = encoder.encode_passages(batch_texts)
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, emb, allow_pickle=False)
            with atomic_write(ids_path) as fh:
                json.dump(batch_ids, fh, ensure_ascii=False)
        parts.append(emb)
        doc_ids.extend(batch_ids)
        batch_ids.clear()
        batch_texts.clear()
        shard_no += 1

    for doc in iter_corpus(corpus_path):
        batch_ids.append(doc.doc_id)
        batch_texts.append(doc.full_text())
        if len(batch_ids) >= shard_size:
            flush()
    if batch_ids:
        flush()
    return np.concatenate(parts, axis=0), doc_ids


def build_dense_index(corpus_path: str | Path, out_dir: str | Path, encoder_config: EncoderConfig | None = None,
                      index_type: IndexType | str = IndexType.flat, shard_size: int = 20_000,
                      encoder: Encoder | None = None) -> Path:
    """Encode ``corpus_path`` and write a FAISS index folder to ``out_dir``."""
    encoder = encoder or Encoder(encoder_config or EncoderConfig())
    out = Path(out_dir)
    emb, doc_ids = encode_corpus(corpus_path, encoder, out, shard_size=shard_size)
    index = DenseIndex.build(emb, doc_ids, index_type, meta={"encoder": encoder.describe(),
                                                             "corpus": str(Path(corpus_path).resolve())})
    index.save(out)
    # The shards were only a resume aid; the index now holds the vectors.
    for f in sorted((out / "shards").glob("*")):
        f.unlink()
    (out / "shards").rmdir()
    return out


def dense_search(index_dir: str | Path, queries_path: str | Path, out_run: str | Path | None = None,
                 k: int = 100, encoder: Encoder | None = None) -> Run:
    """Search a dense index with the queries in ``queries_path``; writes a TREC run when ``out_run`` is given."""
    run = DenseRetriever.load(index_dir, encoder=encoder).search(read_queries(queries_path), k)
    if out_run is not None:
        write_run(run, out_run, tag="lexdr-dense")
    return run

"""A FAISS index over passage embeddings, with string doc ids kept beside it.

Exact inner product (``flat``) is the default: below a few million passages it is fast enough and has no
recall loss to explain. ``hnsw`` is the approximate option for large corpora (no training step, good
recall at efSearch=128); ``ivf`` (IVF-Flat, trained on the corpus) for very large ones.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path

import numpy as np

from lexdr.errors import LexdrError
from lexdr.formats.files import atomic_path, atomic_write
from lexdr.records import Hit, Run

__all__ = ["IndexType", "DenseIndex"]


class IndexType(str, enum.Enum):
    flat = "flat"
    hnsw = "hnsw"
    ivf = "ivf"


def _faiss():
    import faiss

    return faiss


class DenseIndex:
    """Doc ids + a FAISS inner-product index. Save/load as ``index.faiss`` + ``doc_ids.json`` + ``config.json``."""

    def __init__(self, index, doc_ids: list[str], meta: dict | None = None):
        if index.ntotal != len(doc_ids):
            raise LexdrError(f"FAISS index holds {index.ntotal} vectors but {len(doc_ids)} doc ids were given")
        self.index = index
        self.doc_ids = list(doc_ids)
        self.meta = dict(meta or {})

    @classmethod
    def build(cls, embeddings: np.ndarray, doc_ids: list[str], index_type: IndexType | str = IndexType.flat,
              meta: dict | None = None, hnsw_m: int = 32, ivf_lists: int | None = None) -> "DenseIndex":
        faiss = _faiss()
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(doc_ids):
            raise LexdrError(f"embeddings shape {emb.shape} does not match {len(doc_ids)} doc ids")
        dim = emb.shape[1]
        kind = IndexType(index_type)
        if kind is IndexType.flat:
            index = faiss.IndexFlatIP(dim)
        elif kind is IndexType.hnsw:
            index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 200
            index.hnsw.efSearch = 128
        else:
            nlist = ivf_lists or max(1, int(4 * np.sqrt(len(doc_ids))))
            if len(doc_ids) < 39 * nlist:
                raise LexdrError(f"an IVF index with {nlist} lists needs >= {39 * nlist} passages to train; "
                                 f"got {len(doc_ids)}: use index_type='flat' or fewer lists")
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(emb)
            index.nprobe = min(nlist, 32)
        index.add(emb)
        return cls(index, doc_ids, {**(meta or {}), "index_type": kind.value, "dim": dim})

    def search_embeddings(self, query_emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self.doc_ids))
        q = np.ascontiguousarray(query_emb, dtype=np.float32)
        return self.index.search(q, k)

    def search(self, query_ids: list[str], query_emb: np.ndarray, k: int = 100) -> Run:
        scores, idx = self.search_embeddings(query_emb, k)
        run: Run = {}
        for qid, row_s, row_i in zip(query_ids, scores, idx):
            hits = [Hit(self.doc_ids[i], float(s)) for s, i in zip(row_s, row_i) if i >= 0]
            run[qid] = sorted(hits, key=lambda h: (-h.score, h.doc_id))
        return run

    def save(self, folder: str | Path) -> Path:
        faiss = _faiss()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "index.faiss") as tmp:
            faiss.write_index(self.index, str(tmp))
        with atomic_write(folder / "doc_ids.json") as fh:
            json.dump(self.doc_ids, fh, ensure_ascii=False)
        # config.json last: its presence marks a complete index.
        with atomic_write(folder / "config.json") as fh:
            json.dump(self.meta, fh, ensure_ascii=False, indent=2)
        return folder

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = False) -> "DenseIndex":
        faiss = _faiss()
        folder = Path(folder)
        if not (folder / "config.json").exists():
            raise LexdrError(f"{folder} is not a complete lexdr dense index (no config.json); rebuild it with "
                             "`lexdr index dense`")
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        index = faiss.read_index(str(folder / "index.faiss"), flags)
        doc_ids = json.loads((folder / "doc_ids.json").read_text(encoding="utf-8"))
        meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return cls(index, doc_ids, meta)

"""Sparse retrieval: BM25 with per-language analysis, on bm25s (pure Python + numpy, memory-mappable).

>>> from lexdr.sparse import BM25Index
>>> from lexdr.records import Doc, Query
>>> idx = BM25Index.build([Doc("d1", "Paris is the capital of France"), Doc("d2", "Berlin is in Germany")], lang="en")
>>> [h.doc_id for h in idx.search([Query("q", "capital of France")], k=5)["q"]]
['d1']
"""

from lexdr.sparse.config import BM25Config
from lexdr.sparse.index import BM25_METHODS, BM25Index
from lexdr.sparse.outofcore import build_out_of_core
from lexdr.sparse.stage import BM25Inputs, SparseIndexInputs, bm25_stage, build_index, search_index, sparse_index_stage

__all__ = ["BM25Index", "BM25Config", "BM25_METHODS", "build_index", "search_index", "SparseIndexInputs",
           "sparse_index_stage", "BM25Inputs", "bm25_stage", "build_out_of_core"]

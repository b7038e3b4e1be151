"""Pyserini's LuceneSearcher without its dense/impact imports (shared by the Lucene benchmarks).

``from pyserini.search.lucene import LuceneSearcher`` would pull in torch, transformers, faiss, onnxruntime,
scikit-learn and scipy: ``pyserini/search/__init__.py`` imports the dense (faiss) searchers and
``pyserini/search/lucene/__init__.py`` the impact searcher. This module imports only what the class needs, so
it runs in the small Pyserini virtualenv described in ``lucene_reference.py`` (no lexdr imports here).
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path


def import_lucene_searcher():
    """``pyserini.search.lucene.LuceneSearcher`` without the dense/impact imports (torch, faiss, ...).

    Registers bare package modules for ``pyserini.search`` and ``pyserini.search.lucene`` (so their
    ``__init__`` files do not run), gives the first the two names ``_searcher`` imports from it, and imports
    ``pyserini.search.lucene._searcher``, which defines the class.
    """
    import pyserini

    base = Path(pyserini.__file__).resolve().parent
    for name, sub in (("pyserini.search", "search"), ("pyserini.search.lucene", "search/lucene")):
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.__path__ = [str(base / sub)]
            sys.modules[name] = mod
    search_base = importlib.import_module("pyserini.search._base")
    sys.modules["pyserini.search"].JQuery = search_base.JQuery
    sys.modules["pyserini.search"].JQueryGenerator = search_base.JQueryGenerator
    return importlib.import_module("pyserini.search.lucene._searcher").LuceneSearcher

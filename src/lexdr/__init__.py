"""lexdr: train a multilingual dense retriever from an unlabeled corpus.

The package layout follows the pipeline: ``formats`` (read/write corpora, queries, qrels, runs) →
``analysis`` (per-language analyzers) → ``sparse`` (BM25) / ``dense`` (encoder + FAISS) → ``fusion`` →
``evaluation``; later stages (mining, generation, training, pipeline) build on these.
"""

from lexdr.errors import LexdrError, InputError
from lexdr.logs import quiet_noisy_loggers
from lexdr.records import Doc, Query, Qrel, Hit, Run

quiet_noisy_loggers()  # before anything imports faiss (see lexdr.logs)

__version__ = "0.1.0"

__all__ = ["LexdrError", "InputError", "Doc", "Query", "Qrel", "Hit", "Run", "__version__"]

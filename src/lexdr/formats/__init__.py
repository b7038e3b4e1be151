"""Readers and writers for the formats IR people already have.

* corpora: BEIR ``corpus.jsonl`` (``_id``/``title``/``text``) and Mr. TyDi / Pyserini JSONL
  (``docid``/``title``/``text``, also ``id``/``contents``), plain or gzipped;
* queries: BEIR ``queries.jsonl`` (``_id``/``text``) or topics TSV ``qid<TAB>text`` (plain or gzipped);
* qrels: BEIR TSV (``query-id corpus-id score`` with header) or TREC (``qid Q0 docid rel``);
* runs: TREC (``qid Q0 docid rank score tag``), read and written.

Every reader streams and raises :class:`lexdr.InputError` naming file, line and fix.
"""

from lexdr.formats.files import atomic_write, open_text
from lexdr.formats.corpus import EmptyTextPolicy, iter_corpus, read_corpus, write_corpus_jsonl
from lexdr.formats.queries import iter_queries, read_queries, write_queries_tsv, write_queries_jsonl
from lexdr.formats.qrels import read_qrels, write_qrels_trec
from lexdr.formats.runs import read_run, write_run

__all__ = [
    "atomic_write",
    "open_text",
    "EmptyTextPolicy",
    "iter_corpus",
    "read_corpus",
    "write_corpus_jsonl",
    "iter_queries",
    "read_queries",
    "write_queries_tsv",
    "write_queries_jsonl",
    "read_qrels",
    "write_qrels_trec",
    "read_run",
    "write_run",
]

"""Out-of-core BM25 (lexdr.sparse.outofcore) against the in-memory index, and the synthetic corpus generator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lexdr.errors import ConfigError, LexdrError
from lexdr.formats import write_corpus_jsonl, write_run
from lexdr.records import Doc, Query
from lexdr.retrieval import Retriever, load_retriever
from lexdr.sparse import BM25Index, build_index
from lexdr.sparse.outofcore import build_out_of_core, expected_shards, shard_docs_for

DOCS = [
    Doc("d1", "Paris is the capital and largest city of France.", title="Paris"),
    Doc("d2", "Berlin is the capital of Germany; the city hosts the Bundestag.", title="Berlin"),
    Doc("d3", "France and Germany share a long border along the Rhine."),
    Doc("d4", "The Rhine flows from the Alps to the North Sea."),
    Doc("d5", "Cats sleep for most of the day."),
    Doc("d0", "The capital of the Alps? Cats, cats and more cats in Paris and Berlin."),
    Doc("d6", "A city by the sea: the North Sea border of Germany."),
]
QUERIES = [Query("q1", "capital of France"), Query("q2", "the Rhine river"), Query("q3", "sleeping cats"),
           Query("q4", "city border sea"), Query("q5", "zzz unknown")]
ARRAYS = ("data", "indices", "indptr")


def _same_index(mem_dir, ooc_dir):
    for name in ARRAYS:
        a = np.load(mem_dir / f"{name}.csc.index.npy")
        b = np.load(ooc_dir / f"{name}.csc.index.npy")
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert (mem_dir / "vocab.index.json").read_bytes() == (ooc_dir / "vocab.index.json").read_bytes()
    assert (mem_dir / "doc_ids.json").read_bytes() == (ooc_dir / "doc_ids.json").read_bytes()


@pytest.mark.parametrize("max_docs", [1, 2, 3, 100])
def test_out_of_core_equals_in_memory_inline(tmp_path, max_docs):
    BM25Index.build(DOCS, lang="en").save(tmp_path / "mem")
    build_out_of_core(iter(DOCS), tmp_path / "ooc", lang="en", max_docs_in_memory=max_docs, n_jobs=1)
    _same_index(tmp_path / "mem", tmp_path / "ooc")
    mem, ooc = BM25Index.load(tmp_path / "mem"), load_retriever(tmp_path / "ooc")
    assert isinstance(ooc, Retriever)
    write_run(mem.search(QUERIES, k=10), tmp_path / "mem.run", tag="t")
    write_run(ooc.search(QUERIES, k=10), tmp_path / "ooc.run", tag="t")
    assert (tmp_path / "mem.run").read_bytes() == (tmp_path / "ooc.run").read_bytes()
    assert ooc.search(QUERIES, k=10)["q5"] == []


def test_merge_in_many_blocks_equals_in_memory(tmp_path, monkeypatch):
    """Blocks of 3 postings: many blocks, and terms with more postings than a block (one term per block)."""
    import lexdr.sparse.outofcore as ooc

    monkeypatch.setattr(ooc, "_block_postings", lambda shard_docs: 3)
    assert len(ooc._blocks(np.array([5, 1, 1, 1, 7, 2]), 3)) - 1 == 4  # [5] [1 1 1] [7] [2]
    seen = []
    blocks = ooc._blocks
    monkeypatch.setattr(ooc, "_blocks", lambda df, n: seen.append(blocks(df, n)) or seen[-1])
    BM25Index.build(DOCS, lang="en").save(tmp_path / "mem")
    ooc.build_out_of_core(DOCS, tmp_path / "ooc", lang="en", max_docs_in_memory=2, n_jobs=1)
    assert len(seen[0]) - 1 > 10  # many blocks
    _same_index(tmp_path / "mem", tmp_path / "ooc")


def test_ties_broken_by_doc_id(tmp_path):
    docs = [Doc("b", "apple pie"), Doc("c", "apple tart"), Doc("a", "apple cake"), Doc("z", "pear")]
    build_out_of_core(docs, tmp_path / "i", lang="en", max_docs_in_memory=1, n_jobs=1)
    hits = BM25Index.load(tmp_path / "i").search([Query("q", "apple")], k=2)["q"]
    assert [h.doc_id for h in hits] == ["a", "b"] and hits[0].score == hits[1].score


@pytest.mark.parametrize("max_docs,n_jobs", [(2, 1), (3, 1), (6, 2), (100, 1)])
def test_shards_honour_the_memory_setting(tmp_path, max_docs, n_jobs):
    """Memory is bounded by construction: no shard holds more than max_docs_in_memory / alive documents."""
    out = build_out_of_core(DOCS, tmp_path / "i", lang="en", max_docs_in_memory=max_docs, n_jobs=n_jobs)
    build = json.loads((out / "config.json").read_text())["build"]
    per_shard = shard_docs_for(max_docs, n_jobs)
    assert per_shard * (1 if n_jobs == 1 else n_jobs + 1) <= max_docs
    assert build["shard_docs"] == per_shard
    assert build["shards"] == expected_shards(len(DOCS), max_docs, n_jobs) == -(-len(DOCS) // per_shard)
    assert not (out / "_shards").exists()  # the work files are gone


def test_process_pool_path_equals_in_memory(tmp_path):
    docs = [Doc(f"p{i:03d}", f"word{i % 7} common text number {i} and word{i % 3} again") for i in range(60)]
    BM25Index.build(docs, lang="en").save(tmp_path / "mem")
    out = build_out_of_core(docs, tmp_path / "ooc", lang="en", max_docs_in_memory=30, n_jobs=2)
    assert json.loads((out / "config.json").read_text())["build"]["shards"] == 6
    _same_index(tmp_path / "mem", tmp_path / "ooc")


def test_build_index_stage_out_of_core(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    write_corpus_jsonl(DOCS, corpus)
    build_index(corpus, "en", tmp_path / "mem")
    build_index(corpus, "en", tmp_path / "ooc", max_docs_in_memory=2, n_jobs=1)
    _same_index(tmp_path / "mem", tmp_path / "ooc")


def test_out_of_core_build_holds_ids_compactly_and_still_names_a_duplicate_line(tmp_path, monkeypatch):
    """Issue 21: the out-of-core build keeps each shard's doc ids as one UTF-8 blob + offsets, and the corpus is
    streamed without a set of every id (the build finds duplicates by sorting); a duplicate is still reported
    at its file and line."""
    from lexdr.doc_ids import DocIds
    from lexdr.errors import InputError
    from lexdr.sparse import outofcore

    kept = []
    analyze_all = outofcore._analyze_all
    monkeypatch.setattr(outofcore, "_analyze_all", lambda *a, **kw: kept.append(analyze_all(*a, **kw)) or kept[-1])
    docs = [Doc(f"d{i}", f"word{i} common text") for i in range(7)]
    build_out_of_core(docs, tmp_path / "ooc", lang="en", max_docs_in_memory=3, n_jobs=1)
    (shards,) = kept
    assert shards.id_parts and all(isinstance(p, DocIds) for p in shards.id_parts)
    assert shards.doc_ids() == [d.doc_id for d in docs] and shards.n_docs == 7
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": i, "text": "some text"}) + "\n" for i in ("a", "b", "c", "b")),
                      encoding="utf-8")
    with pytest.raises(InputError, match=r"corpus.jsonl:4.*duplicate document id 'b'"):
        build_index(corpus, "en", tmp_path / "dup", max_docs_in_memory=2, n_jobs=1)
    assert not (tmp_path / "dup").exists()


def test_out_of_core_errors(tmp_path):
    with pytest.raises(LexdrError, match="empty corpus"):
        build_out_of_core([], tmp_path / "a", lang="en")
    with pytest.raises(LexdrError, match="duplicate document id"):
        build_out_of_core([Doc("x", "a b"), Doc("y", "c"), Doc("x", "d")], tmp_path / "b", lang="en",
                          max_docs_in_memory=1, n_jobs=1)
    assert not (tmp_path / "b").exists()  # nothing half-written
    with pytest.raises(ConfigError, match="max_docs_in_memory"):
        build_out_of_core(DOCS, tmp_path / "c", lang="en", max_docs_in_memory=0)
    with pytest.raises(LexdrError, match="no terms"):
        build_out_of_core([Doc("x", "the of and")], tmp_path / "d", lang="en")


def test_dev_task_run_files_identical(tmp_path, shared_data_dir):
    from lexdr.tasks import load_dev_task

    task = load_dev_task("xquad-r-de")
    BM25Index.build(task.corpus, lang="de").save(tmp_path / "mem")
    build_out_of_core(iter(task.corpus), tmp_path / "ooc", lang="de", max_docs_in_memory=300, n_jobs=1)
    _same_index(tmp_path / "mem", tmp_path / "ooc")
    write_run(BM25Index.load(tmp_path / "mem").search(task.queries, k=100), tmp_path / "mem.run", tag="bm25")
    write_run(BM25Index.load(tmp_path / "ooc").search(task.queries, k=100), tmp_path / "ooc.run", tag="bm25")
    assert (tmp_path / "mem.run").read_bytes() == (tmp_path / "ooc.run").read_bytes()


# ------------------------------------------------------------------------------------------------ synthetic
SOURCE = ["Kota Jakarta adalah ibu kota Indonesia. Jakarta terletak di pulau Jawa.",
          "Pulau Jawa adalah pulau yang padat. Banyak kota besar di pulau itu.",
          "Indonesia memiliki banyak pulau dan banyak bahasa daerah."]


def test_synthetic_corpus_is_deterministic_prefix_closed_and_grows_its_vocabulary(tmp_path):
    from lexdr.formats import iter_corpus
    from lexdr.synthetic import TailProcess, fit_bigram_model, iter_passages, write_corpus

    model = fit_bigram_model(SOURCE)
    assert model.vocab_size == len({w for t in SOURCE for w in t.replace(".", " ").split()})
    a = list(iter_passages(model, 250, seed=3, batch=100))
    assert a == list(iter_passages(model, 250, seed=3, batch=100))  # deterministic
    assert a[:120] == list(iter_passages(model, 120, seed=3, batch=100))  # the smaller corpus is a prefix
    assert a != list(iter_passages(model, 250, seed=4, batch=100))
    lengths = [len(t.split()) for t in a]
    assert 40 <= sum(lengths) / len(lengths) <= 100

    def vocab(texts):
        return len({w for t in texts for w in t.replace(".", " ").split()})

    # the fitted vocabulary is fixed; the tail keeps adding words, about as Heaps' law says
    tail = TailProcess()
    tail_tokens = tail.share * sum(lengths)
    expected_new = min(tail_tokens, tail.distinct(tail_tokens))
    assert vocab(a) - model.vocab_size >= 0.5 * expected_new  # some tail words coincide; none are lost
    assert vocab(a) > vocab(a[:25]) * 2
    path = write_corpus(model, 30, tmp_path / "c.jsonl", seed=3, batch=100)
    docs = list(iter_corpus(path))
    assert [d.text for d in docs] == a[:30] and docs[0].doc_id == "s0000000"


def test_synthetic_queries_come_from_the_same_model():
    from lexdr.synthetic import fit_bigram_model, sample_queries

    model = fit_bigram_model(SOURCE)
    qs = sample_queries(model, 20, corpus_passages=1000, seed=1)
    assert len(qs) == 20 and all(2 <= len(q.split()) <= 10 for q in qs)
    assert qs == sample_queries(model, 20, corpus_passages=1000, seed=1)


def test_bm25_stage_out_of_core_writes_the_same_runs_as_in_memory(tmp_path):
    from lexdr.formats import write_corpus_jsonl, write_queries_tsv
    from lexdr.records import Doc, Query
    from lexdr.executors import LocalExecutor
    from lexdr.sparse import BM25Config, BM25Inputs, bm25_stage

    docs = [Doc(f"d{i}", f"passage {i} about {'cats' if i % 3 else 'dogs'} and number {i % 7} in town {i % 5}")
            for i in range(40)]
    write_corpus_jsonl(docs, tmp_path / "c.jsonl")
    write_queries_tsv([Query("q1", "cats town 3"), Query("q2", "dogs number 4")], tmp_path / "q.tsv")
    queries = {"test": tmp_path / "q.tsv"}
    inputs = BM25Inputs(tmp_path / "c.jsonl", "en", queries)
    bm25_stage(inputs, BM25Config(), tmp_path / "mem", LocalExecutor())
    bm25_stage(inputs, BM25Config(max_docs_in_memory=7), tmp_path / "ooc", LocalExecutor())
    assert (tmp_path / "mem" / "run.test.trec").read_bytes() == (tmp_path / "ooc" / "run.test.trec").read_bytes()
    assert (tmp_path / "ooc" / "run.test.trec").read_text().count("\n") > 10


def test_the_cli_builds_out_of_core_by_default_with_the_same_scores(tmp_path, monkeypatch):
    """`lexdr index sparse` takes the out-of-core builder by default (the faster path: benchmarks/bm25_build.py),
    `--max-docs-in-memory N` sets its shard budget (the setting the pipeline's [bm25] section has), and both
    indexes search exactly like the in-memory one."""
    from lexdr.cli import main
    from lexdr.formats import read_run, write_corpus_jsonl, write_queries_tsv
    from lexdr.records import Doc, Query
    from lexdr.sparse.config import DEFAULT_MAX_DOCS_IN_MEMORY

    docs = [Doc(f"d{i}", f"passage {i} about topic {i % 13} with word{i % 7} and more{i % 5}") for i in range(300)]
    write_corpus_jsonl(docs, tmp_path / "c.jsonl")
    write_queries_tsv([Query("q1", "topic 3 word2"), Query("q2", "more4 passage")], tmp_path / "q.tsv")
    BM25Index.build(docs, lang="en").save(tmp_path / "mem")
    import lexdr.sparse.outofcore as outofcore

    calls = []
    real = outofcore.build_out_of_core
    monkeypatch.setattr(outofcore, "build_out_of_core",
                        lambda *a, **k: calls.append(k["max_docs_in_memory"]) or real(*a, **k))
    for name, extra in (("default", []), ("ooc", ["--max-docs-in-memory", "64"])):
        assert main(["-q", "index", "sparse", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / name),
                     "--lang", "en", *extra]) == 0
    assert calls == [DEFAULT_MAX_DOCS_IN_MEMORY, 64]  # both out of core; the second 64 passages at a time
    runs = {}
    for name in ("mem", "default", "ooc"):
        assert main(["-q", "search", str(tmp_path / name), str(tmp_path / "q.tsv"), "--out",
                     str(tmp_path / f"{name}.trec")]) == 0
        runs[name] = {q: [(h.doc_id, h.score) for h in hits] for q, hits in read_run(tmp_path / f"{name}.trec").items()}
    assert runs["mem"] == runs["default"] == runs["ooc"]


def test_sorted_term_frequency_path_equals_in_memory(tmp_path, monkeypatch):
    """Where (length, tf) pairs are too many for a lookup table, they are found by sorting: the same scores."""
    import lexdr.sparse.outofcore as ooc

    monkeypatch.setattr(ooc, "_DENSE_KEYS", 0)
    BM25Index.build(DOCS, lang="en").save(tmp_path / "mem")
    ooc.build_out_of_core(DOCS, tmp_path / "ooc", lang="en", max_docs_in_memory=2, n_jobs=1)
    _same_index(tmp_path / "mem", tmp_path / "ooc")


def test_shard_term_ids_follow_first_appearance_across_chunks():
    """A shard's terms get ids in order of first appearance (as build_vocab numbers them), over several chunks
    of analysis, each mapping every text to exactly the analyzer's terms."""
    from lexdr.analysis import get_analyzer
    from lexdr.sparse.outofcore import _term_ids
    from lexdr.sparse.vocab import build_vocab

    analyzer = get_analyzer("en")
    texts = [f"the word{i % 997} and term{i % 31} or running{i % 7} w{i}" for i in range(2600)] + [""]
    flat, lens, terms = _term_ids(analyzer, texts)
    expected = [analyzer(t) for t in texts]
    ids, vocab = build_vocab(expected)
    assert terms == list(vocab)
    assert lens.tolist() == [len(t) for t in expected]
    assert flat.tolist() == [i for doc in ids for i in doc]


def test_the_shard_budget_is_an_execution_option():
    """max_docs_in_memory changes how the index is built, never its contents (the tests above): a stage
    fingerprint leaves it out, so changing it (or its default) does not rebuild anything downstream."""
    from lexdr.settings import fingerprint_fields
    from lexdr.sparse.config import BM25Config

    assert "max_docs_in_memory" not in fingerprint_fields(BM25Config)
    assert {"analyzer", "k1", "b", "depth"} <= set(fingerprint_fields(BM25Config))

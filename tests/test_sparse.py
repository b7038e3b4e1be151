"""BM25Index on an inline corpus: exact rankings, persistence, edge cases, parity with plain bm25s."""

from __future__ import annotations

import json
from pathlib import Path

import bm25s
import numpy as np
import pytest

from lexdr.analysis import get_analyzer
from lexdr.errors import ConfigError, LexdrError
from lexdr.formats import read_run
from lexdr.records import Doc, Query
from lexdr.sparse import BM25Index, build_index, search_index

DOCS = [
    Doc("d1", "Paris is the capital and largest city of France.", title="Paris"),
    Doc("d2", "Berlin is the capital of Germany; the city hosts the Bundestag.", title="Berlin"),
    Doc("d3", "France and Germany share a long border along the Rhine."),
    Doc("d4", "The Rhine flows from the Alps to the North Sea."),
    Doc("d5", "Cats sleep for most of the day."),
]


@pytest.fixture(scope="module")
def index() -> BM25Index:
    return BM25Index.build(DOCS, lang="en", k1=0.9, b=0.4)


def _ids(hits):
    return [h.doc_id for h in hits]


def test_exact_top_k(index):
    run = index.search([Query("q1", "capital of France"), Query("q2", "the Rhine river"),
                        Query("q3", "sleeping cats"), Query("q4", "city border")], k=3)
    # d1 holds both 'capit' and 'franc'; d2 and d3 one each, with equal df and length: a tie, by doc id.
    assert _ids(run["q1"]) == ["d1", "d2", "d3"]
    assert run["q1"][1].score == run["q1"][2].score
    # 'border' is rarest (d3); 'citi' is in d1 and d2, and d1 (6 terms) is shorter than d2 (7 terms).
    assert _ids(run["q4"]) == ["d3", "d1", "d2"]
    assert _ids(run["q2"]) == ["d4", "d3"]  # only the two documents with 'rhine' match
    assert _ids(run["q3"]) == ["d5"]  # 'sleeping' -> 'sleep' (Porter), 'cats' -> 'cat'
    scores = [h.score for h in run["q1"]]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)


def test_scores_equal_plain_bm25s_on_the_same_terms(index):
    analyzer = get_analyzer("en")
    terms = [analyzer(d.full_text()) for d in DOCS]
    plain = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    plain.index(terms, show_progress=False)
    for text in ("capital of France", "the Rhine river", "city border"):
        expected = plain.get_scores(analyzer(text))
        hits = index.search([Query("q", text)], k=10)["q"]
        assert hits, text
        for h in hits:
            assert h.score == pytest.approx(float(expected[int(h.doc_id[1:]) - 1]), rel=1e-6)
        # and every document bm25s scores above zero is a hit
        assert sorted(_ids(hits)) == sorted(f"d{i + 1}" for i in np.flatnonzero(expected > 0))


def test_few_postings_are_summed_over_their_documents_with_the_same_result(monkeypatch):
    """A query with few postings against N is summed over the documents it names (``np.unique``), not into an array
    of all N: the same hits, order, float64 scores and dtypes as the N-array path, ties and single terms included."""
    import lexdr.sparse.index as sparse_index

    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(60)]
    docs = [Doc(f"d{i:03d}", " ".join(rng.choice(words, size=int(rng.integers(1, 12)), p=np.arange(60, 0, -1) /
                                                       1830))) for i in range(400)]
    docs += [Doc("dup-b", "w58 w59"), Doc("dup-a", "w58 w59")]  # equal postings: a tie broken by id
    idx = BM25Index.build(docs, lang="en", k1=0.9, b=0.4)
    queries = [Query(f"q{i}", " ".join(rng.choice(words, size=int(rng.integers(1, 5))))) for i in range(200)]
    queries += [Query("rare", "w59"), Query("two-rare", "w58 w59"), Query("common", "w0 w1 w2")]
    runs, dtypes = {}, {}
    for name, ratio in [("N array", 10**12), ("distinct documents", 0), ("default", sparse_index.SPARSE_QUERY_RATIO)]:
        monkeypatch.setattr(sparse_index, "SPARSE_QUERY_RATIO", ratio)
        runs[name] = idx.search(queries, k=10, n_threads=1)
        dtypes[name] = {(d.dtype, s.dtype) for d, s in idx.rank_ids([[0], [0, 1], [1, 2, 3]], k=10)}
    assert _ids(runs["distinct documents"]["two-rare"])[:2] == ["dup-a", "dup-b"]
    assert sum(len(hits) for hits in runs["N array"].values()) > 1000  # the queries do match
    assert runs["N array"] == runs["distinct documents"] == runs["default"]
    assert dtypes["N array"] == dtypes["distinct documents"] == {(np.dtype(np.int64), np.dtype(np.float64))}


def test_k_larger_than_corpus_is_clipped(index):
    hits = index.search([Query("q", "the capital city of France and Germany")], k=1000)["q"]
    assert _ids(hits) == ["d1", "d2", "d3"]


def test_empty_queries_get_no_hits(index):
    run = index.search([Query("stop", "the of and"), Query("oov", "zebra quantum"), Query("blank", "  ")], k=5)
    assert run == {"stop": [], "oov": [], "blank": []}


def test_ties_are_ordered_by_doc_id():
    docs = [Doc(i, "same words here") for i in ("d7", "d10", "d2", "d9")] + [Doc("x", "other text entirely")]
    idx = BM25Index.build(docs, lang="en")
    hits = idx.search([Query("q", "same words")], k=10)["q"]
    assert _ids(hits) == ["d10", "d2", "d7", "d9"]  # string order, as records/runs sort ties
    assert len({h.score for h in hits}) == 1
    # the cut at k falls inside the tie: still the smallest ids
    assert _ids(idx.search([Query("q", "same words")], k=2)["q"]) == ["d10", "d2"]


def test_a_loaded_index_holds_its_ids_and_vocabulary_compactly(tmp_path):
    """Issue 21: a search's peak must not grow faster than its index. A loaded index keeps its doc ids as one
    UTF-8 blob + offsets and its vocabulary as sorted terms + an id array, not one Python object per document
    and per term; it searches and answers like the index it was saved from (non-ASCII ids and terms too)."""
    from lexdr.doc_ids import DocIds
    from lexdr.sparse.vocab import CompactVocab

    docs = DOCS + [Doc("δ-7", "Zürich liegt an der Limmat, nahe den Alpen."), Doc("東京#2", "Rhine Zürich Alpen")]
    built = BM25Index.build(docs, lang="en")
    loaded = BM25Index.load(built.save(tmp_path / "idx"))
    assert isinstance(loaded.doc_ids, DocIds) and isinstance(loaded._vocab, CompactVocab)
    assert isinstance(loaded.retriever.vocab_dict, CompactVocab)  # bm25s' dict is not kept beside it
    assert list(loaded.doc_ids) == [d.doc_id for d in docs] and loaded.vocab_size == built.vocab_size
    assert dict(loaded._vocab.items()) == built._vocab
    assert loaded._vocab.get("zzz-not-a-term") is None and "zzz-not-a-term" not in loaded._vocab
    with pytest.raises(KeyError):
        loaded._vocab["zzz-not-a-term"]
    queries = [Query("q1", "capital of France"), Query("q2", "Rhine Alpen"), Query("q3", "Zürich"),
               Query("q4", "nothing matches zzz")]
    assert loaded.search(queries, k=4) == built.search(queries, k=4)
    run = loaded.search(queries, k=4)
    assert {h.doc_id for h in run["q3"]} == {"δ-7", "東京#2"}
    shared = [h.doc_id for hits in run.values() for h in hits if h.doc_id == "東京#2"]
    assert len(shared) >= 2 and all(x is shared[0] for x in shared)  # one str per document hit, not per hit


def test_load_reads_the_compact_copies_and_a_folder_without_them_from_its_json(tmp_path, monkeypatch):
    """``load`` reads the ids and vocabulary from their compact copies (no JSON parse: a str per id and per term at
    once), which both builders write; a folder written before them is read from its JSON, with the same answers;
    a vocabulary that does not match config.json's count is a damaged folder."""
    from lexdr.sparse.outofcore import build_out_of_core

    docs = DOCS + [Doc("δ-7", "Zürich liegt an der Limmat, nahe den Alpen."), Doc("東京#2", "Rhine Zürich Alpen")]
    queries = [Query("q1", "capital of France"), Query("q2", "Rhine Alpen"), Query("q3", "Zürich")]
    compact = ("doc_ids.utf8", "doc_ids.offsets.npy", "vocab.terms.utf8", "vocab.terms.offsets.npy", "vocab.ids.npy")
    in_memory = BM25Index.build(docs, lang="en").save(tmp_path / "mem")
    streamed = build_out_of_core(iter(docs), tmp_path / "ooc", lang="en", max_docs_in_memory=3, n_jobs=1)
    for name in compact:
        assert (in_memory / name).read_bytes() == (Path(streamed) / name).read_bytes(), name
    expected = BM25Index.load(in_memory).search(queries, k=4)
    json_loads = json.loads
    monkeypatch.setattr(json, "loads", lambda text, *a, **kw: pytest.fail("a JSON list or dict was parsed")
                        if isinstance(text, str) and text[:1] in "[" or text[:2] == '{"' and len(text) > 200
                        else json_loads(text, *a, **kw))
    assert BM25Index.load(streamed).search(queries, k=4) == expected
    monkeypatch.setattr(json, "loads", json_loads)
    for name in compact:
        (in_memory / name).unlink()
    assert BM25Index.load(in_memory).search(queries, k=4) == expected
    config = json.loads((in_memory / "config.json").read_text(encoding="utf-8"))
    (Path(streamed) / "config.json").write_text(json.dumps({**config, "vocab_size": config["vocab_size"] + 1}),
                                                encoding="utf-8")
    with pytest.raises(LexdrError, match="terms in its vocabulary but .* in config.json: the folder is damaged"):
        BM25Index.load(streamed)


def test_the_stage_search_streams_its_run_batch_by_batch(index, tmp_path, monkeypatch):
    """Issue 21: the BM25 stage's search writes each query file's run as it is ranked, a batch of queries at a
    time (BM25Index.iter_search), never holding every hit: the same bytes as the whole run written at once."""
    from lexdr.executors import LocalExecutor
    from lexdr.formats import write_queries_tsv, write_run
    from lexdr.retrieval import SearchConfig, write_runs

    queries = [Query(f"q{i}", text) for i, text in enumerate(
        ["capital of France", "Rhine", "nothing matches zzz", "Berlin city", "cats", "France Germany border"])]
    assert list(index.iter_search(queries, k=3, batch=4)) == list(index.search(queries, k=3).items())
    write_run(index.search(queries, k=3), tmp_path / "whole.trec", tag="bm25")
    write_queries_tsv(queries, tmp_path / "q.tsv")
    batches = []
    search_terms = BM25Index.search_terms
    monkeypatch.setattr(BM25Index, "search", lambda *a, **kw: pytest.fail("the whole run was searched at once"))
    monkeypatch.setattr(BM25Index, "search_terms",
                        lambda self, ids, terms, **kw: batches.append(len(ids)) or search_terms(self, ids, terms, **kw))
    monkeypatch.setattr("lexdr.sparse.index.SEARCH_BATCH", 4)
    write_runs(index, tmp_path, {"run.streamed.trec": tmp_path / "q.tsv"}, SearchConfig(depth=3, tag="bm25"),
               tmp_path, LocalExecutor())
    assert batches == [4, 2]
    assert (tmp_path / "run.streamed.trec").read_bytes() == (tmp_path / "whole.trec").read_bytes()


def test_save_then_load_mmap_gives_identical_results(index, tmp_path):
    queries = [Query("q1", "capital of France"), Query("q2", "Rhine"), Query("q3", "nothing matches zzz")]
    folder = index.save(tmp_path / "idx")
    loaded = BM25Index.load(folder, mmap=True)
    assert isinstance(loaded.retriever.scores["data"], np.memmap)
    assert loaded.analyzer == index.analyzer and (loaded.k1, loaded.b) == (index.k1, index.b)
    assert loaded.search(queries, k=5) == index.search(queries, k=5)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["analyzer"]["stemmer"] == "snowball:porter" and config["num_docs"] == len(DOCS)
    # no pickle anywhere: every array loads with allow_pickle=False
    for npy in folder.glob("*.npy"):
        np.load(npy, allow_pickle=False)


def test_save_replaces_an_index_but_not_other_folders(index, tmp_path):
    folder = tmp_path / "idx"
    index.save(folder)
    BM25Index.build(DOCS[:2], lang="en").save(folder)  # overwrite: atomic rename
    assert BM25Index.load(folder).num_docs == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(LexdrError, match=r"not part of a sparse \(BM25\) index"):
        index.save(other)
    assert (other / "keep.txt").read_text() == "mine"


def test_load_rejects_a_folder_that_is_not_an_index(tmp_path):
    with pytest.raises(LexdrError, match="not a lexdr BM25 index"):
        BM25Index.load(tmp_path)


def test_bad_parameters_are_config_errors(index):
    with pytest.raises(ConfigError):
        BM25Index(get_analyzer("en"), method="bm25+")
    with pytest.raises(ConfigError):
        BM25Index(get_analyzer("en"), b=1.5)
    with pytest.raises(ConfigError):
        index.search([Query("q", "paris")], k=0)
    with pytest.raises(LexdrError, match="empty"):
        BM25Index.build([], lang="en")


@pytest.mark.parametrize("analyzer", ["fugashi", None])
def test_japanese_index_with_segmenter_and_default(analyzer):
    docs = [Doc("a", "東京都は日本の首都です。"), Doc("b", "大阪は食べ物で有名です。")]
    idx = BM25Index.build(docs, lang="ja", analyzer=analyzer)
    assert _ids(idx.search([Query("q", "日本の首都")], k=5)["q"]) == ["a"]


def test_stage_functions_read_and_write_files(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": d.doc_id, "title": d.title, "text": d.text}) + "\n"
                              for d in DOCS), encoding="utf-8")
    queries = tmp_path / "queries.tsv"
    queries.write_text("q1\tcapital of France\nq2\tzebra\n", encoding="utf-8")
    out = build_index(corpus, "en", tmp_path / "index", k1=1.2, b=0.75)
    run_path = search_index(out, queries, tmp_path / "run.trec", k=2)
    run = read_run(run_path)
    assert _ids(run["q1"]) == ["d1", "d2"] and "q2" not in run  # a query without hits writes no line
    assert BM25Index.load(out).k1 == 1.2

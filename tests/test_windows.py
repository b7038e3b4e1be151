"""Long passages as overlapping token windows, searched by their best window (MaxP)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from lexdr.dense import DenseIndex, Encoder, EncoderConfig
from lexdr.dense.encoder import window_spans
from lexdr.errors import ConfigError

WORDS = ("the cat sat on the mat a dog barked at the mailman paris is the capital of france tokyo is the "
         "capital of japan the nile is a river in africa python is a programming language").split()
LONG = " ".join(WORDS[i % len(WORDS)] for i in range(150))  # ~150 tokens with the tiny tokenizer
SHORT = "the cat sat on the mat"


@pytest.mark.parametrize("n,size,stride", [(10, 4, 2), (11, 4, 2), (100, 30, 15), (31, 30, 15), (30, 30, 7),
                                           (1, 5, 5), (17, 5, 5), (17, 5, 1)])
def test_windows_cover_the_whole_passage_with_the_given_stride(n, size, stride):
    spans = window_spans(n, size, stride)
    covered = set()
    for start, end in spans:
        assert 0 <= start < end <= n and end - start <= size
        covered |= set(range(start, end))
    assert covered == set(range(n))
    starts = [s for s, _ in spans]
    assert starts[0] == 0 and spans[-1][1] == n
    assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:]))
    if n > size:
        assert all(e - s == size for s, e in spans)  # every window is full
        assert starts[:-1] == list(range(0, n - size, stride))


def test_bad_strides_are_refused(tiny_encoder_dir):
    with pytest.raises(ConfigError):
        window_spans(10, 4, 5)
    for bad in (0, 32, 40):
        with pytest.raises(ConfigError):
            EncoderConfig(model=str(tiny_encoder_dir), max_seq_length=32, window_stride=bad)
    enc = Encoder(EncoderConfig(model=str(tiny_encoder_dir), max_seq_length=32, window_stride=31, show_progress=False))
    with pytest.raises(ConfigError, match="larger than a window"):  # 31 > 32 - prompt - [CLS]/[SEP]
        enc.window_texts([LONG])


@pytest.fixture(scope="module")
def windowed(tiny_encoder_dir):
    return Encoder(EncoderConfig(model=str(tiny_encoder_dir), max_seq_length=32, window_stride=12, batch_size=8,
                                 show_progress=False))


def test_encoder_windows_fit_the_model_and_cover_every_token(windowed):
    tok = windowed.model.tokenizer
    texts, owner = windowed.window_texts([SHORT, LONG, SHORT])
    assert texts[0] == SHORT and texts[-1] == SHORT  # a passage that fits is one window, its own text
    assert owner.tolist() == [0] + [1] * (len(texts) - 2) + [2]
    long_windows = texts[1:-1]
    assert len(long_windows) > 5
    for w in long_windows:  # prompt + window + [CLS]/[SEP] fits in max_seq_length: nothing is cut off
        assert len(tok(windowed.passage_prompt + w)["input_ids"]) <= 32
        assert w in LONG
    # every token of the passage is in some window, in order: the first window starts the passage, the last ends it
    assert LONG.startswith(long_windows[0]) and LONG.endswith(long_windows[-1])
    ids = tok(LONG, add_special_tokens=False)["input_ids"]
    seen, start = set(), -1
    for w in long_windows:
        start = LONG.index(w, start + 1)  # windows come in order; the text repeats, so search past the last one
        seen |= set(range(len(tok(LONG[:start], add_special_tokens=False)["input_ids"]),
                          len(tok(LONG[:start + len(w)], add_special_tokens=False)["input_ids"])))
    assert seen == set(range(len(ids)))


def test_no_passages_no_windows(windowed):
    # a shard or a training set with no passage at all (e.g. no mined example cites one): an empty map, not a
    # tokenizer error
    texts, owner = windowed.window_texts([])
    assert texts == [] and owner.shape == (0,) and owner.dtype == np.int64
    vecs = windowed.encode_passage_windows([])
    assert vecs.embeddings.shape == (0, windowed.dim) and len(vecs.passage_index) == 0


def test_encode_passage_windows_vectors_and_off_switch(windowed, tiny_encoder_dir):
    emb, owner = windowed.encode_passage_windows([LONG, SHORT])
    texts, _ = windowed.window_texts([LONG, SHORT])
    assert emb.shape == (len(texts), windowed.dim) and owner.tolist() == [0] * (len(texts) - 1) + [1]
    np.testing.assert_allclose(emb, windowed.encode_passages(texts), atol=1e-5)
    plain = Encoder(EncoderConfig(model=str(tiny_encoder_dir), max_seq_length=32, show_progress=False))
    emb0, owner0 = plain.encode_passage_windows([LONG, SHORT])
    assert owner0.tolist() == [0, 1]
    np.testing.assert_allclose(emb0, plain.encode_passages([LONG, SHORT]), atol=1e-5)
    assert windowed.describe()["window_stride"] == 12  # an index records how its passages were cut


def test_maxp_search_returns_each_doc_once_with_its_best_window():
    rng = np.random.default_rng(0)
    dim = 16
    query = rng.normal(size=(2, dim)).astype(np.float32)
    # doc "a" has 40 windows that all beat every other passage: a plain top-k would be all "a"
    a = np.repeat(query[:1], 40, axis=0) + rng.normal(scale=0.01, size=(40, dim)).astype(np.float32)
    others = rng.normal(size=(30, dim)).astype(np.float32)
    ids = ["a"] * 40 + [f"d{i // 3}" for i in range(30)]  # d0..d9, three windows each
    emb = np.concatenate([a, others])
    index = DenseIndex.build(emb, ids)
    run = index.search_vectors(["q1", "q2"], query, k=5)
    scores = query @ emb.T
    for row, qid in enumerate(["q1", "q2"]):
        hits = run[qid]
        assert len(hits) == 5 and len({h.doc_id for h in hits}) == 5
        best = {}
        for i, d in enumerate(ids):
            best[d] = max(best.get(d, -np.inf), float(scores[row, i]))
        expected = sorted(best.items(), key=lambda t: (-t[1], t[0]))[:5]
        assert [h.doc_id for h in hits] == [d for d, _ in expected]
        assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-4)
    assert run["q1"][0].doc_id == "a"
    # asking for more than there are distinct passages returns each once
    assert sorted(h.doc_id for h in index.search_vectors(["q"], query[:1], k=100)["q"]) == sorted(set(ids))


# ------------------------------------------------------------------ windows wherever the pipeline reads passages
from lexdr.dense import DenseConfig, DenseInputs, build_dense_index, dense_stage  # noqa: E402
from lexdr.executors import LocalExecutor  # noqa: E402
from lexdr.formats import read_run, write_corpus_jsonl, write_queries_tsv  # noqa: E402
from lexdr.records import Doc, Query  # noqa: E402

QUERIES = [Query("q1", "capital of japan"), Query("q2", "a river in africa"), Query("q3", "the cat sat")]


def _maxp(enc: Encoder, texts: dict[str, str], queries: list[Query]) -> dict[str, dict[str, float]]:
    """Brute force: each query's score for each passage = its best window's (what MaxP must return)."""
    ids = list(texts)
    emb, owner = enc.encode_passage_windows([texts[d] for d in ids])
    q = enc.encode_queries([x.text for x in queries])
    scores = q @ emb.T
    return {x.query_id: {d: float(scores[r, owner == i].max()) for i, d in enumerate(ids)}
            for r, x in enumerate(queries)}


@pytest.fixture
def long_corpus(tmp_path):
    texts = {"long": LONG, "short": SHORT, "mid": " ".join(WORDS[:20]), "tail": " ".join(WORDS[-12:])}
    path = tmp_path / "corpus.jsonl"
    write_corpus_jsonl([Doc(d, t) for d, t in texts.items()], path)
    qpath = tmp_path / "queries.tsv"
    write_queries_tsv(QUERIES, qpath)
    return texts, path, qpath


def test_indexing_stores_every_window_under_its_passage_id(windowed, long_corpus, tmp_path):
    texts, corpus, _ = long_corpus
    folder = build_dense_index(corpus, tmp_path / "index", encoder=windowed)
    index = DenseIndex.load(folder)
    _, owner = windowed.window_texts(list(texts.values()))
    assert index.doc_ids == [list(texts)[i] for i in owner]  # the long passage: one row per window
    assert index.doc_ids.count("long") > 5 and index.meta["encoder"]["window_stride"] == 12
    emb, _ = windowed.encode_passage_windows(list(texts.values()))
    np.testing.assert_allclose(index.index.reconstruct_n(0, index.index.ntotal), emb, atol=1e-5)
    # cut at max_seq_length without a stride: one row per passage, as before
    plain = Encoder(dataclasses.replace(windowed.config, window_stride=None), model=windowed.model)
    assert DenseIndex.load(build_dense_index(corpus, tmp_path / "plain", encoder=plain)).doc_ids == list(texts)


def test_mining_reads_dense_runs_scored_by_the_best_window(windowed, long_corpus, tmp_path):
    """The dense stage (whose unlabeled run mining reads) searches the windowed index: each passage once, with
    its best window's score."""
    texts, corpus, queries = long_corpus
    dense_stage(DenseInputs(corpus, {"unlabeled": queries}), DenseConfig(windowed.config, depth=10), tmp_path / "dense",
                LocalExecutor())
    run = read_run(tmp_path / "dense" / "run.unlabeled.trec")
    expected = _maxp(windowed, texts, QUERIES)
    for qid, hits in run.items():
        assert sorted(h.doc_id for h in hits) == sorted(texts)
        assert {h.doc_id: h.score for h in hits} == pytest.approx(expected[qid], abs=1e-4)


def test_pipeline_passes_the_stride_to_indexing_mining_and_training(tmp_path, tiny_encoder_dir):
    from fixtures.tiny_corpus import write_tiny_config
    from lexdr.pipeline import load_config, method_graph

    cfg_path = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run", run_extra="rounds = 2")
    specs = {s.name: s for s in method_graph(load_config(cfg_path, overrides={"dense": {"window_stride": 12}}))}
    for name in ("tiny-en/dense-base", "tiny-en/dense-r1", "tiny-en/dense-r2"):
        assert specs[name].config.encoder.window_stride == 12
    assert specs["tiny-en/mine"].inputs.dense_run.parent.name == "dense-base"
    assert specs["train-r1"].inputs.windows.model == str(tiny_encoder_dir)  # the teacher's dense side
    assert specs["train-r2"].inputs.windows.model.endswith("train-r1/model")  # round 2 mined with the r1 model
    assert specs["train-r1"].fingerprint["windows"]["window_stride"] == 12
    plain = {s.name: s for s in method_graph(load_config(cfg_path))}
    assert plain["train-r1"].inputs.windows is None and "windows" not in plain["train-r1"].fingerprint


def test_generation_round_trip_searches_the_windowed_index(windowed, long_corpus, tmp_path):
    from lexdr.generation.filters import round_trip_ranks
    from lexdr.retrieval import load_retriever

    texts, corpus, _ = long_corpus
    folder = build_dense_index(corpus, tmp_path / "index", encoder=windowed)
    retriever = load_retriever(folder)  # how generate_stage opens the dense index
    assert retriever.encoder.config.window_stride == 12
    expected = _maxp(windowed, texts, QUERIES)
    own = ["long", "tail", "short"]
    ranks = round_trip_ranks(QUERIES, own, retriever, k=4)
    for q, d, rank in zip(QUERIES, own, ranks):
        order = sorted(expected[q.query_id], key=lambda x: (-expected[q.query_id][x], x))
        assert rank == order.index(d) + 1


def test_training_takes_the_window_the_teacher_favoured(windowed, tiny_encoder_dir):
    from lexdr.training import TrainingExample
    from lexdr.training.windows import teacher_windows

    passages = {"en/long": LONG, "en/short": SHORT}
    examples = [TrainingExample(query=q.text, candidate_ids=["en/long", "en/short"], teacher_scores=[1.0, 0.5],
                                positive_id="en/long", negative_ids=["en/short"]) for q in QUERIES]
    examples.append(TrainingExample(query="only short", candidate_ids=["en/short"], teacher_scores=[1.0]))
    teacher = EncoderConfig(model=str(tiny_encoder_dir), window_stride=12, show_progress=False)
    out, texts = teacher_windows(examples, passages, teacher, max_passage_length=32, encoder=windowed)
    # the brute-force choice: windows of the trainer's 32 tokens every 12, scored by the teacher encoder
    enc = Encoder(dataclasses.replace(teacher, max_seq_length=32), model=windowed.model)
    win, _ = enc.window_texts([LONG])
    w_emb = enc.encode_passages(win)
    for e, q in zip(out, QUERIES):
        best = int(np.argmax(w_emb @ enc.encode_queries([q.text])[0]))
        assert e.candidate_ids == [f"en/long#window{best}", "en/short"] and e.positive_id == f"en/long#window{best}"
        assert texts[e.positive_id] == win[best] and win[best] in LONG
    assert out[-1] == examples[-1]  # nothing long cited: unchanged
    assert texts["en/short"] == SHORT
    unchanged, _ = teacher_windows(examples, passages, dataclasses.replace(teacher, window_stride=None), 32)
    assert unchanged == examples


def test_a_windowed_run_end_to_end(tmp_path, tiny_encoder_dir):
    """[dense] window_stride in a whole run: the base index holds windows, round-1 training takes the teacher's
    windows, every system is evaluated."""
    from fixtures.tiny_corpus import write_tiny_config
    from lexdr.pipeline import load_config, run_pipeline

    cfg_path = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run", epochs=1)
    cfg = load_config(cfg_path, overrides={"dense": {"max_seq_length": 12, "window_stride": 5},
                                           "training": {"max_passage_length": 12}})
    results = run_pipeline(cfg, quiet=True, report=False)["tiny-en"]
    run = tmp_path / "run"
    index = DenseIndex.load(run / "tiny-en" / "dense-base" / "index")
    assert len(index.doc_ids) > len(set(index.doc_ids)) == 24  # some passages are several windows
    train = json.loads((run / "train-r1" / "done.json").read_text())["result"]
    assert 0 < train["examples_with_windows"] <= train["examples"]
    assert {"lexdr-r1", "adaptive-hybrid-lexdr-r1"} <= set(results)

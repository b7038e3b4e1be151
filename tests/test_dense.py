"""Dense retrieval with a tiny encoder: prompts, FAISS index types, save/load, shard resume, the stage API."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lexdr.dense import DenseIndex, Encoder, EncoderConfig, build_dense_index, dense_search
from lexdr.dense.encoder import default_prompts
from lexdr.dense.stage import encode_corpus
from lexdr.errors import ConfigError, LexdrError
from lexdr.formats import read_run, write_corpus_jsonl, write_queries_tsv
from lexdr.records import Doc, Query

DOCS = [Doc(f"d{i}", t) for i, t in enumerate(["paris is the capital of france", "tokyo is the capital of japan",
                                               "the nile is a river in africa", "python is a programming language",
                                               "the cat sat on the mat", "a dog barked at the mailman"])]


@pytest.fixture(scope="module")
def encoder(tiny_encoder_dir):
    return Encoder(EncoderConfig(model=str(tiny_encoder_dir), max_seq_length=32, batch_size=4, show_progress=False))


def test_prompts_from_the_model_folder_and_family_defaults(encoder, tiny_encoder_dir):
    assert (encoder.query_prompt, encoder.passage_prompt) == ("query: ", "passage: ")
    explicit = Encoder(EncoderConfig(model=str(tiny_encoder_dir), query_prompt="", passage_prompt="",
                                     show_progress=False))
    assert (explicit.query_prompt, explicit.passage_prompt) == ("", "")
    assert default_prompts("intfloat/multilingual-e5-small") == ("query: ", "passage: ")
    # The prompt changes the vectors: it is really applied.
    a = encoder.encode_queries(["capital of france"])
    b = explicit.encode_queries(["capital of france"])
    assert not np.allclose(a, b)


def test_embeddings_are_unit_vectors_and_match_plain_encode(encoder):
    emb = encoder.encode_passages([d.text for d in DOCS])
    assert emb.shape == (6, encoder.dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    plain = encoder.model.encode(["passage: " + d.text for d in DOCS], normalize_embeddings=True)
    np.testing.assert_allclose(emb, plain, atol=1e-5)
    assert encoder.encode_queries([]).shape == (0, encoder.dim)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_index_search_equals_brute_force_and_survives_save_load(encoder, tmp_path, kind):
    emb = encoder.encode_passages([d.text for d in DOCS])
    index = DenseIndex.build(emb, [d.doc_id for d in DOCS], kind)
    q = encoder.encode_queries(["capital of japan", "river"])
    run = index.search_vectors(["q1", "q2"], q, k=3)
    brute = q @ emb.T
    for row, qid in enumerate(["q1", "q2"]):
        expected = [DOCS[i].doc_id for i in np.argsort(-brute[row], kind="stable")[:3]]
        assert [h.doc_id for h in run[qid]] == expected
        assert run[qid][0].score == pytest.approx(float(brute[row].max()), abs=1e-5)
    index.save(tmp_path / "idx")
    again = DenseIndex.load(tmp_path / "idx")
    assert again.search_vectors(["q1", "q2"], q, k=3) == run
    assert again.meta["index_type"] == kind
    assert len(index.search_vectors(["q1"], q[:1], k=50)["q1"]) == 6  # k above the corpus size is clipped


def test_ivf_needs_enough_passages_and_load_needs_a_complete_index(tmp_path):
    with pytest.raises(LexdrError, match="needs >= "):
        DenseIndex.build(np.eye(4, dtype=np.float32), list("abcd"), "ivf")
    with pytest.raises(LexdrError, match="not a complete lexdr dense index"):
        DenseIndex.load(tmp_path)


def test_stage_api_writes_index_and_run_and_resumes_from_shards(encoder, tmp_path, monkeypatch):
    corpus, queries = tmp_path / "corpus.jsonl", tmp_path / "q.tsv"
    write_corpus_jsonl(DOCS, corpus)
    write_queries_tsv([Query("q1", "capital of japan")], queries)
    # A run killed after the first shard leaves that shard on disk ...
    calls = []
    original = Encoder.encode_passage_ids  # the corpus is encoded from its token ids (lexdr.dense.token_ids)

    def counting(self, ids, lengths, chars=None):
        calls.append(len(lengths))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return original(self, ids, lengths, chars)

    monkeypatch.setattr(Encoder, "encode_passage_ids", counting)
    with pytest.raises(KeyboardInterrupt):
        encode_corpus(corpus, encoder, tmp_path / "idx", shard_size=4)
    assert (tmp_path / "idx" / "shards" / "000000.npy").exists()
    # ... and the next run encodes only the missing shard.
    calls.clear()
    monkeypatch.setattr(Encoder, "encode_passage_ids",
                        lambda self, *tokens: (calls.append(len(tokens[1])), original(self, *tokens))[1])
    build_dense_index(corpus, tmp_path / "idx", encoder=encoder, shard_size=4)
    assert calls == [2]
    assert not (tmp_path / "idx" / "shards").exists() and not (tmp_path / "idx" / "tokens").exists()
    meta = json.loads((tmp_path / "idx" / "config.json").read_text())
    assert meta["encoder"]["query_prompt"] == "query: "
    run = dense_search(tmp_path / "idx", queries, tmp_path / "run.trec", k=3, encoder=encoder)
    assert read_run(tmp_path / "run.trec") == {q: [h._replace(score=round(h.score, 6)) for h in hits]
                                               for q, hits in run.items()}


def test_bad_encoder_config():
    with pytest.raises(ConfigError):
        EncoderConfig(max_seq_length=2)

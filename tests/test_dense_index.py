"""Dense indexes that fit: auto index type, sample-trained compressed indexes, float16 shards, shard merging,
damaged and foreign files. A deterministic fake encoder stands in for a model: these tests need no data."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from lexdr.dense import DenseRetriever, Encoder, EncoderConfig, build_dense_index
from lexdr.dense.index import (DenseIndex, DenseIndexConfig, IndexType, ShardedDenseIndex, open_dense_index,
                               verify_index_folder)
from lexdr.dense.stage import encode_corpus
from lexdr.errors import ConfigError, LexdrError
from lexdr.formats import write_corpus_jsonl
from lexdr.records import Doc, Query

DIM = 16


@pytest.fixture(autouse=True)
def one_faiss_thread():
    """FAISS trains these tiny indexes in a second on one thread; with OpenMP's two threads on a busy shared
    2-core machine the same training took 20x longer (threads spin at every barrier)."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


class HashModel:
    """sentence-transformers' ``encode`` surface: a unit vector seeded by a hash of prompt + text."""

    def __init__(self):
        self.max_seq_length = 32
        self.device = SimpleNamespace(type="cpu")
        self.prompts = {}
        self.calls: list[int] = []

    def get_sentence_embedding_dimension(self) -> int:
        return DIM

    def encode(self, texts, prompt="", normalize_embeddings=True, **_):
        self.calls.append(len(texts))
        rows = [np.random.default_rng(int(hashlib.sha1((prompt + t).encode()).hexdigest()[:12], 16)).normal(size=DIM)
                for t in texts]
        emb = np.array(rows, dtype=np.float32)
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def fake_encoder(**cfg) -> Encoder:
    return Encoder(EncoderConfig(model="intfloat/multilingual-e5-small", show_progress=False, **cfg), model=HashModel())


def clustered(n: int, dim: int = 32, clusters: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    x = centers[rng.integers(0, clusters, n)] + 0.4 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def ids(n: int) -> list[str]:
    return [f"d{i:05d}" for i in range(n)]


def overlap(run, truth, k) -> float:
    return float(np.mean([len({h.doc_id for h in run[q][:k]} & {h.doc_id for h in truth[q][:k]}) / k for q in truth]))


def test_auto_is_flat_under_the_thresholds_then_ivf_sq8_then_ivfpq(tmp_path):
    cfg = DenseIndexConfig(flat_max_passages=500, sq8_max_passages=1000, pq_bytes=8, nlist=8)
    small, middle, big = clustered(500), clustered(1000), clustered(2000)
    assert DenseIndex.build(small, ids(500), config=cfg).meta["index_type"] == "flat"
    assert DenseIndex.build(middle, ids(1000), config=cfg).meta["factory"] == "IVF8,SQ8"
    index = DenseIndex.build(big, ids(2000), config=cfg)
    assert (index.meta["index_type"], index.meta["requested_index_type"]) == ("ivfpq", "auto")
    assert index.meta["factory"] == "IVF8,PQ8x8" and index.meta["train_rows"] == 2000
    # The user can force a type, and nprobe / ef_search are recorded and can be changed at load.
    assert DenseIndex.build(small, ids(500), "hnsw-sq8", config=cfg).meta["index_type"] == "hnsw-sq8"
    assert DenseIndex.build(big, ids(2000), "ivf-sq8", config=cfg).meta["factory"] == "IVF8,SQ8"
    reranked = DenseIndex.build(big, ids(2000), "ivfpq", config=replace(cfg, rerank=4))
    assert reranked.meta["factory"] == "IVF8,PQ8x8,Refine(SQ8)"
    reranked.save(tmp_path / "rerank")
    assert DenseIndex.load(tmp_path / "rerank").index.k_factor == 4
    index.save(tmp_path / "ivfpq")
    # nprobe unset: nlist/8, at least 64 (capped by FAISS at the 8 lists); set, it is what was asked
    assert json.loads((tmp_path / "ivfpq" / "config.json").read_text())["nprobe"] == cfg.probes_for(8) == 64
    assert replace(cfg, nprobe=5).probes_for(8) == 5 and cfg.probes_for(4096) == 512
    again = DenseIndex.load(tmp_path / "ivfpq", nprobe=3)
    import faiss

    assert faiss.extract_index_ivf(again.index).nprobe == 3 and again.meta["nprobe"] == 3
    assert [DenseIndexConfig().resolve(n) for n in (10, 1_000_000, 1_000_001, 20_000_001)] == [
        IndexType.flat, IndexType.flat, IndexType.ivf_sq8, IndexType.ivfpq]
    with pytest.raises(ConfigError, match="index_type must be one of auto, .*; got 'ivf-pq'"):
        DenseIndexConfig(index_type="ivf-pq")
    with pytest.raises(ConfigError, match="must divide"):
        DenseIndex.build(big, ids(2000), "ivfpq", config=DenseIndexConfig(pq_bytes=5))
    # The default number of lists follows N (4·sqrt(N), a power of two) but keeps >= 39 training rows a list.
    assert [DenseIndexConfig().lists_for(n) for n in (1_000, 100_000, 1_000_000, 30_000_000)] == [25, 1024, 4096, 6721]


def test_sample_trained_ivfpq_finds_the_flat_neighbours_of_clustered_vectors():
    # A correctness smoke check (training on a sample, adding float16 parts, nprobe = every list), not a
    # quality measurement: that is benchmarks/dense_index.py on real vectors. The measure is FAISS's usual
    # 1-recall@10: the exact nearest neighbour is among the compressed index's top 10.
    x = clustered(4000, dim=32, clusters=30, seed=1)
    q = clustered(200, dim=32, clusters=30, seed=1)[100:]  # same centres: the queries fall inside the clusters
    qids = [f"q{i}" for i in range(100)]
    truth = DenseIndex.build(x, ids(4000), "flat").search_vectors(qids, q, 1)
    cfg = DenseIndexConfig(index_type="ivfpq", nlist=16, pq_bytes=16, train_sample=1500, nprobe=16)
    parts = [x[:2500].astype(np.float16), x[2500:].astype(np.float16)]
    index = DenseIndex.build_from_parts(parts, ids(4000), config=cfg)
    assert index.meta["train_rows"] == 1500 and index.meta["factory"] == "IVF16,PQ16x8"
    run = index.search_vectors(qids, q, 10)
    assert np.mean([truth[k][0].doc_id in {h.doc_id for h in run[k]} for k in qids]) >= 0.9
    # Seeded: the same sample and seed give the same index.
    assert DenseIndex.build_from_parts(parts, ids(4000), config=cfg).search_vectors(qids, q, 10) == run


def test_float16_shards_round_trip_and_feed_the_index(tmp_path):
    docs = [Doc(f"p{i}", f"passage number {i}") for i in range(10)]
    write_corpus_jsonl(docs, tmp_path / "corpus.jsonl")
    enc = fake_encoder()
    shards = encode_corpus(tmp_path / "corpus.jsonl", enc, tmp_path / "idx", shard_size=4, dtype=np.float16)
    assert [len(s.doc_ids) for s in shards] == [4, 4, 2]
    full = enc.encode_passages([d.full_text() for d in docs])
    stored = np.concatenate([np.load(s.path) for s in shards])
    assert stored.dtype == np.float16
    np.testing.assert_array_equal(stored, full.astype(np.float16))
    manifest = json.loads((tmp_path / "idx" / "shards" / "000001.json").read_text())
    assert manifest["doc_ids"] == ["p4", "p5", "p6", "p7"] and manifest["encoder"] == enc.describe()
    assert manifest["bytes"] == shards[1].path.stat().st_size and len(manifest["sha256"]) == 64
    # A compressed index type builds from float16 shards (the exact flat index keeps float32 vectors).
    build_dense_index(tmp_path / "corpus.jsonl", tmp_path / "idx", encoder=enc, shard_size=4, keep_shards=True,
                      index_type="hnsw")
    q = enc.encode_queries(["passage number 3"])
    run = DenseIndex.load(tmp_path / "idx").search_vectors(["q"], q, 3)
    brute = stored.astype(np.float32) @ q[0]
    assert [h.doc_id for h in run["q"]] == [docs[i].doc_id for i in np.argsort(-brute, kind="stable")[:3]]
    assert run["q"][0].score == pytest.approx(float(brute.max()), abs=1e-6)


def test_sharded_flat_indexes_equal_one_flat_index(tmp_path):
    x = clustered(900, dim=24, seed=2)
    q = clustered(30, dim=24, seed=3)
    qids = [f"q{i}" for i in range(30)]
    single = DenseIndex.build(x, ids(900), "flat", meta={"encoder": {"model": "m"}})
    for lo, hi in ((0, 250), (250, 700), (700, 900)):
        DenseIndex.build(x[lo:hi], ids(900)[lo:hi], "flat", meta={"encoder": {"model": "m"}}).save(tmp_path / f"part-{lo}")
    ShardedDenseIndex.write(tmp_path, [tmp_path / f"part-{lo}" for lo in (0, 250, 700)])
    sharded = open_dense_index(tmp_path)
    assert isinstance(sharded, ShardedDenseIndex) and len(sharded.doc_ids) == 900
    for k in (1, 10, 100):
        for rows in (slice(0, 30), slice(0, 3)):  # BLAS (>= 20 queries) and per-query code paths in FAISS
            assert sharded.search_vectors(qids[rows], q[rows], k) == single.search_vectors(qids[rows], q[rows], k)
    # DenseRetriever wraps it like any index.
    model = SimpleNamespace(encode_queries=lambda texts: q[: len(texts)])
    run = DenseRetriever(model, sharded).search([Query(qids[0], "x"), Query(qids[1], "y")], 5)
    assert run == single.search_vectors(qids[:2], q[:2], 5)
    DenseIndex.build(x[:10], ids(10), "flat", meta={"encoder": {"model": "other"}}).save(tmp_path / "odd")
    with pytest.raises(LexdrError, match="different encoders"):
        ShardedDenseIndex.load([tmp_path / "part-0", tmp_path / "odd"])


def test_truncated_index_files_are_a_clear_error(tmp_path):
    DenseIndex.build(clustered(200), ids(200), "flat").save(tmp_path / "idx")
    verify_index_folder(tmp_path / "idx")
    faiss_file = tmp_path / "idx" / "index.faiss"
    data = faiss_file.read_bytes()
    faiss_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(LexdrError, match=r"index.faiss is damaged .*rebuild it with `lexdr index dense`"):
        DenseIndex.load(tmp_path / "idx")
    # Same size, other bytes: the size check passes, the full check does not.
    faiss_file.write_bytes(data[:-8] + b"\x00" * 8)
    with pytest.raises(LexdrError, match="does not match the size/SHA-256"):
        verify_index_folder(tmp_path / "idx")
    # An index written without a size record (older lexdr) that FAISS cannot parse: still not a traceback.
    meta = json.loads((tmp_path / "idx" / "config.json").read_text())
    meta.pop("files")
    (tmp_path / "idx" / "config.json").write_text(json.dumps(meta))
    faiss_file.write_bytes(data[:100])
    with pytest.raises(LexdrError, match="cannot be read by FAISS.*rebuild"):
        DenseIndex.load(tmp_path / "idx")
    # The ids are read from their compact copy (doc_ids.utf8 + .offsets.npy), whose sizes config.json records: a
    # truncated one says rebuild; one that does not match its offsets (sizes edited too) as well.
    DenseIndex.build(clustered(200), ids(200), "flat").save(tmp_path / "ids")
    assert list(DenseIndex.load(tmp_path / "ids").doc_ids) == ids(200)
    blob = (tmp_path / "ids" / "doc_ids.utf8").read_bytes()
    (tmp_path / "ids" / "doc_ids.utf8").write_bytes(blob[:-3])
    with pytest.raises(LexdrError, match=r"doc_ids.utf8 is damaged.*rebuild"):
        DenseIndex.load(tmp_path / "ids")
    meta = json.loads((tmp_path / "ids" / "config.json").read_text())
    meta["files"]["doc_ids.utf8"]["bytes"] -= 3
    (tmp_path / "ids" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(LexdrError, match=r"doc ids are damaged \(doc_ids.offsets.npy does not describe.*rebuild"):
        DenseIndex.load(tmp_path / "ids")
    # A folder written before the compact copy is read from doc_ids.json; edited by hand, numbers where ids belong
    # are a clear error, not a traceback from DocIds.
    for name in ("doc_ids.utf8", "doc_ids.offsets.npy"):
        (tmp_path / "ids" / name).unlink()
        meta["files"].pop(name)
    (tmp_path / "ids" / "config.json").write_text(json.dumps(meta))
    assert list(DenseIndex.load(tmp_path / "ids").doc_ids) == ids(200)
    (tmp_path / "ids" / "doc_ids.json").write_text(json.dumps(list(range(200))))
    with pytest.raises(LexdrError, match=r"doc_ids.json holds 0, not a doc id string.*rebuild"):
        DenseIndex.load(tmp_path / "ids")


def test_damaged_or_foreign_shards_are_re_encoded(tmp_path, caplog):
    docs = [Doc(f"p{i}", f"text {i}") for i in range(8)]
    write_corpus_jsonl(docs, tmp_path / "corpus.jsonl")
    enc = fake_encoder()
    shards = encode_corpus(tmp_path / "corpus.jsonl", enc, tmp_path / "w", shard_size=4)
    assert enc.model.calls == [4, 4]
    enc.model.calls.clear()
    encode_corpus(tmp_path / "corpus.jsonl", enc, tmp_path / "w", shard_size=4)
    assert enc.model.calls == []  # intact and same encoder: reused
    good = shards[0].path.read_bytes()
    shards[0].path.write_bytes(good[:-20])  # truncated
    with caplog.at_level(logging.WARNING, logger="lexdr.dense.stage"):
        again = encode_corpus(tmp_path / "corpus.jsonl", enc, tmp_path / "w", shard_size=4)
    assert enc.model.calls == [4] and "000000.npy is damaged" in caplog.text
    assert again[0].path.read_bytes() == good
    # Another encoder (here: other passage prompt) never reuses the shards.
    other = fake_encoder(passage_prompt="")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lexdr.dense.stage"):
        encode_corpus(tmp_path / "corpus.jsonl", other, tmp_path / "w", shard_size=4)
    assert other.model.calls == [4, 4] and "was encoded by another encoder" in caplog.text
    manifest = json.loads((tmp_path / "w" / "shards" / "000000.json").read_text())
    assert manifest["encoder"]["passage_prompt"] == ""


def test_count_distinct_counts_like_a_set_without_one_for_distinct_ids():
    """Issue 21: a dense search counts its index's distinct ids (MaxP over windows) from their hashes, not a set
    of every id; the same count whether the ids repeat (a windowed index) or not."""
    from lexdr.dense.index import count_distinct
    from lexdr.doc_ids import DocIds

    ids = [f"p{i}" for i in range(500)] + ["δ#1", "東京"]
    windowed = [i for i in ids for _ in range(3)][:-1]
    for case in (ids, windowed, DocIds(ids), DocIds(windowed), []):
        assert count_distinct(case) == len(set(case))

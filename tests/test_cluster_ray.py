"""``[run] executor = "ray"``: the same files as the local executor, resume from finished shards, and a clear
error without Ray. Ray starts once for the module, CPU only (``ray.init(num_cpus=2)``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from fixtures.tiny_corpus import write_tiny_config, write_tiny_task
from lexdr.errors import ConfigError
from lexdr.executors import RAY_INSTALL, ClusterSettings, RayExecutor
from lexdr.pipeline import load_config, run_pipeline


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason=f"needs Ray ({RAY_INSTALL})")
    pytest.importorskip("ray.data")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _config(folder: Path, model: Path, executor: str) -> Path:
    # Several BM25 analysis shards (4 passages each), so the Ray run really splits the work into tasks.
    extra = "\n[bm25]\nmax_docs_in_memory = 12\n"
    return write_tiny_config(folder, model, folder / "run", epochs=1, extra=extra,
                             run_extra=f'executor = "{executor}"')


def test_ray_pipeline_writes_the_local_pipelines_results(tmp_path, tiny_encoder_dir, ray_session, monkeypatch):
    runs = {}
    for executor in ("local", "ray"):
        cfg = load_config(_config(tmp_path / executor, tiny_encoder_dir, executor))
        assert cfg.executor.kind.value == executor
        run_pipeline(cfg, quiet=True, report=False)
        runs[executor] = tmp_path / executor / "run"
    local, ray_run = runs["local"], runs["ray"]
    # The Ray run built BM25 out of core in Ray tasks, several shards (recorded by the builder).
    build = json.loads((ray_run / "tiny-en" / "bm25" / "index" / "config.json").read_text())["build"]
    assert build["mode"] == "out-of-core" and build["shards"] > 1
    for rel in ("tiny-en/bm25/run.unlabeled.trec", "tiny-en/bm25/run.test.trec", "tiny-en/mine/mined.jsonl",
                "tiny-en/dense-base/run.unlabeled.trec", "tiny-en/dense-r1/run.test.trec"):
        assert (ray_run / rel).read_bytes() == (local / rel).read_bytes(), rel
    import faiss

    for stage in ("dense-base", "dense-r1"):
        a, b = (faiss.read_index(str(r / "tiny-en" / stage / "index" / "index.faiss")) for r in (local, ray_run))
        va, vb = a.reconstruct_n(0, a.ntotal), b.reconstruct_n(0, b.ntotal)
        assert va.shape == vb.shape == (24, va.shape[1])
        assert np.abs(va - vb).max() <= 1e-5, stage
    assert json.loads((ray_run / "metrics.json").read_text()) == json.loads((local / "metrics.json").read_text())

    # Mining in several query shards (Ray tasks of 5 queries) writes the same mined.jsonl.
    import lexdr.executors as executors
    import lexdr.mining.stage as mining_stage

    monkeypatch.setattr(executors, "QUERIES_PER_SHARD", 5)
    lang = local / "tiny-en"
    cfg = load_config(tmp_path / "ray" / "run.toml")
    mining_stage.mine(lang / "data" / "queries.unlabeled.tsv", lang / "bm25" / "run.unlabeled.trec",
                      lang / "dense-base" / "run.unlabeled.trec", tmp_path / "mined-shards", cfg.mining,
                      executor=RayExecutor())
    assert (tmp_path / "mined-shards" / "mined.jsonl").read_bytes() == (lang / "mine" / "mined.jsonl").read_bytes()

    # BM25 search in several query shards (Ray actors of 3 queries each, each holding the index memory-mapped)
    # writes the same run files: the one sharded search (lexdr.retrieval.search_queries), as for dense.
    from lexdr.sparse import BM25Inputs, bm25_stage

    monkeypatch.setattr(executors, "QUERIES_PER_SHARD", 3)
    queries = {p: lang / "data" / f"queries.{p}.tsv" for p in ("unlabeled", "test")}
    bm25_stage(BM25Inputs(tmp_path / "local" / "data" / "corpus.jsonl", "en", queries), cfg.bm25,
               tmp_path / "bm25-shards", RayExecutor())
    for p in queries:
        assert ((tmp_path / "bm25-shards" / f"run.{p}.trec").read_bytes()
                == (lang / "bm25" / f"run.{p}.trec").read_bytes()), p

    # Dense search in query shards (actors holding the encoder and the index, 5 queries each): the same
    # documents in the same order, scores equal to float rounding (a shard boundary changes the query batches).
    from lexdr.formats import read_queries, read_run
    from lexdr.retrieval import load_retriever, search_queries

    monkeypatch.setattr(executors, "QUERIES_PER_SHARD", 5)
    qs = read_queries(queries["test"])
    index = lang / "dense-base" / "index"
    sharded = search_queries(load_retriever(index), index, qs, cfg.bm25.depth, RayExecutor())
    local_run = read_run(lang / "dense-base" / "run.test.trec")
    assert list(sharded) == [q.query_id for q in qs]
    for qid, hits in local_run.items():
        got = sharded[qid][:len(hits)]
        # rank by rank the same scores; two passages may trade places only where their scores tie to that
        # rounding (seen once in CI: x0 and x3 swapped), never otherwise
        np.testing.assert_allclose([h.score for h in got], [h.score for h in hits], atol=1e-5)
        local_score = {h.doc_id: h.score for h in hits}
        for i, (g, h) in enumerate(zip(got, hits)):
            if g.doc_id != h.doc_id:
                assert g.doc_id in local_score and abs(local_score[g.doc_id] - h.score) <= 1e-5, (qid, i)


def test_killed_ray_encoding_resumes_from_the_finished_shards(tmp_path, tiny_encoder_dir, ray_session):
    import shutil

    from lexdr.dense import Encoder, EncoderConfig
    from lexdr.dense.stage import encode_corpus, encode_missing_shards

    corpus = write_tiny_task(tmp_path / "data")["corpus"]
    encoder = Encoder(EncoderConfig(model=str(tiny_encoder_dir), max_seq_length=32, batch_size=8,
                                    show_progress=False))
    local = encode_corpus(corpus, encoder, tmp_path / "local", shard_size=5)
    assert len(local) == 5
    # A Ray run killed after some shards: shard 1 never written, shard 3's manifest missing (killed between
    # its two files), the other shards done.
    shutil.copytree(tmp_path / "local" / "shards", tmp_path / "ray" / "shards")
    shard_dir = tmp_path / "ray" / "shards"
    for name in ("000001.npy", "000001.json", "000003.json"):
        (shard_dir / name).unlink()
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in shard_dir.iterdir()}
    executor = RayExecutor(cluster=ClusterSettings(encode_actors=1))
    # The resumed run encodes exactly those two on the Ray actors and leaves the finished shards alone.
    assert encode_missing_shards(corpus, encoder, tmp_path / "ray", executor, shard_size=5) == [1, 3]
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in shard_dir.iterdir()}
    assert sorted(after) == sorted(f"{i:06d}.{ext}" for i in range(5) for ext in ("npy", "json"))
    rewritten = sorted(name for name in after if before.get(name) != after[name])
    assert rewritten == ["000001.json", "000001.npy", "000003.json", "000003.npy"]
    # Nothing left to do; encode_corpus finds every shard done (no Ray job) and the vectors the actors wrote
    # equal the local ones.
    assert encode_missing_shards(corpus, encoder, tmp_path / "ray", executor, shard_size=5) == []
    resumed = encode_corpus(corpus, encoder, tmp_path / "ray", shard_size=5, executor=executor)
    assert [s.doc_ids for s in resumed] == [s.doc_ids for s in local]
    for a, b in zip(local, resumed):
        assert np.abs(np.asarray(a.open()) - np.asarray(b.open())).max() <= 1e-5


def test_ray_generation_writes_the_local_shards_and_resumes(tmp_path, ray_session):
    from lexdr.generation.config import GenerationConfig
    from lexdr.generation.stage import generate_queries

    paths = write_tiny_task(tmp_path / "data")
    mined = tmp_path / "mined.jsonl"  # d0..d3 reached by mining; the 20 other passages are generated for
    mined.write_text("".join(json.dumps({"query_id": f"q{i}", "query": f"query {i}", "positive_ids": [f"d{i}"]}) + "\n"
                             for i in range(4)), encoding="utf-8")
    cfg = GenerationConfig(backend="passage-cut", shard_size=6, batch_size=3, top_k=None, show_progress=False)
    generate_queries(paths["corpus"], mined, tmp_path / "local", "en", cfg)
    executor = RayExecutor(cluster=ClusterSettings(generate_actors=1))
    shard_dir = tmp_path / "ray" / "shards"
    shard_dir.mkdir(parents=True)
    # Killed after shards 0 and 2: the Ray run generates shards 1 and 3 only.
    for name in ("manifest.json", "00000.jsonl", "00002.jsonl"):
        (shard_dir / name).write_bytes((tmp_path / "local" / "shards" / name).read_bytes())
    before = {p.name: p.stat().st_mtime_ns for p in shard_dir.iterdir()}
    generate_queries(paths["corpus"], mined, tmp_path / "ray", "en", cfg, executor=executor)
    assert sorted(p.name for p in shard_dir.glob("*.jsonl")) == [f"{i:05d}.jsonl" for i in range(4)]
    assert {n: shard_dir.joinpath(n).stat().st_mtime_ns for n in before} == before  # finished shards untouched

    def queries(folder: Path, name: str) -> list:  # the records without their timings
        return [(r["doc_id"], r["queries"]) for r in map(json.loads, (folder / name).read_text().splitlines())]

    for i in range(4):
        assert queries(shard_dir, f"{i:05d}.jsonl") == queries(tmp_path / "local" / "shards", f"{i:05d}.jsonl")
    for name in ("generated.jsonl", "pairs.jsonl"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name


def test_ray_executor_without_ray_names_the_install_line(tmp_path, tiny_encoder_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, tiny_encoder_dir, "ray"))
    assert RAY_INSTALL in str(err.value) and "[run]" in str(err.value)
    with pytest.raises(ConfigError, match="lexdr\\[cluster\\]"):
        RayExecutor()
    # The local executor needs no Ray.
    assert load_config(_config(tmp_path / "local", tiny_encoder_dir, "local")).executor.kind.value == "local"

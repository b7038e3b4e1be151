"""[dense.index] in the run config: validated with the key named, passed to the dense stages, fingerprinted so
that another index type rebuilds the index from the kept shards without re-encoding the corpus."""

from __future__ import annotations

import json

import pytest

from fixtures.tiny_corpus import write_tiny_config, write_tiny_task
from lexdr.dense import DenseConfig, DenseIndexConfig, DenseInputs, EncoderConfig, dense_stage
from lexdr.executors import LocalExecutor
from lexdr.dense.encoder import Encoder
from lexdr.errors import ConfigError
from lexdr.pipeline import load_config, method_graph, run_pipeline


def _config(tmp_path, tiny_encoder_dir, index: str, epochs: float = 1):
    return write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run", epochs=epochs,
                             extra=f"\n[dense.index]\n{index}\n")


@pytest.mark.parametrize("index, expected", [
    ('index_type = "annoy"', r"\[dense\.index\] index_type must be one of \['auto', 'flat'"),
    ("nprobe = 8.5", r"\[dense\.index\] nprobe must be a whole number or none \(leave it out\), got 8\.5"),
    ("nprobe = 0", r"\[dense\.index\] nprobe must be >= 1"),
    ('nlists = 16', r"\[dense\.index\] unknown key 'nlists'; known: .*nlist"),
    ("keep_shards = 1", r"\[dense\.index\] keep_shards must be true or false"),
])
def test_a_bad_index_setting_is_a_config_error_naming_the_key(tmp_path, tiny_encoder_dir, index, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(_config(tmp_path, tiny_encoder_dir, index))


def test_index_must_be_a_table(tmp_path, tiny_encoder_dir):
    cfg = write_tiny_config(tmp_path, tiny_encoder_dir, tmp_path / "run")
    text = cfg.read_text().replace("[dense]\n", '[dense]\nindex = "flat"\n')
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=r"\[dense\] index must be a table: write \[dense.index\]"):
        load_config(cfg)


def test_index_settings_reach_every_dense_stage_and_only_their_fingerprint(tmp_path, tiny_encoder_dir):
    plain = method_graph(load_config(write_tiny_config(tmp_path / "a", tiny_encoder_dir, tmp_path / "run", epochs=1)))
    sq8 = method_graph(load_config(_config(tmp_path / "b", tiny_encoder_dir, 'index_type = "ivf-sq8"\nnprobe = 8')))
    by_name = {s.name: s for s in sq8}
    dense = [s for s in sq8 if "/dense-" in s.name]
    assert dense and all(s.config.index == DenseIndexConfig(index_type="ivf-sq8", nprobe=8) for s in dense)
    assert all(s.fingerprint["index"] == {"index_type": "ivf-sq8", "nprobe": 8} for s in dense)
    # Defaults add nothing to a fingerprint: run folders made before [dense.index] existed stay valid.
    assert all("index" not in s.fingerprint for s in plain if "/dense-" in s.name)
    for s in plain:  # every other stage is declared exactly as without the section
        if s.name.endswith("-card"):  # a model card names the whole run's settings, the index's among them
            assert s.fingerprint["config_hash"] != by_name[s.name].fingerprint["config_hash"], s.name
        elif "/dense-" not in s.name:
            assert s.fingerprint == by_name[s.name].fingerprint, s.name
    # Execution options (shard size, keeping shards) change no vector: not fingerprinted.
    keep = method_graph(load_config(_config(tmp_path / "c", tiny_encoder_dir, "shard_size = 5\nkeep_shards = false")))
    assert [s.fingerprint for s in keep if "/dense-base" in s.name] == \
        [s.fingerprint for s in plain if "/dense-base" in s.name]


def test_tiny_pipeline_with_a_compressed_index_runs_end_to_end(tmp_path, tiny_encoder_dir):
    # 24 passages: too few to train IVF lists (39 vectors a list), enough for HNSW over SQ8 codes.
    cfg = load_config(_config(tmp_path, tiny_encoder_dir, 'index_type = "hnsw-sq8"\nhnsw_m = 8\nshard_size = 10'))
    results = run_pipeline(cfg, quiet=True, report=False)["tiny-en"]
    assert {"bm25", "dense-base", "lexdr-r1"} <= set(results)
    for stage in ("dense-base", "dense-r1"):
        meta = json.loads((tmp_path / "run" / "tiny-en" / stage / "index" / "config.json").read_text())
        assert meta["index_type"] == "hnsw-sq8" and meta["factory"] == "HNSW8,SQ8"
        shards = sorted((tmp_path / "run" / "tiny-en" / stage / "index" / "shards").glob("*.npy"))
        assert len(shards) == 3  # 24 passages in shards of 10, kept (float16 for a compressed index)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["dense"]["index"]["index_type"] == "hnsw-sq8"


class _CountingEncoder(Encoder):
    passages = 0

    def encode_passages(self, texts):
        type(self).passages += len(texts)
        return super().encode_passages(texts)

    def encode_passage_ids(self, ids, lengths, chars=None):  # the corpus is encoded from its token ids
        type(self).passages += len(lengths)
        return super().encode_passage_ids(ids, lengths, chars)


def test_another_index_type_rebuilds_the_index_without_re_encoding(tmp_path, tiny_encoder_dir, monkeypatch):
    import lexdr.dense.stage as stage

    monkeypatch.setattr(stage, "Encoder", _CountingEncoder)
    paths = write_tiny_task(tmp_path / "data")
    enc = EncoderConfig(model=str(tiny_encoder_dir), max_seq_length=32, show_progress=False)
    out = tmp_path / "dense"

    def run(**index):
        _CountingEncoder.passages = 0
        dense_stage(DenseInputs(paths["corpus"], {"test": paths["test"]}),
                    DenseConfig(enc, DenseIndexConfig(**index), 10), out, LocalExecutor())
        meta = json.loads((out / "index" / "config.json").read_text())
        return _CountingEncoder.passages, meta, (out / "run.test.trec").read_text()

    encoded, meta, flat_run = run()  # auto: flat at this size, from exact float32 shards
    assert encoded == 24 and meta["index_type"] == "flat"
    encoded, meta, _ = run(index_type="hnsw-sq8", hnsw_m=8)
    assert encoded == 0 and meta["index_type"] == "hnsw-sq8"  # rebuilt from the kept float32 shards, cast
    encoded, meta, _ = run(index_type="hnsw-sq8", hnsw_m=8, ef_search=16)
    assert encoded == 0 and meta["ef_search"] == 16  # a search-time setting: the same index, searched again
    encoded, meta, again = run(index_type="flat")
    assert encoded == 0 and meta["index_type"] == "flat" and again == flat_run  # the same exact vectors
    # Without kept shards another type must encode again.
    encoded, meta, _ = run(index_type="hnsw", hnsw_m=8, keep_shards=False)
    assert encoded == 0 and meta["index_type"] == "hnsw" and not (out / "index" / "shards").exists()
    encoded, meta, _ = run(index_type="hnsw-sq8", hnsw_m=8)
    assert encoded == 24

"""One search command for any index: `lexdr search INDEX QUERIES --out RUN` dispatches on the `kind` an index
folder records, writes the same run as the per-kind functions, and still opens folders written before the
kind was recorded."""

from __future__ import annotations

import json

import pytest

from lexdr.cli import main
from lexdr.dense import EncoderConfig, build_dense_index, dense_search
from lexdr.dense.index import ShardedDenseIndex
from lexdr.errors import LexdrError
from lexdr.formats import write_corpus_jsonl
from lexdr.records import Doc
from lexdr.retrieval import index_kind, load_retriever
from lexdr.sparse import build_index, search_index

DOCS = [Doc(f"d{i}", t) for i, t in enumerate(["paris is the capital of france", "tokyo is the capital of japan",
                                               "the nile is a river in africa", "python is a programming language",
                                               "the cat sat on the mat", "a dog barked at the mailman"])]


@pytest.fixture(scope="module")
def indexes(tmp_path_factory, tiny_encoder_dir):
    root = tmp_path_factory.mktemp("search")
    write_corpus_jsonl(DOCS, root / "corpus.jsonl")
    (root / "queries.tsv").write_text("q1\tcapital of France\nq2\tzebra\nq3\ta river\n", encoding="utf-8")
    sparse = build_index(root / "corpus.jsonl", "en", root / "bm25")
    dense = build_dense_index(root / "corpus.jsonl", root / "dense",
                              EncoderConfig(model=str(tiny_encoder_dir), max_seq_length=32, show_progress=False))
    return root, sparse, dense


def _search(index, root, name: str) -> bytes:
    assert main(["--quiet", "search", str(index), str(root / "queries.tsv"), "--out", str(root / name), "-k", "3"]) == 0
    return (root / name).read_bytes()


def test_one_search_command_for_both_kinds(indexes):
    root, sparse, dense = indexes
    assert json.loads((sparse / "config.json").read_text())["kind"] == "sparse"
    assert json.loads((dense / "config.json").read_text())["kind"] == "dense"
    assert (index_kind(sparse), index_kind(dense)) == ("sparse", "dense")
    search_index(sparse, root / "queries.tsv", root / "bm25.ref.trec", k=3)
    dense_search(dense, root / "queries.tsv", root / "dense.ref.trec", k=3)
    assert _search(sparse, root, "bm25.trec") == (root / "bm25.ref.trec").read_bytes()
    assert _search(dense, root, "dense.trec") == (root / "dense.ref.trec").read_bytes()


def test_folders_without_a_kind_still_open_and_a_bad_kind_says_rebuild(indexes, tmp_path, capsys):
    root, sparse, dense = indexes
    for name, folder in (("bm25", sparse), ("dense", dense)):
        old = tmp_path / f"old-{name}"
        old.mkdir()
        for f in folder.iterdir():
            (old / f.name).write_bytes(f.read_bytes())
        meta = json.loads((old / "config.json").read_text())
        meta.pop("kind")
        (old / "config.json").write_text(json.dumps(meta))
        assert _search(old, root, f"old-{name}.trec") == _search(folder, root, f"{name}.trec")
        meta["kind"] = "colbert"
        (old / "config.json").write_text(json.dumps(meta))
        assert main(["search", str(old), str(root / "queries.tsv"), "--out", str(tmp_path / "x.trec")]) == 2
        assert "unknown index kind 'colbert'" in capsys.readouterr().err and not (tmp_path / "x.trec").exists()
    with pytest.raises(LexdrError, match="not a lexdr index"):
        load_retriever(tmp_path)


def test_a_sharded_dense_folder_is_dense(indexes, tmp_path):
    root, _, dense = indexes
    listing = tmp_path / "sharded"
    listing.mkdir()
    ShardedDenseIndex.write(listing, [dense])
    assert json.loads((listing / "index_shards.json").read_text())["kind"] == "dense"
    assert index_kind(listing) == "dense"
    assert _search(listing, root, "sharded.trec") == _search(dense, root, "dense.trec")


def test_the_old_per_kind_search_commands_still_work(indexes, capsys):
    root, sparse, dense = indexes
    for kind, folder in (("sparse", sparse), ("dense", dense)):
        assert main(["--quiet", "search", kind, str(folder), str(root / "queries.tsv"), "--out",
                     str(root / f"old-{kind}.trec"), "-k", "3"]) == 0
        assert "deprecated" in capsys.readouterr().err
        assert (root / f"old-{kind}.trec").read_bytes() == _search(folder, root, f"new-{kind}.trec")

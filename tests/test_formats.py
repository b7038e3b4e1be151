"""Readers stream the IR formats and reject bad input with file:line and a fix."""

from __future__ import annotations

import gzip
import json

import pytest

from lexdr.errors import InputError
from lexdr.formats import (iter_corpus, read_corpus, read_qrels, read_queries, read_run, write_corpus_jsonl,
                           write_run)
from lexdr.records import Doc, Hit


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_beir_and_mrtydi_corpus_gz(tmp_path):
    beir = _write(tmp_path / "corpus.jsonl", [json.dumps({"_id": 1, "title": "T", "text": "hello"}),
                                             json.dumps({"_id": "2", "text": "world"})])
    docs = read_corpus(beir)
    assert docs == [Doc("1", "hello", "T"), Doc("2", "world", "")]
    assert docs[0].full_text() == "T hello"
    gz = tmp_path / "c.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"docid": "5#0", "title": "アンパサンド", "text": "記号"}, ensure_ascii=False) + "\n")
    assert read_corpus(gz) == [Doc("5#0", "記号", "アンパサンド")]


def test_real_mrtydi_samples(shared_data_dir):
    for lang in ("ar", "ja", "th"):
        docs = read_corpus(shared_data_dir / "mrtydi" / "corpus-samples" / f"{lang}.corpus.jsonl.gz")
        assert len(docs) == 4 and all(d.doc_id and d.text for d in docs)
    topics = read_queries(shared_data_dir / "mrtydi" / "topics" / "topics.mrtydi-v1.1-ja.dev.txt.gz")
    qrels = read_qrels(shared_data_dir / "mrtydi" / "qrels" / "qrels.mrtydi-v1.1-ja.dev.txt")
    assert len(topics) > 100 and set(qrels) <= {q.query_id for q in topics}


@pytest.mark.parametrize(
    "lines, line_no, needle",
    [
        (['{"_id": "1", "text": "a"}', '{"_id": "2", "text": "b"'], 2, "invalid JSON"),
        (['{"_id": "1", "text": "a"}', '{"title": "x", "text": "b"}'], 2, "missing id field"),
        (['{"_id": "1"}'], 1, "missing text field"),
        (['{"_id": "1", "text": "a"}', '{"_id": "1", "text": "b"}'], 2, "duplicate document id"),
        (['{"_id": "1", "text": "  ", "title": ""}'], 1, "empty title and text"),
        (['["not", "an", "object"]'], 1, "expected a JSON object"),
    ],
)
def test_corpus_errors_name_file_and_line(tmp_path, lines, line_no, needle):
    path = _write(tmp_path / "corpus.jsonl", lines)
    with pytest.raises(InputError) as err:
        read_corpus(path)
    assert err.value.line == line_no
    assert needle in str(err.value)
    assert f"{path}:{line_no}" in str(err.value)


def test_empty_corpus_and_empty_text_policies(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="corpus is empty"):
        read_corpus(empty)
    path = _write(tmp_path / "c.jsonl", ['{"_id": "1", "text": ""}', '{"_id": "2", "text": "x"}'])
    assert [d.doc_id for d in iter_corpus(path, empty_text="skip")] == ["2"]
    assert [d.doc_id for d in iter_corpus(path, empty_text="keep")] == ["1", "2"]


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_corpus(tmp_path / "nope.jsonl")


def test_queries_tsv_and_jsonl(tmp_path):
    tsv = _write(tmp_path / "topics.tsv", ["1\twhat is x", "2\twho is y"])
    assert [q.query_id for q in read_queries(tsv)] == ["1", "2"]
    jl = _write(tmp_path / "queries.jsonl", [json.dumps({"_id": "a", "text": "x"})])
    assert read_queries(jl)[0].text == "x"
    bad = _write(tmp_path / "bad.tsv", ["1\tok", "2 no tab here"])
    with pytest.raises(InputError, match=r"bad.tsv:2: expected 'qid<TAB>query text'"):
        read_queries(bad)
    dup = _write(tmp_path / "dup.tsv", ["1\ta", "1\tb"])
    with pytest.raises(InputError, match="duplicate query id"):
        read_queries(dup)


def test_qrels_trec_beir_and_wrong_columns(tmp_path):
    trec = _write(tmp_path / "q.txt", ["1 Q0 d1 1", "1 Q0 d2 0", "2 Q0 d3 2"])
    assert read_qrels(trec) == {"1": {"d1": 1, "d2": 0}, "2": {"d3": 2}}
    beir = _write(tmp_path / "test.tsv", ["query-id\tcorpus-id\tscore", "1\td1\t1"])
    assert read_qrels(beir) == {"1": {"d1": 1}}
    bad = _write(tmp_path / "bad.txt", ["1 Q0 d1 1", "1 d2 1"])
    with pytest.raises(InputError) as err:
        read_qrels(bad)
    assert err.value.line == 2 and "expected 4 columns" in str(err.value)


def test_run_roundtrip_and_errors(tmp_path):
    run = {"q1": [Hit("d2", 3.5), Hit("d1", 1.25)], "q2": [Hit("d9", 0.5)]}
    path = tmp_path / "run.trec"
    write_run(run, path, tag="my tag")
    assert read_run(path) == run
    assert path.read_text().splitlines()[0] == "q1 Q0 d2 1 3.500000 my_tag"
    bad = _write(tmp_path / "bad.trec", ["q1 Q0 d1 1 0.5"])
    with pytest.raises(InputError, match="expected 6 columns"):
        read_run(bad)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "corpus.jsonl"
    write_corpus_jsonl([Doc("1", "old")], path)

    def boom():
        yield Doc("2", "new")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_corpus_jsonl(boom(), path)
    assert read_corpus(path) == [Doc("1", "old")]
    assert [p.name for p in tmp_path.iterdir()] == ["corpus.jsonl"]


def test_atomic_write_gives_normal_permissions(tmp_path):
    import os

    path = tmp_path / "corpus.jsonl"
    write_corpus_jsonl([Doc("1", "x")], path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask

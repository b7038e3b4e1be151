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


# ------------------------------------------------------------------ hardening (issue 12)
def test_queries_tsv_with_three_columns_is_an_error_not_a_longer_query(tmp_path):
    bad = _write(tmp_path / "topics.tsv", ["1\twhat is x", "2\twho is y\textra column"])
    with pytest.raises(InputError) as err:
        read_queries(bad)
    assert err.value.line == 2 and "expected 2 tab-separated columns" in str(err.value) and err.value.fix


@pytest.mark.parametrize("name, lines, line_no", [
    ("topics.tsv", ["q 1\twhat is x"], 1),
    ("queries.jsonl", [json.dumps({"_id": "a", "text": "x"}), json.dumps({"_id": "b\tc", "text": "y"})], 2),
])
def test_query_id_with_whitespace_is_refused_where_it_enters(tmp_path, name, lines, line_no):
    with pytest.raises(InputError) as err:
        read_queries(_write(tmp_path / name, lines))
    assert err.value.line == line_no and "whitespace" in str(err.value)


def test_doc_id_with_whitespace_is_refused_with_file_and_line(tmp_path):
    path = _write(tmp_path / "corpus.jsonl", [json.dumps({"_id": "d1", "text": "a"}),
                                              json.dumps({"_id": "d 2", "text": "b"})])
    with pytest.raises(InputError, match=r"corpus.jsonl:2: document id 'd 2' contains whitespace"):
        read_corpus(path)


def test_writing_a_run_or_qrels_with_a_whitespace_id_is_refused_and_leaves_nothing(tmp_path):
    from lexdr.errors import LexdrError
    from lexdr.formats import write_qrels_trec

    path = tmp_path / "run.trec"
    for run in ({"q 1": [Hit("d1", 1.0)]}, {"q1": [Hit("d1", 2.0), Hit("d\t2", 1.0)]}, {"q1": [Hit("", 1.0)]}):
        with pytest.raises(LexdrError, match="could not be read back"):
            write_run(run, path)
    with pytest.raises(LexdrError, match="document id 'a b'"):
        write_qrels_trec({"q1": {"a b": 1}}, tmp_path / "qrels.txt")
    assert list(tmp_path.iterdir()) == []


def test_fractional_qrels_grade_is_an_error_not_a_silent_truncation(tmp_path):
    ok = _write(tmp_path / "ok.txt", ["1 Q0 d1 1.0", "1 Q0 d2 -1", "2 Q0 d3 2"])
    assert read_qrels(ok) == {"1": {"d1": 1, "d2": -1}, "2": {"d3": 2}}
    bad = _write(tmp_path / "frac.txt", ["1 Q0 d1 1", "1 Q0 d2 0.5"])
    with pytest.raises(InputError) as err:
        read_qrels(bad)
    assert err.value.line == 2 and "not an integer grade" in str(err.value)


@pytest.mark.parametrize("reader, name", [(read_queries, "topics.tsv"), (read_corpus, "corpus.jsonl"),
                                          (read_qrels, "qrels.txt"), (read_run, "run.trec")])
def test_invalid_utf8_is_an_input_error_with_the_line(tmp_path, reader, name):
    good = {"topics.tsv": b"1\tok\n", "corpus.jsonl": b'{"_id": "d1", "text": "ok"}\n',
            "qrels.txt": b"1 Q0 d1 1\n", "run.trec": b"1 Q0 d1 1 1.0 x\n"}[name]
    path = tmp_path / name
    path.write_bytes(good + good.replace(b"ok", b"caf\xe9").replace(b"d1", b"d\xe9"))
    with pytest.raises(InputError) as err:
        reader(path)
    assert err.value.line == 2 and "invalid UTF-8" in str(err.value) and err.value.fix


def test_binary_file_is_an_input_error(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(InputError, match="binary data"):
        read_corpus(path)


def test_truncated_gz_is_an_input_error_naming_the_file(tmp_path):
    full = tmp_path / "full.jsonl.gz"
    with gzip.open(full, "wt", encoding="utf-8") as fh:
        for i in range(2000):
            fh.write(json.dumps({"_id": f"d{i}", "text": f"passage number {i} " * 5}) + "\n")
    data = full.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        read_corpus(cut)
    assert "cut.jsonl.gz" in str(err.value) and "truncated gzip" in str(err.value)
    not_gz = _write(tmp_path / "plain.jsonl.gz", [json.dumps({"_id": "d", "text": "x"})])
    with pytest.raises(InputError, match="not a gzip file"):
        read_corpus(not_gz)


def test_bom_and_crlf_are_read_as_plain_text(tmp_path):
    path = tmp_path / "topics.tsv"
    path.write_bytes(b"\xef\xbb\xbf1\twhat\r\n2\twho\r\n")
    assert [(q.query_id, q.text) for q in read_queries(path)] == [("1", "what"), ("2", "who")]


def test_duplicate_ids_are_found_across_merged_batches_and_a_shared_hash_is_no_duplicate(tmp_path, monkeypatch):
    """The duplicate check keeps 8-byte hashes (``SeenIds``), merged into a sorted array in batches: a repeat is
    found whether its first copy is in the array or the latest batch, with both lines; ids that merely share a
    hash (forced here) are not called duplicates."""
    import lexdr.formats.corpus as corpus_mod
    from lexdr.doc_ids import SeenIds

    seen = SeenIds(batch=4)
    assert [seen.add(f"d{i}") for i in range(10)] == [False] * 10 and len(seen) == 10
    assert seen.add("d1") and seen.add("d9") and not seen.add("d10")  # in the merged array; in the latest batch
    assert seen.nbytes < 10 * 100

    lines = [f'{{"_id": "d{i}", "text": "t{i}"}}' for i in range(200)]
    path = _write(tmp_path / "corpus.jsonl", [*lines, '{"_id": "d3", "text": "again"}'])
    monkeypatch.setattr(corpus_mod, "SeenIds", lambda: SeenIds(batch=16))
    with pytest.raises(InputError) as err:
        read_corpus(path)
    assert err.value.line == 201 and "duplicate document id 'd3' (first at line 4)" in str(err.value)

    class SharedHash(SeenIds):  # every id's hash "was seen before"
        def add(self, doc_id):
            return True

    monkeypatch.setattr(corpus_mod, "SeenIds", SharedHash)
    ok = _write(tmp_path / "ok.jsonl", lines[:20])
    assert [d.doc_id for d in read_corpus(ok)] == [f"d{i}" for i in range(20)]  # each hit re-checked: none real
    with pytest.raises(InputError, match="duplicate document id 'd5' \\(first at line 6\\)"):
        read_corpus(_write(tmp_path / "dup.jsonl", [*lines[:20], '{"_id": "d5", "text": "x"}']))

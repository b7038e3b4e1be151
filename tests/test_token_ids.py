"""Token ids once per corpus (lexdr.dense.token_ids): the ids are the tokenizer's, the vectors from ids are the
vectors from text, a killed tokenization resumes from its shards, and a damaged or foreign shard is never reused."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from lexdr.dense import Encoder, EncoderConfig
from lexdr.dense.token_ids import PassageTokenizer, ensure_token_ids
from lexdr.formats import write_corpus_jsonl
from lexdr.records import Doc

TEXTS = (["the cat sat on the mat " * (i % 5 + 1) for i in range(23)]
         + ["東京は日本の首都です", "x", "x", "paris is the capital " * 40, "Москва — столица России"])


def _rows(tokens) -> list[list[int]]:
    ends = np.cumsum(tokens.lengths)
    return [tokens.ids[e - n:e].tolist() for e, n in zip(ends, tokens.lengths)]


def _corpus(path, n: int, word: str = "cat"):
    docs = [Doc(f"d{i}", f"the {word} number {i} sat on mat " * (i % 7 + 1), title="t" if i % 3 else "") for i in range(n)]
    write_corpus_jsonl(docs, path)
    return path, [d.full_text() for d in docs]


def _tiny(tiny_encoder_dir, **kw) -> Encoder:
    return Encoder(EncoderConfig(model=str(tiny_encoder_dir), max_seq_length=kw.pop("max_seq_length", 32),
                                 device="cpu", batch_size=4, show_progress=False, **kw))


@pytest.mark.parametrize("max_length", [16, 64])
def test_ids_are_the_tokenizers_own(tiny_encoder_dir, max_length):
    enc = _tiny(tiny_encoder_dir, max_seq_length=max_length)
    tokens = enc.passage_tokenizer()(TEXTS)
    assert tokens.ids.dtype == tokens.lengths.dtype == tokens.chars.dtype == np.int32
    expected = enc.model.tokenizer([enc.passage_prompt + t for t in TEXTS], truncation=True,
                                   max_length=max_length)["input_ids"]
    assert _rows(tokens) == expected
    assert tokens.lengths.max() == max_length  # the long passage was cut
    assert tokens.chars.tolist() == [len(t) for t in TEXTS]


def test_embeddings_from_ids_equal_the_text_path(tiny_encoder_dir):
    enc = _tiny(tiny_encoder_dir)
    expected = enc.encode_passages(TEXTS)  # sentence-transformers' encode on the CPU
    tokens = enc.passage_tokenizer()(TEXTS)
    got = enc.encode_passage_ids(*tokens)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)  # the same batches: bit for bit
    # ordered by number of ids instead: other batches, other padding, the same vectors to float rounding
    assert np.abs(enc.encode_passage_ids(tokens.ids, tokens.lengths) - expected).max() <= 1e-6
    assert enc.encode_passage_ids(np.zeros(0, np.int32), np.zeros(0, np.int32)).shape == (0, expected.shape[1])


def test_e5_small_ids_and_embeddings_on_dev_passages(e5_small_dir, shared_data_dir):
    """The real XLM-R tokenizer and e5-small on a few hundred dev passages of six languages (some cut at 128)."""
    from fixtures.dev_corpora import dev_corpora

    corpora = dev_corpora(shared_data_dir)
    texts = [t for name in ("jsquad-ja", "facqa-id", "xquad-r-de", "xquad-r-zh", "sib200-tha_Thai", "mrtydi-en")
             for t in corpora[name][:40]]
    enc = Encoder(EncoderConfig(model=str(e5_small_dir), max_seq_length=128, device="cpu", batch_size=32,
                                show_progress=False))
    tokens = enc.passage_tokenizer()(texts)
    assert (tokens.lengths == 128).sum() >= 10
    expected = enc.encode_passages(texts)
    got = enc.encode_passage_ids(*tokens)
    assert np.abs(got - expected).max() <= 1e-6
    np.testing.assert_array_equal(got, expected)


def test_ids_equal_the_tokenizer_on_every_dev_corpus(e5_small_dir, shared_data_dir):
    """Every passage of every dev corpus (11 languages of SIB-200, 7 of XQuAD-R, JSQuAD, FacQA, the Mr. TyDi
    samples), at a length that cuts most of them and at the default."""
    from transformers import AutoTokenizer

    from fixtures.dev_corpora import dev_corpora

    tok = AutoTokenizer.from_pretrained(str(e5_small_dir))
    corpora = dev_corpora(shared_data_dir)
    for max_length in (32, 256):
        # One tokenizer for every corpus: its budget is learnt on the first (JSQuAD: Japanese, fewer characters
        # per token than most), so the other languages are cut tighter than their own budget would: a harder test.
        pt = PassageTokenizer(tok, max_length, "passage: ")
        assert pt.cut_at_budget  # XLM-R's Metaspace pre-tokenizer splits at spaces
        for name, texts in corpora.items():
            expected = tok(["passage: " + t for t in texts], truncation=True, max_length=max_length)["input_ids"]
            assert _rows(pt(texts)) == expected, name
        if max_length == 32:  # the character budget was used, on many passages, and kept the ids
            assert pt.cut_stats[0] > 0.1 * sum(map(len, corpora.values()))


def test_character_budget_cuts_only_at_a_space_and_keeps_the_ids(tiny_encoder_dir):
    from lexdr.dense.token_ids import _cut_point

    assert _cut_point("short", 10) is None
    assert _cut_point("aaaa bbbb cccc dddd", 12) == 9  # before the last space within the budget
    assert _cut_point("aaaa  bbbb cccc", 6) == 4  # never ends with whitespace
    assert _cut_point("x" * 200, 100) is None  # no space to cut at: tokenized whole
    enc = _tiny(tiny_encoder_dir, max_seq_length=16)
    pt = enc.passage_tokenizer()
    texts = [" ".join(f"w{i % 9} cat mat" for i in range(k + 30)) for k in range(40)] + ["dog " * 3] * 20
    expected = enc.model.tokenizer([enc.passage_prompt + t for t in texts], truncation=True, max_length=16)["input_ids"]
    assert _rows(pt(texts)) == expected
    assert pt.cut_stats[0] >= 40  # the long passages were cut


def test_one_tokenization_serves_every_encoder_with_the_same_tokenizer(tiny_encoder_dir, tmp_path, monkeypatch):
    import shutil

    from lexdr.dense.stage import encode_corpus

    corpus, texts = _corpus(tmp_path / "corpus.jsonl", 11)
    calls = []
    real = PassageTokenizer.__call__
    monkeypatch.setattr(PassageTokenizer, "__call__", lambda self, t: calls.append(len(t)) or real(self, t))
    tokens = tmp_path / "tokens"
    # a trained model keeps its base model's tokenizer: here a copy of the folder (another model to the index)
    other = _tiny(shutil.copytree(tiny_encoder_dir, tmp_path / "trained"), normalize=False)
    for n, enc in enumerate((_tiny(tiny_encoder_dir), other)):
        shards = encode_corpus(corpus, enc, tmp_path / f"enc{n}", shard_size=4, token_dir=tokens)
        got = np.concatenate([np.asarray(s.open()) for s in shards])
        assert [d for s in shards for d in s.doc_ids] == [f"d{i}" for i in range(11)]
        # bit for bit what the text path gives, shard by shard (a shard is encoded on its own)
        np.testing.assert_array_equal(got, np.concatenate([enc.encode_passages(texts[i:i + 4]) for i in (0, 4, 8)]))
    assert calls == [4, 4, 3]  # the second model tokenized nothing
    assert len(list(tokens.iterdir())) == 1


def test_killed_tokenization_resumes_from_its_shards(tiny_encoder_dir, tmp_path, monkeypatch):
    corpus, texts = _corpus(tmp_path / "corpus.jsonl", 10)
    pt = _tiny(tiny_encoder_dir).passage_tokenizer()
    seen = []
    real = PassageTokenizer.__call__

    def dies_on_third_shard(self, t):
        seen.append(len(t))
        if len(seen) == 3:
            raise KeyboardInterrupt  # killed while tokenizing shard 2
        return real(self, t)

    monkeypatch.setattr(PassageTokenizer, "__call__", dies_on_third_shard)
    with pytest.raises(KeyboardInterrupt):
        ensure_token_ids(corpus, pt, tmp_path / "tok", shard_size=3)
    folder = next((tmp_path / "tok").iterdir())
    assert json.loads((folder / "manifest.json").read_text())["complete"] is False
    # a kill between a shard's arrays and its manifest leaves arrays without a manifest: not done
    (folder / "000001.json").unlink()
    seen.clear()
    monkeypatch.setattr(PassageTokenizer, "__call__", lambda self, t: seen.append(len(t)) or real(self, t))
    shards = ensure_token_ids(corpus, pt, tmp_path / "tok", shard_size=3)
    assert seen == [3, 3, 1]  # shards 1, 2, 3; shard 0 reused
    assert [r for s in shards for r in _rows(s.open())] == _rows(real(pt, texts))
    assert json.loads((folder / "manifest.json").read_text())["complete"] is True
    seen.clear()
    ensure_token_ids(corpus, pt, tmp_path / "tok", shard_size=3)
    assert seen == []  # complete: nothing tokenized


def test_damaged_or_foreign_shards_are_tokenized_again(tiny_encoder_dir, tmp_path, caplog):
    corpus, texts = _corpus(tmp_path / "corpus.jsonl", 9)
    pt = _tiny(tiny_encoder_dir).passage_tokenizer()
    expected = _rows(pt(texts))
    root = tmp_path / "tok"
    shards = ensure_token_ids(corpus, pt, root, shard_size=3)

    def rows(shards):
        return [r for s in shards for r in _rows(s.open())]

    # damaged: one id changed in place (same size)
    arr = np.load(shards[1].paths[0])
    arr[0] += 1
    np.save(shards[1].paths[0], arr)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lexdr.dense.token_ids"):
        again = ensure_token_ids(corpus, pt, root, shard_size=3)
    assert "SHA-256 differs" in caplog.text and rows(again) == expected
    # damaged manifest
    shards[2].paths[0].with_name("000002.json").write_text("{not json")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lexdr.dense.token_ids"):
        assert rows(ensure_token_ids(corpus, pt, root, shard_size=3)) == expected
    assert "damaged" in caplog.text
    # foreign: another corpus tokenized into the same folder is not this corpus's ids
    other, other_texts = _corpus(tmp_path / "other.jsonl", 9, word="dog")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lexdr.dense.token_ids"):
        got = rows(ensure_token_ids(other, pt, root, shard_size=3))
    assert "another corpus" in caplog.text and got == _rows(pt(other_texts)) != expected
    # a foreign shard manifest dropped among this corpus's shards (the corpus's own manifest intact)
    ensure_token_ids(corpus, pt, root, shard_size=3)
    folder = shards[0].paths[0].parent
    rec = json.loads((folder / "000000.json").read_text())
    rec["corpus_sha256"] = "0" * 64
    (folder / "000000.json").write_text(json.dumps(rec))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lexdr.dense.token_ids"):
        assert rows(ensure_token_ids(corpus, pt, root, shard_size=3)) == expected
    assert "another corpus or tokenizer" in caplog.text


def test_another_length_or_prompt_is_another_folder(tiny_encoder_dir, tmp_path):
    corpus, _ = _corpus(tmp_path / "corpus.jsonl", 5)
    tok = _tiny(tiny_encoder_dir).model.tokenizer
    for pt in (PassageTokenizer(tok, 32, "passage: "), PassageTokenizer(tok, 16, "passage: "),
               PassageTokenizer(tok, 32, "")):
        ensure_token_ids(corpus, pt, tmp_path / "tok", shard_size=4)
    assert len(list((tmp_path / "tok").iterdir())) == 3

"""Long passages as overlapping token windows, searched by their best window (MaxP)."""

from __future__ import annotations

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
    run = index.search(["q1", "q2"], query, k=5)
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
    assert sorted(h.doc_id for h in index.search(["q"], query[:1], k=100)["q"]) == sorted(set(ids))

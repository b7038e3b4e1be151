"""The pipelined encode path returns what sentence-transformers' encode returns, in input order."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("workers", [0, 2])
def test_encode_texts_equals_sentence_transformers_encode(tiny_encoder_dir, workers):
    from sentence_transformers import SentenceTransformer

    from lexdr.dense.fast_encode import encode_texts

    model = SentenceTransformer(str(tiny_encoder_dir), device="cpu")
    # Lengths in no order, a duplicate, a non-Latin text, one longer than max_length (truncated).
    texts = ["the cat sat on the mat " * (i % 5 + 1) for i in range(23)] + ["東京は日本の首都です", "x", "x",
                                                                          "paris is the capital " * 40]
    expected = model.encode(texts, prompt="passage: ", batch_size=4, normalize_embeddings=True)
    got = encode_texts(model, texts, batch_size=4, max_length=64, prompt="passage: ", workers=workers, prefetch=2)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert encode_texts(model, [], batch_size=4, max_length=64).shape == (0, expected.shape[1])

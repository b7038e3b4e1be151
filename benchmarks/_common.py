"""What every benchmark suite shares: the machine it ran on, the load beside it, the command that rebuilds a
results file, and reading a pipeline run folder's metrics and manifest.

A results file names the one command that rebuilds it (:func:`command_line`), then when, where and beside what
load it was measured (:func:`now_utc`, :func:`machine_line`, :func:`load_average`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

__all__ = ["REPO", "RESULTS", "command_line", "cpu_name", "load_average", "machine", "machine_line", "now_utc",
           "read_manifest", "read_metrics"]


def cpu_name(default: str = "unknown CPU") -> str:
    """The CPU model from /proc/cpuinfo, else ``default``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default


def machine() -> dict[str, Any]:
    """CPU, cores, memory, OS and the versions of the libraries the numbers depend on (those installed)."""
    import importlib.metadata as md

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info: dict[str, Any] = {"cpu": cpu_name(platform.processor() or "unknown CPU"), "cores": os.cpu_count(),
                            "memory_gib": round(mem, 1), "os": platform.platform(),
                            "python": platform.python_version()}
    for pkg in ("numpy", "bm25s", "torch", "faiss-cpu", "transformers"):
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return info


def machine_line(info: dict[str, Any] | None = None) -> str:
    """One sentence for a results file: ``AMD EPYC (2 cores, 23.5 GiB), Linux-..., Python 3.11.7, numpy ...``."""
    info = info or machine()
    libs = ", ".join(f"{k} {info[k]}" for k in ("numpy", "bm25s", "torch", "faiss-cpu", "transformers") if k in info)
    return (f"{info['cpu']} ({info['cores']} cores, {info['memory_gib']} GiB), {info['os']}, Python {info['python']}"
            + (f", {libs}" if libs else ""))


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as ``1.02 / 0.87 / 0.60``."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def command_line(script: str, argv: Iterable[str]) -> str:
    """The command that reruns ``script`` (a path from the repository root) with ``argv``, niced."""
    return " ".join(["PYTHONPATH=src nice -n 10 .venv/bin/python", script, *map(shlex.quote, argv)])


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """A pipeline run folder's ``manifest.json`` (its config, environment and every stage's record)."""
    return _read_run_file(Path(run_dir) / "manifest.json")


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """A pipeline run folder's ``metrics.json`` (task -> system -> metric -> value)."""
    return _read_run_file(Path(run_dir) / "metrics.json")


def _read_run_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SystemExit(f"{path} does not exist (fix: finish the run with `lexdr run CONFIG` first)")
    return json.loads(path.read_text(encoding="utf-8"))

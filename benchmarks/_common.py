"""What every benchmark suite shares: the machine it ran on, the load beside it, the command that rebuilds a
results file, and reading a pipeline run folder.

A results file starts with the one command that rebuilds it (:func:`results_header`), then when, where and
beside what load it was measured, so a reader can rerun any number in it.
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
           "read_metrics", "results_header", "run_config"]


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


def results_header(title: str, command: str, load: str, date: str | None = None,
                   info: dict[str, Any] | None = None) -> list[str]:
    """The first lines of a results file: title, the command that rebuilds it, then date, machine and load."""
    return [f"# {title}", "", f"Rebuild: `{command}`", "",
            f"Measured {date or now_utc()} on {machine_line(info)}; load average {load}.", ""]


def run_config(run_dir: str | Path) -> dict[str, Any]:
    """The resolved configuration a pipeline run folder recorded (``config.json``, written by ``lexdr run``)."""
    return json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """A pipeline run folder's ``metrics.json`` (system -> task -> part -> metric -> value)."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no metrics.json (fix: finish the run with `lexdr run CONFIG` first)")
    return json.loads(path.read_text(encoding="utf-8"))

"""What the benchmark scripts say about the machine they ran on (imported by the scripts in this folder)."""

from __future__ import annotations

from pathlib import Path


def cpu_name(default: str = "unknown CPU") -> str:
    """The CPU model from /proc/cpuinfo, else ``default``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default

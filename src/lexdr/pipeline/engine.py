"""A minimal stage engine: fingerprints, skip-if-unchanged, manifest, per-stage time and peak memory.

A stage's fingerprint hashes its config, its input files (content) and the fingerprints of the stages it
reads from. A stage whose fingerprint matches the ``done.json`` in its folder is skipped; any change upstream
changes the fingerprint downstream, so exactly what depends on a change re-runs. ``done.json`` is written
last (atomically): a stage killed midway has none and runs again, resuming from its own shards or
checkpoints where it has them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lexdr.formats.files import atomic_write, file_sha256

__all__ = ["Stage", "StageRunner", "file_digest", "PeakMemory"]

logger = logging.getLogger(__name__)

_DIGESTS: dict[tuple[str, int, float], str] = {}


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's content (cached per path/size/mtime within the process)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(p)
    return _DIGESTS[key]


def _rss_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakMemory:
    """Samples this process's resident memory every 0.2 s while a stage runs (Linux /proc)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            self._stop.wait(0.2)

    def __enter__(self) -> "PeakMemory":
        self.peak = _rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


@dataclass
class Stage:
    name: str  # unique, e.g. "ja/bm25"
    fn: Callable[[Path], dict[str, Any] | None]  # writes into its folder; returns metrics/stats for the manifest
    config: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)  # user files the stage reads
    deps: list[str] = field(default_factory=list)  # stages whose outputs it reads


class StageRunner:
    def __init__(self, run_dir: Path, run_config: dict[str, Any]):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.fingerprints: dict[str, str] = {}
        self.manifest_path = self.run_dir / "manifest.json"
        self.manifest: dict[str, Any] = {}
        if self.manifest_path.exists():
            self.manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        self.manifest.update({"config": run_config, "environment": _environment()})
        self.manifest.setdefault("stages", {})

    def folder(self, name: str) -> Path:
        return self.run_dir / name

    def _fingerprint(self, stage: Stage) -> str:
        payload = {
            "config": stage.config,
            "inputs": {p: file_digest(p) for p in stage.inputs},
            "deps": {d: self.fingerprints[d] for d in stage.deps},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def run(self, stage: Stage) -> dict[str, Any]:
        fp = self._fingerprint(stage)
        self.fingerprints[stage.name] = fp
        folder = self.folder(stage.name)
        done = folder / "done.json"
        if done.exists():
            record = json.loads(done.read_text(encoding="utf-8"))
            if record.get("fingerprint") == fp:
                logger.info("stage %s: unchanged, skipped", stage.name)
                self.manifest["stages"][stage.name] = {**record, "skipped": True}
                self._write_manifest()
                return record.get("result") or {}
            done.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        logger.info("stage %s: running", stage.name)
        t0 = time.time()
        cuda = _cuda_reset_peak()
        with PeakMemory() as mem:
            result = stage.fn(folder) or {}
        record = {"fingerprint": fp, "seconds": round(time.time() - t0, 2), "peak_rss_mb": round(mem.peak / 2**20, 1),
                  **({"peak_gpu_mb": round(cuda.max_memory_allocated() / 2**20, 1)} if cuda else {}),
                  "inputs": {p: file_digest(p) for p in stage.inputs}, "config": stage.config, "result": result,
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with atomic_write(done) as fh:
            json.dump(record, fh, indent=2, default=str)
        self.manifest["stages"][stage.name] = {**record, "skipped": False}
        self._write_manifest()
        return result

    def _write_manifest(self) -> None:
        with atomic_write(self.manifest_path) as fh:
            json.dump(self.manifest, fh, indent=2, default=str)


def _cuda_reset_peak():
    """torch.cuda when a stage may use the GPU (torch already imported and a GPU present), peak counter reset.

    Only looks at torch if something already imported it: a BM25-only run must not pay torch's import."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda


def _environment() -> dict[str, Any]:
    import os
    import platform
    from importlib import metadata

    versions = {}
    for pkg in ("lexdr", "torch", "transformers", "sentence-transformers", "bm25s", "faiss-cpu", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    env = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
           "versions": versions}
    try:
        import torch

        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return env
